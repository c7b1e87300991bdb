//! mqtt-codec: MQTT 3.1, 3.1.1 and 5.0 packets to and from bytes.
//!
//! A strict, zero-copy, I/O-free codec for the Tern broker:
//!
//! - one packet model for every version ([`Packet`]): a 3.1/3.1.1 packet is a 5.0 packet without
//!   properties, with reason codes mapped to the old return codes;
//! - [`decode`] takes one packet off a `BytesMut` read buffer, or says it needs more bytes; the
//!   fixed header is checked (type, flags, order, direction, [`DecodeContext::max_packet_size`])
//!   before the body is buffered, and every string, topic, binary field and payload of the result
//!   is a `Bytes` slice of the read buffer;
//! - every rule of the specifications that can be checked on one packet is checked, and each
//!   failure is a precise [`DecodeError`] that knows its 5.0 reason code and whether to answer
//!   with a CONNACK or a DISCONNECT;
//! - [`encode`] sizes the packet exactly, reserves once and writes; [`encode_limited`] respects a
//!   peer's Maximum Packet Size; [`encode_publish_header`] leaves the shared payload to a
//!   vectored write.
//!
//! ```
//! use mqtt_codec::{decode, encode, DecodeContext, Packet, ProtocolVersion, Publish};
//! use mqtt_codec::bytes::{Bytes, BytesMut};
//!
//! // A broker connection: the first packet must be a CONNECT, which sets the version.
//! let mut ctx = DecodeContext::server(1024 * 1024);
//! let mut buf = BytesMut::from(&b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"[..]);
//! let Some(Packet::Connect(connect)) = decode(&mut buf, &mut ctx)? else { panic!() };
//! assert_eq!(ctx.version, Some(ProtocolVersion::V311));
//! assert!(connect.client_id.is_empty());
//!
//! let mut out = BytesMut::new();
//! let publish = Publish::new("a/b".into(), Bytes::from_static(b"hello"));
//! encode(&publish.into(), ProtocolVersion::V311, &mut out)?;
//! assert_eq!(&out[..], b"\x30\x0a\x00\x03a/bhello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The broker is written against this API: every public item says what it is for.
#![warn(missing_docs)]

mod decode;
mod encode;
mod error;
mod packet;
mod properties;
mod property;
mod reason;
mod topic;
mod types;
mod varint;
mod wire;

pub use bytes;
pub use bytestring;

pub use decode::{DecodeContext, FixedHeader, decode, peek_fixed_header};
pub use encode::{encode, encode_limited, encode_publish, encode_publish_header, encoded_len};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, PubAck, PubComp, PubRec, PubRel,
    PubResponse, Publish, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UnsubscribeProperties, WillProperties,
};
pub use property::PropertyId;
pub use reason::{
    AuthReasonCode, ConnectReasonCode, DisconnectReasonCode, PubAckReasonCode, PubCompReasonCode,
    PubReasonCode, PubRecReasonCode, PubRelReasonCode, ReasonCode, SubAckReasonCode,
    UnsubAckReasonCode,
};
pub use topic::{
    SHARED_PREFIX, TopicError, has_wildcard, parse_shared, validate_topic_filter,
    validate_topic_name,
};
pub use types::{
    MAX_PACKET_SIZE, MAX_VARIABLE_INTEGER, PacketId, PacketType, ProtocolVersion, QoS,
    RetainHandling, Role, UserProperty,
};
