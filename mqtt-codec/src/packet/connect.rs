//! CONNECT and CONNACK (MQTT 5.0 §3.1-3.2, 3.1.1 §3.1-3.2): the handshake. Decoding CONNECT is
//! where the protocol version is learnt, so it records the version in the decode context as soon
//! as the protocol name and level have been read.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::decode::DecodeContext;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{
    ConnAckProperties, ConnectProperties, PropertyBlock, Trim, WillProperties,
};
use crate::property::opt_bytes;
use crate::reason::ConnectReasonCode;
use crate::topic::validate_topic_name;
use crate::types::{PacketType, ProtocolVersion, QoS};
use crate::wire::{Reader, field_len, opt_field_len, put_field};

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN_START: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;
const WILL_QOS_SHIFT: u8 = 3;

/// CONNECT: the first packet a client sends.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// Version announced by the protocol name and level. The encoder requires it to match the
    /// version it is asked to encode for.
    pub protocol_version: ProtocolVersion,
    /// Clean Start (5.0) / Clean Session (3.1, 3.1.1).
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client Identifier; may be empty in 3.1.1 (with Clean Session) and 5.0.
    pub client_id: ByteString,
    /// The Will Message, if the Will Flag is set.
    pub will: Option<LastWill>,
    /// User Name.
    pub username: Option<ByteString>,
    /// Password (binary data); never shown by `Debug`.
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0 only).
    pub properties: ConnectProperties,
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("protocol_version", &self.protocol_version)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("properties", &self.properties)
            .finish()
    }
}

/// The Will Message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Will Topic (a valid Topic Name).
    pub topic: ByteString,
    /// Will Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// Will properties (5.0 only).
    pub properties: WillProperties,
}

