//! MQTT 3.1.1 behaviour with a real client (rumqttc): QoS 0/1/2 round trips, QoS downgrade,
//! retained messages, wills, persistent sessions, takeover.

mod common;

use std::time::Duration;

use common::{TestBroker, v4};
use v4::{LastWill, QoS};

#[tokio::test]
async fn publish_and_subscribe_at_every_qos() {
    let broker = TestBroker::start().await;
    let (mut sub, ack) = v4::connect(v4::options(broker.addr, "sub")).await;
    assert!(!ack.session_present);
    let suback = sub.subscribe("room/+/temp", QoS::ExactlyOnce).await;
    assert_eq!(suback.return_codes, vec![rumqttc::SubscribeReasonCode::Success(QoS::ExactlyOnce)]);

    let (publisher, _) = v4::connect(v4::options(broker.addr, "pub")).await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce].into_iter().enumerate() {
        publisher
            .client
            .publish(format!("room/{i}/temp"), qos, false, format!("m{i}"))
            .await
            .expect("queued");
        let got = sub.publish().await;
        assert_eq!(got.topic, format!("room/{i}/temp"));
        assert_eq!(&got.payload[..], format!("m{i}").as_bytes());
        assert_eq!(got.qos, qos);
        assert!(!got.retain);
    }
    broker.stop().await;
}

#[tokio::test]
async fn delivery_qos_is_the_lower_of_publish_and_subscription() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = v4::connect(v4::options(broker.addr, "sub")).await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let (publisher, _) = v4::connect(v4::options(broker.addr, "pub")).await;
    publisher.client.publish("t", QoS::ExactlyOnce, false, "x").await.expect("queued");
    assert_eq!(sub.publish().await.qos, QoS::AtLeastOnce);
    publisher.client.publish("t", QoS::AtMostOnce, false, "y").await.expect("queued");
    assert_eq!(sub.publish().await.qos, QoS::AtMostOnce);
    broker.stop().await;
}

#[tokio::test]
async fn retained_messages_reach_later_subscribers_and_can_be_cleared() {
    let broker = TestBroker::start().await;
    let (publisher, _) = v4::connect(v4::options(broker.addr, "pub")).await;
    publisher.client.publish("status/a", QoS::AtLeastOnce, true, "on").await.expect("queued");
    publisher.client.publish("status/b", QoS::AtLeastOnce, true, "off").await.expect("queued");
    // A marker published after the retained ones: once it arrives, both are stored.
    let (mut probe, _) = v4::connect(v4::options(broker.addr, "probe")).await;
    probe.subscribe("marker", QoS::AtLeastOnce).await;
    publisher.client.publish("marker", QoS::AtLeastOnce, false, "").await.expect("queued");
    probe.publish().await;

    let (mut late, _) = v4::connect(v4::options(broker.addr, "late")).await;
    late.subscribe("status/#", QoS::AtLeastOnce).await;
    let mut got = [late.publish().await, late.publish().await];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(got[0].topic, "status/a");
    assert_eq!(&got[0].payload[..], b"on");
    assert!(got[0].retain, "sent because of the subscription: RETAIN set");
    assert_eq!(got[1].topic, "status/b");

    // An empty retained payload deletes; a new subscriber then gets only what is left.
    publisher.client.publish("status/a", QoS::AtLeastOnce, true, "").await.expect("queued");
    let cleared = late.publish().await;
    assert_eq!((cleared.topic.as_str(), cleared.payload.len()), ("status/a", 0));
    let (mut later, _) = v4::connect(v4::options(broker.addr, "later")).await;
    later.subscribe("status/#", QoS::AtLeastOnce).await;
    let only = later.publish().await;
    assert_eq!(only.topic, "status/b");
    broker.stop().await;
}

#[tokio::test]
async fn will_is_published_on_abnormal_disconnect_only() {
    let broker = TestBroker::start().await;
    let (mut watcher, _) = v4::connect(v4::options(broker.addr, "watcher")).await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;

    let mut opts = v4::options(broker.addr, "graceful");
    opts.set_last_will(LastWill::new("wills/graceful", "gone", QoS::AtLeastOnce, false));
    let (graceful, _) = v4::connect(opts).await;
    graceful.client.disconnect().await.expect("queued");
    graceful.closed().await;

    let mut opts = v4::options(broker.addr, "crash");
    opts.set_last_will(LastWill::new("wills/crash", "lost", QoS::AtLeastOnce, false));
    let (crash, _) = v4::connect(opts).await;
    crash.kill();

    let will = watcher.publish().await;
    assert_eq!(will.topic, "wills/crash", "the graceful client's will is discarded");
    assert_eq!(&will.payload[..], b"lost");
    broker.stop().await;
}

