//! Byte vectors written by hand from the MQTT 3.1, 3.1.1 and 5.0 specifications, for every packet
//! type: each decodes to the expected packet and encodes back to the same bytes.

// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::num::{NonZeroU16, NonZeroU32};

use mqtt_codec::bytes::{Bytes, BytesMut};
use mqtt_codec::bytestring::ByteString;
use mqtt_codec::*;

use ProtocolVersion::{V5, V31, V311};

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn s(text: &'static str) -> ByteString {
    ByteString::from_static(text)
}

fn b(data: &'static [u8]) -> Bytes {
    Bytes::from_static(data)
}

fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).unwrap()
}

fn user(k: &'static str, v: &'static str) -> UserProperty {
    (s(k), s(v))
}

/// Decodes `bytes` as received by `role`, compares with `expected`, and re-encodes.
fn check(bytes: &[u8], version: ProtocolVersion, role: Role, expected: Packet) {
    let mut ctx = DecodeContext {
        role,
        version: if matches!(expected, Packet::Connect(_)) { None } else { Some(version) },
        max_packet_size: 1 << 20,
    };
    let mut buf = BytesMut::from(bytes);
    let decoded = decode(&mut buf, &mut ctx).unwrap().expect("complete packet");
    assert_eq!(decoded, expected);
    assert!(buf.is_empty(), "left over: {buf:?}");
    assert_eq!(ctx.version, Some(version));

    let mut out = BytesMut::new();
    encode(&expected, version, &mut out).unwrap();
    assert_eq!(&out[..], bytes, "re-encoding {expected:?}");
}

/// Decodes `bytes` (a valid but non-canonical form) to `expected`, without the re-encoding check.
fn check_decode_only(bytes: &[u8], version: ProtocolVersion, role: Role, expected: Packet) {
    let mut ctx = DecodeContext { role, version: Some(version), max_packet_size: 1 << 20 };
    let mut buf = BytesMut::from(bytes);
    assert_eq!(decode(&mut buf, &mut ctx).unwrap(), Some(expected));
    assert!(buf.is_empty());
}

// ---------------------------------------------------------------- MQTT 3.1 and 3.1.1

#[test]
fn v31_connect() {
    // "MQIsdp", level 3, clean session, keep alive 10, client id "c-31".
    let bytes = cat(&[
        &[0x10, 0x12, 0x00, 0x06],
        b"MQIsdp",
        &[0x03, 0x02, 0x00, 0x0A, 0x00, 0x04],
        b"c-31",
    ]);
    check(&bytes, V31, Role::Server, Connect::new(V31, s("c-31"), 10).into());
}

#[test]
fn v31_subscribe_with_dup_flag_is_accepted() {
    // 3.1 let clients set DUP on a re-sent SUBSCRIBE (first byte 0x8A).
    let bytes = cat(&[&[0x8A, 0x06, 0x00, 0x01, 0x00, 0x01], b"#", &[0x00]]);
    check_decode_only(
        &bytes,
        V31,
        Role::Server,
        Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            subscriptions: vec![Subscription {
                filter: s("#"),
                options: SubscriptionOptions::default(),
            }],
            properties: SubscribeProperties::default(),
        }),
    );
}

