//! Differential tests against rmqtt-codec 0.3.1 (3.1, 3.1.1 and 5.0, every packet type, both
//! directions) and rumqttc 0.25.1's mqttbytes (3.1.1 and 5.0 samples): what we encode, they
//! decode to the same content, and what they encode, we decode to the same content.
//!
//! Contents are compared in the other crate's model, which folds absent properties into their
//! defaults; generated packets avoid the few values that model cannot hold.

// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::num::{NonZeroU16, NonZeroU32};

use common::*;
use mqtt_codec::bytes::{Bytes, BytesMut};
use mqtt_codec::bytestring::ByteString;
use mqtt_codec::*;
use proptest::prelude::*;
use rmqtt_codec::types as rt;
use rmqtt_codec::{v3 as r3, v5 as r5};
use tokio_util::codec::{Decoder, Encoder};

// ---------------------------------------------------------------- conversions to rmqtt-codec

fn rqos(qos: QoS) -> rt::QoS {
    match qos {
        QoS::AtMostOnce => rt::QoS::AtMostOnce,
        QoS::AtLeastOnce => rt::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rt::QoS::ExactlyOnce,
    }
}

fn to_r3(packet: &Packet, version: ProtocolVersion) -> r3::Packet {
    match packet {
        Packet::Connect(c) => r3::Packet::Connect(Box::new(r3::Connect {
            protocol: rt::Protocol(version.level()),
            clean_session: c.clean_start,
            keep_alive: c.keep_alive,
            last_will: c.will.as_ref().map(|w| r3::LastWill {
                qos: rqos(w.qos),
                retain: w.retain,
                topic: w.topic.clone(),
                message: w.payload.clone(),
            }),
            client_id: c.client_id.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
            cert: None,
        })),
        Packet::ConnAck(c) => r3::Packet::ConnectAck(r3::ConnectAck {
            return_code: r3::ConnectAckReason::try_from(c.reason_code.to_v3()).unwrap(),
            session_present: c.session_present,
        }),
        Packet::Publish(p) => r3::Packet::Publish(Box::new(rt::Publish {
            dup: p.dup,
            retain: p.retain,
            qos: rqos(p.qos),
            topic: p.topic.clone(),
            packet_id: p.packet_id,
            payload: p.payload.clone(),
            properties: None,
        })),
        Packet::PubAck(a) => r3::Packet::PublishAck { packet_id: a.packet_id },
        Packet::PubRec(a) => r3::Packet::PublishReceived { packet_id: a.packet_id },
        Packet::PubRel(a) => r3::Packet::PublishRelease { packet_id: a.packet_id },
        Packet::PubComp(a) => r3::Packet::PublishComplete { packet_id: a.packet_id },
        Packet::Subscribe(s) => r3::Packet::Subscribe {
            packet_id: s.packet_id,
            topic_filters: s
                .subscriptions
                .iter()
                .map(|s| (s.filter.clone(), rqos(s.options.qos)))
                .collect(),
        },
        Packet::SubAck(s) => r3::Packet::SubscribeAck {
            packet_id: s.packet_id,
            status: s
                .reason_codes
                .iter()
                .map(|c| match c.granted_qos() {
                    Some(qos) => r3::SubscribeReturnCode::Success(rqos(qos)),
                    None => r3::SubscribeReturnCode::Failure,
                })
                .collect(),
        },
        Packet::Unsubscribe(u) => {
            r3::Packet::Unsubscribe { packet_id: u.packet_id, topic_filters: u.filters.clone() }
        }
        Packet::UnsubAck(u) => r3::Packet::UnsubscribeAck { packet_id: u.packet_id },
        Packet::PingReq => r3::Packet::PingRequest,
        Packet::PingResp => r3::Packet::PingResponse,
        Packet::Disconnect(_) => r3::Packet::Disconnect,
        Packet::Auth(_) => unreachable!("no AUTH before 5.0"),
    }
}

