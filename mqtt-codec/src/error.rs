//! Decoding and encoding errors, and how a server answers each decoding error: the MQTT 5.0
//! reason code, sent in a CONNACK while the CONNECT is being read or in a DISCONNECT afterwards
//! (3.1/3.1.1 have neither for most errors: the connection is just closed).

use bytes::Bytes;

use crate::property::PropertyId;
use crate::reason::{ConnectReasonCode, DisconnectReasonCode, ReasonCode};
use crate::topic::TopicError;
use crate::types::{PacketType, ProtocolVersion, Role};

/// Why bytes could not be decoded into a packet. Every error is fatal for the connection: the
/// decoder has consumed the offending packet (unless the fixed header itself was rejected) and
/// the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    // ----- fixed header -----
    /// Packet type 0, or 15 (AUTH) before MQTT 5.0.
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// The low nibble of the first byte is not what the packet type requires.
    #[error("invalid fixed header flags {flags:#06b} for {packet_type}")]
    InvalidHeaderFlags {
        /// The packet type.
        packet_type: PacketType,
        /// The four flag bits received.
        flags: u8,
    },
    /// A Variable Byte Integer continues into a fifth byte.
    #[error("variable byte integer longer than 4 bytes")]
    VarIntTooLong,
    /// A Variable Byte Integer is not in its shortest form.
    #[error("variable byte integer not in its shortest form")]
    NonMinimalVarInt,
    /// The fixed header announces a packet larger than the maximum packet size; detected before
    /// the body is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Announced size of the whole packet, fixed header included.
        size: usize,
        /// The limit in force.
        max: u32,
    },

    // ----- packet order and direction -----
    /// The first packet of a connection is not CONNECT.
    #[error("expected CONNECT as the first packet, got {0}")]
    ExpectedConnect(PacketType),
    /// A second CONNECT on a connection ([MQTT-3.1.0-2]).
    #[error("second CONNECT on the connection")]
    DuplicateConnect,
    /// A packet that this role never receives (e.g. CONNACK sent to a server, or DISCONNECT
    /// sent to a 3.1.1 client).
    #[error("{packet_type} cannot be received by a {role:?}")]
    UnexpectedPacket {
        /// The packet type received.
        packet_type: PacketType,
        /// The role that received it.
        role: Role,
    },

    // ----- fields -----
    /// A field runs past the end of the packet or of its property block (the Remaining Length
    /// is too short for the contents).
    #[error("field runs past the end of the packet")]
    Truncated,
    /// Bytes left over after the last field (the Remaining Length is too long for the contents).
    #[error("{0} unexpected bytes after the packet contents")]
    TrailingBytes(usize),
    /// A UTF-8 string field is not well-formed UTF-8 (including encoded surrogates).
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    /// A UTF-8 string field contains U+0000.
    #[error("string contains U+0000")]
    NullCharacter,
    /// QoS 3 in a PUBLISH fixed header or in the CONNECT Will QoS.
    #[error("QoS 3 is not a valid QoS")]
    InvalidQoS,
    /// A Packet Identifier of 0.
    #[error("packet identifier 0")]
    ZeroPacketId,
    /// A reason code (or 3.1.1 return code) that the packet does not allow.
    #[error("reason code {code:#04x} is not valid in {packet_type}")]
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The value received.
        code: u8,
    },

    // ----- CONNECT / CONNACK -----
    /// A protocol name other than "MQTT" and "MQIsdp".
    #[error("unknown protocol name {0:?}")]
    UnknownProtocolName(Bytes),
    /// A known protocol name with a level this codec does not speak.
    #[error("unsupported protocol level {level}")]
    UnsupportedProtocolVersion {
        /// The protocol level byte received.
        level: u8,
    },
    /// The reserved bit 0 of the CONNECT flags is set.
    #[error("reserved CONNECT flag set")]
    ConnectReservedFlag,
    /// Will QoS or Will Retain set without the Will Flag.
    #[error("will QoS or will retain set without the will flag")]
    InvalidWillFlags,
    /// Password Flag without User Name Flag (3.1 and 3.1.1 only; allowed in 5.0).
    #[error("password without user name")]
    PasswordWithoutUsername,
    /// The Client Identifier is rejected by the protocol itself: empty in 3.1, or empty with
    /// Clean Session 0 in 3.1.1 ([MQTT-3.1.3-8]).
    #[error("client identifier rejected")]
    ClientIdRejected,
    /// Reserved bits of the CONNACK flags are set.
    #[error("invalid CONNACK flags {0:#04x}")]
    InvalidConnAckFlags(u8),
    /// Session Present set with a failure reason code.
    #[error("session present with a failure reason code")]
    SessionPresentOnError,

    // ----- topics and subscriptions -----
    /// An invalid Topic Name (PUBLISH or Will Topic). An empty name without a Topic Alias is a
    /// Protocol Error in MQTT 5.0.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// An invalid Response Topic property.
    #[error("invalid response topic: {0}")]
    InvalidResponseTopic(TopicError),
    /// An invalid Topic Filter (SUBSCRIBE or UNSUBSCRIBE).
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// DUP set on a QoS 0 PUBLISH ([MQTT-3.3.1-2]).
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// Topic Alias property of 0.
    #[error("topic alias 0")]
    TopicAliasZero,
    /// SUBSCRIBE or UNSUBSCRIBE without any filter, or SUBACK or 5.0 UNSUBACK without any code.
    #[error("{0} with an empty payload")]
    EmptyPayload(PacketType),
    /// Reserved bits set in a subscription options byte (bits 6-7 in 5.0, 2-7 before).
    #[error("reserved bits set in subscription options {0:#04x}")]
    InvalidSubscriptionOptions(u8),
    /// Maximum QoS 3 in subscription options.
    #[error("subscription options request QoS 3")]
    InvalidSubscriptionQoS,
    /// Retain Handling 3 in subscription options.
    #[error("retain handling 3")]
    InvalidRetainHandling,
    /// No Local set on a shared subscription ([MQTT-3.8.3-4]).
    #[error("no local on a shared subscription")]
    NoLocalOnSharedSubscription,

    // ----- properties -----
    /// A property identifier that MQTT 5.0 does not define.
    #[error("unknown property identifier {0:#04x}")]
    UnknownProperty(u32),
    /// A property that this packet type may not carry.
    #[error("property {property:?} not allowed in {packet_type}")]
    PropertyNotAllowed {
        /// The packet type.
        packet_type: PacketType,
        /// The property.
        property: PropertyId,
    },
    /// A property that this packet may carry, but not from this sender: a Subscription
    /// Identifier in a client's PUBLISH ([MQTT-3.3.4-6]) or a Session Expiry Interval in a
    /// server's DISCONNECT ([MQTT-3.14.2-2]).
    #[error("property {property:?} not allowed in {packet_type} from this sender")]
    PropertyFromWrongSender {
        /// The packet type.
        packet_type: PacketType,
        /// The property.
        property: PropertyId,
    },
    /// A single-occurrence property appears twice.
    #[error("property {0:?} included more than once")]
    DuplicateProperty(PropertyId),
    /// A property value out of its allowed range (e.g. Receive Maximum 0, a boolean above 1).
    #[error("invalid value {value} for property {property:?}")]
    InvalidPropertyValue {
        /// The property.
        property: PropertyId,
        /// The value received.
        value: u32,
    },
    /// Authentication Data without Authentication Method in CONNECT.
    #[error("authentication data without authentication method")]
    AuthDataWithoutMethod,
    /// An AUTH packet without Authentication Method.
    #[error("AUTH without authentication method")]
    MissingAuthenticationMethod,
}

