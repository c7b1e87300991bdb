//! Typed MQTT 5.0 properties, one struct per packet (or group of packets sharing a property set),
//! each field with its specification type. Decoding rejects properties the packet may not carry,
//! duplicates of single-occurrence properties and out-of-range values; encoding writes them in
//! field order and can leave out the Reason String and User Properties to fit a size limit.
//! 3.1/3.1.1 packets carry none: their property structs stay at `Default`.

use std::fmt;
use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::property::{
    PropLen, PropertyId, PropertyReader, block_len, opt_bytes, put_bool, put_field, put_u8,
    put_u16, put_u32, put_user, put_var_int, set_once,
};
use crate::topic::validate_topic_name;
use crate::types::{PacketType, QoS, Role, UserProperty};
use crate::wire::{self, Reader};

/// What may be left out of a packet to respect the receiver's Maximum Packet Size (MQTT 5.0
/// [MQTT-3.1.2-25] and the per-packet rules for the Reason String and User Properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trim {
    /// Encode everything.
    Nothing,
    /// Leave out the Reason String.
    ReasonString,
    /// Leave out the Reason String and the User Properties.
    ReasonStringAndUserProperties,
}

impl Trim {
    fn keep_reason(self) -> bool {
        self == Trim::Nothing
    }

    fn keep_user(self) -> bool {
        self != Trim::ReasonStringAndUserProperties
    }
}

/// Sizing and writing shared by every property struct.
pub(crate) trait PropertyBlock {
    /// Size of the block's contents (without its length prefix).
    fn content_len(&self, trim: Trim) -> Result<usize, EncodeError>;

    /// Writes the contents sized by `content_len`.
    fn write_content(&self, trim: Trim, buf: &mut BytesMut);

    /// Size of the whole block, length prefix included.
    fn block_len(&self, trim: Trim) -> Result<usize, EncodeError> {
        Ok(block_len(self.content_len(trim)?))
    }

    /// Writes the whole block, length prefix included.
    fn write_block(&self, trim: Trim, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let len = self.content_len(trim)?;
        wire::put_var_int(buf, len);
        self.write_content(trim, buf);
        Ok(())
    }
}

/// Shows whether a secret is present without showing it.
fn redacted(secret: &Option<Bytes>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

fn non_zero_u16(value: u16, property: PropertyId) -> Result<NonZeroU16, DecodeError> {
    NonZeroU16::new(value)
        .ok_or(DecodeError::InvalidPropertyValue { property, value: value.into() })
}

fn non_zero_u32(value: u32, property: PropertyId) -> Result<NonZeroU32, DecodeError> {
    NonZeroU32::new(value).ok_or(DecodeError::InvalidPropertyValue { property, value })
}

fn reason_and_user_len(
    len: &mut PropLen,
    reason_string: &Option<ByteString>,
    user_properties: &[UserProperty],
    trim: Trim,
) -> Result<(), EncodeError> {
    if trim.keep_reason() {
        len.field(opt_bytes(reason_string))?;
    }
    if trim.keep_user() {
        len.user(user_properties)?;
    }
    Ok(())
}

fn put_reason_and_user(
    buf: &mut BytesMut,
    reason_string: &Option<ByteString>,
    user_properties: &[UserProperty],
    trim: Trim,
) {
    if trim.keep_reason() {
        put_field(buf, PropertyId::ReasonString, opt_bytes(reason_string));
    }
    if trim.keep_user() {
        put_user(buf, user_properties);
    }
}

/// CONNECT properties (MQTT 5.0 §3.1.2.11). `Debug` hides the authentication data.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectProperties {
    /// Seconds the session outlives the connection; absent means 0.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 PUBLISH the client will process concurrently; absent means 65535.
    pub receive_maximum: Option<NonZeroU16>,
    /// Largest packet the client accepts; absent means no limit beyond the protocol's.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Highest Topic Alias the client accepts from the server; absent means 0 (none).
    pub topic_alias_maximum: Option<u16>,
    /// Whether the client wants Response Information in the CONNACK; absent means false.
    pub request_response_information: Option<bool>,
    /// Whether the server may send Reason Strings and User Properties on failures other than
    /// PUBLISH/CONNACK/DISCONNECT; absent means true.
    pub request_problem_information: Option<bool>,
    /// User Properties, in order.
    pub user_properties: Vec<UserProperty>,
    /// Extended authentication method.
    pub authentication_method: Option<ByteString>,
    /// Extended authentication data; only with a method.
    pub authentication_data: Option<Bytes>,
}

