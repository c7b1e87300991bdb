//! Protocol violations over raw sockets: each gets the specified reaction (MQTT 5 reason code in a
//! CONNACK or DISCONNECT; a plain close for 3.1.x) and affects only the offending client — a
//! bystander connected before the violation keeps publishing and receiving afterwards.

mod common;

use std::num::NonZeroU16;

use broker_core::BrokerConfig;
use common::{TestBroker, packets, raw::RawClient};
use mqtt_codec::{
    ConnectReasonCode, DisconnectReasonCode, Packet, ProtocolVersion, PubRecReasonCode, QoS,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// A client subscribed to its own topic, to show the broker still serves others.
struct Bystander(RawClient);

impl Bystander {
    async fn join(broker: &TestBroker) -> Self {
        let (mut c, _) =
            RawClient::connect(broker.addr, common::raw::connect_packet(V5, "bystander")).await;
        c.send(&packets::subscribe(1, "bystander/echo", QoS::AtLeastOnce)).await;
        assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
        Self(c)
    }

    async fn still_served(mut self) {
        self.0
            .send(&Packet::Publish(packets::publish(
                "bystander/echo",
                b"ping",
                QoS::AtLeastOnce,
                Some(9),
            )))
            .await;
        let mut got_ack = false;
        let mut got_msg = false;
        while !(got_ack && got_msg) {
            match self.0.recv().await {
                Some(Packet::PubAck(_)) => got_ack = true,
                Some(Packet::Publish(p)) => {
                    assert_eq!(&p.payload[..], b"ping");
                    self.0
                        .send(&Packet::PubAck(mqtt_codec::PubAck::new(p.packet_id.expect("id"))))
                        .await;
                    got_msg = true;
                }
                Some(_) => {}
                None => panic!("the bystander was disconnected"),
            }
        }
    }
}

async fn connected(broker: &TestBroker, version: ProtocolVersion, id: &str) -> RawClient {
    let (c, ack) = RawClient::connect(broker.addr, common::raw::connect_packet(version, id)).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    c
}

/// The DISCONNECT reason the server sent before closing (None: closed without DISCONNECT).
async fn disconnect_reason(c: &mut RawClient) -> Option<DisconnectReasonCode> {
    c.until_closed().await.into_iter().rev().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

#[tokio::test]
async fn second_connect_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let bystander = Bystander::join(&broker).await;
    let mut c = connected(&broker, V5, "twice").await;
    c.send(&Packet::Connect(Box::new(common::raw::connect_packet(V5, "twice")))).await;
    assert_eq!(disconnect_reason(&mut c).await, Some(DisconnectReasonCode::ProtocolError));
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn publish_before_connect_closes_without_answer() {
    let broker = TestBroker::start().await;
    let bystander = Bystander::join(&broker).await;
    let mut c = RawClient::open(broker.addr, V5).await;
    c.send(&Packet::Publish(packets::publish("t", b"x", QoS::AtMostOnce, None))).await;
    assert!(c.until_closed().await.is_empty());
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn topic_alias_zero_or_above_the_maximum_is_topic_alias_invalid() {
    let broker = TestBroker::start().await;
    let bystander = Bystander::join(&broker).await;
    // Alias 0, written by hand (the encoder refuses it): PUBLISH "t", properties {0x23: 0}.
    let mut zero = connected(&broker, V5, "alias0").await;
    zero.send_bytes(&[0x30, 0x08, 0x00, 0x01, b't', 0x03, 0x23, 0x00, 0x00, b'x']).await;
    assert_eq!(disconnect_reason(&mut zero).await, Some(DisconnectReasonCode::TopicAliasInvalid));

    let mut above = connected(&broker, V5, "alias-high").await;
    let mut p = packets::publish("t", b"x", QoS::AtMostOnce, None);
    p.properties.topic_alias = NonZeroU16::new(1025);
    above.send(&Packet::Publish(p)).await;
    assert_eq!(disconnect_reason(&mut above).await, Some(DisconnectReasonCode::TopicAliasInvalid));

    let mut unknown = connected(&broker, V5, "alias-unknown").await;
    let mut p = packets::publish("", b"x", QoS::AtMostOnce, None);
    p.properties.topic_alias = NonZeroU16::new(3);
    unknown.send(&Packet::Publish(p)).await;
    assert_eq!(disconnect_reason(&mut unknown).await, Some(DisconnectReasonCode::ProtocolError));
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn reused_qos2_packet_id_is_not_routed_twice() {
    let broker = TestBroker::start().await;
    let bystander = Bystander::join(&broker).await;
    let mut sub = connected(&broker, V5, "sub").await;
    sub.send(&packets::subscribe(1, "once", QoS::AtMostOnce)).await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));

    let mut c = connected(&broker, V5, "qos2").await;
    let first = packets::publish("once", b"1", QoS::ExactlyOnce, Some(7));
    c.send(&Packet::Publish(first.clone())).await;
    assert!(
        matches!(c.recv().await, Some(Packet::PubRec(r)) if r.reason_code == PubRecReasonCode::Success)
    );
    // The same id again before PUBREL, without DUP: "Packet Identifier in use".
    c.send(&Packet::Publish(first.clone())).await;
    assert!(matches!(
        c.recv().await,
        Some(Packet::PubRec(r)) if r.reason_code == PubRecReasonCode::PacketIdentifierInUse
    ));
    // A retransmission (DUP set) is acknowledged again, and not routed again either.
    let mut dup = first;
    dup.dup = true;
    c.send(&Packet::Publish(dup)).await;
    assert!(
        matches!(c.recv().await, Some(Packet::PubRec(r)) if r.reason_code == PubRecReasonCode::Success)
    );
    c.send(&Packet::PubRel(mqtt_codec::PubRel::new(packets::id(7)))).await;
    assert!(matches!(c.recv().await, Some(Packet::PubComp(_))));
    c.send(&Packet::Publish(packets::publish("once", b"2", QoS::AtMostOnce, None))).await;
    let payloads: Vec<Vec<u8>> = {
        let mut v = Vec::new();
        while v.len() < 2 {
            if let Some(Packet::Publish(p)) = sub.recv().await {
                v.push(p.payload.to_vec());
            }
        }
        v
    };
    assert_eq!(payloads, vec![b"1".to_vec(), b"2".to_vec()], "exactly once");
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn oversize_packet_is_refused_before_its_body_arrives() {
    let broker = TestBroker::start_with(BrokerConfig {
        max_packet_size: 1024,
        sys_interval: None,
        ..BrokerConfig::default()
    })
    .await;
    let bystander = Bystander::join(&broker).await;
    let mut c = connected(&broker, V5, "big").await;
    // Only the fixed header of a 2000-byte PUBLISH.
    c.send_bytes(&[0x30, 0xd0, 0x0f]).await;
    assert_eq!(disconnect_reason(&mut c).await, Some(DisconnectReasonCode::PacketTooLarge));
    let mut old = connected(&broker, V311, "big311").await;
    old.send_bytes(&[0x30, 0xd0, 0x0f]).await;
    assert!(old.until_closed().await.is_empty(), "3.1.1: closed without a DISCONNECT");
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn invalid_utf8_is_a_malformed_packet() {
    let broker = TestBroker::start().await;
    let bystander = Bystander::join(&broker).await;
    let mut c = connected(&broker, V5, "utf8").await;
    // PUBLISH with topic bytes C3 28 (invalid UTF-8), no properties, payload "x".
    c.send_bytes(&[0x30, 0x06, 0x00, 0x02, 0xc3, 0x28, 0x00, b'x']).await;
    assert_eq!(disconnect_reason(&mut c).await, Some(DisconnectReasonCode::MalformedPacket));
    let mut old = connected(&broker, V311, "utf8-311").await;
    old.send_bytes(&[0x30, 0x05, 0x00, 0x02, 0xc3, 0x28, b'x']).await;
    assert!(old.until_closed().await.is_empty());
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_1() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::open(broker.addr, V311).await;
    // CONNECT "MQTT" level 6.
    c.send_bytes(&[
        0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3c, 0x00, 0x01, b'c',
    ])
    .await;
    let got = c.until_closed().await;
    assert!(matches!(
        got.as_slice(),
        [Packet::ConnAck(a)] if a.reason_code == ConnectReasonCode::UnsupportedProtocolVersion
    ));
    broker.stop().await;
}

#[tokio::test]
async fn qos3_and_bad_filters_are_refused() {
    let broker = TestBroker::start().await;
    let bystander = Bystander::join(&broker).await;
    let mut c = connected(&broker, V5, "qos3").await;
    c.send_bytes(&[0x36, 0x04, 0x00, 0x01, b't', 0x00]).await;
    assert_eq!(disconnect_reason(&mut c).await, Some(DisconnectReasonCode::MalformedPacket));
    let mut f = connected(&broker, V5, "filter").await;
    f.send(&packets::subscribe(1, "a/#/b", QoS::AtMostOnce)).await;
    let reason = disconnect_reason(&mut f).await;
    assert!(
        matches!(
            reason,
            Some(DisconnectReasonCode::TopicFilterInvalid | DisconnectReasonCode::MalformedPacket)
        ),
        "got {reason:?}"
    );
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn too_many_unreleased_qos2_messages_exceed_receive_maximum() {
    let broker = TestBroker::start_with(BrokerConfig {
        receive_maximum: 3,
        sys_interval: None,
        ..BrokerConfig::default()
    })
    .await;
    let bystander = Bystander::join(&broker).await;
    let mut c = connected(&broker, V5, "flood").await;
    for i in 1..=4u16 {
        c.send(&Packet::Publish(packets::publish("t", b"x", QoS::ExactlyOnce, Some(i)))).await;
    }
    assert_eq!(disconnect_reason(&mut c).await, Some(DisconnectReasonCode::ReceiveMaximumExceeded));
    bystander.still_served().await;
    broker.stop().await;
}

#[tokio::test]
async fn keepalive_timeout_is_0x8d_on_mqtt5() {
    let broker = TestBroker::start().await;
    let mut connect = common::raw::connect_packet(V5, "sleepy");
    connect.keep_alive = 1;
    let (mut c, _) = RawClient::connect(broker.addr, connect).await;
    assert_eq!(disconnect_reason(&mut c).await, Some(DisconnectReasonCode::KeepAliveTimeout));
    broker.stop().await;
}

#[tokio::test]
async fn empty_client_id_needs_a_clean_session_in_311() {
    let broker = TestBroker::start().await;
    let mut connect = common::raw::connect_packet(V311, "");
    connect.clean_start = false;
    let mut c = RawClient::open(broker.addr, V311).await;
    c.send(&Packet::Connect(Box::new(connect))).await;
    let got = c.until_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.reason_code == ConnectReasonCode::ClientIdentifierNotValid),
        "CONNACK 2 (identifier rejected), got {got:?}"
    );
    let mut clean = common::raw::connect_packet(V311, "");
    clean.clean_start = true;
    let (_c, ack) = RawClient::connect(broker.addr, clean).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success, "accepted with a clean session");
    broker.stop().await;
}