fn publish_properties_r5(p: &PublishProperties) -> r5::PublishProperties {
    r5::PublishProperties {
        topic_alias: p.topic_alias,
        correlation_data: p.correlation_data.clone(),
        message_expiry_interval: p.message_expiry_interval.and_then(NonZeroU32::new),
        content_type: p.content_type.clone(),
        user_properties: p.user_properties.clone(),
        is_utf8_payload: p.payload_format_indicator.unwrap_or(false),
        response_topic: p.response_topic.clone(),
        subscription_ids: p.subscription_identifiers.clone(),
    }
}

fn to_r5(packet: &Packet) -> r5::Packet {
    match packet {
        Packet::Connect(c) => {
            let p = &c.properties;
            r5::Packet::Connect(Box::new(r5::Connect {
                clean_start: c.clean_start,
                keep_alive: c.keep_alive,
                session_expiry_interval_secs: p.session_expiry_interval.unwrap_or(0),
                auth_method: p.authentication_method.clone(),
                auth_data: p.authentication_data.clone(),
                request_problem_info: p.request_problem_information.unwrap_or(true),
                request_response_info: p.request_response_information.unwrap_or(false),
                receive_max: p.receive_maximum,
                topic_alias_max: p.topic_alias_maximum.unwrap_or(0),
                user_properties: p.user_properties.clone(),
                max_packet_size: p.maximum_packet_size,
                last_will: c.will.as_ref().map(|w| r5::LastWill {
                    qos: rqos(w.qos),
                    retain: w.retain,
                    topic: w.topic.clone(),
                    message: w.payload.clone(),
                    will_delay_interval_sec: w.properties.will_delay_interval,
                    correlation_data: w.properties.correlation_data.clone(),
                    message_expiry_interval: w
                        .properties
                        .message_expiry_interval
                        .and_then(NonZeroU32::new),
                    content_type: w.properties.content_type.clone(),
                    user_properties: w.properties.user_properties.clone(),
                    is_utf8_payload: w.properties.payload_format_indicator,
                    response_topic: w.properties.response_topic.clone(),
                }),
                client_id: c.client_id.clone(),
                username: c.username.clone(),
                password: c.password.clone(),
                cert: None,
            }))
        }
        Packet::ConnAck(c) => {
            let p = &c.properties;
            r5::Packet::ConnectAck(Box::new(r5::ConnectAck {
                session_present: c.session_present,
                reason_code: r5::ConnectAckReason::try_from(c.reason_code.as_u8()).unwrap(),
                session_expiry_interval_secs: p.session_expiry_interval,
                receive_max: p.receive_maximum.unwrap_or(NonZeroU16::MAX),
                max_qos: p.maximum_qos.map_or(rt::QoS::ExactlyOnce, rqos),
                max_packet_size: p.maximum_packet_size.map(NonZeroU32::get),
                assigned_client_id: p.assigned_client_identifier.clone(),
                topic_alias_max: p.topic_alias_maximum.unwrap_or(0),
                retain_available: p.retain_available.unwrap_or(true),
                wildcard_subscription_available: p.wildcard_subscription_available.unwrap_or(true),
                subscription_identifiers_available: p
                    .subscription_identifiers_available
                    .unwrap_or(true),
                shared_subscription_available: p.shared_subscription_available.unwrap_or(true),
                server_keepalive_sec: p.server_keep_alive,
                response_info: p.response_information.clone(),
                server_reference: p.server_reference.clone(),
                auth_method: p.authentication_method.clone(),
                auth_data: p.authentication_data.clone(),
                reason_string: p.reason_string.clone(),
                user_properties: p.user_properties.clone(),
            }))
        }
        Packet::Publish(p) => r5::Packet::Publish(Box::new(rt::Publish {
            dup: p.dup,
            retain: p.retain,
            qos: rqos(p.qos),
            topic: p.topic.clone(),
            packet_id: p.packet_id,
            payload: p.payload.clone(),
            properties: Some(publish_properties_r5(&p.properties)),
        })),
        Packet::PubAck(a) => {
            r5::Packet::PublishAck(r5_ack(a.packet_id, a.reason_code.as_u8(), &a.properties))
        }
        Packet::PubRec(a) => {
            r5::Packet::PublishReceived(r5_ack(a.packet_id, a.reason_code.as_u8(), &a.properties))
        }
        Packet::PubRel(a) => {
            r5::Packet::PublishRelease(r5_ack2(a.packet_id, a.reason_code.as_u8(), &a.properties))
        }
        Packet::PubComp(a) => {
            r5::Packet::PublishComplete(r5_ack2(a.packet_id, a.reason_code.as_u8(), &a.properties))
        }
        Packet::Subscribe(s) => r5::Packet::Subscribe(r5::Subscribe {
            packet_id: s.packet_id,
            id: s.properties.subscription_identifier,
            user_properties: s.properties.user_properties.clone(),
            topic_filters: s
                .subscriptions
                .iter()
                .map(|s| {
                    let o = s.options;
                    (
                        s.filter.clone(),
                        r5::SubscriptionOptions {
                            qos: rqos(o.qos),
                            no_local: o.no_local,
                            retain_as_published: o.retain_as_published,
                            retain_handling: r5::RetainHandling::try_from(o.retain_handling as u8)
                                .unwrap(),
                        },
                    )
                })
                .collect(),
        }),
        Packet::SubAck(s) => r5::Packet::SubscribeAck(r5::SubscribeAck {
            packet_id: s.packet_id,
            properties: s.properties.user_properties.clone(),
            reason_string: s.properties.reason_string.clone(),
            status: s
                .reason_codes
                .iter()
                .map(|c| r5::SubscribeAckReason::try_from(c.as_u8()).unwrap())
                .collect(),
        }),
        Packet::Unsubscribe(u) => r5::Packet::Unsubscribe(r5::Unsubscribe {
            packet_id: u.packet_id,
            user_properties: u.properties.user_properties.clone(),
            topic_filters: u.filters.clone(),
        }),
        Packet::UnsubAck(u) => r5::Packet::UnsubscribeAck(r5::UnsubscribeAck {
            packet_id: u.packet_id,
            properties: u.properties.user_properties.clone(),
            reason_string: u.properties.reason_string.clone(),
            status: u
                .reason_codes
                .iter()
                .map(|c| r5::UnsubscribeAckReason::try_from(c.as_u8()).unwrap())
                .collect(),
        }),
        Packet::PingReq => r5::Packet::PingRequest,
        Packet::PingResp => r5::Packet::PingResponse,
        Packet::Disconnect(d) => r5::Packet::Disconnect(r5::Disconnect {
            reason_code: r5::DisconnectReasonCode::try_from(d.reason_code.as_u8()).unwrap(),
            session_expiry_interval_secs: d.properties.session_expiry_interval,
            server_reference: d.properties.server_reference.clone(),
            reason_string: d.properties.reason_string.clone(),
            user_properties: d.properties.user_properties.clone(),
        }),
        Packet::Auth(a) => r5::Packet::Auth(r5::Auth {
            reason_code: r5::AuthReasonCode::try_from(a.reason_code.as_u8()).unwrap(),
            auth_method: a.properties.authentication_method.clone(),
            auth_data: a.properties.authentication_data.clone(),
            reason_string: a.properties.reason_string.clone(),
            user_properties: a.properties.user_properties.clone(),
        }),
    }
}

