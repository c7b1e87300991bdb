//! MQTT 5 behaviour: properties passed through, subscription identifiers, No Local, Retain As
//! Published and Retain Handling, session expiry, will delay, topic aliases both ways, the
//! client's Maximum Packet Size and Receive Maximum, assigned client ids, takeover reason code,
//! shared subscriptions.

mod common;

use std::num::NonZeroU16;

use bytes::Bytes;
use common::{TestBroker, WAIT, packets, raw::RawClient, v5};
use mqtt_codec::{
    ConnectReasonCode, DisconnectReasonCode, Packet, ProtocolVersion, PubAck, QoS, RetainHandling,
    SubAckReasonCode, Subscribe, Subscription, SubscriptionOptions,
};

fn v5_connect(id: &str) -> mqtt_codec::Connect {
    common::raw::connect_packet(ProtocolVersion::V5, id)
}

#[tokio::test]
async fn message_properties_pass_through_unchanged() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = v5::connect(v5::options(broker.addr, "sub")).await;
    sub.subscribe("req/#", v5::QoS::AtLeastOnce).await;
    let (publisher, _) = v5::connect(v5::options(broker.addr, "pub")).await;
    let props = v5::PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        response_topic: Some("resp/1".into()),
        correlation_data: Some(Bytes::from_static(b"corr-7")),
        user_properties: vec![
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "x".into()),
        ],
        content_type: Some("application/json".into()),
        ..Default::default()
    };
    publisher
        .client
        .publish_with_properties("req/1", v5::QoS::AtLeastOnce, false, "{}", props)
        .await
        .expect("queued");
    let got = sub.publish().await;
    let p = got.properties.expect("properties");
    assert_eq!(p.payload_format_indicator, Some(1));
    assert!(matches!(p.message_expiry_interval, Some(s) if (3590..=3600).contains(&s)));
    assert_eq!(p.response_topic.as_deref(), Some("resp/1"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"corr-7"[..]));
    assert_eq!(
        p.user_properties,
        vec![("a".into(), "1".into()), ("a".into(), "2".into()), ("b".into(), "x".into())],
        "user properties keep their order and duplicates"
    );
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    broker.stop().await;
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_with_every_identifier() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::connect(broker.addr, v5_connect("ids")).await;
    for (packet_id, filter, sub_id) in [(1, "a/+", 11u32), (2, "a/#", 22)] {
        let mut sub = packets::subscribe(packet_id, filter, QoS::AtLeastOnce);
        if let Packet::Subscribe(s) = &mut sub {
            s.properties.subscription_identifier = std::num::NonZeroU32::new(sub_id);
        }
        client.send(&sub).await;
        assert!(matches!(client.recv().await, Some(Packet::SubAck(_))));
    }
    client.send(&Packet::Publish(packets::publish("a/b", b"x", QoS::AtMostOnce, None))).await;
    let got = client.next_publish().await;
    let mut ids: Vec<u32> =
        got.properties.subscription_identifiers.iter().map(|n| n.get()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![11, 22]);
    // One copy only: the next packet is the answer to a PING, not a second PUBLISH.
    client.send(&Packet::PingReq).await;
    assert!(matches!(client.recv().await, Some(Packet::PingResp)));
    broker.stop().await;
}

#[tokio::test]
async fn no_local_retain_as_published_and_retain_handling() {
    let broker = TestBroker::start().await;
    let (mut c, _) = RawClient::connect(broker.addr, v5_connect("opts")).await;
    // A retained message exists before the subscriptions.
    c.send(&Packet::Publish({
        let mut p = packets::publish("r/x", b"kept", QoS::AtMostOnce, None);
        p.retain = true;
        p
    }))
    .await;
    let subscribe = |packet_id: u16, filter: &str, no_local, rap, rh| {
        Packet::Subscribe(Subscribe {
            packet_id: packets::id(packet_id),
            subscriptions: vec![Subscription {
                filter: filter.into(),
                options: SubscriptionOptions {
                    qos: QoS::AtMostOnce,
                    no_local,
                    retain_as_published: rap,
                    retain_handling: rh,
                },
            }],
            properties: Default::default(),
        })
    };
    // Retain Handling 2: no retained message on subscribe.
    c.send(&subscribe(1, "r/#", false, true, RetainHandling::DoNotSend)).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    // No Local: our own publishes to "own" are not sent back.
    c.send(&subscribe(2, "own", true, false, RetainHandling::SendAtSubscribe)).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    c.send(&Packet::Publish(packets::publish("own", b"mine", QoS::AtMostOnce, None))).await;
    // Retain As Published: a retained publish on r/# keeps RETAIN.
    c.send(&Packet::Publish({
        let mut p = packets::publish("r/y", b"live", QoS::AtMostOnce, None);
        p.retain = true;
        p
    }))
    .await;
    let got = c.next_publish().await;
    assert_eq!(&*got.topic, "r/y", "neither the retained r/x nor the own message came first");
    assert!(got.retain, "Retain As Published keeps the flag");
    // Retain Handling 1 on an existing subscription: nothing; on a new one: the retained messages.
    c.send(&subscribe(3, "r/#", false, false, RetainHandling::SendAtSubscribeIfNew)).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    c.send(&subscribe(4, "r/+", false, false, RetainHandling::SendAtSubscribeIfNew)).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    let mut topics =
        vec![c.next_publish().await.topic.to_string(), c.next_publish().await.topic.to_string()];
    topics.sort();
    assert_eq!(topics, vec!["r/x", "r/y"]);
    broker.stop().await;
}

