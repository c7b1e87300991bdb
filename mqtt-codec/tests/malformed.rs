//! Malformed and forbidden inputs: each case asserts the exact error variant and the MQTT 5.0
//! reason code a server answers with.

// Test helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use mqtt_codec::bytes::{Bytes, BytesMut};
use mqtt_codec::*;

use ProtocolVersion::{V5, V31, V311};

/// A length-prefixed string or binary field.
fn st(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

/// A variable byte integer.
fn vbi(mut value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            return out;
        }
    }
}

/// A property block.
fn props(parts: &[&[u8]]) -> Vec<u8> {
    let body = parts.concat();
    [vbi(body.len()), body].concat()
}

/// A whole packet: first byte, remaining length, body.
fn frame(first: u8, body: &[&[u8]]) -> Vec<u8> {
    let body = body.concat();
    [vec![first], vbi(body.len()), body].concat()
}

fn connect_v311(flags: u8, payload: &[&[u8]]) -> Vec<u8> {
    let header = [0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60];
    let mut parts: Vec<&[u8]> = vec![&header];
    parts.extend_from_slice(payload);
    frame(0x10, &parts)
}

fn connect_v5(flags: u8, properties: &[u8], payload: &[&[u8]]) -> Vec<u8> {
    let header = [0, 4, b'M', b'Q', b'T', b'T', 5, flags, 0, 60];
    let mut parts: Vec<&[u8]> = vec![&header, properties];
    parts.extend_from_slice(payload);
    frame(0x10, &parts)
}

struct Case {
    name: &'static str,
    role: Role,
    version: Option<ProtocolVersion>,
    bytes: Vec<u8>,
    error: DecodeError,
    reason: ReasonCode,
}

fn server(version: Option<ProtocolVersion>) -> (Role, Option<ProtocolVersion>) {
    (Role::Server, version)
}

fn case(
    name: &'static str,
    (role, version): (Role, Option<ProtocolVersion>),
    bytes: Vec<u8>,
    error: DecodeError,
    reason: ReasonCode,
) -> Case {
    Case { name, role, version, bytes, error, reason }
}

