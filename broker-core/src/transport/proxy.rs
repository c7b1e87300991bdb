//! The PROXY protocol (HAProxy's v1 text and v2 binary headers), so a broker behind a load
//! balancer sees the real client address. The header must be the first bytes of the connection;
//! a listener with `proxy_protocol = true` refuses connections without one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header (107 bytes) and the v2 fixed part plus the largest address block we
/// accept (TCP over IPv6: 36 bytes, plus TLVs up to a cap).
const MAX_HEADER: usize = 16 + 512;

/// Why a PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The connection closed or failed before the header was complete.
    #[error("connection ended in the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a PROXY header.
    #[error("invalid PROXY protocol header: {0}")]
    Invalid(&'static str),
}

/// Reads a PROXY header. Returns the original client address (`None` for `LOCAL`/`UNKNOWN`,
/// meaning: use the socket's peer) and the bytes read past the header, which belong to the
/// next protocol.
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Option<SocketAddr>, BytesMut), ProxyError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if let Some((addr, len)) = parse(&buf)? {
            buf.advance(len);
            return Ok((addr, buf));
        }
        if buf.len() >= MAX_HEADER {
            return Err(ProxyError::Invalid("header too long"));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(ProxyError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// Parses a complete header at the start of `buf`: `Ok(None)` = need more bytes.
fn parse(buf: &[u8]) -> Result<Option<(Option<SocketAddr>, usize)>, ProxyError> {
    if buf.len() >= 6 && &buf[..6] == b"PROXY " {
        return parse_v1(buf);
    }
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        if b"PROXY "[..buf.len().min(6)] == buf[..buf.len().min(6)] {
            return Ok(None);
        }
        return Err(ProxyError::Invalid("no PROXY signature"));
    }
    if buf.len() < 16 {
        return Ok(None);
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyError::Invalid("unsupported version"));
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if 16 + len > MAX_HEADER {
        return Err(ProxyError::Invalid("header too long"));
    }
    if buf.len() < 16 + len {
        return Ok(None);
    }
    let body = &buf[16..16 + len];
    let addr = match (version_command & 0x0F, buf[13]) {
        (0x0, _) => None, // LOCAL: health checks from the proxy itself
        (0x1, 0x11) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([body[8], body[9]])))
        }
        (0x1, 0x21) if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be_bytes([body[32], body[33]])))
        }
        (0x1, _) => None, // UNSPEC or a non-TCP family: keep the socket address
        _ => return Err(ProxyError::Invalid("unknown command")),
    };
    Ok(Some((addr, 16 + len)))
}

fn parse_v1(buf: &[u8]) -> Result<Option<(Option<SocketAddr>, usize)>, ProxyError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() > 107 {
            Err(ProxyError::Invalid("v1 header too long"))
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::Invalid("v1 not ASCII"))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let addr = match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", "TCP4" | "TCP6", src, _dst, sport, _dport] => {
            let ip: IpAddr = src.parse().map_err(|_| ProxyError::Invalid("v1 source address"))?;
            let port: u16 = sport.parse().map_err(|_| ProxyError::Invalid("v1 source port"))?;
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(ProxyError::Invalid("v1 header")),
    };
    Ok(Some((addr, end + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn v1_tcp4_header() {
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 1883\r\n\x10\x00";
        let (addr, rest) = read_header(&mut input).await.expect("valid");
        assert_eq!(addr, Some("192.0.2.7:56324".parse().expect("addr")));
        assert_eq!(&rest[..], b"\x10\x00", "bytes after the header are kept");
    }

    #[tokio::test]
    async fn v1_unknown_and_tcp6() {
        let mut input: &[u8] = b"PROXY UNKNOWN\r\n";
        assert_eq!(read_header(&mut input).await.expect("valid").0, None);
        let mut input: &[u8] = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 1883\r\n";
        assert_eq!(
            read_header(&mut input).await.expect("valid").0,
            Some("[2001:db8::1]:4000".parse().expect("addr"))
        );
    }

    #[tokio::test]
    async fn v2_tcp4_and_local() {
        let mut header = V2_SIGNATURE.to_vec();
        header.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
        header.extend_from_slice(&[203, 0, 113, 9, 10, 0, 0, 1, 0x1f, 0x90, 0x07, 0x5b]);
        header.push(0x10);
        let mut input: &[u8] = &header;
        let (addr, rest) = read_header(&mut input).await.expect("valid");
        assert_eq!(addr, Some("203.0.113.9:8080".parse().expect("addr")));
        assert_eq!(&rest[..], &[0x10]);

        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        let mut input: &[u8] = &local;
        assert_eq!(read_header(&mut input).await.expect("valid").0, None);
    }

    #[tokio::test]
    async fn garbage_and_truncation_are_refused() {
        let mut input: &[u8] = b"\x10\x0c\x00\x04MQTT";
        assert!(matches!(read_header(&mut input).await, Err(ProxyError::Invalid(_))));
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.7";
        assert!(matches!(read_header(&mut input).await, Err(ProxyError::Io(_))));
        let mut input: &[u8] = b"PROXY TCP4 not-an-ip 198.51.100.1 1 2\r\n";
        assert!(matches!(read_header(&mut input).await, Err(ProxyError::Invalid(_))));
    }
}