fn r5_ack(packet_id: PacketId, code: u8, p: &AckProperties) -> r5::PublishAck {
    r5::PublishAck {
        packet_id,
        reason_code: r5::PublishAckReason::try_from(code).unwrap(),
        properties: p.user_properties.clone(),
        reason_string: p.reason_string.clone(),
    }
}

fn r5_ack2(packet_id: PacketId, code: u8, p: &AckProperties) -> r5::PublishAck2 {
    r5::PublishAck2 {
        packet_id,
        reason_code: r5::PublishAck2Reason::try_from(code).unwrap(),
        properties: p.user_properties.clone(),
        reason_string: p.reason_string.clone(),
    }
}

/// Adjusts a valid packet to what rmqtt-codec's model can hold: it keeps Message Expiry
/// Intervals as `NonZeroU32` and refuses an empty 5.0 Client Identifier without Clean Start.
fn fit_for_rmqtt(mut packet: Packet) -> Packet {
    fn non_zero(expiry: &mut Option<u32>) {
        if *expiry == Some(0) {
            *expiry = Some(1);
        }
    }
    match &mut packet {
        Packet::Connect(c) => {
            if c.client_id.is_empty() {
                c.clean_start = true;
            }
            if let Some(will) = &mut c.will {
                non_zero(&mut will.properties.message_expiry_interval);
            }
        }
        Packet::Publish(p) => non_zero(&mut p.properties.message_expiry_interval),
        _ => {}
    }
    packet
}