impl fmt::Debug for ConnectProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectProperties")
            .field("session_expiry_interval", &self.session_expiry_interval)
            .field("receive_maximum", &self.receive_maximum)
            .field("maximum_packet_size", &self.maximum_packet_size)
            .field("topic_alias_maximum", &self.topic_alias_maximum)
            .field("request_response_information", &self.request_response_information)
            .field("request_problem_information", &self.request_problem_information)
            .field("user_properties", &self.user_properties)
            .field("authentication_method", &self.authentication_method)
            .field("authentication_data", &redacted(&self.authentication_data))
            .finish()
    }
}

impl ConnectProperties {
    pub(crate) fn decode(body: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, PacketType::Connect)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::SessionExpiryInterval => {
                    let v = r.u32()?;
                    set_once(&mut p.session_expiry_interval, id, v)?;
                }
                PropertyId::ReceiveMaximum => {
                    let v = non_zero_u16(r.u16()?, id)?;
                    set_once(&mut p.receive_maximum, id, v)?;
                }
                PropertyId::MaximumPacketSize => {
                    let v = non_zero_u32(r.u32()?, id)?;
                    set_once(&mut p.maximum_packet_size, id, v)?;
                }
                PropertyId::TopicAliasMaximum => {
                    let v = r.u16()?;
                    set_once(&mut p.topic_alias_maximum, id, v)?;
                }
                PropertyId::RequestResponseInformation => {
                    let v = r.bool(id)?;
                    set_once(&mut p.request_response_information, id, v)?;
                }
                PropertyId::RequestProblemInformation => {
                    let v = r.bool(id)?;
                    set_once(&mut p.request_problem_information, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                PropertyId::AuthenticationMethod => {
                    let v = r.string()?;
                    set_once(&mut p.authentication_method, id, v)?;
                }
                PropertyId::AuthenticationData => {
                    let v = r.binary()?;
                    set_once(&mut p.authentication_data, id, v)?;
                }
                _ => return Err(r.not_allowed(id)),
            }
        }
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        Ok(p)
    }
}

impl PropertyBlock for ConnectProperties {
    fn content_len(&self, _trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        len.fixed(self.session_expiry_interval.is_some(), 4);
        len.fixed(self.receive_maximum.is_some(), 2);
        len.fixed(self.maximum_packet_size.is_some(), 4);
        len.fixed(self.topic_alias_maximum.is_some(), 2);
        len.fixed(self.request_response_information.is_some(), 1);
        len.fixed(self.request_problem_information.is_some(), 1);
        len.user(&self.user_properties)?;
        len.field(opt_bytes(&self.authentication_method))?;
        len.field(opt_bytes(&self.authentication_data))?;
        Ok(len.get())
    }

    fn write_content(&self, _trim: Trim, buf: &mut BytesMut) {
        put_u32(buf, PropertyId::SessionExpiryInterval, self.session_expiry_interval);
        put_u16(buf, PropertyId::ReceiveMaximum, self.receive_maximum.map(NonZeroU16::get));
        put_u32(buf, PropertyId::MaximumPacketSize, self.maximum_packet_size.map(NonZeroU32::get));
        put_u16(buf, PropertyId::TopicAliasMaximum, self.topic_alias_maximum);
        put_bool(buf, PropertyId::RequestResponseInformation, self.request_response_information);
        put_bool(buf, PropertyId::RequestProblemInformation, self.request_problem_information);
        put_user(buf, &self.user_properties);
        put_field(buf, PropertyId::AuthenticationMethod, opt_bytes(&self.authentication_method));
        put_field(buf, PropertyId::AuthenticationData, opt_bytes(&self.authentication_data));
    }
}

