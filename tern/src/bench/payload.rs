//! The load tool's payload: a 24-byte header (magic, send time, publisher index, sequence number)
//! padded with zeros to the requested size. Subscribers compute latency from the send time (wall
//! clock, so a publisher in another process on the same host works too) and loss, duplicates and
//! reordering from the publisher's sequence.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BufMut;

/// Marks a payload written by this tool (and the header's layout version).
const MAGIC: [u8; 4] = *b"tbv1";

/// Bytes taken by the header; smaller payloads carry none and are only counted.
pub const HEADER_LEN: usize = 24;

/// What a subscriber reads from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Send time, ns since the Unix epoch.
    pub sent_ns: u64,
    /// Index of the publisher.
    pub publisher: u32,
    /// The publisher's sequence number, from 0.
    pub seq: u64,
}

/// Wall-clock time in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Appends a payload of `size` bytes; with room for it, the header comes first.
pub fn write(buf: &mut impl BufMut, size: usize, header: Header) {
    if size < HEADER_LEN {
        buf.put_bytes(0, size);
        return;
    }
    buf.put_slice(&MAGIC);
    buf.put_u64(header.sent_ns);
    buf.put_u32(header.publisher);
    buf.put_u64(header.seq);
    buf.put_bytes(0, size - HEADER_LEN);
}

/// Reads the header of a payload written by [`write`], if it has one.
pub fn read(payload: &[u8]) -> Option<Header> {
    let header = payload.get(..HEADER_LEN)?;
    if header[..4] != MAGIC {
        return None;
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let mut p = [0u8; 4];
    p.copy_from_slice(&header[12..16]);
    Some(Header { sent_ns: u64_at(4), publisher: u32::from_be_bytes(p), seq: u64_at(16) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header { sent_ns: 1_700_000_000_123_456_789, publisher: 7, seq: 42 };
        let mut buf = Vec::new();
        write(&mut buf, 64, h);
        assert_eq!(buf.len(), 64);
        assert_eq!(read(&buf), Some(h));
        let mut small = Vec::new();
        write(&mut small, 10, h);
        assert_eq!(small.len(), 10);
        assert_eq!(read(&small), None);
        assert_eq!(read(&[0u8; 64]), None);
    }
}