fn cases() -> Vec<Case> {
    use DecodeError as E;
    use ReasonCode as R;
    let srv3 = server(Some(V311));
    let srv5 = server(Some(V5));
    let first = server(None);
    let cli3 = (Role::Client, Some(V311));
    let cli5 = (Role::Client, Some(V5));
    let id = st(b"id");
    let topic = st(b"t");
    vec![
        // ----- fixed header -----
        case("packet type 0", srv3, vec![0x00, 0x00], E::InvalidPacketType(0), R::MalformedPacket),
        case(
            "packet type 15 in 3.1.1",
            srv3,
            vec![0xF0, 0x00],
            E::InvalidPacketType(15),
            R::MalformedPacket,
        ),
        case(
            "AUTH in 3.1.1",
            cli3,
            frame(0xF0, &[&[0x18, 0x00]]),
            E::InvalidPacketType(15),
            R::MalformedPacket,
        ),
        case(
            "PUBACK reserved flags",
            srv3,
            vec![0x41, 0x02, 0x00, 0x01],
            E::InvalidHeaderFlags { packet_type: PacketType::PubAck, flags: 1 },
            R::MalformedPacket,
        ),
        case(
            "SUBSCRIBE flags 0",
            srv3,
            frame(0x80, &[&[0, 1], &st(b"a"), &[0]]),
            E::InvalidHeaderFlags { packet_type: PacketType::Subscribe, flags: 0 },
            R::MalformedPacket,
        ),
        case(
            "PUBREL flags 0",
            srv5,
            vec![0x60, 0x02, 0x00, 0x01],
            E::InvalidHeaderFlags { packet_type: PacketType::PubRel, flags: 0 },
            R::MalformedPacket,
        ),
        case(
            "PINGREQ reserved flag",
            srv3,
            vec![0xC1, 0x00],
            E::InvalidHeaderFlags { packet_type: PacketType::PingReq, flags: 1 },
            R::MalformedPacket,
        ),
        case(
            "DUP on SUBSCRIBE in 3.1.1",
            srv3,
            frame(0x8A, &[&[0, 1], &st(b"a"), &[0]]),
            E::InvalidHeaderFlags { packet_type: PacketType::Subscribe, flags: 0b1010 },
            R::MalformedPacket,
        ),
        case(
            "5-byte remaining length",
            srv3,
            vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            E::VarIntTooLong,
            R::MalformedPacket,
        ),
        case(
            "non-minimal remaining length",
            srv3,
            vec![0xC0, 0x80, 0x00],
            E::NonMinimalVarInt,
            R::MalformedPacket,
        ),
        case(
            "PUBLISH QoS 3",
            srv3,
            frame(0x36, &[&topic, &[0, 1]]),
            E::InvalidQoS,
            R::MalformedPacket,
        ),
        case(
            "DUP on QoS 0 PUBLISH",
            srv5,
            frame(0x38, &[&topic, &[0]]),
            E::DupOnQoS0,
            R::MalformedPacket,
        ),
        // ----- order and direction -----
        case(
            "first packet not CONNECT",
            first,
            vec![0xC0, 0x00],
            E::ExpectedConnect(PacketType::PingReq),
            R::ProtocolError,
        ),
        case(
            "second CONNECT",
            srv3,
            connect_v311(0x02, &[&id]),
            E::DuplicateConnect,
            R::ProtocolError,
        ),
        case(
            "CONNACK sent to a server",
            srv3,
            vec![0x20, 0x02, 0x00, 0x00],
            E::UnexpectedPacket { packet_type: PacketType::ConnAck, role: Role::Server },
            R::ProtocolError,
        ),
        case(
            "SUBACK sent to a server",
            srv5,
            frame(0x90, &[&[0, 1, 0, 0]]),
            E::UnexpectedPacket { packet_type: PacketType::SubAck, role: Role::Server },
            R::ProtocolError,
        ),
        case(
            "SUBSCRIBE sent to a client",
            cli3,
            frame(0x82, &[&[0, 1], &st(b"a"), &[0]]),
            E::UnexpectedPacket { packet_type: PacketType::Subscribe, role: Role::Client },
            R::ProtocolError,
        ),
        case(
            "DISCONNECT sent to a 3.1.1 client",
            cli3,
            vec![0xE0, 0x00],
            E::UnexpectedPacket { packet_type: PacketType::Disconnect, role: Role::Client },
            R::ProtocolError,
        ),
        // ----- CONNECT -----
        case(
            "unknown protocol name",
            first,
            frame(0x10, &[&st(b"MQTX"), &[4, 2, 0, 60], &id]),
            E::UnknownProtocolName(Bytes::from_static(b"MQTX")),
            R::UnsupportedProtocolVersion,
        ),
        case(
            "unsupported protocol level",
            first,
            frame(0x10, &[&st(b"MQTT"), &[6, 2, 0, 60], &id]),
            E::UnsupportedProtocolVersion { level: 6 },
            R::UnsupportedProtocolVersion,
        ),
        case(
            "MQIsdp with level 4",
            first,
            frame(0x10, &[&st(b"MQIsdp"), &[4, 2, 0, 60], &id]),
            E::UnsupportedProtocolVersion { level: 4 },
            R::UnsupportedProtocolVersion,
        ),
        case(
            "CONNECT reserved flag",
            first,
            connect_v311(0x03, &[&id]),
            E::ConnectReservedFlag,
            R::MalformedPacket,
        ),
        case(
            "will QoS without will flag",
            first,
            connect_v311(0x0A, &[&id]),
            E::InvalidWillFlags,
            R::MalformedPacket,
        ),
        case(
            "will retain without will flag",
            first,
            connect_v311(0x22, &[&id]),
            E::InvalidWillFlags,
            R::MalformedPacket,
        ),
        case(
            "will QoS 3",
            first,
            connect_v311(0x1E, &[&id, &topic, &st(b"m")]),
            E::InvalidQoS,
            R::MalformedPacket,
        ),
        case(
            "password without user name in 3.1.1",
            first,
            connect_v311(0x42, &[&id, &st(b"pw")]),
            E::PasswordWithoutUsername,
            R::MalformedPacket,
        ),
        case(
            "empty client id without clean session in 3.1.1",
            first,
            connect_v311(0x00, &[&st(b"")]),
            E::ClientIdRejected,
            R::ClientIdentifierNotValid,
        ),
        case(
            "empty client id in 3.1",
            first,
            frame(0x10, &[&st(b"MQIsdp"), &[3, 2, 0, 60], &st(b"")]),
            E::ClientIdRejected,
            R::ClientIdentifierNotValid,
        ),
        case(
            "invalid UTF-8 client id",
            first,
            connect_v311(0x02, &[&st(&[0xC3, 0x28])]),
            E::InvalidUtf8,
            R::MalformedPacket,
        ),
        case(
            "U+0000 in client id",
            first,
            connect_v311(0x02, &[&st(b"a\0b")]),
            E::NullCharacter,
            R::MalformedPacket,
        ),
        case(
            "encoded surrogate in user name",
            first,
            connect_v311(0x82, &[&id, &st(&[0xED, 0xA0, 0x80])]),
            E::InvalidUtf8,
            R::MalformedPacket,
        ),
        case(
            "wildcard in will topic",
            first,
            connect_v311(0x06, &[&id, &st(b"a/#"), &st(b"m")]),
            E::InvalidTopicName(TopicError::WildcardInName),
            R::TopicNameInvalid,
        ),
        case(
            "user name flag without user name",
            first,
            connect_v311(0x82, &[&id]),
            E::Truncated,
            R::MalformedPacket,
        ),
        case(
            "CONNECT trailing bytes",
            first,
            connect_v311(0x02, &[&id, &[0]]),
            E::TrailingBytes(1),
            R::MalformedPacket,
        ),
        case(
            "authentication data without method",
            first,
            connect_v5(0x02, &props(&[&[0x16, 0, 1, 7]]), &[&id]),
            E::AuthDataWithoutMethod,
            R::ProtocolError,
        ),
        case(
            "receive maximum 0",
            first,
            connect_v5(0x02, &props(&[&[0x21, 0, 0]]), &[&id]),
            E::InvalidPropertyValue { property: PropertyId::ReceiveMaximum, value: 0 },
            R::ProtocolError,
        ),
        case(
            "maximum packet size 0",
            first,
            connect_v5(0x02, &props(&[&[0x27, 0, 0, 0, 0]]), &[&id]),
            E::InvalidPropertyValue { property: PropertyId::MaximumPacketSize, value: 0 },
            R::ProtocolError,
        ),
        case(
            "request problem information 2",
            first,
            connect_v5(0x02, &props(&[&[0x17, 2]]), &[&id]),
            E::InvalidPropertyValue { property: PropertyId::RequestProblemInformation, value: 2 },
            R::ProtocolError,
        ),
        case(
            "duplicate session expiry",
            first,
            connect_v5(0x02, &props(&[&[0x11, 0, 0, 0, 1], &[0x11, 0, 0, 0, 2]]), &[&id]),
            E::DuplicateProperty(PropertyId::SessionExpiryInterval),
            R::ProtocolError,
        ),
        case(
            "topic alias in CONNECT",
            first,
            connect_v5(0x02, &props(&[&[0x23, 0, 1]]), &[&id]),
            E::PropertyNotAllowed {
                packet_type: PacketType::Connect,
                property: PropertyId::TopicAlias,
            },
            R::MalformedPacket,
        ),
        case(
            "server-only property in CONNECT",
            first,
            connect_v5(0x02, &props(&[&[0x12], &st(b"x")]), &[&id]),
            E::PropertyNotAllowed {
                packet_type: PacketType::Connect,
                property: PropertyId::AssignedClientIdentifier,
            },
            R::MalformedPacket,
        ),
        case(
            "unknown property",
            first,
            connect_v5(0x02, &props(&[&[0x7F, 0]]), &[&id]),
            E::UnknownProperty(0x7F),
            R::MalformedPacket,
        ),
        case(
            "property block past the packet end",
            first,
            connect_v5(0x02, &[0x05, 0x11, 0, 0], &[]),
            E::Truncated,
            R::MalformedPacket,
        ),
        case(
            "will delay in CONNECT properties",
            first,
            connect_v5(0x02, &props(&[&[0x18, 0, 0, 0, 1]]), &[&id]),
            E::PropertyNotAllowed {
                packet_type: PacketType::Connect,
                property: PropertyId::WillDelayInterval,
            },
            R::MalformedPacket,
        ),
        // ----- PUBLISH -----
        case(
            "'+' in PUBLISH topic",
            srv3,
            frame(0x30, &[&st(b"a/+")]),
            E::InvalidTopicName(TopicError::WildcardInName),
            R::TopicNameInvalid,
        ),
        case(
            "'#' in PUBLISH topic",
            srv5,
            frame(0x30, &[&st(b"#"), &[0]]),
            E::InvalidTopicName(TopicError::WildcardInName),
            R::TopicNameInvalid,
        ),
        case(
            "empty topic in 3.1.1",
            srv3,
            frame(0x30, &[&st(b""), b"x"]),
            E::InvalidTopicName(TopicError::Empty),
            R::ProtocolError,
        ),
        case(
            "empty topic without alias in 5.0",
            srv5,
            frame(0x30, &[&st(b""), &[0]]),
            E::InvalidTopicName(TopicError::Empty),
            R::ProtocolError,
        ),
        case(
            "PUBLISH packet id 0",
            srv3,
            frame(0x32, &[&topic, &[0, 0]]),
            E::ZeroPacketId,
            R::ProtocolError,
        ),
        case(
            "subscription identifier in a client PUBLISH",
            srv5,
            frame(0x30, &[&topic, &props(&[&[0x0B, 1]])]),
            E::PropertyFromWrongSender {
                packet_type: PacketType::Publish,
                property: PropertyId::SubscriptionIdentifier,
            },
            R::ProtocolError,
        ),
        case(
            "subscription identifier 0",
            cli5,
            frame(0x30, &[&topic, &props(&[&[0x0B, 0]])]),
            E::InvalidPropertyValue { property: PropertyId::SubscriptionIdentifier, value: 0 },
            R::ProtocolError,
        ),
        case(
            "topic alias 0",
            srv5,
            frame(0x30, &[&topic, &props(&[&[0x23, 0, 0]])]),
            E::TopicAliasZero,
            R::TopicAliasInvalid,
        ),
        case(
            "duplicate topic alias",
            srv5,
            frame(0x30, &[&topic, &props(&[&[0x23, 0, 1], &[0x23, 0, 2]])]),
            E::DuplicateProperty(PropertyId::TopicAlias),
            R::ProtocolError,
        ),
        case(
            "payload format indicator 2",
            srv5,
            frame(0x30, &[&topic, &props(&[&[0x01, 2]])]),
            E::InvalidPropertyValue { property: PropertyId::PayloadFormatIndicator, value: 2 },
            R::ProtocolError,
        ),
        case(
            "wildcard in response topic",
            srv5,
            frame(0x30, &[&topic, &props(&[&[0x08], &st(b"r/+")])]),
            E::InvalidResponseTopic(TopicError::WildcardInName),
            R::ProtocolError,
        ),
        case(
            "reason string in PUBLISH",
            srv5,
            frame(0x30, &[&topic, &props(&[&[0x1F], &st(b"r")])]),
            E::PropertyNotAllowed {
                packet_type: PacketType::Publish,
                property: PropertyId::ReasonString,
            },
            R::MalformedPacket,
        ),
        case(
            "truncated topic",
            srv3,
            frame(0x30, &[&[0, 5, b'a', b'b']]),
            E::Truncated,
            R::MalformedPacket,
        ),
        // ----- PUBLISH acknowledgments -----
        case(
            "PUBACK trailing bytes in 3.1.1",
            srv3,
            vec![0x40, 0x03, 0x00, 0x01, 0x00],
            E::TrailingBytes(1),
            R::MalformedPacket,
        ),
        case(
            "PUBACK packet id 0",
            srv3,
            vec![0x40, 0x02, 0x00, 0x00],
            E::ZeroPacketId,
            R::ProtocolError,
        ),
        case(
            "PUBACK truncated packet id",
            srv3,
            vec![0x40, 0x01, 0x00],
            E::Truncated,
            R::MalformedPacket,
        ),
        case(
            "PUBACK unknown reason code",
            srv5,
            vec![0x40, 0x03, 0x00, 0x01, 0x05],
            E::InvalidReasonCode { packet_type: PacketType::PubAck, code: 5 },
            R::ProtocolError,
        ),
        case(
            "PUBREL with a PUBACK-only reason code",
            srv5,
            vec![0x62, 0x03, 0x00, 0x01, 0x10],
            E::InvalidReasonCode { packet_type: PacketType::PubRel, code: 0x10 },
            R::ProtocolError,
        ),
        case(
            "topic alias in PUBACK",
            srv5,
            frame(0x40, &[&[0, 1, 0], &props(&[&[0x23, 0, 1]])]),
            E::PropertyNotAllowed {
                packet_type: PacketType::PubAck,
                property: PropertyId::TopicAlias,
            },
            R::MalformedPacket,
        ),
        // ----- SUBSCRIBE / UNSUBSCRIBE -----
        case(
            "empty SUBSCRIBE",
            srv3,
            frame(0x82, &[&[0, 1]]),
            E::EmptyPayload(PacketType::Subscribe),
            R::ProtocolError,
        ),
        case(
            "empty SUBSCRIBE in 5.0",
            srv5,
            frame(0x82, &[&[0, 1, 0]]),
            E::EmptyPayload(PacketType::Subscribe),
            R::ProtocolError,
        ),
        case(
            "SUBSCRIBE packet id 0",
            srv3,
            frame(0x82, &[&[0, 0], &st(b"a"), &[0]]),
            E::ZeroPacketId,
            R::ProtocolError,
        ),
        case(
            "'#' not last",
            srv3,
            frame(0x82, &[&[0, 1], &st(b"a/#/b"), &[0]]),
            E::InvalidTopicFilter(TopicError::MultiLevelWildcard),
            R::TopicFilterInvalid,
        ),
        case(
            "'#' inside a level",
            srv3,
            frame(0x82, &[&[0, 1], &st(b"a/b#"), &[0]]),
            E::InvalidTopicFilter(TopicError::MultiLevelWildcard),
            R::TopicFilterInvalid,
        ),
        case(
            "'+' mixed in a level",
            srv5,
            frame(0x82, &[&[0, 1, 0], &st(b"a/b+"), &[0]]),
            E::InvalidTopicFilter(TopicError::SingleLevelWildcard),
            R::TopicFilterInvalid,
        ),
        case(
            "empty topic filter",
            srv3,
            frame(0x82, &[&[0, 1], &st(b""), &[0]]),
            E::InvalidTopicFilter(TopicError::Empty),
            R::TopicFilterInvalid,
        ),
        case(
            "bad shared subscription name",
            srv5,
            frame(0x82, &[&[0, 1, 0], &st(b"$share/g+/a"), &[0]]),
            E::InvalidTopicFilter(TopicError::InvalidShareName),
            R::TopicFilterInvalid,
        ),
        case(
            "shared subscription without filter",
            srv3,
            frame(0x82, &[&[0, 1], &st(b"$share/g"), &[0]]),
            E::InvalidTopicFilter(TopicError::EmptySharedFilter),
            R::TopicFilterInvalid,
        ),
        case(
            "reserved subscription option bits in 5.0",
            srv5,
            frame(0x82, &[&[0, 1, 0], &st(b"a"), &[0x40]]),
            E::InvalidSubscriptionOptions(0x40),
            R::MalformedPacket,
        ),
        case(
            "5.0 subscription options in 3.1.1",
            srv3,
            frame(0x82, &[&[0, 1], &st(b"a"), &[0x04]]),
            E::InvalidSubscriptionOptions(0x04),
            R::MalformedPacket,
        ),
        case(
            "subscription QoS 3",
            srv5,
            frame(0x82, &[&[0, 1, 0], &st(b"a"), &[0x03]]),
            E::InvalidSubscriptionQoS,
            R::ProtocolError,
        ),
        case(
            "retain handling 3",
            srv5,
            frame(0x82, &[&[0, 1, 0], &st(b"a"), &[0x30]]),
            E::InvalidRetainHandling,
            R::ProtocolError,
        ),
        case(
            "No Local on a shared subscription",
            srv5,
            frame(0x82, &[&[0, 1, 0], &st(b"$share/g/a"), &[0x04]]),
            E::NoLocalOnSharedSubscription,
            R::ProtocolError,
        ),
        case(
            "SUBSCRIBE subscription identifier 0",
            srv5,
            frame(0x82, &[&[0, 1], &props(&[&[0x0B, 0]]), &st(b"a"), &[0]]),
            E::InvalidPropertyValue { property: PropertyId::SubscriptionIdentifier, value: 0 },
            R::ProtocolError,
        ),
        case(
            "two subscription identifiers in SUBSCRIBE",
            srv5,
            frame(0x82, &[&[0, 1], &props(&[&[0x0B, 1], &[0x0B, 2]]), &st(b"a"), &[0]]),
            E::DuplicateProperty(PropertyId::SubscriptionIdentifier),
            R::ProtocolError,
        ),
        case(
            "SUBSCRIBE missing options byte",
            srv3,
            frame(0x82, &[&[0, 1], &st(b"a")]),
            E::Truncated,
            R::MalformedPacket,
        ),
        case(
            "empty UNSUBSCRIBE",
            srv3,
            frame(0xA2, &[&[0, 1]]),
            E::EmptyPayload(PacketType::Unsubscribe),
            R::ProtocolError,
        ),
        case(
            "invalid UNSUBSCRIBE filter",
            srv5,
            frame(0xA2, &[&[0, 1, 0], &st(b"a/#/")]),
            E::InvalidTopicFilter(TopicError::MultiLevelWildcard),
            R::TopicFilterInvalid,
        ),
        // ----- server packets, decoded by a client -----
        case(
            "SUBACK 5.0 code in 3.1.1",
            cli3,
            frame(0x90, &[&[0, 1, 0x87]]),
            E::InvalidReasonCode { packet_type: PacketType::SubAck, code: 0x87 },
            R::ProtocolError,
        ),
        case(
            "empty SUBACK",
            cli3,
            frame(0x90, &[&[0, 1]]),
            E::EmptyPayload(PacketType::SubAck),
            R::ProtocolError,
        ),
        case(
            "UNSUBACK without codes in 5.0",
            cli5,
            frame(0xB0, &[&[0, 1, 0]]),
            E::EmptyPayload(PacketType::UnsubAck),
            R::ProtocolError,
        ),
        case(
            "CONNACK reserved flags",
            cli3,
            vec![0x20, 0x02, 0x02, 0x00],
            E::InvalidConnAckFlags(0x02),
            R::MalformedPacket,
        ),
        case(
            "session present with failure",
            cli3,
            vec![0x20, 0x02, 0x01, 0x05],
            E::SessionPresentOnError,
            R::ProtocolError,
        ),
        case(
            "CONNACK return code 6",
            cli3,
            vec![0x20, 0x02, 0x00, 0x06],
            E::InvalidReasonCode { packet_type: PacketType::ConnAck, code: 6 },
            R::ProtocolError,
        ),
        case(
            "CONNACK maximum QoS 2",
            cli5,
            frame(0x20, &[&[0, 0], &props(&[&[0x24, 2]])]),
            E::InvalidPropertyValue { property: PropertyId::MaximumQoS, value: 2 },
            R::ProtocolError,
        ),
        case(
            "CONNACK receive maximum 0",
            cli5,
            frame(0x20, &[&[0, 0], &props(&[&[0x21, 0, 0]])]),
            E::InvalidPropertyValue { property: PropertyId::ReceiveMaximum, value: 0 },
            R::ProtocolError,
        ),
        case(
            "5.0 CONNACK without properties",
            cli5,
            vec![0x20, 0x02, 0x00, 0x00],
            E::Truncated,
            R::MalformedPacket,
        ),
        // ----- PING, DISCONNECT, AUTH -----
        case(
            "PINGREQ with a body",
            srv3,
            vec![0xC0, 0x01, 0x00],
            E::TrailingBytes(1),
            R::MalformedPacket,
        ),
        case(
            "3.1.1 DISCONNECT with a body",
            srv3,
            vec![0xE0, 0x01, 0x00],
            E::TrailingBytes(1),
            R::MalformedPacket,
        ),
        case(
            "session expiry in a server DISCONNECT",
            cli5,
            frame(0xE0, &[&[0x8B], &props(&[&[0x11, 0, 0, 0, 1]])]),
            E::PropertyFromWrongSender {
                packet_type: PacketType::Disconnect,
                property: PropertyId::SessionExpiryInterval,
            },
            R::ProtocolError,
        ),
        case(
            "DISCONNECT unknown reason code",
            srv5,
            vec![0xE0, 0x01, 0x05],
            E::InvalidReasonCode { packet_type: PacketType::Disconnect, code: 5 },
            R::ProtocolError,
        ),
        case(
            "AUTH without method",
            srv5,
            frame(0xF0, &[&[0x18], &props(&[&[0x16, 0, 1, 1]])]),
            E::MissingAuthenticationMethod,
            R::ProtocolError,
        ),
        case(
            "AUTH unknown reason code",
            srv5,
            frame(0xF0, &[&[0x01], &props(&[])]),
            E::InvalidReasonCode { packet_type: PacketType::Auth, code: 1 },
            R::ProtocolError,
        ),
        case(
            "AUTH continue without properties",
            srv5,
            vec![0xF0, 0x01, 0x18],
            E::MissingAuthenticationMethod,
            R::ProtocolError,
        ),
        case(
            "AUTH truncated property block",
            srv5,
            vec![0xF0, 0x02, 0x18, 0x03],
            E::Truncated,
            R::MalformedPacket,
        ),
    ]
}