/// Will properties, in the CONNECT payload (MQTT 5.0 §3.1.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WillProperties {
    /// Seconds to wait after the connection ends before publishing the Will; absent means 0.
    pub will_delay_interval: Option<u32>,
    /// `Some(true)`: the Will payload is UTF-8 text; `Some(false)` or absent: unspecified bytes.
    pub payload_format_indicator: Option<bool>,
    /// Lifetime of the Will Message in seconds; absent means no expiry.
    pub message_expiry_interval: Option<u32>,
    /// Content type (e.g. a MIME type) of the Will payload.
    pub content_type: Option<ByteString>,
    /// Topic Name for a response to the Will Message.
    pub response_topic: Option<ByteString>,
    /// Correlation Data for a response to the Will Message.
    pub correlation_data: Option<Bytes>,
    /// User Properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl WillProperties {
    pub(crate) fn decode(body: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        // Will properties live in the CONNECT payload; errors name the CONNECT.
        let mut r = PropertyReader::new(body, PacketType::Connect)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::WillDelayInterval => {
                    let v = r.u32()?;
                    set_once(&mut p.will_delay_interval, id, v)?;
                }
                PropertyId::PayloadFormatIndicator => {
                    let v = r.bool(id)?;
                    set_once(&mut p.payload_format_indicator, id, v)?;
                }
                PropertyId::MessageExpiryInterval => {
                    let v = r.u32()?;
                    set_once(&mut p.message_expiry_interval, id, v)?;
                }
                PropertyId::ContentType => {
                    let v = r.string()?;
                    set_once(&mut p.content_type, id, v)?;
                }
                PropertyId::ResponseTopic => {
                    let v = r.string()?;
                    validate_topic_name(&v).map_err(DecodeError::InvalidResponseTopic)?;
                    set_once(&mut p.response_topic, id, v)?;
                }
                PropertyId::CorrelationData => {
                    let v = r.binary()?;
                    set_once(&mut p.correlation_data, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }
}

impl PropertyBlock for WillProperties {
    fn content_len(&self, _trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        len.fixed(self.will_delay_interval.is_some(), 4);
        len.fixed(self.payload_format_indicator.is_some(), 1);
        len.fixed(self.message_expiry_interval.is_some(), 4);
        len.field(opt_bytes(&self.content_type))?;
        len.field(opt_bytes(&self.response_topic))?;
        len.field(opt_bytes(&self.correlation_data))?;
        len.user(&self.user_properties)?;
        Ok(len.get())
    }

    fn write_content(&self, _trim: Trim, buf: &mut BytesMut) {
        put_u32(buf, PropertyId::WillDelayInterval, self.will_delay_interval);
        put_bool(buf, PropertyId::PayloadFormatIndicator, self.payload_format_indicator);
        put_u32(buf, PropertyId::MessageExpiryInterval, self.message_expiry_interval);
        put_field(buf, PropertyId::ContentType, opt_bytes(&self.content_type));
        put_field(buf, PropertyId::ResponseTopic, opt_bytes(&self.response_topic));
        put_field(buf, PropertyId::CorrelationData, opt_bytes(&self.correlation_data));
        put_user(buf, &self.user_properties);
    }
}

/// CONNACK properties (MQTT 5.0 §3.2.2.3). Absent values mean the specification's default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAckProperties {
    /// The session expiry the server uses, if it differs from the client's request.
    pub session_expiry_interval: Option<u32>,
    /// How many QoS 1/2 PUBLISH the server processes concurrently; absent means 65535.
    pub receive_maximum: Option<NonZeroU16>,
    /// Highest QoS the server supports: `AtMostOnce` or `AtLeastOnce`; absent means QoS 2.
    /// (`ExactlyOnce` is not sent: the encoder leaves the property out, which means the same.)
    pub maximum_qos: Option<QoS>,
    /// Whether the server supports retained messages; absent means true.
    pub retain_available: Option<bool>,
    /// Largest packet the server accepts; absent means no limit beyond the protocol's.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// The Client Identifier the server assigned (the client sent an empty one).
    pub assigned_client_identifier: Option<ByteString>,
    /// Highest Topic Alias the server accepts from the client; absent means 0 (none).
    pub topic_alias_maximum: Option<u16>,
    /// Human-readable diagnostic; may be dropped to fit the client's Maximum Packet Size.
    pub reason_string: Option<ByteString>,
    /// User Properties, in order; may be dropped to fit the client's Maximum Packet Size.
    pub user_properties: Vec<UserProperty>,
    /// Whether wildcard subscriptions are supported; absent means true.
    pub wildcard_subscription_available: Option<bool>,
    /// Whether Subscription Identifiers are supported; absent means true.
    pub subscription_identifiers_available: Option<bool>,
    /// Whether shared subscriptions are supported; absent means true.
    pub shared_subscription_available: Option<bool>,
    /// Keep Alive the client must use instead of its own, in seconds.
    pub server_keep_alive: Option<u16>,
    /// Basis for response topics, when the client requested it.
    pub response_information: Option<ByteString>,
    /// Another server the client should use.
    pub server_reference: Option<ByteString>,
    /// Extended authentication method (the CONNECT's).
    pub authentication_method: Option<ByteString>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
}