#[test]
fn v311_connect_spec_example() {
    // §3.1.2.10 example variable header: flags 0xCE (user name, password, will QoS 1, will,
    // clean session), keep alive 10.
    let bytes = cat(&[
        &[0x10, 0x2D, 0x00, 0x04],
        b"MQTT",
        &[0x04, 0xCE, 0x00, 0x0A],
        &[0x00, 0x08],
        b"client-1",
        &[0x00, 0x06],
        b"will/t",
        &[0x00, 0x03],
        b"bye",
        &[0x00, 0x04],
        b"user",
        &[0x00, 0x04],
        b"pass",
    ]);
    let expected = Connect {
        protocol_version: V311,
        clean_start: true,
        keep_alive: 10,
        client_id: s("client-1"),
        will: Some(LastWill {
            topic: s("will/t"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        password: Some(b(b"pass")),
        properties: ConnectProperties::default(),
    };
    check(&bytes, V311, Role::Server, expected.into());
}

#[test]
fn v311_connack() {
    let accepted = ConnAck { session_present: true, ..ConnAck::new(ConnectReasonCode::Success) };
    check(&[0x20, 0x02, 0x01, 0x00], V311, Role::Client, accepted.into());
    // Return codes 1-5 map to their 5.0 equivalents.
    for (code, reason) in [
        (1, ConnectReasonCode::UnsupportedProtocolVersion),
        (2, ConnectReasonCode::ClientIdentifierNotValid),
        (3, ConnectReasonCode::ServerUnavailable),
        (4, ConnectReasonCode::BadUserNameOrPassword),
        (5, ConnectReasonCode::NotAuthorized),
    ] {
        check(&[0x20, 0x02, 0x00, code], V311, Role::Client, ConnAck::new(reason).into());
    }
    // A 5.0 code without a 3.1.1 equivalent is sent as "server unavailable".
    let mut out = BytesMut::new();
    encode(&ConnAck::new(ConnectReasonCode::ServerBusy).into(), V311, &mut out).unwrap();
    assert_eq!(&out[..], &[0x20, 0x02, 0x00, 0x03]);
}

#[test]
fn v311_publish() {
    let bytes = cat(&[&[0x30, 0x0A, 0x00, 0x03], b"a/b", b"hello"]);
    check(&bytes, V311, Role::Server, Publish::new(s("a/b"), b(b"hello")).into());

    // DUP, QoS 1, RETAIN, packet id 10, payload "x".
    let bytes = cat(&[&[0x3B, 0x08, 0x00, 0x03], b"a/b", &[0x00, 0x0A], b"x"]);
    let expected = Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        packet_id: Some(pid(10)),
        ..Publish::new(s("a/b"), b(b"x"))
    };
    check(&bytes, V311, Role::Client, expected.into());

    // QoS 2, empty payload.
    let bytes = cat(&[&[0x34, 0x05, 0x00, 0x01], b"t", &[0xFF, 0xFF]]);
    let expected = Publish {
        qos: QoS::ExactlyOnce,
        packet_id: Some(pid(0xFFFF)),
        ..Publish::new(s("t"), Bytes::new())
    };
    check(&bytes, V311, Role::Server, expected.into());
}

#[test]
fn v311_publish_acknowledgments() {
    check(&[0x40, 0x02, 0x00, 0x0A], V311, Role::Server, PubAck::new(pid(10)).into());
    check(&[0x50, 0x02, 0x00, 0x0A], V311, Role::Client, PubRec::new(pid(10)).into());
    check(&[0x62, 0x02, 0x00, 0x0A], V311, Role::Server, PubRel::new(pid(10)).into());
    check(&[0x70, 0x02, 0x00, 0x0A], V311, Role::Client, PubComp::new(pid(10)).into());
    // 3.1.1 has no reason codes: a failure PUBACK is sent as a plain PUBACK.
    let failed = PubAck { reason_code: PubAckReasonCode::NotAuthorized, ..PubAck::new(pid(3)) };
    let mut out = BytesMut::new();
    encode(&failed.into(), V311, &mut out).unwrap();
    assert_eq!(&out[..], &[0x40, 0x02, 0x00, 0x03]);
}

#[test]
fn v311_subscribe_and_suback() {
    let bytes =
        cat(&[&[0x82, 0x0C, 0x00, 0x01, 0x00, 0x03], b"a/b", &[0x01, 0x00, 0x01], b"#", &[0x02]]);
    let expected = Subscribe {
        packet_id: pid(1),
        subscriptions: vec![
            Subscription {
                filter: s("a/b"),
                options: SubscriptionOptions { qos: QoS::AtLeastOnce, ..Default::default() },
            },
            Subscription {
                filter: s("#"),
                options: SubscriptionOptions { qos: QoS::ExactlyOnce, ..Default::default() },
            },
        ],
        properties: SubscribeProperties::default(),
    };
    check(&bytes, V311, Role::Server, expected.into());

    let suback = SubAck {
        packet_id: pid(1),
        reason_codes: vec![
            SubAckReasonCode::GrantedQoS0,
            SubAckReasonCode::GrantedQoS2,
            SubAckReasonCode::UnspecifiedError,
        ],
        properties: AckProperties::default(),
    };
    check(&[0x90, 0x05, 0x00, 0x01, 0x00, 0x02, 0x80], V311, Role::Client, suback.into());
    // Any 5.0 failure is 0x80 in 3.1.1.
    let denied = SubAck {
        packet_id: pid(2),
        reason_codes: vec![SubAckReasonCode::NotAuthorized],
        properties: AckProperties::default(),
    };
    let mut out = BytesMut::new();
    encode(&denied.into(), V311, &mut out).unwrap();
    assert_eq!(&out[..], &[0x90, 0x03, 0x00, 0x02, 0x80]);
}

#[test]
fn v311_unsubscribe_and_unsuback() {
    let bytes = cat(&[&[0xA2, 0x0A, 0x00, 0x02, 0x00, 0x03], b"a/b", &[0x00, 0x01], b"#"]);
    let expected = Unsubscribe {
        packet_id: pid(2),
        filters: vec![s("a/b"), s("#")],
        properties: UnsubscribeProperties::default(),
    };
    check(&bytes, V311, Role::Server, expected.into());
    let unsuback =
        UnsubAck { packet_id: pid(2), reason_codes: vec![], properties: AckProperties::default() };
    check(&[0xB0, 0x02, 0x00, 0x02], V311, Role::Client, unsuback.into());
}

#[test]
fn v311_ping_and_disconnect() {
    for version in [V31, V311] {
        check(&[0xC0, 0x00], version, Role::Server, Packet::PingReq);
        check(&[0xD0, 0x00], version, Role::Client, Packet::PingResp);
        check(
            &[0xE0, 0x00],
            version,
            Role::Server,
            Disconnect::new(DisconnectReasonCode::NormalDisconnection).into(),
        );
    }
}

// ---------------------------------------------------------------- MQTT 5.0

#[test]
fn v5_connect_with_every_property() {
    let bytes = cat(&[
        &[0x10, 0x76, 0x00, 0x04],
        b"MQTT",
        &[0x05, 0xC6, 0x00, 0x1E],
        // Properties (40 bytes).
        &[0x28],
        &[0x11, 0x00, 0x00, 0x0E, 0x10],
        &[0x21, 0x00, 0x14],
        &[0x27, 0x00, 0x10, 0x00, 0x00],
        &[0x22, 0x00, 0x0A],
        &[0x19, 0x01],
        &[0x17, 0x00],
        &[0x26, 0x00, 0x01],
        b"k",
        &[0x00, 0x01],
        b"v",
        &[0x15, 0x00, 0x05],
        b"SCRAM",
        &[0x16, 0x00, 0x02, 0x01, 0x02],
        // Client identifier.
        &[0x00, 0x02],
        b"c5",
        // Will properties (43 bytes).
        &[0x2B],
        &[0x18, 0x00, 0x00, 0x00, 0x05],
        &[0x01, 0x01],
        &[0x02, 0x00, 0x00, 0x00, 0x3C],
        &[0x03, 0x00, 0x0A],
        b"text/plain",
        &[0x08, 0x00, 0x03],
        b"r/1",
        &[0x09, 0x00, 0x02, 0xAB, 0xCD],
        &[0x26, 0x00, 0x01],
        b"a",
        &[0x00, 0x01],
        b"b",
        // Will topic and payload, user name, password.
        &[0x00, 0x03],
        b"w/t",
        &[0x00, 0x04],
        b"gone",
        &[0x00, 0x01],
        b"u",
        &[0x00, 0x03],
        b"pwd",
    ]);
    let expected = Connect {
        protocol_version: V5,
        clean_start: true,
        keep_alive: 30,
        client_id: s("c5"),
        will: Some(LastWill {
            topic: s("w/t"),
            payload: b(b"gone"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(60),
                content_type: Some(s("text/plain")),
                response_topic: Some(s("r/1")),
                correlation_data: Some(b(&[0xAB, 0xCD])),
                user_properties: vec![user("a", "b")],
            },
        }),
        username: Some(s("u")),
        password: Some(b(b"pwd")),
        properties: ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: NonZeroU16::new(20),
            maximum_packet_size: NonZeroU32::new(1 << 20),
            topic_alias_maximum: Some(10),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            user_properties: vec![user("k", "v")],
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(b(&[1, 2])),
        },
    };
    check(&bytes, V5, Role::Server, expected.into());
}

#[test]
fn v5_connect_password_without_username_is_allowed() {
    let bytes = cat(&[
        &[0x10, 0x12, 0x00, 0x04],
        b"MQTT",
        &[0x05, 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03],
        b"pwd",
    ]);
    let expected = Connect { password: Some(b(b"pwd")), ..Connect::new(V5, s(""), 0) };
    check(&bytes, V5, Role::Server, expected.into());
}

#[test]
fn v5_connack() {
    let bytes = cat(&[
        &[0x20, 0x27, 0x00, 0x00, 0x24],
        &[0x21, 0x00, 0x0A],
        &[0x24, 0x01],
        &[0x25, 0x00],
        &[0x27, 0x00, 0x00, 0xFF, 0xFF],
        &[0x12, 0x00, 0x04],
        b"auto",
        &[0x22, 0x00, 0x05],
        &[0x1F, 0x00, 0x02],
        b"ok",
        &[0x28, 0x01],
        &[0x29, 0x00],
        &[0x2A, 0x01],
        &[0x13, 0x00, 0x3C],
    ]);
    let expected = ConnAck {
        session_present: false,
        reason_code: ConnectReasonCode::Success,
        properties: ConnAckProperties {
            receive_maximum: NonZeroU16::new(10),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: NonZeroU32::new(0xFFFF),
            assigned_client_identifier: Some(s("auto")),
            topic_alias_maximum: Some(5),
            reason_string: Some(s("ok")),
            wildcard_subscription_available: Some(true),
            subscription_identifiers_available: Some(false),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(60),
            ..ConnAckProperties::default()
        },
    };
    check(&bytes, V5, Role::Client, expected.into());
    check(
        &[0x20, 0x03, 0x00, 0x87, 0x00],
        V5,
        Role::Client,
        ConnAck::new(ConnectReasonCode::NotAuthorized).into(),
    );
}

#[test]
fn v5_publish_with_every_property() {
    let bytes = cat(&[
        &[0x32, 0x31, 0x00, 0x03],
        b"a/b",
        &[0x00, 0x05],
        &[0x27],
        &[0x01, 0x01],
        &[0x02, 0x00, 0x00, 0x00, 0x0A],
        &[0x23, 0x00, 0x01],
        &[0x08, 0x00, 0x03],
        b"r/x",
        &[0x09, 0x00, 0x01, 0xFF],
        &[0x26, 0x00, 0x01],
        b"k",
        &[0x00, 0x01],
        b"v",
        &[0x0B, 0x05],
        &[0x0B, 0x80, 0x01],
        &[0x03, 0x00, 0x04],
        b"json",
        b"{}",
    ]);
    let expected = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: Some(pid(5)),
        properties: PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(10),
            topic_alias: NonZeroU16::new(1),
            response_topic: Some(s("r/x")),
            correlation_data: Some(b(&[0xFF])),
            user_properties: vec![user("k", "v")],
            subscription_identifiers: vec![
                NonZeroU32::new(5).unwrap(),
                NonZeroU32::new(128).unwrap(),
            ],
            content_type: Some(s("json")),
        },
        ..Publish::new(s("a/b"), b(b"{}"))
    };
    // Subscription Identifiers only travel server to client.
    check(&bytes, V5, Role::Client, expected.into());
}

