//! MQTT 5.0 property identifiers (§2.2.2.2) and the framing every property block shares: a
//! Variable Byte Integer length, then identifier/value pairs. The typed per-packet property
//! structs in [`crate::properties`] are built on the reader and writers here.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::types::{MAX_VARIABLE_INTEGER, PacketType, UserProperty};
use crate::varint;
use crate::wire::{self, Reader};

/// A property identifier, with the value type noted for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PropertyId {
    /// 0x01, byte: 0 unspecified bytes, 1 UTF-8 payload.
    PayloadFormatIndicator = 0x01,
    /// 0x02, four-byte integer, seconds.
    MessageExpiryInterval = 0x02,
    /// 0x03, UTF-8 string.
    ContentType = 0x03,
    /// 0x08, UTF-8 string (a Topic Name).
    ResponseTopic = 0x08,
    /// 0x09, binary data.
    CorrelationData = 0x09,
    /// 0x0B, variable byte integer 1..=268,435,455.
    SubscriptionIdentifier = 0x0B,
    /// 0x11, four-byte integer, seconds.
    SessionExpiryInterval = 0x11,
    /// 0x12, UTF-8 string.
    AssignedClientIdentifier = 0x12,
    /// 0x13, two-byte integer, seconds.
    ServerKeepAlive = 0x13,
    /// 0x15, UTF-8 string.
    AuthenticationMethod = 0x15,
    /// 0x16, binary data.
    AuthenticationData = 0x16,
    /// 0x17, byte 0 or 1.
    RequestProblemInformation = 0x17,
    /// 0x18, four-byte integer, seconds.
    WillDelayInterval = 0x18,
    /// 0x19, byte 0 or 1.
    RequestResponseInformation = 0x19,
    /// 0x1A, UTF-8 string.
    ResponseInformation = 0x1A,
    /// 0x1C, UTF-8 string.
    ServerReference = 0x1C,
    /// 0x1F, UTF-8 string.
    ReasonString = 0x1F,
    /// 0x21, two-byte integer, non-zero.
    ReceiveMaximum = 0x21,
    /// 0x22, two-byte integer.
    TopicAliasMaximum = 0x22,
    /// 0x23, two-byte integer, non-zero.
    TopicAlias = 0x23,
    /// 0x24, byte 0 or 1.
    MaximumQoS = 0x24,
    /// 0x25, byte 0 or 1.
    RetainAvailable = 0x25,
    /// 0x26, UTF-8 string pair; may repeat.
    UserProperty = 0x26,
    /// 0x27, four-byte integer, non-zero.
    MaximumPacketSize = 0x27,
    /// 0x28, byte 0 or 1.
    WildcardSubscriptionAvailable = 0x28,
    /// 0x29, byte 0 or 1.
    SubscriptionIdentifierAvailable = 0x29,
    /// 0x2A, byte 0 or 1.
    SharedSubscriptionAvailable = 0x2A,
}

impl PropertyId {
    /// The identifier for a decoded Variable Byte Integer, if MQTT 5.0 defines it.
    pub const fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0x01 => Self::PayloadFormatIndicator,
            0x02 => Self::MessageExpiryInterval,
            0x03 => Self::ContentType,
            0x08 => Self::ResponseTopic,
            0x09 => Self::CorrelationData,
            0x0B => Self::SubscriptionIdentifier,
            0x11 => Self::SessionExpiryInterval,
            0x12 => Self::AssignedClientIdentifier,
            0x13 => Self::ServerKeepAlive,
            0x15 => Self::AuthenticationMethod,
            0x16 => Self::AuthenticationData,
            0x17 => Self::RequestProblemInformation,
            0x18 => Self::WillDelayInterval,
            0x19 => Self::RequestResponseInformation,
            0x1A => Self::ResponseInformation,
            0x1C => Self::ServerReference,
            0x1F => Self::ReasonString,
            0x21 => Self::ReceiveMaximum,
            0x22 => Self::TopicAliasMaximum,
            0x23 => Self::TopicAlias,
            0x24 => Self::MaximumQoS,
            0x25 => Self::RetainAvailable,
            0x26 => Self::UserProperty,
            0x27 => Self::MaximumPacketSize,
            0x28 => Self::WildcardSubscriptionAvailable,
            0x29 => Self::SubscriptionIdentifierAvailable,
            0x2A => Self::SharedSubscriptionAvailable,
            _ => return None,
        })
    }

    /// The identifier's wire value (all identifiers fit in one byte).
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Reads one property block: its length, then identifiers and values until the block ends.
#[derive(Debug)]
pub(crate) struct PropertyReader {
    block: Reader,
    packet_type: PacketType,
}

impl PropertyReader {
    /// Takes the property block (length and contents) from the packet body.
    pub(crate) fn new(body: &mut Reader, packet_type: PacketType) -> Result<Self, DecodeError> {
        let len = body.var_int()?;
        let block = body.sub_reader(len as usize)?;
        Ok(Self { block, packet_type })
    }