#[tokio::test]
async fn session_expiry_keeps_then_discards_the_session() {
    let broker = TestBroker::start().await;
    let mut connect = v5_connect("exp");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(1);
    let (mut c, ack) = RawClient::connect(broker.addr, connect.clone()).await;
    assert!(!ack.session_present);
    c.send(&packets::subscribe(1, "t", QoS::AtLeastOnce)).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    drop(c);
    // Kept while the interval runs, gone after it.
    let gone = test_support::eventually(WAIT, || async {
        broker.broker.sessions.get("exp").is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the session expires");
    assert_eq!(broker.broker.router.len(), 0, "its subscriptions went with it");
    let (_c, ack) = RawClient::connect(broker.addr, connect).await;
    assert!(!ack.session_present);
    broker.stop().await;
}

#[tokio::test]
async fn will_delay_is_cancelled_by_a_reconnect_and_honoured_otherwise() {
    let broker = TestBroker::start().await;
    let (mut watcher, _) = RawClient::connect(broker.addr, v5_connect("watcher")).await;
    watcher.send(&packets::subscribe(1, "will/#", QoS::AtLeastOnce)).await;
    assert!(matches!(watcher.recv().await, Some(Packet::SubAck(_))));

    let with_will = |id: &str, topic: &str, delay: u32| {
        let mut c = v5_connect(id);
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(60);
        let mut will = mqtt_codec::LastWill {
            topic: topic.into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        };
        will.properties.will_delay_interval = Some(delay);
        c.will = Some(will);
        c
    };
    // Comes back before its 30 s delay: no will.
    let (c1, _) = RawClient::connect(broker.addr, with_will("back", "will/back", 30)).await;
    drop(c1);
    let (_c1, ack) = RawClient::connect(broker.addr, v5_connect_resume("back")).await;
    assert!(ack.session_present);
    // Does not come back: its will arrives after 1 s.
    let (c2, _) = RawClient::connect(broker.addr, with_will("gone", "will/gone", 1)).await;
    drop(c2);
    let got = watcher.next_publish().await;
    assert_eq!(&*got.topic, "will/gone");
    broker.stop().await;
}

fn v5_connect_resume(id: &str) -> mqtt_codec::Connect {
    let mut c = v5_connect(id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    c
}

#[tokio::test]
async fn inbound_topic_aliases_resolve() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = RawClient::connect(broker.addr, v5_connect("sub")).await;
    sub.send(&packets::subscribe(1, "long/topic/name", QoS::AtMostOnce)).await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    let (mut publisher, ack) = RawClient::connect(broker.addr, v5_connect("pub")).await;
    assert_eq!(ack.properties.topic_alias_maximum, Some(1024));
    let mut first = packets::publish("long/topic/name", b"1", QoS::AtMostOnce, None);
    first.properties.topic_alias = NonZeroU16::new(5);
    publisher.send(&Packet::Publish(first)).await;
    let mut second = packets::publish("", b"2", QoS::AtMostOnce, None);
    second.properties.topic_alias = NonZeroU16::new(5);
    publisher.send(&Packet::Publish(second)).await;
    for payload in [b"1", b"2"] {
        let got = sub.next_publish().await;
        assert_eq!(&*got.topic, "long/topic/name");
        assert_eq!(&got.payload[..], payload);
    }
    broker.stop().await;
}

#[tokio::test]
async fn outbound_topic_aliases_are_assigned_when_the_client_allows_them() {
    let broker = TestBroker::start().await;
    let mut connect = v5_connect("aliased");
    connect.properties.topic_alias_maximum = Some(4);
    let (mut sub, _) = RawClient::connect(broker.addr, connect).await;
    sub.send(&packets::subscribe(1, "sensor/#", QoS::AtMostOnce)).await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    let (mut publisher, _) = RawClient::connect(broker.addr, v5_connect("pub")).await;
    for _ in 0..2 {
        publisher
            .send(&Packet::Publish(packets::publish("sensor/1", b"v", QoS::AtMostOnce, None)))
            .await;
    }
    let first = sub.next_publish().await;
    assert_eq!(&*first.topic, "sensor/1");
    let alias = first.properties.topic_alias.expect("an alias is assigned");
    let second = sub.next_publish().await;
    assert_eq!(&*second.topic, "", "the topic is replaced by the alias");
    assert_eq!(second.properties.topic_alias, Some(alias));
    broker.stop().await;
}

#[tokio::test]
async fn messages_larger_than_the_clients_maximum_are_dropped_for_that_client() {
    let broker = TestBroker::start().await;
    let mut connect = v5_connect("small");
    connect.properties.maximum_packet_size = std::num::NonZeroU32::new(64);
    let (mut small, _) = RawClient::connect(broker.addr, connect).await;
    small.send(&packets::subscribe(1, "big/#", QoS::AtMostOnce)).await;
    assert!(matches!(small.recv().await, Some(Packet::SubAck(_))));
    let (mut publisher, _) = RawClient::connect(broker.addr, v5_connect("pub")).await;
    publisher
        .send(&Packet::Publish(packets::publish("big/1", &[b'x'; 200], QoS::AtMostOnce, None)))
        .await;
    publisher
        .send(&Packet::Publish(packets::publish("big/2", b"fits", QoS::AtMostOnce, None)))
        .await;
    let got = small.next_publish().await;
    assert_eq!(&*got.topic, "big/2", "the oversize message was skipped");
    broker.stop().await;
}

#[tokio::test]
async fn receive_maximum_limits_messages_in_flight() {
    let broker = TestBroker::start().await;
    let mut connect = v5_connect("slow");
    connect.properties.receive_maximum = NonZeroU16::new(2);
    let (mut slow, _) = RawClient::connect(broker.addr, connect).await;
    slow.send(&packets::subscribe(1, "q", QoS::AtLeastOnce)).await;
    assert!(matches!(slow.recv().await, Some(Packet::SubAck(_))));
    let (mut publisher, _) = RawClient::connect(broker.addr, v5_connect("pub")).await;
    for i in 1..=3u16 {
        publisher
            .send(&Packet::Publish(packets::publish("q", b"m", QoS::AtLeastOnce, Some(i))))
            .await;
    }
    let a = slow.next_publish().await;
    let _b = slow.next_publish().await;
    // The third waits: a PING is answered before it.
    slow.send(&Packet::PingReq).await;
    assert!(matches!(slow.recv().await, Some(Packet::PingResp)));
    slow.send(&Packet::PubAck(PubAck::new(a.packet_id.expect("QoS 1 id")))).await;
    let c = slow.next_publish().await;
    assert!(c.packet_id.is_some());
    broker.stop().await;
}

#[tokio::test]
async fn empty_client_id_gets_an_assigned_identifier() {
    let broker = TestBroker::start().await;
    let (_c, ack) = RawClient::connect(broker.addr, v5_connect("")).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    let assigned = ack.properties.assigned_client_identifier.expect("assigned id");
    assert!(!assigned.is_empty());
    assert!(broker.broker.sessions.get(&assigned).is_some());
    broker.stop().await;
}

#[tokio::test]
async fn takeover_sends_session_taken_over_to_the_old_connection() {
    let broker = TestBroker::start().await;
    let (mut old, _) = RawClient::connect(broker.addr, v5_connect("same")).await;
    let (_new, _) = RawClient::connect(broker.addr, v5_connect("same")).await;
    let packets = old.until_closed().await;
    assert!(matches!(
        packets.last(),
        Some(Packet::Disconnect(d)) if d.reason_code == DisconnectReasonCode::SessionTakenOver
    ));
    broker.stop().await;
}

#[tokio::test]
async fn shared_subscription_spreads_messages_over_members() {
    let broker = TestBroker::start().await;
    let mut members = Vec::new();
    for name in ["w1", "w2"] {
        let (mut c, _) = RawClient::connect(broker.addr, v5_connect(name)).await;
        c.send(&packets::subscribe(1, "$share/workers/jobs/+", QoS::AtLeastOnce)).await;
        match c.recv().await {
            Some(Packet::SubAck(ack)) => {
                assert_eq!(ack.reason_codes, vec![SubAckReasonCode::GrantedQoS1]);
            }
            other => panic!("SUBACK expected, got {other:?}"),
        }
        members.push(c);
    }
    let (mut publisher, _) = RawClient::connect(broker.addr, v5_connect("pub")).await;
    for i in 1..=4u16 {
        publisher
            .send(&Packet::Publish(packets::publish("jobs/x", b"j", QoS::AtLeastOnce, Some(i))))
            .await;
    }
    for member in &mut members {
        for _ in 0..2 {
            let p = member.next_publish().await;
            member.send(&Packet::PubAck(PubAck::new(p.packet_id.expect("id")))).await;
        }
        member.send(&Packet::PingReq).await;
        assert!(matches!(member.recv().await, Some(Packet::PingResp)), "exactly two each");
    }
    broker.stop().await;
}