impl ConnAckProperties {
    pub(crate) fn decode(body: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, PacketType::ConnAck)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::SessionExpiryInterval => {
                    let v = r.u32()?;
                    set_once(&mut p.session_expiry_interval, id, v)?;
                }
                PropertyId::ReceiveMaximum => {
                    let v = non_zero_u16(r.u16()?, id)?;
                    set_once(&mut p.receive_maximum, id, v)?;
                }
                PropertyId::MaximumQoS => {
                    let v = match r.byte()? {
                        0 => QoS::AtMostOnce,
                        1 => QoS::AtLeastOnce,
                        value => {
                            return Err(DecodeError::InvalidPropertyValue {
                                property: id,
                                value: value.into(),
                            });
                        }
                    };
                    set_once(&mut p.maximum_qos, id, v)?;
                }
                PropertyId::RetainAvailable => {
                    let v = r.bool(id)?;
                    set_once(&mut p.retain_available, id, v)?;
                }
                PropertyId::MaximumPacketSize => {
                    let v = non_zero_u32(r.u32()?, id)?;
                    set_once(&mut p.maximum_packet_size, id, v)?;
                }
                PropertyId::AssignedClientIdentifier => {
                    let v = r.string()?;
                    set_once(&mut p.assigned_client_identifier, id, v)?;
                }
                PropertyId::TopicAliasMaximum => {
                    let v = r.u16()?;
                    set_once(&mut p.topic_alias_maximum, id, v)?;
                }
                PropertyId::ReasonString => {
                    let v = r.string()?;
                    set_once(&mut p.reason_string, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                PropertyId::WildcardSubscriptionAvailable => {
                    let v = r.bool(id)?;
                    set_once(&mut p.wildcard_subscription_available, id, v)?;
                }
                PropertyId::SubscriptionIdentifierAvailable => {
                    let v = r.bool(id)?;
                    set_once(&mut p.subscription_identifiers_available, id, v)?;
                }
                PropertyId::SharedSubscriptionAvailable => {
                    let v = r.bool(id)?;
                    set_once(&mut p.shared_subscription_available, id, v)?;
                }
                PropertyId::ServerKeepAlive => {
                    let v = r.u16()?;
                    set_once(&mut p.server_keep_alive, id, v)?;
                }
                PropertyId::ResponseInformation => {
                    let v = r.string()?;
                    set_once(&mut p.response_information, id, v)?;
                }
                PropertyId::ServerReference => {
                    let v = r.string()?;
                    set_once(&mut p.server_reference, id, v)?;
                }
                PropertyId::AuthenticationMethod => {
                    let v = r.string()?;
                    set_once(&mut p.authentication_method, id, v)?;
                }
                PropertyId::AuthenticationData => {
                    let v = r.binary()?;
                    set_once(&mut p.authentication_data, id, v)?;
                }
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }

    /// The Maximum QoS value actually sent (QoS 2 is expressed by leaving the property out).
    fn wire_maximum_qos(&self) -> Option<u8> {
        self.maximum_qos.filter(|qos| *qos != QoS::ExactlyOnce).map(QoS::as_u8)
    }
}

impl PropertyBlock for ConnAckProperties {
    fn content_len(&self, trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        len.fixed(self.session_expiry_interval.is_some(), 4);
        len.fixed(self.receive_maximum.is_some(), 2);
        len.fixed(self.wire_maximum_qos().is_some(), 1);
        len.fixed(self.retain_available.is_some(), 1);
        len.fixed(self.maximum_packet_size.is_some(), 4);
        len.field(opt_bytes(&self.assigned_client_identifier))?;
        len.fixed(self.topic_alias_maximum.is_some(), 2);
        reason_and_user_len(&mut len, &self.reason_string, &self.user_properties, trim)?;
        len.fixed(self.wildcard_subscription_available.is_some(), 1);
        len.fixed(self.subscription_identifiers_available.is_some(), 1);
        len.fixed(self.shared_subscription_available.is_some(), 1);
        len.fixed(self.server_keep_alive.is_some(), 2);
        len.field(opt_bytes(&self.response_information))?;
        len.field(opt_bytes(&self.server_reference))?;
        len.field(opt_bytes(&self.authentication_method))?;
        len.field(opt_bytes(&self.authentication_data))?;
        Ok(len.get())
    }