#[test]
fn v5_publish_with_topic_alias_and_empty_topic() {
    let bytes = cat(&[&[0x30, 0x08, 0x00, 0x00, 0x03, 0x23, 0x00, 0x07], b"hi"]);
    let expected = Publish {
        properties: PublishProperties { topic_alias: NonZeroU16::new(7), ..Default::default() },
        ..Publish::new(s(""), b(b"hi"))
    };
    check(&bytes, V5, Role::Server, expected.into());
}

#[test]
fn v5_publish_acknowledgments() {
    check(&[0x40, 0x02, 0x00, 0x01], V5, Role::Server, PubAck::new(pid(1)).into());
    let no_subscribers =
        PubAck { reason_code: PubAckReasonCode::NoMatchingSubscribers, ..PubAck::new(pid(1)) };
    check(&[0x40, 0x03, 0x00, 0x01, 0x10], V5, Role::Client, no_subscribers.into());
    let denied = PubAck {
        reason_code: PubAckReasonCode::NotAuthorized,
        properties: AckProperties { reason_string: Some(s("deny")), user_properties: vec![] },
        ..PubAck::new(pid(1))
    };
    let bytes = cat(&[&[0x40, 0x0B, 0x00, 0x01, 0x87, 0x07, 0x1F, 0x00, 0x04], b"deny"]);
    check(&bytes, V5, Role::Client, denied.into());
    let in_use =
        PubRec { reason_code: PubRecReasonCode::PacketIdentifierInUse, ..PubRec::new(pid(2)) };
    check(&[0x50, 0x03, 0x00, 0x02, 0x91], V5, Role::Server, in_use.into());
    let not_found =
        PubRel { reason_code: PubRelReasonCode::PacketIdentifierNotFound, ..PubRel::new(pid(2)) };
    check(&[0x62, 0x03, 0x00, 0x02, 0x92], V5, Role::Client, not_found.into());
    check(&[0x70, 0x02, 0x00, 0x02], V5, Role::Server, PubComp::new(pid(2)).into());
    // Remaining Length 4 with an empty property block is the same PUBACK.
    check_decode_only(
        &[0x40, 0x04, 0x00, 0x01, 0x00, 0x00],
        V5,
        Role::Server,
        PubAck::new(pid(1)).into(),
    );
}

