//! DISCONNECT and AUTH (MQTT 5.0 §3.14-3.15, 3.1.1 §3.14): closing a connection and extended
//! authentication. Both may shrink to a zero-length body in 5.0 when the reason is success and
//! there are no properties; 3.1/3.1.1 DISCONNECT is always empty and AUTH does not exist.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::properties::{AuthProperties, DisconnectProperties, PropertyBlock, Trim};
use crate::reason::{AuthReasonCode, DisconnectReasonCode};
use crate::types::{PacketType, ProtocolVersion, Role};
use crate::wire::Reader;

/// DISCONNECT: the sender is closing the connection (server to client in 5.0 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Why (5.0 only; 3.1/3.1.1 decode as Normal disconnection).
    pub reason_code: DisconnectReasonCode,
    /// DISCONNECT properties (5.0 only).
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with `reason_code` and no properties.
    pub fn new(reason_code: DisconnectReasonCode) -> Self {
        Self { reason_code, properties: DisconnectProperties::default() }
    }

    pub(crate) fn decode(
        mut r: Reader,
        version: ProtocolVersion,
        role: Role,
    ) -> Result<Self, DecodeError> {
        let mut disconnect = Self::new(DisconnectReasonCode::NormalDisconnection);
        if version.is_v5() {
            if !r.is_empty() {
                let code = r.u8()?;
                disconnect.reason_code =
                    DisconnectReasonCode::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
                        packet_type: PacketType::Disconnect,
                        code,
                    })?;
            }
            if !r.is_empty() {
                disconnect.properties = DisconnectProperties::decode(&mut r, role)?;
            }
        }
        r.finish()?;
        Ok(disconnect)
    }

    /// 5.0 encoding: nothing for a normal disconnection without properties; otherwise the
    /// reason code and a property block, even an empty one. (The spec also allows the reason
    /// code alone, which we decode, but some clients, rumqttc 0.25 among them, cannot parse it.)
    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
        trim: Trim,
    ) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(0);
        }
        let properties = self.properties.content_len(trim)?;
        if self.reason_code == DisconnectReasonCode::NormalDisconnection && properties == 0 {
            return Ok(0);
        }
        Ok(1 + crate::property::block_len(properties))
    }

    pub(crate) fn write_body(
        &self,
        version: ProtocolVersion,
        trim: Trim,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if !version.is_v5() {
            return Ok(());
        }
        let properties = self.properties.content_len(trim)?;
        if self.reason_code == DisconnectReasonCode::NormalDisconnection && properties == 0 {
            return Ok(());
        }
        buf.put_u8(self.reason_code.as_u8());
        self.properties.write_block(trim, buf)
    }
}

/// AUTH (5.0 only): a step of an extended authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason_code: AuthReasonCode,
    /// AUTH properties; the Authentication Method is required unless the packet is a bare
    /// Success (no properties at all).
    pub properties: AuthProperties,
}

impl Auth {
    pub(crate) fn decode(mut r: Reader) -> Result<Self, DecodeError> {
        let mut auth =
            Self { reason_code: AuthReasonCode::Success, properties: AuthProperties::default() };
        // Remaining Length 0: success without properties; 1: a reason code without properties.
        if !r.is_empty() {
            let code = r.u8()?;
            auth.reason_code = AuthReasonCode::from_u8(code)
                .ok_or(DecodeError::InvalidReasonCode { packet_type: PacketType::Auth, code })?;
        }
        if !r.is_empty() {
            auth.properties = AuthProperties::decode(&mut r)?;
        }
        r.finish()?;
        // Only the bare Success form, however encoded, may leave the method out.
        let bare_success = auth.reason_code == AuthReasonCode::Success
            && auth.properties == AuthProperties::default();
        if auth.properties.authentication_method.is_none() && !bare_success {
            return Err(DecodeError::MissingAuthenticationMethod);
        }
        Ok(auth)
    }

    pub(crate) fn body_len(&self, trim: Trim) -> Result<usize, EncodeError> {
        let properties = self.properties.content_len(trim)?;
        if self.reason_code == AuthReasonCode::Success && properties == 0 {
            return Ok(0);
        }
        Ok(1 + crate::property::block_len(properties))
    }

    pub(crate) fn write_body(&self, trim: Trim, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let properties = self.properties.content_len(trim)?;
        if self.reason_code == AuthReasonCode::Success && properties == 0 {
            return Ok(());
        }
        buf.put_u8(self.reason_code.as_u8());
        self.properties.write_block(trim, buf)
    }
}
