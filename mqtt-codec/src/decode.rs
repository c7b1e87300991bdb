//! Decoding from a read buffer. The fixed header is checked (type, flags, packet order,
//! direction, size) as soon as its bytes have arrived, so an oversized or forbidden packet is
//! refused before its body is buffered. A complete packet is split off the buffer and its fields
//! become `Bytes` slices of it: nothing is copied.

use bytes::{Buf, BytesMut};

use crate::error::DecodeError;
use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PubAck, PubComp, PubRec, PubRel, Publish, SubAck,
    Subscribe, UnsubAck, Unsubscribe,
};
use crate::types::{PacketType, ProtocolVersion, QoS, Role};
use crate::varint;
use crate::wire::Reader;

/// What the decoder needs to know about the connection. Kept by the connection and passed to
/// every [`decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// Which side is decoding; a server only accepts client packets and vice versa.
    pub role: Role,
    /// Protocol version of the connection. `None` until the CONNECT: only a CONNECT is accepted
    /// then, and [`decode`] sets the version from it (as soon as its protocol name and level are
    /// read, so that errors later in the CONNECT can be answered in the right format). Clients
    /// must set it themselves.
    pub version: Option<ProtocolVersion>,
    /// Largest accepted packet, fixed header included (a server's Maximum Packet Size).
    /// Announcing a larger packet is an error found from the fixed header alone.
    pub max_packet_size: u32,
}

impl DecodeContext {
    /// A server waiting for a CONNECT.
    pub const fn server(max_packet_size: u32) -> Self {
        Self { role: Role::Server, version: None, max_packet_size }
    }

    /// A client of a server speaking `version`.
    pub const fn client(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Self { role: Role::Client, version: Some(version), max_packet_size }
    }
}

/// A checked fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// Packet type.
    pub packet_type: PacketType,
    /// The four flag bits (meaningful for PUBLISH only).
    pub flags: u8,
    /// Length of the body following the fixed header.
    pub remaining_length: u32,
    /// Length of the fixed header itself (2 to 5 bytes).
    pub header_len: usize,
}

impl FixedHeader {
    /// Size of the whole packet, fixed header included: how many bytes [`decode`] needs.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_length as usize
    }
}

/// Checks the fixed header at the start of `buf` without consuming anything.
///
/// Returns `Ok(None)` if the header is not complete yet. Errors are the ones [`decode`] would
/// return for this header: invalid type or flags, a packet out of order (not CONNECT first, a
/// second CONNECT) or in the wrong direction, a malformed Remaining Length, or a packet larger
/// than `ctx.max_packet_size`. A reader can use [`FixedHeader::packet_len`] to reserve space for
/// the whole packet.
pub fn peek_fixed_header(
    buf: &[u8],
    ctx: &DecodeContext,
) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = check_first_byte(first, ctx)?;
    let Some((remaining_length, len)) = varint::read(buf.get(1..).unwrap_or_default())? else {
        return Ok(None);
    };
    let header =
        FixedHeader { packet_type, flags: first & 0x0F, remaining_length, header_len: 1 + len };
    if header.packet_len() > ctx.max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size: header.packet_len(),
            max: ctx.max_packet_size,
        });
    }
    Ok(Some(header))
}

fn check_first_byte(byte: u8, ctx: &DecodeContext) -> Result<PacketType, DecodeError> {
    let raw_type = byte >> 4;
    let flags = byte & 0x0F;
    let packet_type =
        PacketType::from_u8(raw_type).ok_or(DecodeError::InvalidPacketType(raw_type))?;
    let version = match ctx.version {
        None if packet_type == PacketType::Connect => ProtocolVersion::V5,
        None => return Err(DecodeError::ExpectedConnect(packet_type)),
        Some(version) => version,
    };
    if packet_type == PacketType::Auth && !version.is_v5() {
        // Type 15 is reserved before 5.0.
        return Err(DecodeError::InvalidPacketType(raw_type));
    }
    if packet_type == PacketType::Connect && ctx.role == Role::Server && ctx.version.is_some() {
        return Err(DecodeError::DuplicateConnect);
    }
    if !packet_type.receivable_by(ctx.role, version) {
        return Err(DecodeError::UnexpectedPacket { packet_type, role: ctx.role });
    }
    let flags_ok = match packet_type {
        PacketType::Publish => {
            let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::InvalidQoS)?;
            if qos == QoS::AtMostOnce && flags & 0x08 != 0 {
                return Err(DecodeError::DupOnQoS0);
            }
            true
        }
        // 3.1 allowed the DUP flag on these re-sendable packets.
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => {
            flags == 0b0010 || (version == ProtocolVersion::V31 && flags == 0b1010)
        }
        _ => flags == 0,
    };
    if !flags_ok {
        return Err(DecodeError::InvalidHeaderFlags { packet_type, flags });
    }
    Ok(packet_type)
}

/// Decodes one packet from the front of `buf`.
///
/// - `Ok(None)`: more bytes are needed; `buf` is untouched.
/// - `Ok(Some(packet))`: exactly one packet was consumed from `buf`. Its strings and binary
///   fields share `buf`'s memory.
/// - `Err(_)`: the connection must be closed (see [`DecodeError::connack_response`] and
///   [`DecodeError::disconnect_reason_code`] for what to send first). If the fixed header was
///   accepted, the packet has been consumed.
///
/// A server context starts with `version: None`: the first packet must be a CONNECT, and
/// decoding it sets `ctx.version`. A later CONNECT is rejected as [`DecodeError::DuplicateConnect`].
pub fn decode(buf: &mut BytesMut, ctx: &mut DecodeContext) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = peek_fixed_header(buf, ctx)? else {
        return Ok(None);
    };
    if buf.len() < header.packet_len() {
        return Ok(None);
    }
    buf.advance(header.header_len);
    let body = Reader::new(buf.split_to(header.remaining_length as usize).freeze());
    let Some(version) = ctx.version else {
        // Only a CONNECT gets past the header check without a version.
        return Connect::decode(body, ctx).map(|connect| Some(Packet::Connect(Box::new(connect))));
    };
    let packet = match header.packet_type {
        PacketType::Connect => Packet::Connect(Box::new(Connect::decode(body, ctx)?)),
        PacketType::ConnAck => Packet::ConnAck(Box::new(ConnAck::decode(body, version)?)),
        PacketType::Publish => {
            Packet::Publish(Publish::decode(body, header.flags, version, ctx.role)?)
        }
        PacketType::PubAck => Packet::PubAck(PubAck::decode(body, PacketType::PubAck, version)?),
        PacketType::PubRec => Packet::PubRec(PubRec::decode(body, PacketType::PubRec, version)?),
        PacketType::PubRel => Packet::PubRel(PubRel::decode(body, PacketType::PubRel, version)?),
        PacketType::PubComp => {
            Packet::PubComp(PubComp::decode(body, PacketType::PubComp, version)?)
        }
        PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(body, version)?),
        PacketType::SubAck => Packet::SubAck(SubAck::decode(body, version)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(body, version)?),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(body, version)?),
        PacketType::PingReq => {
            body.finish()?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            body.finish()?;
            Packet::PingResp
        }
        PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(body, version, ctx.role)?),
        PacketType::Auth => Packet::Auth(Auth::decode(body)?),
    };
    Ok(Some(packet))
}
