//! Encoder behaviour beyond round trips: size limits and what may be dropped to meet them,
//! encoding errors, 3.1.1 mappings, and the split PUBLISH header for vectored writes.

// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::num::{NonZeroU16, NonZeroU32};

use mqtt_codec::bytes::{Buf, Bytes, BytesMut};
use mqtt_codec::bytestring::ByteString;
use mqtt_codec::*;

use ProtocolVersion::{V5, V31, V311};

fn s(text: &str) -> ByteString {
    ByteString::from(text)
}

fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).unwrap()
}

fn decode_as_client(bytes: &[u8], version: ProtocolVersion) -> Packet {
    let mut ctx = DecodeContext::client(version, MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(bytes);
    decode(&mut buf, &mut ctx).unwrap().unwrap()
}

fn suback_with_diagnostics() -> SubAck {
    SubAck {
        packet_id: pid(1),
        reason_codes: vec![SubAckReasonCode::NotAuthorized],
        properties: AckProperties {
            reason_string: Some(s(&"r".repeat(50))),
            user_properties: vec![(s("key"), s(&"v".repeat(50)))],
        },
    }
}

#[test]
fn encode_limited_drops_reason_string_then_user_properties() {
    let suback = suback_with_diagnostics();
    let packet = Packet::from(suback.clone());
    let full = encoded_len(&packet, V5).unwrap();
    // 2 header + 2 packet id + 1 property length + 53 reason string + 58 user property + 1 code.
    assert_eq!(full, 117);

    // Fits: unchanged.
    let mut buf = BytesMut::new();
    encode_limited(&packet, V5, full as u32, &mut buf).unwrap();
    assert_eq!(decode_as_client(&buf, V5), packet);

    // One byte short: the Reason String goes.
    let mut buf = BytesMut::new();
    encode_limited(&packet, V5, full as u32 - 1, &mut buf).unwrap();
    let expected = SubAck {
        properties: AckProperties { reason_string: None, ..suback.properties.clone() },
        ..suback.clone()
    };
    assert_eq!(decode_as_client(&buf, V5), expected.into());

    // Still too small: the User Properties go too.
    let mut buf = BytesMut::new();
    encode_limited(&packet, V5, 10, &mut buf).unwrap();
    let expected = SubAck { properties: AckProperties::default(), ..suback };
    assert_eq!(decode_as_client(&buf, V5), expected.into());
    assert_eq!(buf.len(), 6);

    // Smaller than the bare packet: an error, nothing written.
    let mut buf = BytesMut::from(&b"keep"[..]);
    assert_eq!(
        encode_limited(&packet, V5, 5, &mut buf),
        Err(EncodeError::PacketTooLarge { size: 6, max: 5 })
    );
    assert_eq!(&buf[..], b"keep");
}

#[test]
fn encode_limited_trims_every_acknowledgment_type() {
    let props = AckProperties {
        reason_string: Some(s("because")),
        user_properties: vec![(s("k"), s("v"))],
    };
    let connack = ConnAck {
        properties: ConnAckProperties {
            reason_string: Some(s("because")),
            user_properties: vec![(s("k"), s("v"))],
            ..Default::default()
        },
        ..ConnAck::new(ConnectReasonCode::NotAuthorized)
    };
    let disconnect = Disconnect {
        reason_code: DisconnectReasonCode::ServerShuttingDown,
        properties: DisconnectProperties {
            reason_string: Some(s("because")),
            user_properties: vec![(s("k"), s("v"))],
            ..Default::default()
        },
    };
    let auth = Auth {
        reason_code: AuthReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(s("m")),
            reason_string: Some(s("because")),
            user_properties: vec![(s("k"), s("v"))],
            ..Default::default()
        },
    };
    let packets: Vec<Packet> = vec![
        connack.into(),
        PubAck {
            reason_code: PubAckReasonCode::QuotaExceeded,
            properties: props.clone(),
            ..PubAck::new(pid(1))
        }
        .into(),
        PubRec { properties: props.clone(), ..PubRec::new(pid(1)) }.into(),
        PubRel { properties: props.clone(), ..PubRel::new(pid(1)) }.into(),
        PubComp { properties: props.clone(), ..PubComp::new(pid(1)) }.into(),
        UnsubAck {
            packet_id: pid(1),
            reason_codes: vec![UnsubAckReasonCode::Success],
            properties: props,
        }
        .into(),
        disconnect.into(),
        auth.into(),
    ];
    for packet in packets {
        let full = encoded_len(&packet, V5).unwrap();
        // "because" costs 10 bytes and the user property 7: 11 bytes fewer forces both out.
        let mut buf = BytesMut::new();
        encode_limited(&packet, V5, (full - 11) as u32, &mut buf).unwrap();
        assert!(buf.len() <= full - 17, "{packet:?} -> {} bytes", buf.len());
        let role = match packet.packet_type() {
            PacketType::ConnAck | PacketType::UnsubAck => Role::Client,
            _ => Role::Server,
        };
        let mut ctx = DecodeContext { role, version: Some(V5), max_packet_size: MAX_PACKET_SIZE };
        let decoded = decode(&mut buf, &mut ctx).unwrap().unwrap();
        assert_eq!(decoded.packet_type(), packet.packet_type());
        assert_ne!(decoded, packet);
    }
}

#[test]
fn publish_is_never_trimmed() {
    let publish = Publish {
        properties: PublishProperties {
            user_properties: vec![(s("k"), s("v"))],
            ..Default::default()
        },
        ..Publish::new(s("t"), Bytes::from_static(&[0; 100]))
    };
    let packet = Packet::from(publish.clone());
    let size = encoded_len(&packet, V5).unwrap();
    assert_eq!(publish.encoded_len(V5).unwrap(), size);
    let mut buf = BytesMut::new();
    assert_eq!(
        encode_limited(&packet, V5, size as u32 - 1, &mut buf),
        Err(EncodeError::PacketTooLarge { size, max: size as u32 - 1 })
    );
    assert!(buf.is_empty());
    encode_limited(&packet, V5, size as u32, &mut buf).unwrap();
    assert_eq!(buf.len(), size);
}

