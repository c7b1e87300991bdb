//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (MQTT 5.0 §3.8-3.11, 3.1.1 §3.8-3.11). Filters
//! are validated on decode (wildcard placement, shared subscription syntax), so the broker only
//! applies its own policy.

use bytes::{BufMut, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::properties::{
    AckProperties, PropertyBlock, SubscribeProperties, Trim, UnsubscribeProperties,
};
use crate::reason::{SubAckReasonCode, UnsubAckReasonCode};
use crate::topic::{parse_shared, validate_topic_filter};
use crate::types::{PacketId, PacketType, ProtocolVersion, QoS, RetainHandling};
use crate::wire::{Reader, field_len, put_field};

const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;
const RETAIN_HANDLING_SHIFT: u8 = 4;
const V5_RESERVED: u8 = 0xC0;
const V3_RESERVED: u8 = 0xFC;

/// Subscription Options byte. 3.1/3.1.1 only have the QoS; the other options are not encoded
/// there and decode as their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS of messages sent for this subscription.
    pub qos: QoS,
    /// No Local (5.0): do not send the client its own messages. Not allowed on shared
    /// subscriptions.
    pub no_local: bool,
    /// Retain As Published (5.0): keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// Retain Handling (5.0): whether retained messages are sent at subscribe time.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    fn decode(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = if version.is_v5() { V5_RESERVED } else { V3_RESERVED };
        if byte & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(byte));
        }
        let qos = QoS::from_u8(byte & 0x03).ok_or(DecodeError::InvalidSubscriptionQoS)?;
        let retain_handling = RetainHandling::from_u8((byte >> RETAIN_HANDLING_SHIFT) & 0x03)
            .ok_or(DecodeError::InvalidRetainHandling)?;
        Ok(Self {
            qos,
            no_local: byte & NO_LOCAL != 0,
            retain_as_published: byte & RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        })
    }

    fn encode(self, version: ProtocolVersion) -> u8 {
        let mut byte = self.qos.as_u8();
        if version.is_v5() {
            if self.no_local {
                byte |= NO_LOCAL;
            }
            if self.retain_as_published {
                byte |= RETAIN_AS_PUBLISHED;
            }
            byte |= (self.retain_handling as u8) << RETAIN_HANDLING_SHIFT;
        }
        byte
    }
}

/// One Topic Filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic Filter, possibly `$share/{ShareName}/{filter}`; see [`crate::parse_shared`].
    pub filter: ByteString,
    /// Subscription Options.
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE: create or replace subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet Identifier, echoed by the SUBACK.
    pub packet_id: PacketId,
    /// Filters and options, at least one, in request order.
    pub subscriptions: Vec<Subscription>,
    /// SUBSCRIBE properties (5.0 only).
    pub properties: SubscribeProperties,
}

impl Subscribe {
    pub(crate) fn decode(mut r: Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            SubscribeProperties::decode(&mut r)?
        } else {
            SubscribeProperties::default()
        };
        let mut subscriptions = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            let options = SubscriptionOptions::decode(r.u8()?, version)?;
            validate_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
            if options.no_local && parse_shared(&filter).is_some() {
                return Err(DecodeError::NoLocalOnSharedSubscription);
            }
            subscriptions.push(Subscription { filter, options });
        }
        if subscriptions.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::Subscribe));
        }
        Ok(Self { packet_id, subscriptions, properties })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let mut len = 2;
        if version.is_v5() {
            len += self.properties.block_len(Trim::Nothing)?;
        }
        for subscription in &self.subscriptions {
            len += field_len(subscription.filter.as_bytes())? + 1;
        }
        Ok(len)
    }

    pub(crate) fn write_body(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write_block(Trim::Nothing, buf)?;
        }
        for subscription in &self.subscriptions {
            put_field(buf, subscription.filter.as_bytes());
            buf.put_u8(subscription.options.encode(version));
        }
        Ok(())
    }
}