#[test]
fn malformed_inputs_give_the_specified_error_and_reason_code() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let mut ctx =
            DecodeContext { role: case.role, version: case.version, max_packet_size: 1 << 20 };
        let mut buf = BytesMut::from(&case.bytes[..]);
        let result = decode(&mut buf, &mut ctx);
        match result {
            Err(error) if error == case.error && error.reason_code() == case.reason => {}
            other => failures.push(format!(
                "{}: got {:?} (reason {:?}), expected {:?} ({:?})",
                case.name,
                other,
                other.as_ref().err().map(DecodeError::reason_code),
                case.error,
                case.reason
            )),
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn oversize_packet_is_refused_from_the_fixed_header_alone() {
    // PUBLISH announcing 2,097,151 bytes; only the 4 header bytes are buffered.
    let header = [0x30, 0xFF, 0xFF, 0x7F];
    let mut ctx = DecodeContext { role: Role::Server, version: Some(V311), max_packet_size: 1024 };
    let expected = DecodeError::PacketTooLarge { size: 2_097_155, max: 1024 };
    assert_eq!(peek_fixed_header(&header, &ctx), Err(expected.clone()));
    let mut buf = BytesMut::from(&header[..]);
    let error = decode(&mut buf, &mut ctx).unwrap_err();
    assert_eq!(error, expected);
    assert_eq!(error.reason_code(), ReasonCode::PacketTooLarge);
    assert_eq!(error.disconnect_reason_code(), DisconnectReasonCode::PacketTooLarge);

    // The limit counts the whole packet: 1024 bytes pass, 1025 do not.
    let mut ctx = DecodeContext { max_packet_size: 1024, ..ctx };
    let fits = [0x30, 0xFD, 0x07]; // 3 + 1021 = 1024
    assert_eq!(peek_fixed_header(&fits, &ctx).unwrap().unwrap().packet_len(), 1024);
    let mut buf = BytesMut::from(&[0x30, 0xFE, 0x07][..]);
    assert!(matches!(
        decode(&mut buf, &mut ctx),
        Err(DecodeError::PacketTooLarge { size: 1025, .. })
    ));
}

#[test]
fn header_errors_need_only_the_first_byte() {
    let mut ctx = DecodeContext::server(1024);
    let mut buf = BytesMut::from(&[0x20][..]);
    assert_eq!(decode(&mut buf, &mut ctx), Err(DecodeError::ExpectedConnect(PacketType::ConnAck)));
    let mut ctx = DecodeContext::client(V311, 1024);
    let mut buf = BytesMut::from(&[0xF0][..]);
    assert_eq!(decode(&mut buf, &mut ctx), Err(DecodeError::InvalidPacketType(15)));
}

#[test]
fn connect_errors_map_to_the_right_connack() {
    let decode_first = |bytes: Vec<u8>| {
        let mut ctx = DecodeContext::server(1024);
        let error = decode(&mut BytesMut::from(&bytes[..]), &mut ctx).unwrap_err();
        (error, ctx.version)
    };
    // Unknown level: 3.1.1-style CONNACK, return code 1.
    let (error, version) = decode_first(frame(0x10, &[&st(b"MQTT"), &[7, 2, 0, 60], &st(b"id")]));
    assert_eq!(version, None);
    let (format, code) = error.connack_response(version).unwrap();
    assert_eq!((format, code), (V311, ConnectReasonCode::UnsupportedProtocolVersion));
    assert_eq!(code.to_v3(), 1);

    // 3.1.1 empty client id without clean session: return code 2.
    let (error, version) = decode_first(connect_v311(0x00, &[&st(b"")]));
    assert_eq!(version, Some(V311));
    let (format, code) = error.connack_response(version).unwrap();
    assert_eq!((format, code.to_v3()), (V311, 2));

    // Other 3.1.1 CONNECT errors: close without CONNACK.
    let (error, version) = decode_first(connect_v311(0x03, &[&st(b"id")]));
    assert_eq!(error.connack_response(version), None);

    // 5.0: the reason code itself, in a 5.0 CONNACK.
    let (error, version) = decode_first(connect_v5(0x02, &props(&[&[0x21, 0, 0]]), &[&st(b"id")]));
    assert_eq!(error.connack_response(version), Some((V5, ConnectReasonCode::ProtocolError)));
    let (error, version) = decode_first(connect_v5(0x03, &props(&[]), &[&st(b"id")]));
    assert_eq!(error.connack_response(version), Some((V5, ConnectReasonCode::MalformedPacket)));
    let (error, version) = decode_first(connect_v5(
        0x06,
        &props(&[]),
        &[&st(b"id"), &props(&[]), &st(b"#"), &st(b"")],
    ));
    assert_eq!(error.connack_response(version), Some((V5, ConnectReasonCode::TopicNameInvalid)));

    // Not an MQTT client at all: close.
    let (error, version) = decode_first(vec![0x47, 0x45, 0x54, 0x20]);
    assert_eq!(error.connack_response(version), None);
}

#[test]
fn session_errors_map_to_disconnect_reason_codes() {
    let mut ctx = DecodeContext { role: Role::Server, version: Some(V5), max_packet_size: 1024 };
    let bytes = frame(0x30, &[&st(b"t"), &props(&[&[0x23, 0, 0]])]);
    let error = decode(&mut BytesMut::from(&bytes[..]), &mut ctx).unwrap_err();
    assert_eq!(error.disconnect_reason_code(), DisconnectReasonCode::TopicAliasInvalid);
    let bytes = frame(0x82, &[&[0, 1, 0], &st(b"a/#/b"), &[0]]);
    let error = decode(&mut BytesMut::from(&bytes[..]), &mut ctx).unwrap_err();
    assert_eq!(error.disconnect_reason_code(), DisconnectReasonCode::TopicFilterInvalid);
    assert_eq!(
        DecodeError::Truncated.disconnect_reason_code(),
        DisconnectReasonCode::MalformedPacket
    );
    assert!(DecodeError::Truncated.is_malformed());
}

#[test]
fn empty_and_partial_input_needs_more_bytes() {
    for ctx in [DecodeContext::server(1024), DecodeContext::client(V5, 1024)] {
        let mut ctx = ctx;
        let mut buf = BytesMut::new();
        assert_eq!(decode(&mut buf, &mut ctx), Ok(None));
    }
    // A remaining length still continuing after 3 bytes: wait for the 4th.
    let mut ctx =
        DecodeContext { role: Role::Server, version: Some(V31), max_packet_size: u32::MAX };
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF][..]);
    assert_eq!(decode(&mut buf, &mut ctx), Ok(None));
    assert_eq!(buf.len(), 4);
}
