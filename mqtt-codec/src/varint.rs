//! Variable Byte Integers (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3): 1 to 4 bytes of 7 bits each, least
//! significant group first, the high bit meaning "more bytes follow". They carry the Remaining
//! Length, property lengths, property identifiers and Subscription Identifiers.

use bytes::BufMut;

use crate::error::DecodeError;

/// Reads a Variable Byte Integer from the start of `bytes`.
///
/// Returns `Ok(None)` when `bytes` ends before the last byte of the integer, and
/// `Ok(Some((value, encoded_length)))` otherwise. A fifth byte, or an encoding longer than needed
/// (MQTT 5.0 [MQTT-1.5.5-1]), is an error, found as soon as the offending byte is seen.
pub(crate) fn read(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (index, shift) in [0u32, 7, 14, 21].into_iter().enumerate() {
        let Some(&byte) = bytes.get(index) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            // A last byte of zero after a continuation adds nothing: a shorter form existed.
            if index > 0 && byte == 0 {
                return Err(DecodeError::NonMinimalVarInt);
            }
            return Ok(Some((value, index + 1)));
        }
    }
    Err(DecodeError::VarIntTooLong)
}

/// Number of bytes `value` takes once encoded (values above the maximum count as 4: callers
/// reject them separately).
pub(crate) const fn len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value`, which callers have checked is at most [`crate::MAX_VARIABLE_INTEGER`].
pub(crate) fn write(value: u32, buf: &mut impl BufMut) {
    let mut rest = value;
    loop {
        let mut byte = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if rest == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_round_trip() {
        for value in [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455] {
            let mut buf = Vec::new();
            write(value, &mut buf);
            assert_eq!(buf.len(), len(value as usize));
            assert_eq!(read(&buf).unwrap(), Some((value, buf.len())));
            assert_eq!(read(&buf[..buf.len() - 1]).unwrap(), None);
        }
    }

    #[test]
    fn rejects_five_bytes_and_non_minimal_forms() {
        assert_eq!(read(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), Err(DecodeError::VarIntTooLong));
        assert_eq!(read(&[0x80, 0x80, 0x80, 0x80]), Err(DecodeError::VarIntTooLong));
        assert_eq!(read(&[0x80, 0x00]), Err(DecodeError::NonMinimalVarInt));
        assert_eq!(read(&[0xFF, 0x80, 0x00]), Err(DecodeError::NonMinimalVarInt));
    }
}