impl DecodeError {
    /// The MQTT 5.0 reason code for this error: 0x81 Malformed Packet when the bytes cannot be
    /// parsed, 0x82 Protocol Error when they parse but break a rule, and the specific codes 0x84,
    /// 0x85, 0x8F, 0x90, 0x94 and 0x95 where they apply.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            InvalidPacketType(_)
            | InvalidHeaderFlags { .. }
            | VarIntTooLong
            | NonMinimalVarInt
            | Truncated
            | TrailingBytes(_)
            | InvalidUtf8
            | NullCharacter
            | InvalidQoS
            | ConnectReservedFlag
            | InvalidWillFlags
            | PasswordWithoutUsername
            | InvalidConnAckFlags(_)
            | DupOnQoS0
            | InvalidSubscriptionOptions(_)
            | UnknownProperty(_)
            | PropertyNotAllowed { .. } => ReasonCode::MalformedPacket,
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            UnknownProtocolName(_) | UnsupportedProtocolVersion { .. } => {
                ReasonCode::UnsupportedProtocolVersion
            }
            ClientIdRejected => ReasonCode::ClientIdentifierNotValid,
            InvalidTopicName(TopicError::Empty) => ReasonCode::ProtocolError,
            InvalidTopicName(_) => ReasonCode::TopicNameInvalid,
            InvalidTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            TopicAliasZero => ReasonCode::TopicAliasInvalid,
            ExpectedConnect(_)
            | DuplicateConnect
            | UnexpectedPacket { .. }
            | ZeroPacketId
            | InvalidReasonCode { .. }
            | SessionPresentOnError
            | InvalidResponseTopic(_)
            | EmptyPayload(_)
            | InvalidSubscriptionQoS
            | InvalidRetainHandling
            | NoLocalOnSharedSubscription
            | PropertyFromWrongSender { .. }
            | DuplicateProperty(_)
            | InvalidPropertyValue { .. }
            | AuthDataWithoutMethod
            | MissingAuthenticationMethod => ReasonCode::ProtocolError,
        }
    }

    /// Whether the packet could not be parsed at all (reason code 0x81).
    pub fn is_malformed(&self) -> bool {
        self.reason_code() == ReasonCode::MalformedPacket
    }

    /// What a server sends before closing when decoding the first packet (the CONNECT) failed:
    /// `Some((format, code))` means "send a CONNACK with `code`, encoded for `format`", `None`
    /// means "close without a CONNACK".
    ///
    /// `version` is the [`DecodeContext::version`](crate::DecodeContext::version) after the failed
    /// call: [`decode`](crate::decode) records the version as soon as the CONNECT's protocol name
    /// and level are read, so the answer uses the client's own format.
    ///
    /// - An unknown protocol name or level: CONNACK 0x84, in 3.1.1 format (return code 1, as
    ///   [MQTT-3.1.2-2] requires for 3.1.1 and 5.0 allows), since the client's format is unknown.
    /// - A 3.1/3.1.1 client: a CONNACK only for a rejected Client Identifier (return code 2);
    ///   other errors close the connection.
    /// - A 5.0 client: a CONNACK with the error's reason code (0x81, 0x82, 0x85, 0x90, 0x95...).
    /// - Not a CONNECT at all, or a fixed header rejected before the version was known: close.
    pub fn connack_response(
        &self,
        version: Option<ProtocolVersion>,
    ) -> Option<(ProtocolVersion, ConnectReasonCode)> {
        match self {
            DecodeError::ExpectedConnect(_) => None,
            DecodeError::UnknownProtocolName(_)
            | DecodeError::UnsupportedProtocolVersion { .. } => Some((
                version.unwrap_or(ProtocolVersion::V311),
                ConnectReasonCode::UnsupportedProtocolVersion,
            )),
            _ => match version? {
                ProtocolVersion::V5 => ConnectReasonCode::from_u8(self.reason_code().as_u8())
                    .map(|code| (ProtocolVersion::V5, code)),
                v3 => matches!(self, DecodeError::ClientIdRejected)
                    .then_some((v3, ConnectReasonCode::ClientIdentifierNotValid)),
            },
        }
    }

    /// The reason code of the DISCONNECT a server sends a 5.0 client before closing, for an error
    /// after the CONNECT (3.1/3.1.1 clients get no DISCONNECT: just close).
    pub fn disconnect_reason_code(&self) -> DisconnectReasonCode {
        DisconnectReasonCode::from_u8(self.reason_code().as_u8())
            .unwrap_or(DisconnectReasonCode::ProtocolError)
    }
}

