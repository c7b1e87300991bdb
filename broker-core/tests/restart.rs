//! Sessions survive a broker restart through the session store: subscriptions, unacknowledged
//! messages (resent with DUP) and messages queued while the client was away.

mod common;

use std::sync::Arc;

use broker_core::{BrokerConfig, store::MemoryStore};
use common::{TestBroker, packets, raw::RawClient};
use mqtt_codec::{Packet, ProtocolVersion, QoS};

#[tokio::test]
async fn a_restarted_broker_restores_detached_sessions() {
    let store = Arc::new(MemoryStore::new());
    let config = BrokerConfig { sys_interval: None, ..BrokerConfig::default() };
    let first = TestBroker::start_with_store(config.clone(), Some(store.clone())).await;
    let mut connect = common::raw::connect_packet(ProtocolVersion::V311, "survivor");
    connect.clean_start = false;
    let (mut c, _) = RawClient::connect(first.addr, connect.clone()).await;
    c.send(&packets::subscribe(1, "jobs/#", QoS::AtLeastOnce)).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    let (mut publisher, _) =
        RawClient::connect(first.addr, common::raw::connect_packet(ProtocolVersion::V311, "p"))
            .await;
    publisher
        .send(&Packet::Publish(packets::publish("jobs/1", b"unacked", QoS::AtLeastOnce, Some(1))))
        .await;
    // Received but never acknowledged: in flight when the client goes away.
    match c.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"unacked"),
        other => panic!("PUBLISH expected, got {other:?}"),
    }
    drop(c);
    let detached = test_support::eventually(common::WAIT, || async {
        let entry = first.broker.sessions.get("survivor")?;
        matches!(&*entry.slot.lock().await, broker_core::registry::Slot::Detached(_)).then_some(())
    })
    .await;
    assert!(detached.is_some());
    publisher
        .send(&Packet::Publish(packets::publish("jobs/2", b"queued", QoS::AtLeastOnce, Some(2))))
        .await;
    for _ in 0..2 {
        assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    }
    drop(publisher);
    first.stop().await;

    let second = TestBroker::start_with_store(config, Some(store)).await;
    let (mut c, ack) = RawClient::connect(second.addr, connect).await;
    assert!(ack.session_present, "the session came back");
    match c.recv().await {
        Some(Packet::Publish(p)) => {
            assert_eq!(&p.payload[..], b"unacked");
            assert!(p.dup, "resent with DUP");
            c.send(&Packet::PubAck(mqtt_codec::PubAck::new(p.packet_id.expect("id")))).await;
        }
        other => panic!("resent PUBLISH expected, got {other:?}"),
    }
    match c.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"queued"),
        other => panic!("queued PUBLISH expected, got {other:?}"),
    }
    // And the subscription itself survived.
    let (mut publisher, _) =
        RawClient::connect(second.addr, common::raw::connect_packet(ProtocolVersion::V311, "p2"))
            .await;
    publisher
        .send(&Packet::Publish(packets::publish("jobs/3", b"new", QoS::AtMostOnce, None)))
        .await;
    match c.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"new"),
        other => panic!("PUBLISH expected, got {other:?}"),
    }
    second.stop().await;
}