    fn write_content(&self, trim: Trim, buf: &mut BytesMut) {
        put_u32(buf, PropertyId::SessionExpiryInterval, self.session_expiry_interval);
        put_u16(buf, PropertyId::ReceiveMaximum, self.receive_maximum.map(NonZeroU16::get));
        put_u8(buf, PropertyId::MaximumQoS, self.wire_maximum_qos());
        put_bool(buf, PropertyId::RetainAvailable, self.retain_available);
        put_u32(buf, PropertyId::MaximumPacketSize, self.maximum_packet_size.map(NonZeroU32::get));
        put_field(
            buf,
            PropertyId::AssignedClientIdentifier,
            opt_bytes(&self.assigned_client_identifier),
        );
        put_u16(buf, PropertyId::TopicAliasMaximum, self.topic_alias_maximum);
        put_reason_and_user(buf, &self.reason_string, &self.user_properties, trim);
        put_bool(
            buf,
            PropertyId::WildcardSubscriptionAvailable,
            self.wildcard_subscription_available,
        );
        put_bool(
            buf,
            PropertyId::SubscriptionIdentifierAvailable,
            self.subscription_identifiers_available,
        );
        put_bool(buf, PropertyId::SharedSubscriptionAvailable, self.shared_subscription_available);
        put_u16(buf, PropertyId::ServerKeepAlive, self.server_keep_alive);
        put_field(buf, PropertyId::ResponseInformation, opt_bytes(&self.response_information));
        put_field(buf, PropertyId::ServerReference, opt_bytes(&self.server_reference));
        put_field(buf, PropertyId::AuthenticationMethod, opt_bytes(&self.authentication_method));
        put_field(buf, PropertyId::AuthenticationData, opt_bytes(&self.authentication_data));
    }
}

/// PUBLISH properties (MQTT 5.0 §3.3.2.3). A broker forwards them unaltered except the Topic
/// Alias (per connection) and the Subscription Identifiers (per matching subscription).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishProperties {
    /// `Some(true)`: the payload is UTF-8 text; `Some(false)` or absent: unspecified bytes.
    pub payload_format_indicator: Option<bool>,
    /// Lifetime of the message in seconds; absent means no expiry.
    pub message_expiry_interval: Option<u32>,
    /// Topic Alias; never 0 (rejected as Topic Alias invalid, 0x94).
    pub topic_alias: Option<NonZeroU16>,
    /// Topic Name for a response message.
    pub response_topic: Option<ByteString>,
    /// Correlation Data for a response message.
    pub correlation_data: Option<Bytes>,
    /// User Properties, in order.
    pub user_properties: Vec<UserProperty>,
    /// Identifiers of the subscriptions that matched (server to client only).
    pub subscription_identifiers: Vec<NonZeroU32>,
    /// Content type (e.g. a MIME type) of the payload.
    pub content_type: Option<ByteString>,
}

impl PublishProperties {
    pub(crate) fn decode(body: &mut Reader, role: Role) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, PacketType::Publish)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::PayloadFormatIndicator => {
                    let v = r.bool(id)?;
                    set_once(&mut p.payload_format_indicator, id, v)?;
                }
                PropertyId::MessageExpiryInterval => {
                    let v = r.u32()?;
                    set_once(&mut p.message_expiry_interval, id, v)?;
                }
                PropertyId::TopicAlias => {
                    let v = NonZeroU16::new(r.u16()?).ok_or(DecodeError::TopicAliasZero)?;
                    set_once(&mut p.topic_alias, id, v)?;
                }
                PropertyId::ResponseTopic => {
                    let v = r.string()?;
                    validate_topic_name(&v).map_err(DecodeError::InvalidResponseTopic)?;
                    set_once(&mut p.response_topic, id, v)?;
                }
                PropertyId::CorrelationData => {
                    let v = r.binary()?;
                    set_once(&mut p.correlation_data, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                PropertyId::SubscriptionIdentifier => {
                    if role == Role::Server {
                        return Err(DecodeError::PropertyFromWrongSender {
                            packet_type: PacketType::Publish,
                            property: id,
                        });
                    }
                    let v = non_zero_u32(r.var_int()?, id)?;
                    p.subscription_identifiers.push(v);
                }
                PropertyId::ContentType => {
                    let v = r.string()?;
                    set_once(&mut p.content_type, id, v)?;
                }
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }
}

