//! More broker features end to end: connection limits, Server Keep Alive, `$SYS` events and
//! statistics, offline QoS 0 queueing, Message Expiry of queued messages, unsubscribe.

mod common;

use std::time::{Duration, Instant};

use broker_core::BrokerConfig;
use common::{TestBroker, WAIT, packets, raw::RawClient};
use mqtt_codec::{Packet, ProtocolVersion, QoS, UnsubAckReasonCode, Unsubscribe};

fn config() -> BrokerConfig {
    BrokerConfig { sys_interval: None, ..BrokerConfig::default() }
}

fn connect(id: &str) -> mqtt_codec::Connect {
    common::raw::connect_packet(ProtocolVersion::V5, id)
}

async fn subscribed(c: &mut RawClient, filter: &str, qos: QoS) {
    c.send(&packets::subscribe(1, filter, qos)).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
}

#[tokio::test]
async fn node_connection_limit_refuses_extra_connections() {
    let broker = TestBroker::start_with(BrokerConfig { max_connections: 2, ..config() }).await;
    let (_a, _) = RawClient::connect(broker.addr, connect("a")).await;
    let (_b, _) = RawClient::connect(broker.addr, connect("b")).await;
    let mut c = RawClient::open(broker.addr, ProtocolVersion::V5).await;
    c.send(&Packet::Connect(Box::new(connect("c")))).await;
    assert!(c.until_closed().await.is_empty(), "closed without CONNACK");
    assert_eq!(broker.broker.stats.connections.get(), 2);
    broker.stop().await;
}

#[tokio::test]
async fn keep_alive_above_the_maximum_is_answered_with_server_keep_alive() {
    let broker = TestBroker::start_with(BrokerConfig { max_keepalive: 10, ..config() }).await;
    let mut c = connect("ka");
    c.keep_alive = 60;
    let (_c, ack) = RawClient::connect(broker.addr, c).await;
    assert_eq!(ack.properties.server_keep_alive, Some(10));
    let mut within = connect("ka-ok");
    within.keep_alive = 5;
    let (_d, ack) = RawClient::connect(broker.addr, within).await;
    assert_eq!(ack.properties.server_keep_alive, None, "5 s is within the maximum");
    broker.stop().await;
}

#[tokio::test]
async fn sys_client_status_events_use_nanomqs_payloads() {
    let broker = TestBroker::start().await;
    let (mut watcher, _) = RawClient::connect(broker.addr, connect("watcher")).await;
    subscribed(&mut watcher, "$SYS/brokers/client_status/#", QoS::AtMostOnce).await;
    let (other, _) = RawClient::connect(broker.addr, connect("device-7")).await;
    let online = watcher.next_publish().await;
    assert_eq!(&*online.topic, "$SYS/brokers/client_status/device-7");
    let json: serde_json::Value = serde_json::from_slice(&online.payload).expect("JSON");
    assert_eq!(json["status"], "online");
    assert_eq!(json["client_id"], "device-7");
    assert_eq!(json["proto_ver"], 5);
    assert_eq!(json["username"], "(null)");
    assert_eq!(json["IPv4"], "127.0.0.1");
    drop(other);
    let offline = watcher.next_publish().await;
    let json: serde_json::Value = serde_json::from_slice(&offline.payload).expect("JSON");
    assert_eq!(json["status"], "offline");
    assert_eq!(json["client_id"], "device-7");
    broker.stop().await;
}

#[tokio::test]
async fn sys_statistics_are_published_periodically() {
    let broker = TestBroker::start_with(BrokerConfig {
        sys_interval: Some(Duration::from_millis(100)),
        node_id: "node-x".into(),
        ..BrokerConfig::default()
    })
    .await;
    let (mut c, _) = RawClient::connect(broker.addr, connect("stats")).await;
    subscribed(&mut c, "$SYS/brokers/node-x/clients/connected", QoS::AtMostOnce).await;
    let p = c.next_publish().await;
    let connected: u64 = std::str::from_utf8(&p.payload).expect("utf8").parse().expect("number");
    assert!(connected >= 1, "this client is connected");
    broker.stop().await;
}

