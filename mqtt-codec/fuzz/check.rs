//! The body of the `decode` fuzz target, shared with `tests/fuzz_seeds.rs` so that the seed
//! corpus is replayed by `cargo test` without a nightly toolchain.
//!
//! The input is decoded as a byte stream by a server and by a client, before the CONNECT and
//! in each protocol version, with a generous and a small maximum packet size. Decoding must never
//! panic, must stop (each packet consumes bytes; "need more" leaves the buffer untouched), and
//! every decoded packet must encode again and decode to itself.

use mqtt_codec::bytes::BytesMut;
use mqtt_codec::{
    DecodeContext, MAX_PACKET_SIZE, Packet, ProtocolVersion, Role, decode, encode, encode_limited,
    encoded_len,
};

/// Runs every check on one input.
pub fn check(data: &[u8]) {
    let versions =
        [None, Some(ProtocolVersion::V31), Some(ProtocolVersion::V311), Some(ProtocolVersion::V5)];
    for role in [Role::Server, Role::Client] {
        for version in versions {
            for max_packet_size in [MAX_PACKET_SIZE, 64] {
                decode_stream(data, DecodeContext { role, version, max_packet_size });
            }
        }
    }
}

fn decode_stream(data: &[u8], mut ctx: DecodeContext) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let version_before = ctx.version;
        match decode(&mut buf, &mut ctx) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before, "a decoded packet consumes bytes");
                assert!(before - buf.len() <= ctx.max_packet_size as usize);
                let version = ctx.version.expect("the version is known after a packet");
                if version_before.is_none() {
                    assert!(matches!(packet, Packet::Connect(_)), "first packet {packet:?}");
                }
                assert_round_trip(&packet, version, ctx.role);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "\"need more bytes\" consumes nothing");
                return;
            }
            Err(error) => {
                // Every error can be reported and answered.
                let _ = error.to_string();
                let _ = error.reason_code();
                let _ = error.disconnect_reason_code();
                let _ = error.connack_response(ctx.version);
                return;
            }
        }
    }
}

fn assert_round_trip(packet: &Packet, version: ProtocolVersion, role: Role) {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).expect("a decoded packet encodes");
    let len = encoded_len(packet, version).expect("a decoded packet has a length");
    assert_eq!(out.len(), len);
    let mut limited = BytesMut::new();
    encode_limited(packet, version, len as u32, &mut limited).expect("fits its own size");
    assert_eq!(limited, out);

    let mut ctx = DecodeContext {
        role,
        version: match packet {
            Packet::Connect(_) => None,
            _ => Some(version),
        },
        max_packet_size: MAX_PACKET_SIZE,
    };
    let again = decode(&mut out, &mut ctx)
        .expect("a re-encoded packet decodes")
        .expect("a re-encoded packet is complete");
    assert_eq!(&again, packet);
    assert!(out.is_empty());
}