impl PropertyBlock for PublishProperties {
    fn content_len(&self, _trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        len.fixed(self.payload_format_indicator.is_some(), 1);
        len.fixed(self.message_expiry_interval.is_some(), 4);
        len.fixed(self.topic_alias.is_some(), 2);
        len.field(opt_bytes(&self.response_topic))?;
        len.field(opt_bytes(&self.correlation_data))?;
        len.user(&self.user_properties)?;
        for id in &self.subscription_identifiers {
            len.var_int(id.get())?;
        }
        len.field(opt_bytes(&self.content_type))?;
        Ok(len.get())
    }

    fn write_content(&self, _trim: Trim, buf: &mut BytesMut) {
        put_bool(buf, PropertyId::PayloadFormatIndicator, self.payload_format_indicator);
        put_u32(buf, PropertyId::MessageExpiryInterval, self.message_expiry_interval);
        put_u16(buf, PropertyId::TopicAlias, self.topic_alias.map(NonZeroU16::get));
        put_field(buf, PropertyId::ResponseTopic, opt_bytes(&self.response_topic));
        put_field(buf, PropertyId::CorrelationData, opt_bytes(&self.correlation_data));
        put_user(buf, &self.user_properties);
        for id in &self.subscription_identifiers {
            put_var_int(buf, PropertyId::SubscriptionIdentifier, id.get());
        }
        put_field(buf, PropertyId::ContentType, opt_bytes(&self.content_type));
    }
}

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK: a Reason String and User
/// Properties, both of which the encoder may drop to fit the receiver's Maximum Packet Size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckProperties {
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteString>,
    /// User Properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// Whether there is nothing to encode.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }

    pub(crate) fn decode(body: &mut Reader, packet_type: PacketType) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, packet_type)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::ReasonString => {
                    let v = r.string()?;
                    set_once(&mut p.reason_string, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }
}

impl PropertyBlock for AckProperties {
    fn content_len(&self, trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        reason_and_user_len(&mut len, &self.reason_string, &self.user_properties, trim)?;
        Ok(len.get())
    }

    fn write_content(&self, trim: Trim, buf: &mut BytesMut) {
        put_reason_and_user(buf, &self.reason_string, &self.user_properties, trim);
    }
}

/// SUBSCRIBE properties (MQTT 5.0 §3.8.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeProperties {
    /// Identifier to attach to messages delivered through these subscriptions
    /// (1..=268,435,455).
    pub subscription_identifier: Option<NonZeroU32>,
    /// User Properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl SubscribeProperties {
    pub(crate) fn decode(body: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, PacketType::Subscribe)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::SubscriptionIdentifier => {
                    let v = non_zero_u32(r.var_int()?, id)?;
                    set_once(&mut p.subscription_identifier, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }
}

impl PropertyBlock for SubscribeProperties {
    fn content_len(&self, _trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        if let Some(id) = self.subscription_identifier {
            len.var_int(id.get())?;
        }
        len.user(&self.user_properties)?;
        Ok(len.get())
    }

    fn write_content(&self, _trim: Trim, buf: &mut BytesMut) {
        if let Some(id) = self.subscription_identifier {
            put_var_int(buf, PropertyId::SubscriptionIdentifier, id.get());
        }
        put_user(buf, &self.user_properties);
    }
}

/// UNSUBSCRIBE properties (MQTT 5.0 §3.10.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnsubscribeProperties {
    /// User Properties, in order.
    pub user_properties: Vec<UserProperty>,
}

impl UnsubscribeProperties {
    pub(crate) fn decode(body: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, PacketType::Unsubscribe)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }
}

impl PropertyBlock for UnsubscribeProperties {
    fn content_len(&self, _trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        len.user(&self.user_properties)?;
        Ok(len.get())
    }

    fn write_content(&self, _trim: Trim, buf: &mut BytesMut) {
        put_user(buf, &self.user_properties);
    }
}

