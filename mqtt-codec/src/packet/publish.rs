//! PUBLISH and its acknowledgments PUBACK, PUBREC, PUBREL, PUBCOMP (MQTT 5.0 §3.3-3.7, 3.1.1
//! §3.3-3.7). The topic and payload of a decoded PUBLISH are slices of the read buffer; the
//! header can be encoded on its own so that a writer sends the shared payload `Bytes` as a second
//! buffer of a vectored write.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::properties::{AckProperties, PropertyBlock, PublishProperties, Trim};
use crate::reason::PubReasonCode;
use crate::topic::validate_topic_name;
use crate::types::{PacketId, PacketType, ProtocolVersion, QoS, Role};
use crate::wire::{Reader, field_len, put_field};

const FLAG_RETAIN: u8 = 0x01;
const FLAG_DUP: u8 = 0x08;
const QOS_SHIFT: u8 = 1;

/// PUBLISH: an Application Message, in either direction.
///
/// Cloning is cheap (reference-count bumps), so a broker clones one decoded PUBLISH per
/// subscriber, adjusts `qos`, `packet_id`, `retain`, `dup` and the per-subscriber properties, and
/// every copy shares the same payload memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP: a re-delivery of an earlier attempt (QoS 1 and 2 only).
    pub dup: bool,
    /// QoS of this delivery.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// Topic Name; empty only in 5.0 with a Topic Alias.
    pub topic: ByteString,
    /// Packet Identifier: `Some` exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// Application Message payload.
    pub payload: Bytes,
    /// PUBLISH properties (5.0 only).
    pub properties: PublishProperties,
}

impl Publish {
    /// A QoS 0, non-retained PUBLISH without properties.
    pub fn new(topic: ByteString, payload: Bytes) -> Self {
        Self {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            payload,
            properties: PublishProperties::default(),
        }
    }

    pub(crate) fn decode(
        mut r: Reader,
        flags: u8,
        version: ProtocolVersion,
        role: Role,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_u8((flags >> QOS_SHIFT) & 0x03).ok_or(DecodeError::InvalidQoS)?;
        let topic = r.string()?;
        let packet_id = if qos == QoS::AtMostOnce { None } else { Some(r.packet_id()?) };
        let properties = if version.is_v5() {
            PublishProperties::decode(&mut r, role)?
        } else {
            PublishProperties::default()
        };
        // An empty name is how 5.0 uses an established Topic Alias.
        if !(topic.is_empty() && properties.topic_alias.is_some()) {
            validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
        }
        Ok(Self {
            dup: flags & FLAG_DUP != 0,
            qos,
            retain: flags & FLAG_RETAIN != 0,
            topic,
            packet_id,
            payload: r.rest(),
            properties,
        })
    }

    /// The first byte of the fixed header.
    pub(crate) fn header_byte(&self) -> u8 {
        let mut byte = (PacketType::Publish.as_u8() << 4) | (self.qos.as_u8() << QOS_SHIFT);
        if self.dup {
            byte |= FLAG_DUP;
        }
        if self.retain {
            byte |= FLAG_RETAIN;
        }
        byte
    }

    /// Size of the variable header (topic, packet identifier, properties): the body without
    /// the payload.
    pub(crate) fn variable_header_len(
        &self,
        version: ProtocolVersion,
    ) -> Result<usize, EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, Some(_)) => return Err(EncodeError::UnexpectedPacketId),
            (QoS::AtLeastOnce | QoS::ExactlyOnce, None) => {
                return Err(EncodeError::MissingPacketId);
            }
            _ => {}
        }
        let mut len = field_len(self.topic.as_bytes())?;
        if self.packet_id.is_some() {
            len += 2;
        }
        if version.is_v5() {
            len += self.properties.block_len(Trim::Nothing)?;
        }
        Ok(len)
    }

    /// Writes the variable header sized by `variable_header_len`.
    pub(crate) fn write_variable_header(
        &self,
        version: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        put_field(buf, self.topic.as_bytes());
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if version.is_v5() {
            self.properties.write_block(Trim::Nothing, buf)?;
        }
        Ok(())
    }
}

/// The acknowledgments of a PUBLISH: PUBACK, PUBREC, PUBREL and PUBCOMP share this layout and
/// differ in their reason codes. Use the aliases [`PubAck`], [`PubRec`], [`PubRel`],
/// [`PubComp`].
///
/// 3.1/3.1.1 carry only the Packet Identifier: the reason code and properties are not encoded,
/// and decode as success with no properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse<C> {
    /// Packet Identifier of the PUBLISH (or PUBREL) acknowledged.
    pub packet_id: PacketId,
    /// Result; 5.0 omits it on the wire when it is success and there are no properties.
    pub reason_code: C,
    /// Reason String and User Properties (5.0 only).
    pub properties: AckProperties,
}

/// PUBACK: QoS 1 acknowledgment.
pub type PubAck = PubResponse<crate::reason::PubAckReasonCode>;
/// PUBREC: QoS 2 delivery part 1.
pub type PubRec = PubResponse<crate::reason::PubRecReasonCode>;
/// PUBREL: QoS 2 delivery part 2.
pub type PubRel = PubResponse<crate::reason::PubRelReasonCode>;
/// PUBCOMP: QoS 2 delivery part 3.
pub type PubComp = PubResponse<crate::reason::PubCompReasonCode>;

impl<C: PubReasonCode> PubResponse<C> {
    /// A successful acknowledgment without properties.
    pub fn new(packet_id: PacketId) -> Self {
        Self { packet_id, reason_code: C::SUCCESS, properties: AckProperties::default() }
    }

    pub(crate) fn decode(
        mut r: Reader,
        packet_type: PacketType,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let mut response = Self::new(packet_id);
        if version.is_v5() {
            // Remaining Length 2: success, no properties; 3: a reason code, no properties.
            if !r.is_empty() {
                let code = r.u8()?;
                response.reason_code =
                    C::from_u8(code).ok_or(DecodeError::InvalidReasonCode { packet_type, code })?;
            }
            if !r.is_empty() {
                response.properties = AckProperties::decode(&mut r, packet_type)?;
            }
        }
        r.finish()?;
        Ok(response)
    }

    pub(crate) fn body_len(
        &self,
        version: ProtocolVersion,
        trim: Trim,
    ) -> Result<usize, EncodeError> {
        if !version.is_v5() {
            return Ok(2);
        }
        let properties = self.properties.content_len(trim)?;
        Ok(match (self.reason_code == C::SUCCESS, properties) {
            (true, 0) => 2,
            (false, 0) => 3,
            (_, _) => 3 + crate::property::block_len(properties),
        })
    }

    pub(crate) fn write_body(
        &self,
        version: ProtocolVersion,
        trim: Trim,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if !version.is_v5() {
            return Ok(());
        }
        let properties = self.properties.content_len(trim)?;
        if self.reason_code != C::SUCCESS || properties > 0 {
            buf.put_u8(self.reason_code.as_u8());
        }
        if properties > 0 {
            self.properties.write_block(trim, buf)?;
        }
        Ok(())
    }
}