/// Why a packet could not be encoded. Nothing is written to the buffer on error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet is larger than the limit (the peer's Maximum Packet Size, or the protocol's
    /// 268,435,460 bytes), even after dropping what may be dropped.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Size of the whole packet, fixed header included.
        size: usize,
        /// The limit in force.
        max: u32,
    },
    /// A string or binary field longer than 65535 bytes.
    #[error("string or binary field of {0} bytes exceeds 65535 bytes")]
    FieldTooLong(usize),
    /// A QoS 1 or 2 PUBLISH without a Packet Identifier.
    #[error("PUBLISH with QoS > 0 needs a packet identifier")]
    MissingPacketId,
    /// A QoS 0 PUBLISH with a Packet Identifier.
    #[error("PUBLISH with QoS 0 cannot carry a packet identifier")]
    UnexpectedPacketId,
    /// A packet that does not exist in the requested version (AUTH before 5.0).
    #[error("{packet_type} does not exist in MQTT {version}")]
    UnsupportedPacket {
        /// The packet type.
        packet_type: PacketType,
        /// The requested version.
        version: ProtocolVersion,
    },
    /// A CONNECT whose `protocol_version` differs from the version asked for.
    #[error("CONNECT for MQTT {connect} cannot be encoded as MQTT {requested}")]
    VersionMismatch {
        /// The CONNECT's own version.
        connect: ProtocolVersion,
        /// The version passed to the encoder.
        requested: ProtocolVersion,
    },
    /// A Subscription Identifier above 268,435,455.
    #[error("subscription identifier {0} exceeds 268435455")]
    SubscriptionIdTooLarge(u32),
}
