//! Reading a broker's batch (`wire::parse_batch`): what webhook-relay does to every event it
//! takes in, before the outbox. A batch of 512 `message_publish` events of 64-byte payloads, as
//! broker-core sends them under load (without id, node, incarnation and sequence: the batch's).
//!
//! `cargo bench -p webhook-relay --bench wire`

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proto::{events::v1 as pb, types::v1 as types};
use webhook_relay::wire::parse_batch;

fn batch() -> Bytes {
    let events = (1..=512u64)
        .map(|seq| pb::Event {
            timestamp_ms: 1_700_000_000_000 + seq,
            payload: Some(pb::event::Payload::MessagePublish(pb::MessagePublish {
                message: Some(types::Message {
                    topic: format!("tern/bench/{}", seq % 8),
                    payload: Bytes::from_static(&[b'x'; 64]),
                    qos: 1,
                    properties: Some(types::MessageProperties::default()),
                    from_client_id: format!("tern-bench-pub-{}", seq % 8),
                    received_at_ms: 1_700_000_000_000 + seq,
                    ..Default::default()
                }),
            })),
            ..Default::default()
        })
        .collect();
    let batch = pb::EventBatch {
        node_id: "bench".into(),
        incarnation: 1_700_000_000_000,
        events,
        first_sequence: 1,
    };
    Bytes::from(prost::Message::encode_to_vec(&batch))
}

fn parse(c: &mut Criterion) {
    let bytes = batch();
    let mut group = c.benchmark_group("parse_batch");
    group.throughput(Throughput::Elements(512));
    group.bench_function("512 message_publish", |b| {
        b.iter(|| parse_batch(bytes.clone()).map(|batch| batch.events.len()))
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
