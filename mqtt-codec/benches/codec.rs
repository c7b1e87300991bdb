//! Micro-benchmarks of the hot paths: decoding and encoding PUBLISH (64 B and 1 KiB payloads,
//! 3.1.1 and 5.0), CONNECT and SUBSCRIBE, and the per-subscriber PUBLISH header.
//!
//! Decoding starts from a read buffer that is already shared (as a connection's buffer is after
//! its first packet), so the figures are the steady-state cost per packet. Run with
//! `cargo bench -p mqtt-codec`.

use std::hint::black_box;
use std::num::{NonZeroU16, NonZeroU32};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mqtt_codec::bytes::{Bytes, BytesMut};
use mqtt_codec::bytestring::ByteString;
use mqtt_codec::*;

fn publish(version: ProtocolVersion, payload_len: usize) -> Packet {
    let mut publish = Publish {
        qos: QoS::AtLeastOnce,
        packet_id: NonZeroU16::new(7),
        ..Publish::new(
            ByteString::from_static("sensors/building-1/floor-3/temperature"),
            Bytes::from(vec![0x5A; payload_len]),
        )
    };
    if version.is_v5() {
        publish.properties = PublishProperties {
            payload_format_indicator: Some(false),
            message_expiry_interval: Some(3600),
            user_properties: vec![(ByteString::from_static("unit"), ByteString::from_static("C"))],
            content_type: Some(ByteString::from_static("application/octet-stream")),
            ..Default::default()
        };
    }
    publish.into()
}

fn connect(version: ProtocolVersion) -> Packet {
    let mut connect = Connect {
        will: Some(LastWill {
            topic: ByteString::from_static("clients/device-0001/status"),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some(ByteString::from_static("device-0001")),
        password: Some(Bytes::from_static(b"correct horse battery staple")),
        ..Connect::new(version, ByteString::from_static("device-0001"), 60)
    };
    if version.is_v5() {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: NonZeroU16::new(32),
            maximum_packet_size: NonZeroU32::new(1 << 20),
            topic_alias_maximum: Some(16),
            ..Default::default()
        };
    }
    connect.into()
}

fn subscribe(version: ProtocolVersion) -> Packet {
    let filter = |f: &'static str, qos| Subscription {
        filter: ByteString::from_static(f),
        options: SubscriptionOptions { qos, ..Default::default() },
    };
    Subscribe {
        packet_id: NonZeroU16::new(3).expect("non-zero"),
        subscriptions: vec![
            filter("sensors/+/floor-3/#", QoS::AtLeastOnce),
            filter("commands/device-0001", QoS::ExactlyOnce),
            filter("$share/workers/jobs/#", QoS::AtLeastOnce),
        ],
        properties: SubscribeProperties {
            subscription_identifier: if version.is_v5() { NonZeroU32::new(42) } else { None },
            user_properties: vec![],
        },
    }
    .into()
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> Bytes {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).expect("encode");
    buf.freeze()
}

/// A read buffer holding `bytes`, already in shared mode like a live connection's buffer.
fn read_buffer(bytes: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(bytes.len() + 64);
    buf.extend_from_slice(bytes);
    drop(buf.split_to(0));
    buf
}

fn cases() -> Vec<(String, ProtocolVersion, Role, Packet)> {
    let mut cases = Vec::new();
    for (tag, version) in [("v311", ProtocolVersion::V311), ("v5", ProtocolVersion::V5)] {
        for (size, len) in [("64B", 64), ("1KiB", 1024)] {
            cases.push((
                format!("publish_{size}_{tag}"),
                version,
                Role::Server,
                publish(version, len),
            ));
        }
        cases.push((format!("connect_{tag}"), version, Role::Server, connect(version)));
        cases.push((format!("subscribe_{tag}"), version, Role::Server, subscribe(version)));
    }
    cases
}

fn decode_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, version, role, packet) in cases() {
        let bytes = encoded(&packet, version);
        let ctx = DecodeContext {
            role,
            version: (!matches!(packet, Packet::Connect(_))).then_some(version),
            max_packet_size: 1 << 20,
        };
        group.bench_function(&name, |b| {
            b.iter_batched(
                || (read_buffer(&bytes), ctx),
                |(mut buf, mut ctx)| {
                    let packet = decode(black_box(&mut buf), &mut ctx);
                    (packet, buf)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn encode_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, version, _, packet) in cases() {
        let mut buf = BytesMut::with_capacity(4096);
        group.bench_function(&name, |b| {
            b.iter(|| {
                buf.clear();
                encode(black_box(&packet), version, &mut buf).expect("encode");
            })
        });
    }
    // The fan-out path: only the header is written per subscriber, the payload is shared.
    for (tag, version) in [("v311", ProtocolVersion::V311), ("v5", ProtocolVersion::V5)] {
        let Packet::Publish(publish) = publish(version, 1024) else { unreachable!() };
        let mut buf = BytesMut::with_capacity(512);
        group.bench_function(format!("publish_header_1KiB_{tag}"), |b| {
            b.iter(|| {
                buf.clear();
                encode_publish_header(black_box(&publish), version, &mut buf).expect("encode");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode_benches, encode_benches);
criterion_main!(benches);