/// DISCONNECT properties (MQTT 5.0 §3.14.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisconnectProperties {
    /// New session expiry, client to server only ([MQTT-3.14.2-2]).
    pub session_expiry_interval: Option<u32>,
    /// Human-readable diagnostic; may be dropped to fit the receiver's Maximum Packet Size.
    pub reason_string: Option<ByteString>,
    /// User Properties, in order; may be dropped to fit the receiver's Maximum Packet Size.
    pub user_properties: Vec<UserProperty>,
    /// Another server the client should use (with reason 0x9C or 0x9D).
    pub server_reference: Option<ByteString>,
}

impl DisconnectProperties {
    pub(crate) fn decode(body: &mut Reader, role: Role) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, PacketType::Disconnect)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::SessionExpiryInterval => {
                    if role == Role::Client {
                        return Err(DecodeError::PropertyFromWrongSender {
                            packet_type: PacketType::Disconnect,
                            property: id,
                        });
                    }
                    let v = r.u32()?;
                    set_once(&mut p.session_expiry_interval, id, v)?;
                }
                PropertyId::ReasonString => {
                    let v = r.string()?;
                    set_once(&mut p.reason_string, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                PropertyId::ServerReference => {
                    let v = r.string()?;
                    set_once(&mut p.server_reference, id, v)?;
                }
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }
}

impl PropertyBlock for DisconnectProperties {
    fn content_len(&self, trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        len.fixed(self.session_expiry_interval.is_some(), 4);
        reason_and_user_len(&mut len, &self.reason_string, &self.user_properties, trim)?;
        len.field(opt_bytes(&self.server_reference))?;
        Ok(len.get())
    }

    fn write_content(&self, trim: Trim, buf: &mut BytesMut) {
        put_u32(buf, PropertyId::SessionExpiryInterval, self.session_expiry_interval);
        put_reason_and_user(buf, &self.reason_string, &self.user_properties, trim);
        put_field(buf, PropertyId::ServerReference, opt_bytes(&self.server_reference));
    }
}

/// AUTH properties (MQTT 5.0 §3.15.2.2). `Debug` hides the authentication data.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthProperties {
    /// Extended authentication method; required unless the AUTH is a bare Success.
    pub authentication_method: Option<ByteString>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
    /// Human-readable diagnostic; may be dropped to fit the receiver's Maximum Packet Size.
    pub reason_string: Option<ByteString>,
    /// User Properties, in order; may be dropped to fit the receiver's Maximum Packet Size.
    pub user_properties: Vec<UserProperty>,
}

impl fmt::Debug for AuthProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthProperties")
            .field("authentication_method", &self.authentication_method)
            .field("authentication_data", &redacted(&self.authentication_data))
            .field("reason_string", &self.reason_string)
            .field("user_properties", &self.user_properties)
            .finish()
    }
}

impl AuthProperties {
    pub(crate) fn decode(body: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = Self::default();
        let mut r = PropertyReader::new(body, PacketType::Auth)?;
        while let Some(id) = r.next_id()? {
            match id {
                PropertyId::AuthenticationMethod => {
                    let v = r.string()?;
                    set_once(&mut p.authentication_method, id, v)?;
                }
                PropertyId::AuthenticationData => {
                    let v = r.binary()?;
                    set_once(&mut p.authentication_data, id, v)?;
                }
                PropertyId::ReasonString => {
                    let v = r.string()?;
                    set_once(&mut p.reason_string, id, v)?;
                }
                PropertyId::UserProperty => p.user_properties.push(r.pair()?),
                _ => return Err(r.not_allowed(id)),
            }
        }
        Ok(p)
    }
}

impl PropertyBlock for AuthProperties {
    fn content_len(&self, trim: Trim) -> Result<usize, EncodeError> {
        let mut len = PropLen::default();
        len.field(opt_bytes(&self.authentication_method))?;
        len.field(opt_bytes(&self.authentication_data))?;
        reason_and_user_len(&mut len, &self.reason_string, &self.user_properties, trim)?;
        Ok(len.get())
    }

    fn write_content(&self, trim: Trim, buf: &mut BytesMut) {
        put_field(buf, PropertyId::AuthenticationMethod, opt_bytes(&self.authentication_method));
        put_field(buf, PropertyId::AuthenticationData, opt_bytes(&self.authentication_data));
        put_reason_and_user(buf, &self.reason_string, &self.user_properties, trim);
    }
}