/// SUBACK: one reason code per filter of the SUBSCRIBE, in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet Identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// Granted QoS or failure, per filter. 3.1/3.1.1 send every failure as 0x80, which decodes
    /// as [`SubAckReasonCode::UnspecifiedError`].
    pub reason_codes: Vec<SubAckReasonCode>,
    /// Reason String and User Properties (5.0 only).
    pub properties: AckProperties,
}

impl SubAck {
    pub(crate) fn decode(mut r: Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            AckProperties::decode(&mut r, PacketType::SubAck)?
        } else {
            AckProperties::default()
        };
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let code = r.u8()?;
            let valid = version.is_v5() || matches!(code, 0 | 1 | 2 | 0x80);
            let reason = SubAckReasonCode::from_u8(code)
                .filter(|_| valid)
                .ok_or(DecodeError::InvalidReasonCode { packet_type: PacketType::SubAck, code })?;
            reason_codes.push(reason);
        }
        if reason_codes.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::SubAck));
        }
        Ok(Self { packet_id, reason_codes, properties })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
        trim: Trim,
    ) -> Result<usize, EncodeError> {
        let mut len = 2 + self.reason_codes.len();
        if version.is_v5() {
            len += self.properties.block_len(trim)?;
        }
        Ok(len)
    }

    pub(crate) fn write_body(
        &self,
        version: ProtocolVersion,
        trim: Trim,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write_block(trim, buf)?;
            for code in &self.reason_codes {
                buf.put_u8(code.as_u8());
            }
        } else {
            for code in &self.reason_codes {
                buf.put_u8(code.to_v3());
            }
        }
        Ok(())
    }
}

/// UNSUBSCRIBE: remove subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet Identifier, echoed by the UNSUBACK.
    pub packet_id: PacketId,
    /// Topic Filters, at least one.
    pub filters: Vec<ByteString>,
    /// UNSUBSCRIBE properties (5.0 only).
    pub properties: UnsubscribeProperties,
}

impl Unsubscribe {
    pub(crate) fn decode(mut r: Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            UnsubscribeProperties::decode(&mut r)?
        } else {
            UnsubscribeProperties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            validate_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
            filters.push(filter);
        }
        if filters.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::Unsubscribe));
        }
        Ok(Self { packet_id, filters, properties })
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let mut len = 2;
        if version.is_v5() {
            len += self.properties.block_len(Trim::Nothing)?;
        }
        for filter in &self.filters {
            len += field_len(filter.as_bytes())?;
        }
        Ok(len)
    }

    pub(crate) fn write_body(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write_block(Trim::Nothing, buf)?;
        }
        for filter in &self.filters {
            put_field(buf, filter.as_bytes());
        }
        Ok(())
    }
}

/// UNSUBACK. In 5.0 it carries one reason code per filter of the UNSUBSCRIBE; 3.1/3.1.1 carry
/// none (the codes are not encoded there and decode as an empty list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet Identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// Result per filter (5.0 only).
    pub reason_codes: Vec<UnsubAckReasonCode>,
    /// Reason String and User Properties (5.0 only).
    pub properties: AckProperties,
}

impl UnsubAck {
    pub(crate) fn decode(mut r: Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let mut unsuback =
            Self { packet_id, reason_codes: Vec::new(), properties: AckProperties::default() };
        if version.is_v5() {
            unsuback.properties = AckProperties::decode(&mut r, PacketType::UnsubAck)?;
            unsuback.reason_codes.reserve(r.remaining());
            while !r.is_empty() {
                let code = r.u8()?;
                let reason =
                    UnsubAckReasonCode::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
                        packet_type: PacketType::UnsubAck,
                        code,
                    })?;
                unsuback.reason_codes.push(reason);
            }
            if unsuback.reason_codes.is_empty() {
                return Err(DecodeError::EmptyPayload(PacketType::UnsubAck));
            }
        }
        r.finish()?;
        Ok(unsuback)
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
        trim: Trim,
    ) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        Ok(2 + self.properties.block_len(trim)? + self.reason_codes.len())
    }

    pub(crate) fn write_body(
        &self,
        version: ProtocolVersion,
        trim: Trim,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.write_block(trim, buf)?;
            for code in &self.reason_codes {
                buf.put_u8(code.as_u8());
            }
        }
        Ok(())
    }
}
