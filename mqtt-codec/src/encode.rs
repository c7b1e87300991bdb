//! Encoding into a write buffer. The exact size is computed first (which also validates field
//! lengths), the buffer is reserved once, then the packet is written. A 3.1/3.1.1 encoding leaves
//! properties out and maps reason codes to the old return codes.

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::packet::{Packet, Publish};
use crate::properties::Trim;
use crate::types::{MAX_PACKET_SIZE, PacketType, ProtocolVersion};
use crate::varint;
use crate::wire;

/// Size of the body (everything after the fixed header).
fn body_len(packet: &Packet, version: ProtocolVersion, trim: Trim) -> Result<usize, EncodeError> {
    match packet {
        Packet::Connect(connect) => connect.body_len(version),
        Packet::ConnAck(connack) => connack.body_len(version, trim),
        Packet::Publish(publish) => {
            Ok(publish.variable_header_len(version)? + publish.payload.len())
        }
        Packet::PubAck(ack) => ack.body_len(version, trim),
        Packet::PubRec(ack) => ack.body_len(version, trim),
        Packet::PubRel(ack) => ack.body_len(version, trim),
        Packet::PubComp(ack) => ack.body_len(version, trim),
        Packet::Subscribe(subscribe) => subscribe.body_len(version),
        Packet::SubAck(suback) => suback.body_len(version, trim),
        Packet::Unsubscribe(unsubscribe) => unsubscribe.body_len(version),
        Packet::UnsubAck(unsuback) => unsuback.body_len(version, trim),
        Packet::PingReq | Packet::PingResp => Ok(0),
        Packet::Disconnect(disconnect) => disconnect.body_len(version, trim),
        Packet::Auth(auth) => {
            if !version.is_v5() {
                return Err(EncodeError::UnsupportedPacket {
                    packet_type: PacketType::Auth,
                    version,
                });
            }
            auth.body_len(trim)
        }
    }
}

fn write_body(
    packet: &Packet,
    version: ProtocolVersion,
    trim: Trim,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(connect) => connect.write_body(version, buf),
        Packet::ConnAck(connack) => connack.write_body(version, trim, buf),
        Packet::Publish(publish) => {
            publish.write_variable_header(version, buf)?;
            buf.put_slice(&publish.payload);
            Ok(())
        }
        Packet::PubAck(ack) => ack.write_body(version, trim, buf),
        Packet::PubRec(ack) => ack.write_body(version, trim, buf),
        Packet::PubRel(ack) => ack.write_body(version, trim, buf),
        Packet::PubComp(ack) => ack.write_body(version, trim, buf),
        Packet::Subscribe(subscribe) => subscribe.write_body(version, buf),
        Packet::SubAck(suback) => suback.write_body(version, trim, buf),
        Packet::Unsubscribe(unsubscribe) => unsubscribe.write_body(version, buf),
        Packet::UnsubAck(unsuback) => unsuback.write_body(version, trim, buf),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(disconnect) => disconnect.write_body(version, trim, buf),
        Packet::Auth(auth) => auth.write_body(trim, buf),
    }
}

/// Size of a whole packet whose body is `body` bytes.
fn total_len(body: usize) -> usize {
    1 + varint::len(body) + body
}

/// Whether the packet may lose its Reason String and User Properties to fit a size limit.
fn trimmable(packet: &Packet) -> bool {
    matches!(
        packet,
        Packet::ConnAck(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::Disconnect(_)
            | Packet::Auth(_)
    )
}

/// Writes the fixed header and body; on error (which sizing has already ruled out) `buf` is
/// restored to its previous length.
fn write_packet(
    packet: &Packet,
    version: ProtocolVersion,
    trim: Trim,
    body: usize,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.reserve(total_len(body));
    buf.put_u8(packet.header_byte());
    wire::put_var_int(buf, body);
    if let Err(error) = write_body(packet, version, trim, buf) {
        buf.truncate(start);
        return Err(error);
    }
    debug_assert_eq!(buf.len() - start, total_len(body), "{packet:?}");
    Ok(())
}

/// Size of `packet` once encoded for `version`, fixed header included.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let size = total_len(body_len(packet, version, Trim::Nothing)?);
    if size > MAX_PACKET_SIZE as usize {
        return Err(EncodeError::PacketTooLarge { size, max: MAX_PACKET_SIZE });
    }
    Ok(size)
}