#[tokio::test]
async fn persistent_session_keeps_subscriptions_and_queued_messages() {
    let broker = TestBroker::start().await;
    let mut opts = v4::options(broker.addr, "durable");
    opts.set_clean_session(false);
    let (mut first, ack) = v4::connect(opts.clone()).await;
    assert!(!ack.session_present);
    first.subscribe("jobs/#", QoS::AtLeastOnce).await;
    first.client.disconnect().await.expect("queued");
    first.closed().await;

    let (publisher, _) = v4::connect(v4::options(broker.addr, "pub")).await;
    for i in 0..5 {
        publisher
            .client
            .publish(format!("jobs/{i}"), QoS::AtLeastOnce, false, vec![i])
            .await
            .expect("queued");
    }
    publisher
        .client
        .publish("jobs/qos0", QoS::AtMostOnce, false, "dropped offline")
        .await
        .expect("queued");
    // Wait until the broker has routed all of them (the publisher's PUBACKs arrive in order).
    let (mut probe, _) = v4::connect(v4::options(broker.addr, "probe")).await;
    probe.subscribe("jobs/qos0", QoS::AtMostOnce).await;
    publisher.client.publish("jobs/qos0", QoS::AtMostOnce, false, "marker").await.expect("queued");
    probe.publish().await;

    let (mut second, ack) = v4::connect(opts).await;
    assert!(ack.session_present, "the session was kept");
    for i in 0..5u8 {
        let got = second.publish().await;
        assert_eq!(got.topic, format!("jobs/{i}"), "queued messages arrive in order");
        assert_eq!(&got.payload[..], &[i]);
    }
    // The session is still subscribed: a new message arrives too.
    publisher.client.publish("jobs/new", QoS::AtLeastOnce, false, "n").await.expect("queued");
    let got = second.publish().await;
    assert_eq!(got.topic, "jobs/new", "offline QoS 0 messages were not queued");
    broker.stop().await;
}

#[tokio::test]
async fn clean_session_discards_the_old_session() {
    let broker = TestBroker::start().await;
    let mut opts = v4::options(broker.addr, "c");
    opts.set_clean_session(false);
    let (mut first, _) = v4::connect(opts.clone()).await;
    first.subscribe("x", QoS::AtLeastOnce).await;
    first.client.disconnect().await.expect("queued");
    first.closed().await;
    opts.set_clean_session(true);
    let (_second, ack) = v4::connect(opts).await;
    assert!(!ack.session_present);
    broker.stop().await;
}

#[tokio::test]
async fn a_second_connection_takes_over_the_client_id() {
    let broker = TestBroker::start().await;
    let mut opts = v4::options(broker.addr, "dup");
    opts.set_clean_session(false);
    let (mut first, _) = v4::connect(opts.clone()).await;
    first.subscribe("t", QoS::AtLeastOnce).await;
    let (mut second, ack) = v4::connect(opts).await;
    assert!(ack.session_present, "the session moves to the new connection");
    first.closed().await;
    let (publisher, _) = v4::connect(v4::options(broker.addr, "pub")).await;
    publisher.client.publish("t", QoS::AtLeastOnce, false, "hi").await.expect("queued");
    assert_eq!(&second.publish().await.payload[..], b"hi");
    broker.stop().await;
}

#[tokio::test]
async fn keepalive_timeout_closes_a_silent_client() {
    let broker = TestBroker::start().await;
    // A raw client that connects with keep alive 1 s and then says nothing.
    let mut stream = tokio::net::TcpStream::connect(broker.addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = [0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 1, 0, 1, b'k'];
    stream.write_all(&connect).await.expect("write");
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await.expect("CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "closed after keep alive × 1.25");
    assert!(rest.is_empty(), "3.1.1 gets no DISCONNECT");
    broker.stop().await;
}