#[test]
fn v5_subscribe_and_suback() {
    let bytes = cat(&[
        &[0x82, 0x21, 0x00, 0x0A, 0x09, 0x0B, 0x0C, 0x26, 0x00, 0x01],
        b"k",
        &[0x00, 0x01],
        b"v",
        &[0x00, 0x03],
        b"a/+",
        &[0x2D],
        &[0x00, 0x0C],
        b"$share/g/x/#",
        &[0x12],
    ]);
    let expected = Subscribe {
        packet_id: pid(10),
        subscriptions: vec![
            Subscription {
                filter: s("a/+"),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            },
            Subscription {
                filter: s("$share/g/x/#"),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                },
            },
        ],
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(12),
            user_properties: vec![user("k", "v")],
        },
    };
    check(&bytes, V5, Role::Server, expected.into());

    let suback = SubAck {
        packet_id: pid(10),
        reason_codes: vec![
            SubAckReasonCode::GrantedQoS1,
            SubAckReasonCode::GrantedQoS2,
            SubAckReasonCode::WildcardSubscriptionsNotSupported,
        ],
        properties: AckProperties { reason_string: Some(s("r")), user_properties: vec![] },
    };
    let bytes =
        cat(&[&[0x90, 0x0A, 0x00, 0x0A, 0x04, 0x1F, 0x00, 0x01], b"r", &[0x01, 0x02, 0xA2]]);
    check(&bytes, V5, Role::Client, suback.into());
}