#[tokio::test]
async fn qos0_is_queued_offline_only_when_configured() {
    for queue_qos0_offline in [false, true] {
        let broker = TestBroker::start_with(BrokerConfig { queue_qos0_offline, ..config() }).await;
        let mut persistent = connect("p");
        persistent.clean_start = false;
        persistent.properties.session_expiry_interval = Some(60);
        let (mut c, _) = RawClient::connect(broker.addr, persistent.clone()).await;
        subscribed(&mut c, "t", QoS::AtLeastOnce).await;
        drop(c);
        wait_detached(&broker, "p").await;
        let (mut publisher, _) = RawClient::connect(broker.addr, connect("pub")).await;
        publisher.send(&Packet::Publish(packets::publish("t", b"q0", QoS::AtMostOnce, None))).await;
        publisher
            .send(&Packet::Publish(packets::publish("t", b"q1", QoS::AtLeastOnce, Some(1))))
            .await;
        assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
        let (mut c, ack) = RawClient::connect(broker.addr, persistent).await;
        assert!(ack.session_present);
        let first = c.next_publish().await;
        let expected: &[u8] = if queue_qos0_offline { b"q0" } else { b"q1" };
        assert_eq!(&first.payload[..], expected, "queue_qos0_offline = {queue_qos0_offline}");
        broker.stop().await;
    }
}

async fn wait_detached(broker: &TestBroker, id: &str) {
    let detached = test_support::eventually(WAIT, || async {
        let entry = broker.broker.sessions.get(id)?;
        matches!(&*entry.slot.lock().await, broker_core::registry::Slot::Detached(_)).then_some(())
    })
    .await;
    assert!(detached.is_some(), "{id} detached");
}

#[tokio::test]
async fn queued_messages_expire() {
    let broker = TestBroker::start_with(config()).await;
    let mut persistent = connect("late");
    persistent.clean_start = false;
    persistent.properties.session_expiry_interval = Some(60);
    let (mut c, _) = RawClient::connect(broker.addr, persistent.clone()).await;
    subscribed(&mut c, "news", QoS::AtLeastOnce).await;
    drop(c);
    wait_detached(&broker, "late").await;
    let (mut publisher, _) = RawClient::connect(broker.addr, connect("pub")).await;
    let mut short = packets::publish("news", b"stale", QoS::AtLeastOnce, Some(1));
    short.properties.message_expiry_interval = Some(1);
    publisher.send(&Packet::Publish(short)).await;
    let mut long = packets::publish("news", b"fresh", QoS::AtLeastOnce, Some(2));
    long.properties.message_expiry_interval = Some(600);
    publisher.send(&Packet::Publish(long)).await;
    let published = Instant::now();
    for _ in 0..2 {
        assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    }
    // Wait (by polling the clock) until the 1 s expiry has passed.
    let passed = test_support::eventually(WAIT, || async {
        (published.elapsed() > Duration::from_millis(1100)).then_some(())
    })
    .await;
    assert!(passed.is_some());
    let (mut c, _) = RawClient::connect(broker.addr, persistent).await;
    let got = c.next_publish().await;
    assert_eq!(&got.payload[..], b"fresh", "the expired message is not delivered");
    let left = got.properties.message_expiry_interval.expect("expiry forwarded");
    assert!((590..=600).contains(&left), "expiry counts down: {left}");
    broker.stop().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_reports_unknown_filters() {
    let broker = TestBroker::start_with(config()).await;
    let (mut c, _) = RawClient::connect(broker.addr, connect("u")).await;
    subscribed(&mut c, "a", QoS::AtMostOnce).await;
    c.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: packets::id(2),
        filters: vec!["a".into(), "never".into()],
        properties: Default::default(),
    }))
    .await;
    match c.recv().await {
        Some(Packet::UnsubAck(ack)) => assert_eq!(
            ack.reason_codes,
            vec![UnsubAckReasonCode::Success, UnsubAckReasonCode::NoSubscriptionExisted]
        ),
        other => panic!("UNSUBACK expected, got {other:?}"),
    }
    assert_eq!(broker.broker.router.len(), 0);
    broker.stop().await;
}