impl Connect {
    /// A CONNECT with only the required fields: clean start, no will, no credentials.
    pub fn new(protocol_version: ProtocolVersion, client_id: ByteString, keep_alive: u16) -> Self {
        Self {
            protocol_version,
            clean_start: true,
            keep_alive,
            client_id,
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }

    pub(crate) fn decode(mut r: Reader, ctx: &mut DecodeContext) -> Result<Self, DecodeError> {
        let name = r.binary()?;
        let level = r.u8()?;
        let version = match ProtocolVersion::from_name_and_level(&name, level) {
            Some(version) => version,
            None if matches!(&name[..], b"MQTT" | b"MQIsdp") => {
                return Err(DecodeError::UnsupportedProtocolVersion { level });
            }
            None => return Err(DecodeError::UnknownProtocolName(name)),
        };
        // Recorded now, so that a later error can be answered in the client's CONNACK format.
        ctx.version = Some(version);

        let flags = r.u8()?;
        if flags & FLAG_RESERVED != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let will_flag = flags & FLAG_WILL != 0;
        let will_qos =
            QoS::from_u8((flags >> WILL_QOS_SHIFT) & 0x03).ok_or(DecodeError::InvalidQoS)?;
        let will_retain = flags & FLAG_WILL_RETAIN != 0;
        if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::InvalidWillFlags);
        }
        let username_flag = flags & FLAG_USERNAME != 0;
        let password_flag = flags & FLAG_PASSWORD != 0;
        if password_flag && !username_flag && !version.is_v5() {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let clean_start = flags & FLAG_CLEAN_START != 0;
        let keep_alive = r.u16()?;
        let properties = if version.is_v5() {
            ConnectProperties::decode(&mut r)?
        } else {
            ConnectProperties::default()
        };

        let client_id = r.string()?;
        let will = if will_flag {
            let properties = if version.is_v5() {
                WillProperties::decode(&mut r)?
            } else {
                WillProperties::default()
            };
            let topic = r.string()?;
            validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
            let payload = r.binary()?;
            Some(LastWill { topic, payload, qos: will_qos, retain: will_retain, properties })
        } else {
            None
        };
        let username = if username_flag { Some(r.string()?) } else { None };
        let password = if password_flag { Some(r.binary()?) } else { None };
        r.finish()?;

        // 3.1 requires 1 to 23 characters (only the lower bound is enforced: brokers commonly
        // accept longer ones); 3.1.1 allows an empty one only with Clean Session.
        let id_rejected = client_id.is_empty()
            && match version {
                ProtocolVersion::V31 => true,
                ProtocolVersion::V311 => !clean_start,
                ProtocolVersion::V5 => false,
            };
        if id_rejected {
            return Err(DecodeError::ClientIdRejected);
        }
        Ok(Self {
            protocol_version: version,
            clean_start,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    fn check_version(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        if self.protocol_version != version {
            return Err(EncodeError::VersionMismatch {
                connect: self.protocol_version,
                requested: version,
            });
        }
        Ok(())
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        self.check_version(version)?;
        // Protocol name, level, flags, keep alive.
        let mut len = 2 + version.protocol_name().len() + 1 + 1 + 2;
        if version.is_v5() {
            len += self.properties.block_len(Trim::Nothing)?;
        }
        len += field_len(self.client_id.as_bytes())?;
        if let Some(will) = &self.will {
            if version.is_v5() {
                len += will.properties.block_len(Trim::Nothing)?;
            }
            len += field_len(will.topic.as_bytes())? + field_len(&will.payload)?;
        }
        len += opt_field_len(opt_bytes(&self.username))?;
        len += opt_field_len(self.password.as_deref())?;
        Ok(len)
    }

    pub(crate) fn write_body(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.check_version(version)?;
        put_field(buf, version.protocol_name().as_bytes());
        buf.put_u8(version.level());
        let mut flags = 0;
        if self.clean_start {
            flags |= FLAG_CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | (will.qos.as_u8() << WILL_QOS_SHIFT);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        buf.put_u8(flags);
        buf.put_u16(self.keep_alive);
        if version.is_v5() {
            self.properties.write_block(Trim::Nothing, buf)?;
        }
        put_field(buf, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if version.is_v5() {
                will.properties.write_block(Trim::Nothing, buf)?;
            }
            put_field(buf, will.topic.as_bytes());
            put_field(buf, &will.payload);
        }
        if let Some(username) = &self.username {
            put_field(buf, username.as_bytes());
        }
        if let Some(password) = &self.password {
            put_field(buf, password);
        }
        Ok(())
    }
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present; must be false with a failure code. (3.1 has no such flag: sent as 0
    /// unless set.)
    pub session_present: bool,
    /// Result of the connection attempt; 3.1/3.1.1 carry it as a return code 0-5
    /// ([`ConnectReasonCode::to_v3`]).
    pub reason_code: ConnectReasonCode,
    /// CONNACK properties (5.0 only).
    pub properties: ConnAckProperties,
}

impl ConnAck {
    /// A CONNACK with `reason_code`, no session and no properties.
    pub fn new(reason_code: ConnectReasonCode) -> Self {
        Self { session_present: false, reason_code, properties: ConnAckProperties::default() }
    }

    pub(crate) fn decode(mut r: Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & !0x01 != 0 {
            return Err(DecodeError::InvalidConnAckFlags(flags));
        }
        let session_present = flags & 0x01 != 0;
        let code = r.u8()?;
        let reason_code = if version.is_v5() {
            ConnectReasonCode::from_u8(code)
        } else {
            ConnectReasonCode::from_v3(code)
        }
        .ok_or(DecodeError::InvalidReasonCode { packet_type: PacketType::ConnAck, code })?;
        if session_present && reason_code.is_error() {
            return Err(DecodeError::SessionPresentOnError);
        }
        let properties = if version.is_v5() {
            ConnAckProperties::decode(&mut r)?
        } else {
            ConnAckProperties::default()
        };
        r.finish()?;
        Ok(Self { session_present, reason_code, properties })
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
        trim: Trim,
    ) -> Result<usize, EncodeError> {
        let mut len = 2;
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
        buf.put_u8(u8::from(self.session_present));
        if version.is_v5() {
            buf.put_u8(self.reason_code.as_u8());
            self.properties.write_block(trim, buf)?;
        } else {
            buf.put_u8(self.reason_code.to_v3());
        }
        Ok(())
    }
}