/// Appends `packet`, encoded for `version`, to `buf`.
///
/// For 3.1/3.1.1, properties are left out and reason codes are mapped (CONNACK return codes,
/// SUBACK 0x80); AUTH cannot be encoded. Semantic rules (valid topics, non-empty SUBSCRIBE...) are
/// the caller's business: packets that came out of [`decode`](crate::decode) always satisfy them.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let body = body_len(packet, version, Trim::Nothing)?;
    if total_len(body) > MAX_PACKET_SIZE as usize {
        return Err(EncodeError::PacketTooLarge { size: total_len(body), max: MAX_PACKET_SIZE });
    }
    write_packet(packet, version, Trim::Nothing, body, buf)
}

/// Like [`encode`], for a receiver whose Maximum Packet Size is `max_packet_size`.
///
/// When the packet does not fit and the specification allows it (5.0 CONNACK, PUBACK, PUBREC,
/// PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH), the Reason String is left out, then the
/// User Properties too. If it still does not fit, or it is another packet type, the result is
/// [`EncodeError::PacketTooLarge`] and nothing is written: for a PUBLISH the server must then
/// drop the message for this client and act as if it had been delivered ([MQTT-3.1.2-25]).
pub fn encode_limited(
    packet: &Packet,
    version: ProtocolVersion,
    max_packet_size: u32,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let max = max_packet_size.min(MAX_PACKET_SIZE);
    let trims: &[Trim] = if version.is_v5() && trimmable(packet) {
        &[Trim::Nothing, Trim::ReasonString, Trim::ReasonStringAndUserProperties]
    } else {
        &[Trim::Nothing]
    };
    let mut size = 0;
    for &trim in trims {
        let body = body_len(packet, version, trim)?;
        size = total_len(body);
        if size <= max as usize {
            return write_packet(packet, version, trim, body, buf);
        }
    }
    Err(EncodeError::PacketTooLarge { size, max })
}

/// Appends a PUBLISH encoded for `version` to `buf`, without wrapping it in a [`Packet`].
pub fn encode_publish(
    publish: &Publish,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let header = publish_header_len(publish, version)?;
    buf.reserve(header + publish.payload.len());
    encode_publish_header(publish, version, buf)?;
    buf.put_slice(&publish.payload);
    Ok(())
}

/// Appends everything of a PUBLISH except its payload: the fixed header (whose Remaining Length
/// counts the payload) and the variable header (topic, packet identifier, properties).
///
/// Writing these bytes and then `publish.payload` produces the same bytes as [`encode`]. A
/// writer fanning one message out to many subscribers encodes only this small header per
/// subscriber and hands the shared payload `Bytes` to a vectored write (e.g. as the second
/// buffer of a `Buf::chain`), so the payload is never copied.
pub fn encode_publish_header(
    publish: &Publish,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let variable_header = publish.variable_header_len(version)?;
    let body = variable_header + publish.payload.len();
    let size = total_len(body);
    if size > MAX_PACKET_SIZE as usize {
        return Err(EncodeError::PacketTooLarge { size, max: MAX_PACKET_SIZE });
    }
    let start = buf.len();
    buf.reserve(size - publish.payload.len());
    buf.put_u8(publish.header_byte());
    wire::put_var_int(buf, body);
    if let Err(error) = publish.write_variable_header(version, buf) {
        buf.truncate(start);
        return Err(error);
    }
    Ok(())
}

/// Size of what [`encode_publish_header`] writes.
fn publish_header_len(publish: &Publish, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let body = publish.variable_header_len(version)? + publish.payload.len();
    Ok(total_len(body) - publish.payload.len())
}

impl Publish {
    /// Size of this PUBLISH once encoded for `version`, fixed header and payload included: what
    /// to compare with a subscriber's Maximum Packet Size before sending.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        Ok(total_len(self.variable_header_len(version)? + self.payload.len()))
    }
}