#[test]
fn v5_unsubscribe_and_unsuback() {
    let bytes = cat(&[&[0xA2, 0x08, 0x00, 0x0B, 0x00, 0x00, 0x03], b"a/+"]);
    let expected = Unsubscribe {
        packet_id: pid(11),
        filters: vec![s("a/+")],
        properties: UnsubscribeProperties::default(),
    };
    check(&bytes, V5, Role::Server, expected.into());
    let unsuback = UnsubAck {
        packet_id: pid(11),
        reason_codes: vec![UnsubAckReasonCode::NoSubscriptionExisted],
        properties: AckProperties::default(),
    };
    check(&[0xB0, 0x04, 0x00, 0x0B, 0x00, 0x11], V5, Role::Client, unsuback.into());
}

#[test]
fn v5_ping() {
    check(&[0xC0, 0x00], V5, Role::Server, Packet::PingReq);
    check(&[0xD0, 0x00], V5, Role::Client, Packet::PingResp);
}

#[test]
fn v5_disconnect() {
    let normal = Disconnect::new(DisconnectReasonCode::NormalDisconnection);
    check(&[0xE0, 0x00], V5, Role::Server, normal.clone().into());
    check(&[0xE0, 0x00], V5, Role::Client, normal.into());

    let from_client = Disconnect {
        reason_code: DisconnectReasonCode::DisconnectWithWillMessage,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            reason_string: Some(s("bye")),
            ..Default::default()
        },
    };
    let bytes =
        cat(&[&[0xE0, 0x0D, 0x04, 0x0B, 0x11, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x00, 0x03], b"bye"]);
    check(&bytes, V5, Role::Server, from_client.into());

    let shutting_down = Disconnect::new(DisconnectReasonCode::ServerShuttingDown);
    check(&[0xE0, 0x02, 0x8B, 0x00], V5, Role::Client, shutting_down.clone().into());
    // The reason code alone (Remaining Length 1) is the same packet.
    check_decode_only(&[0xE0, 0x01, 0x8B], V5, Role::Client, shutting_down.into());
    let moved = Disconnect {
        reason_code: DisconnectReasonCode::UseAnotherServer,
        properties: DisconnectProperties {
            server_reference: Some(s("host")),
            ..Default::default()
        },
    };
    check(
        &cat(&[&[0xE0, 0x09, 0x9C, 0x07, 0x1C, 0x00, 0x04], b"host"]),
        V5,
        Role::Client,
        moved.into(),
    );
}

