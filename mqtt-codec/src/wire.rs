//! Primitive field encodings (MQTT 5.0 §1.5, 3.1.1 §1.5): big-endian integers and
//! length-prefixed UTF-8 strings and binary data. [`Reader`] reads them from a packet body
//! without copying (strings and binary data are `Bytes` slices of it); the `put_*` and `*_len`
//! functions write them and size them.

use std::num::NonZeroU16;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};
use crate::types::PacketId;
use crate::varint;

/// A cursor over one packet body (or one property block). Every read checks the length first, so
/// a short body gives [`DecodeError::Truncated`], never a panic.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n { Err(DecodeError::Truncated) } else { Ok(()) }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        let (value, len) = varint::read(&self.buf)?.ok_or(DecodeError::Truncated)?;
        self.buf.advance(len);
        Ok(value)
    }

    /// The next `n` bytes, as a slice of the packet.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// A nested reader over the next `n` bytes (a property block).
    pub(crate) fn sub_reader(&mut self, n: usize) -> Result<Reader, DecodeError> {
        self.bytes(n).map(Reader::new)
    }

    /// Binary Data: a two-byte length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.bytes(usize::from(len))
    }

    /// UTF-8 Encoded String: Binary Data that must be well-formed UTF-8 without U+0000.
    pub(crate) fn string(&mut self) -> Result<ByteString, DecodeError> {
        let raw = self.binary()?;
        to_string(raw)
    }

    /// A non-zero Packet Identifier.
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        NonZeroU16::new(self.u16()?).ok_or(DecodeError::ZeroPacketId)
    }

    /// Everything left (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Ends the packet: anything left over means the Remaining Length did not match.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() { Ok(()) } else { Err(DecodeError::TrailingBytes(self.buf.len())) }
    }
}

/// Validates a UTF-8 Encoded String field ([MQTT-1.5.4-1], [MQTT-1.5.4-2]). Rust's UTF-8
/// validation already rejects encoded surrogates (U+D800..U+DFFF) and overlong forms.
pub(crate) fn to_string(raw: Bytes) -> Result<ByteString, DecodeError> {
    if raw.contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8)
}

/// Encoded size of a Binary Data or UTF-8 string field, checking the 65535-byte limit.
pub(crate) fn field_len(data: &[u8]) -> Result<usize, EncodeError> {
    if data.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong(data.len()));
    }
    Ok(2 + data.len())
}

/// Encoded size of an optional field (0 when absent).
pub(crate) fn opt_field_len(data: Option<&[u8]>) -> Result<usize, EncodeError> {
    data.map_or(Ok(0), field_len)
}

/// Writes a Binary Data or UTF-8 string field whose length [`field_len`] has accepted.
pub(crate) fn put_field(buf: &mut BytesMut, data: &[u8]) {
    // Lengths were checked by `field_len` during sizing; saturate rather than wrap regardless.
    buf.put_u16(u16::try_from(data.len()).unwrap_or(u16::MAX));
    buf.put_slice(data);
}

/// Writes a Variable Byte Integer whose value sizing has checked.
pub(crate) fn put_var_int(buf: &mut BytesMut, value: usize) {
    varint::write(u32::try_from(value).unwrap_or(u32::MAX), buf);
}