    /// The next identifier, or `None` at the end of the block.
    pub(crate) fn next_id(&mut self) -> Result<Option<PropertyId>, DecodeError> {
        if self.block.is_empty() {
            return Ok(None);
        }
        let raw = self.block.var_int()?;
        PropertyId::from_u32(raw).map(Some).ok_or(DecodeError::UnknownProperty(raw))
    }

    /// The error for a property this packet type may not carry.
    pub(crate) fn not_allowed(&self, property: PropertyId) -> DecodeError {
        DecodeError::PropertyNotAllowed { packet_type: self.packet_type, property }
    }

    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        self.block.u8()
    }

    /// A byte property that must be 0 or 1.
    pub(crate) fn bool(&mut self, property: PropertyId) -> Result<bool, DecodeError> {
        match self.block.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidPropertyValue { property, value: value.into() }),
        }
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.block.u16()
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.block.u32()
    }

    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        self.block.var_int()
    }

    pub(crate) fn string(&mut self) -> Result<ByteString, DecodeError> {
        self.block.string()
    }

    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        self.block.binary()
    }

    pub(crate) fn pair(&mut self) -> Result<UserProperty, DecodeError> {
        Ok((self.block.string()?, self.block.string()?))
    }
}

/// Stores a single-occurrence property, rejecting a second occurrence.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    property: PropertyId,
    value: T,
) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(property));
    }
    *slot = Some(value);
    Ok(())
}

/// Accumulates the encoded size of a property block's contents, validating lengths.
#[derive(Debug, Default)]
pub(crate) struct PropLen(usize);

impl PropLen {
    /// A fixed-width value (1, 2 or 4 bytes) when present.
    pub(crate) fn fixed(&mut self, present: bool, width: usize) {
        if present {
            self.0 += 1 + width;
        }
    }

    pub(crate) fn var_int(&mut self, value: u32) -> Result<(), EncodeError> {
        if value > MAX_VARIABLE_INTEGER {
            return Err(EncodeError::SubscriptionIdTooLarge(value));
        }
        self.0 += 1 + varint::len(value as usize);
        Ok(())
    }

    pub(crate) fn field(&mut self, value: Option<&[u8]>) -> Result<(), EncodeError> {
        if let Some(data) = value {
            self.0 += 1 + wire::field_len(data)?;
        }
        Ok(())
    }

    pub(crate) fn user(&mut self, pairs: &[UserProperty]) -> Result<(), EncodeError> {
        for (name, value) in pairs {
            self.0 += 1 + wire::field_len(name.as_bytes())? + wire::field_len(value.as_bytes())?;
        }
        Ok(())
    }

    pub(crate) fn get(&self) -> usize {
        self.0
    }
}

/// Size of a whole property block (length prefix included) for contents of `content` bytes.
pub(crate) fn block_len(content: usize) -> usize {
    varint::len(content) + content
}

pub(crate) fn put_u8(buf: &mut BytesMut, id: PropertyId, value: Option<u8>) {
    if let Some(v) = value {
        buf.put_u8(id.as_u8());
        buf.put_u8(v);
    }
}

pub(crate) fn put_bool(buf: &mut BytesMut, id: PropertyId, value: Option<bool>) {
    put_u8(buf, id, value.map(u8::from));
}

pub(crate) fn put_u16(buf: &mut BytesMut, id: PropertyId, value: Option<u16>) {
    if let Some(v) = value {
        buf.put_u8(id.as_u8());
        buf.put_u16(v);
    }
}

pub(crate) fn put_u32(buf: &mut BytesMut, id: PropertyId, value: Option<u32>) {
    if let Some(v) = value {
        buf.put_u8(id.as_u8());
        buf.put_u32(v);
    }
}

pub(crate) fn put_var_int(buf: &mut BytesMut, id: PropertyId, value: u32) {
    buf.put_u8(id.as_u8());
    varint::write(value, buf);
}

pub(crate) fn put_field(buf: &mut BytesMut, id: PropertyId, value: Option<&[u8]>) {
    if let Some(data) = value {
        buf.put_u8(id.as_u8());
        wire::put_field(buf, data);
    }
}

pub(crate) fn put_user(buf: &mut BytesMut, pairs: &[UserProperty]) {
    for (name, value) in pairs {
        buf.put_u8(PropertyId::UserProperty.as_u8());
        wire::put_field(buf, name.as_bytes());
        wire::put_field(buf, value.as_bytes());
    }
}

/// `Option<ByteString>` / `Option<Bytes>` as an optional byte slice.
pub(crate) fn opt_bytes<T: AsRef<[u8]>>(value: &Option<T>) -> Option<&[u8]> {
    value.as_ref().map(AsRef::as_ref)
}