// ---------------------------------------------------------------- rmqtt-codec checks

fn ours_then_rmqtt(packet: &Packet, version: ProtocolVersion) {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).unwrap();
    if version.is_v5() {
        let (decoded, _) = r5::Codec::new(0, 0).decode(&mut buf).unwrap().expect("complete");
        assert_eq!(decoded, to_r5(packet));
    } else {
        let (decoded, _) = r3::Codec::new(0).decode(&mut buf).unwrap().expect("complete");
        assert_eq!(decoded, to_r3(packet, version));
    }
    assert!(buf.is_empty());
}

fn rmqtt_then_ours(packet: &Packet, version: ProtocolVersion, role: Role) {
    if version == ProtocolVersion::V31 && matches!(packet, Packet::Connect(_)) {
        // rmqtt-codec 0.3.1 writes "MQIsdp" with level 4 (its v3 encoder hard-codes the
        // level), which is not a valid 3.1 CONNECT; our decoder rightly refuses it.
        return;
    }
    let mut buf = BytesMut::new();
    let mut ctx = context(packet, version, role);
    if version.is_v5() {
        let theirs = to_r5(packet);
        r5::Codec::new(0, 0).encode(theirs.clone(), &mut buf).unwrap();
        let decoded = decode(&mut buf, &mut ctx).unwrap().expect("complete");
        assert_eq!(to_r5(&decoded), theirs);
    } else {
        let theirs = to_r3(packet, version);
        r3::Codec::new(0).encode(theirs.clone(), &mut buf).unwrap();
        let decoded = decode(&mut buf, &mut ctx).unwrap().expect("complete");
        assert_eq!(to_r3(&decoded, version), theirs);
    }
    assert!(buf.is_empty());
}

fn any_version_role_packet() -> impl Strategy<Value = (ProtocolVersion, Role, Packet)> {
    (version(), role())
        .prop_flat_map(|(v, r)| (Just(v), Just(r), packet(v, r).prop_map(fit_for_rmqtt)))
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn rmqtt_decodes_what_we_encode((version, _role, packet) in any_version_role_packet()) {
        ours_then_rmqtt(&packet, version);
    }

    #[test]
    fn we_decode_what_rmqtt_encodes((version, role, packet) in any_version_role_packet()) {
        rmqtt_then_ours(&packet, version, role);
    }

    #[test]
    fn rmqtt_agrees_on_publish_with_properties(
        (version, role, packet) in (version(), role())
            .prop_flat_map(|(v, r)| (Just(v), Just(r), publish(v, r).prop_map(fit_for_rmqtt)))
    ) {
        ours_then_rmqtt(&packet, version);
        rmqtt_then_ours(&packet, version, role);
    }

    #[test]
    fn rmqtt_agrees_on_connect((version, packet) in version()
        .prop_flat_map(|v| (Just(v), connect(v).prop_map(fit_for_rmqtt))))
    {
        ours_then_rmqtt(&packet, version);
        rmqtt_then_ours(&packet, version, Role::Server);
    }
}