#[test]
fn v3_encoding_ignores_properties_and_maps_codes() {
    let suback = suback_with_diagnostics();
    let mut buf = BytesMut::new();
    encode_limited(&suback.into(), V311, 5, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0x90, 0x03, 0x00, 0x01, 0x80]);

    let connack = ConnAck {
        properties: ConnAckProperties { reason_string: Some(s("no")), ..Default::default() },
        ..ConnAck::new(ConnectReasonCode::BadUserNameOrPassword)
    };
    let mut buf = BytesMut::new();
    encode(&connack.into(), V31, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0x20, 0x02, 0x00, 0x04]);

    let disconnect = Disconnect::new(DisconnectReasonCode::DisconnectWithWillMessage);
    let mut buf = BytesMut::new();
    encode(&disconnect.into(), V311, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0xE0, 0x00]);

    let unsuback = UnsubAck {
        packet_id: pid(7),
        reason_codes: vec![UnsubAckReasonCode::NoSubscriptionExisted],
        properties: AckProperties::default(),
    };
    let mut buf = BytesMut::new();
    encode(&unsuback.into(), V311, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0xB0, 0x02, 0x00, 0x07]);

    let subscribe = Subscribe {
        packet_id: pid(1),
        subscriptions: vec![Subscription {
            filter: s("a"),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        }],
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(3),
            user_properties: vec![],
        },
    };
    let mut buf = BytesMut::new();
    encode(&subscribe.into(), V311, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01]);
}

#[test]
fn maximum_qos_2_is_expressed_by_omission() {
    let connack = ConnAck {
        properties: ConnAckProperties { maximum_qos: Some(QoS::ExactlyOnce), ..Default::default() },
        ..ConnAck::new(ConnectReasonCode::Success)
    };
    let mut buf = BytesMut::new();
    encode(&connack.into(), V5, &mut buf).unwrap();
    assert_eq!(&buf[..], &[0x20, 0x03, 0x00, 0x00, 0x00]);
}

#[test]
fn encoding_errors_leave_the_buffer_untouched() {
    let qos1_without_id = Publish { qos: QoS::AtLeastOnce, ..Publish::new(s("t"), Bytes::new()) };
    let qos0_with_id = Publish { packet_id: Some(pid(1)), ..Publish::new(s("t"), Bytes::new()) };
    let long_topic = Publish::new(s(&"x".repeat(70_000)), Bytes::new());
    let auth = Auth { reason_code: AuthReasonCode::Success, properties: AuthProperties::default() };
    let connect = Connect::new(V5, s("c"), 0);
    let big_sub_id = Subscribe {
        packet_id: pid(1),
        subscriptions: vec![Subscription {
            filter: s("a"),
            options: SubscriptionOptions::default(),
        }],
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(MAX_VARIABLE_INTEGER + 1),
            user_properties: vec![],
        },
    };
    let cases: Vec<(Packet, ProtocolVersion, EncodeError)> = vec![
        (qos1_without_id.into(), V5, EncodeError::MissingPacketId),
        (qos0_with_id.into(), V311, EncodeError::UnexpectedPacketId),
        (long_topic.into(), V311, EncodeError::FieldTooLong(70_000)),
        (
            auth.into(),
            V311,
            EncodeError::UnsupportedPacket { packet_type: PacketType::Auth, version: V311 },
        ),
        (connect.into(), V311, EncodeError::VersionMismatch { connect: V5, requested: V311 }),
        (big_sub_id.into(), V5, EncodeError::SubscriptionIdTooLarge(MAX_VARIABLE_INTEGER + 1)),
    ];
    for (packet, version, error) in cases {
        let mut buf = BytesMut::from(&b"prefix"[..]);
        assert_eq!(encode(&packet, version, &mut buf), Err(error.clone()));
        assert_eq!(encode_limited(&packet, version, u32::MAX, &mut buf), Err(error.clone()));
        assert_eq!(encoded_len(&packet, version), Err(error));
        assert_eq!(&buf[..], b"prefix");
    }
}

#[test]
fn publish_header_plus_payload_is_the_whole_packet() {
    let payload = Bytes::from(vec![7u8; 1000]);
    let publish = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: Some(pid(42)),
        properties: PublishProperties {
            subscription_identifiers: vec![NonZeroU32::new(9).unwrap()],
            ..Default::default()
        },
        ..Publish::new(s("sensors/1/temp"), payload.clone())
    };
    for version in ProtocolVersion::ALL {
        let mut whole = BytesMut::new();
        encode(&publish.clone().into(), version, &mut whole).unwrap();
        let mut header = BytesMut::new();
        encode_publish_header(&publish, version, &mut header).unwrap();
        assert_eq!(header.len() + payload.len(), whole.len());
        // What a vectored writer sends: the header, then the shared payload.
        let mut chained = header.freeze().chain(payload.clone());
        let bytes = chained.copy_to_bytes(chained.remaining());
        assert_eq!(bytes, whole.freeze());
    }
    // Fan-out clones share the payload memory.
    let copy = publish.clone();
    assert_eq!(copy.payload.as_ptr(), publish.payload.as_ptr());
}

#[test]
fn packet_enum_stays_small() {
    // CONNECT and CONNACK are boxed; PUBLISH is the largest inline variant.
    assert!(std::mem::size_of::<Packet>() <= 320, "{}", std::mem::size_of::<Packet>());
}