#[test]
fn v5_auth() {
    let bytes = cat(&[
        &[0xF0, 0x10, 0x18, 0x0E, 0x15, 0x00, 0x05],
        b"SCRAM",
        &[0x16, 0x00, 0x03, 0x01, 0x02, 0x03],
    ]);
    let expected = Auth {
        reason_code: AuthReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(s("SCRAM")),
            authentication_data: Some(b(&[1, 2, 3])),
            ..Default::default()
        },
    };
    check(&bytes, V5, Role::Server, expected.clone().into());
    check(&bytes, V5, Role::Client, expected.into());
    let success =
        Auth { reason_code: AuthReasonCode::Success, properties: AuthProperties::default() };
    check(&[0xF0, 0x00], V5, Role::Client, success.into());
}

#[test]
fn decoded_fields_share_the_read_buffer() {
    let bytes = cat(&[&[0x30, 0x0A, 0x00, 0x03], b"a/b", b"hello"]);
    let mut buf = BytesMut::from(&bytes[..]);
    let base = buf.as_ptr() as usize;
    let mut ctx = DecodeContext::client(V311, 1 << 20);
    let Some(Packet::Publish(publish)) = decode(&mut buf, &mut ctx).unwrap() else { panic!() };
    // Topic and payload point into the original allocation: nothing was copied.
    assert_eq!(publish.topic.as_bytes().as_ptr() as usize, base + 4);
    assert_eq!(publish.payload.as_ptr() as usize, base + 7);
}

#[test]
fn secrets_are_not_in_debug_output() {
    let connect = Connect {
        username: Some(s("user")),
        password: Some(b(b"hunter2")),
        properties: ConnectProperties {
            authentication_method: Some(s("m")),
            authentication_data: Some(b(b"tok3n")),
            ..Default::default()
        },
        ..Connect::new(V5, s("c"), 0)
    };
    let text = format!("{:?}", Packet::from(connect));
    assert!(!text.contains("hunter2") && !text.contains("tok3n"), "{text}");
    assert!(text.contains("<redacted>"));
    let auth = AuthProperties { authentication_data: Some(b(b"tok3n")), ..Default::default() };
    assert!(!format!("{auth:?}").contains("tok3n"));
}