// ---------------------------------------------------------------- rumqttc samples

fn s(text: &'static str) -> ByteString {
    ByteString::from_static(text)
}

fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).unwrap()
}

/// Decodes `bytes` with our decoder as `role` under `version`.
fn ours(bytes: &[u8], version: ProtocolVersion, role: Role, connect: bool) -> Packet {
    let mut ctx =
        DecodeContext { role, version: (!connect).then_some(version), max_packet_size: 1 << 20 };
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, &mut ctx).unwrap().expect("complete");
    assert!(buf.is_empty());
    packet
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).unwrap();
    buf
}

#[test]
fn rumqttc_v4_interoperates() {
    use rumqttc::mqttbytes::QoS as MQoS;
    use rumqttc::mqttbytes::v4 as m4;
    const MAX: usize = 1 << 20;

    // CONNECT: theirs to ours.
    let mut theirs = m4::Connect::new("client-7");
    theirs.keep_alive = 30;
    theirs.set_login("user", "secret");
    theirs.last_will = Some(m4::LastWill::new("will/t", "gone", MQoS::AtLeastOnce, true));
    let mut buf = BytesMut::new();
    m4::Packet::Connect(theirs).write(&mut buf, MAX).unwrap();
    let expected = Connect {
        clean_start: true,
        keep_alive: 30,
        will: Some(LastWill {
            topic: s("will/t"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        password: Some(Bytes::from_static(b"secret")),
        ..Connect::new(ProtocolVersion::V311, s("client-7"), 30)
    };
    assert_eq!(ours(&buf, ProtocolVersion::V311, Role::Server, true), expected.clone().into());
    // ... and ours to theirs.
    let mut buf = encoded(&expected.into(), ProtocolVersion::V311);
    let m4::Packet::Connect(c) = m4::Packet::read(&mut buf, MAX).unwrap() else { panic!() };
    assert_eq!((c.client_id.as_str(), c.keep_alive, c.clean_session), ("client-7", 30, true));
    let login = c.login.unwrap();
    assert_eq!((login.username.as_str(), login.password.as_str()), ("user", "secret"));
    let will = c.last_will.unwrap();
    assert_eq!(
        (will.topic.as_str(), &will.message[..], will.qos, will.retain),
        ("will/t", &b"gone"[..], MQoS::AtLeastOnce, true)
    );

    // PUBLISH both ways.
    let mut theirs = m4::Publish::new("a/b", MQoS::ExactlyOnce, "payload");
    theirs.pkid = 9;
    theirs.retain = true;
    let mut buf = BytesMut::new();
    m4::Packet::Publish(theirs.clone()).write(&mut buf, MAX).unwrap();
    let expected = Publish {
        qos: QoS::ExactlyOnce,
        retain: true,
        packet_id: Some(pid(9)),
        ..Publish::new(s("a/b"), Bytes::from_static(b"payload"))
    };
    assert_eq!(ours(&buf, ProtocolVersion::V311, Role::Client, false), expected.clone().into());
    let mut buf = encoded(&expected.into(), ProtocolVersion::V311);
    assert_eq!(m4::Packet::read(&mut buf, MAX).unwrap(), m4::Packet::Publish(theirs));

    // SUBSCRIBE to ours, SUBACK to theirs.
    let mut theirs = m4::Subscribe::new("a/+", MQoS::AtLeastOnce);
    theirs.pkid = 3;
    theirs.add("b/#".into(), MQoS::AtMostOnce);
    let mut buf = BytesMut::new();
    m4::Packet::Subscribe(theirs).write(&mut buf, MAX).unwrap();
    let Packet::Subscribe(sub) = ours(&buf, ProtocolVersion::V311, Role::Server, false) else {
        panic!()
    };
    assert_eq!(sub.packet_id, pid(3));
    let filters: Vec<_> =
        sub.subscriptions.iter().map(|s| (&s.filter[..], s.options.qos)).collect();
    assert_eq!(filters, [("a/+", QoS::AtLeastOnce), ("b/#", QoS::AtMostOnce)]);
    let suback = SubAck {
        packet_id: pid(3),
        reason_codes: vec![SubAckReasonCode::GrantedQoS1, SubAckReasonCode::NotAuthorized],
        properties: AckProperties::default(),
    };
    let mut buf = encoded(&suback.into(), ProtocolVersion::V311);
    let expected = m4::SubAck::new(
        3,
        vec![m4::SubscribeReasonCode::Success(MQoS::AtLeastOnce), m4::SubscribeReasonCode::Failure],
    );
    assert_eq!(m4::Packet::read(&mut buf, MAX).unwrap(), m4::Packet::SubAck(expected));

    // CONNACK and PUBACK to theirs, DISCONNECT and UNSUBSCRIBE to ours.
    let connack = ConnAck { session_present: true, ..ConnAck::new(ConnectReasonCode::Success) };
    let mut buf = encoded(&connack.into(), ProtocolVersion::V311);
    assert_eq!(
        m4::Packet::read(&mut buf, MAX).unwrap(),
        m4::Packet::ConnAck(m4::ConnAck::new(m4::ConnectReturnCode::Success, true))
    );
    let mut buf = encoded(&PubAck::new(pid(4)).into(), ProtocolVersion::V311);
    assert_eq!(m4::Packet::read(&mut buf, MAX).unwrap(), m4::Packet::PubAck(m4::PubAck::new(4)));
    let mut buf = BytesMut::new();
    m4::Packet::Disconnect.write(&mut buf, MAX).unwrap();
    assert_eq!(
        ours(&buf, ProtocolVersion::V311, Role::Server, false),
        Disconnect::new(DisconnectReasonCode::NormalDisconnection).into()
    );
    let mut theirs = m4::Unsubscribe::new("a/+");
    theirs.pkid = 5;
    let mut buf = BytesMut::new();
    m4::Packet::Unsubscribe(theirs).write(&mut buf, MAX).unwrap();
    let expected = Unsubscribe {
        packet_id: pid(5),
        filters: vec![s("a/+")],
        properties: UnsubscribeProperties::default(),
    };
    assert_eq!(ours(&buf, ProtocolVersion::V311, Role::Server, false), expected.into());
}

#[test]
fn rumqttc_v5_interoperates() {
    use rumqttc::v5::mqttbytes::QoS as MQoS;
    use rumqttc::v5::mqttbytes::v5 as m5;
    const MAX: Option<u32> = Some(1 << 20);
    let v5 = ProtocolVersion::V5;

    // CONNECT with properties, theirs to ours.
    let props = m5::ConnectProperties {
        session_expiry_interval: Some(120),
        receive_maximum: Some(10),
        max_packet_size: Some(4096),
        topic_alias_max: Some(4),
        request_response_info: None,
        request_problem_info: None,
        user_properties: vec![("k".into(), "v".into())],
        authentication_method: None,
        authentication_data: None,
    };
    let theirs = m5::Connect {
        keep_alive: 15,
        client_id: "c5".into(),
        clean_start: true,
        properties: Some(props),
    };
    let mut buf = BytesMut::new();
    m5::Packet::Connect(theirs, None, None).write(&mut buf, MAX).unwrap();
    let expected = Connect {
        properties: ConnectProperties {
            session_expiry_interval: Some(120),
            receive_maximum: NonZeroU16::new(10),
            maximum_packet_size: NonZeroU32::new(4096),
            topic_alias_maximum: Some(4),
            user_properties: vec![(s("k"), s("v"))],
            ..Default::default()
        },
        ..Connect::new(v5, s("c5"), 15)
    };
    assert_eq!(ours(&buf, v5, Role::Server, true), expected.clone().into());
    // ... and ours to theirs.
    let mut buf = encoded(&expected.into(), v5);
    let m5::Packet::Connect(c, None, None) = m5::Packet::read(&mut buf, MAX).unwrap() else {
        panic!()
    };
    let p = c.properties.clone().unwrap();
    assert_eq!((c.client_id.as_str(), c.keep_alive, c.clean_start), ("c5", 15, true));
    assert_eq!(
        (p.session_expiry_interval, p.receive_maximum, p.max_packet_size),
        (Some(120), Some(10), Some(4096))
    );
    assert_eq!(p.user_properties, vec![("k".to_string(), "v".to_string())]);

    // PUBLISH with properties, both ways.
    let publish_props = m5::PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(30),
        topic_alias: Some(2),
        response_topic: Some("re/ply".into()),
        correlation_data: Some(Bytes::from_static(b"cd")),
        user_properties: vec![("a".into(), "b".into())],
        subscription_identifiers: vec![7, 300],
        content_type: Some("text/plain".into()),
    };
    let mut theirs = m5::Publish::new("s/t", MQoS::AtLeastOnce, "hi", Some(publish_props));
    theirs.pkid = 12;
    let mut buf = BytesMut::new();
    m5::Packet::Publish(theirs.clone()).write(&mut buf, MAX).unwrap();
    let expected = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: Some(pid(12)),
        properties: PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(30),
            topic_alias: NonZeroU16::new(2),
            response_topic: Some(s("re/ply")),
            correlation_data: Some(Bytes::from_static(b"cd")),
            user_properties: vec![(s("a"), s("b"))],
            subscription_identifiers: vec![
                NonZeroU32::new(7).unwrap(),
                NonZeroU32::new(300).unwrap(),
            ],
            content_type: Some(s("text/plain")),
        },
        ..Publish::new(s("s/t"), Bytes::from_static(b"hi"))
    };
    assert_eq!(ours(&buf, v5, Role::Client, false), expected.clone().into());
    let mut buf = encoded(&expected.into(), v5);
    assert_eq!(m5::Packet::read(&mut buf, MAX).unwrap(), m5::Packet::Publish(theirs));

    // SUBSCRIBE with options to ours.
    let filter = m5::Filter {
        path: "$share/g/x/+".into(),
        qos: MQoS::ExactlyOnce,
        nolocal: false,
        preserve_retain: true,
        retain_forward_rule: m5::RetainForwardRule::OnNewSubscribe,
    };
    let mut theirs = m5::Subscribe::new(filter, None);
    theirs.pkid = 6;
    let mut buf = BytesMut::new();
    m5::Packet::Subscribe(theirs).write(&mut buf, MAX).unwrap();
    let Packet::Subscribe(sub) = ours(&buf, v5, Role::Server, false) else { panic!() };
    assert_eq!(sub.subscriptions[0].filter, "$share/g/x/+");
    assert_eq!(
        sub.subscriptions[0].options,
        SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: false,
            retain_as_published: true,
            retain_handling: RetainHandling::SendAtSubscribeIfNew,
        }
    );

    // PUBACK with a reason code and DISCONNECT from the server, to theirs.
    let puback =
        PubAck { reason_code: PubAckReasonCode::NoMatchingSubscribers, ..PubAck::new(pid(12)) };
    let mut buf = encoded(&puback.into(), v5);
    let m5::Packet::PubAck(ack) = m5::Packet::read(&mut buf, MAX).unwrap() else { panic!() };
    assert_eq!((ack.pkid, ack.reason), (12, m5::PubAckReason::NoMatchingSubscribers));
    let disconnect = Disconnect::new(DisconnectReasonCode::ServerShuttingDown);
    let mut buf = encoded(&disconnect.into(), v5);
    let m5::Packet::Disconnect(d) = m5::Packet::read(&mut buf, MAX).unwrap() else { panic!() };
    assert_eq!(d.reason_code, m5::DisconnectReasonCode::ServerShuttingDown);
}
