//! The publish path with `message_publish` events: `Broker::publish` of a fresh message (no
//! subscriber), with events off against a broker whose webhook-relay is down. With the relay
//! down the emitter's buffer is full: every event is numbered and encoded, and each full batch
//! makes room by dropping the oldest (counted): the steady state of the broker's own cost of
//! producing events, whatever the relay.
//!
//! Messages are built as the MQTT codec builds them: topic and payload are slices of a shared
//! read buffer, a new buffer every 256 messages. Building them is inside the timed loop for both
//! variants, so the difference between the two is what events cost per publish.
//!
//! `publish_2_threads`: the same from two threads at once (two publishers, as a broker's worker
//! threads publish for different clients), timed by the wall clock: what the event path costs
//! when threads emit at the same time.
//!
//! Run with `cargo bench -p broker-core --bench events`.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use broker_core::{
    auth::AllowAll,
    broker::Broker,
    clock,
    config::BrokerConfig,
    events::{EventKind, EventSink, NoEvents},
    events_grpc::{GrpcEvents, GrpcEventsConfig},
    message::{Message, MessageRef},
};
use bytes::{BufMut, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use mqtt_codec::{PublishProperties, QoS};

const TOPIC: &[u8] = b"sensors/bench/temperature";
const PAYLOAD: [u8; 64] = [0x5a; 64];
/// Messages cut from one read buffer.
const PER_BUFFER: usize = 256;

/// Builds messages the way a connection does.
struct Reader {
    buffer: BytesMut,
    client_id: bytestring::ByteString,
}

impl Reader {
    fn new() -> Self {
        Self::of("bench-publisher")
    }

    fn of(client_id: &str) -> Self {
        Self { buffer: BytesMut::new(), client_id: client_id.into() }
    }

    fn next(&mut self) -> MessageRef {
        if self.buffer.is_empty() {
            self.buffer.reserve(PER_BUFFER * (TOPIC.len() + PAYLOAD.len()));
            for _ in 0..PER_BUFFER {
                self.buffer.put_slice(TOPIC);
                self.buffer.put_slice(&PAYLOAD);
            }
        }
        let topic = self.buffer.split_to(TOPIC.len()).freeze();
        let payload = self.buffer.split_to(PAYLOAD.len()).freeze();
        Arc::new(Message {
            topic: bytestring::ByteString::try_from(topic).unwrap_or_default(),
            payload,
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: PublishProperties::default(),
            publisher: None,
            from_client_id: self.client_id.clone(),
            from_username: None,
            received_at: Instant::now(),
            received_at_ms: clock::now_ms(),
        })
    }
}

fn broker(events: Arc<dyn EventSink>) -> Arc<Broker> {
    let config = BrokerConfig { sys_interval: None, ..BrokerConfig::default() };
    Broker::new(config, Arc::new(AllowAll), events)
}

/// An emitter whose relay is down for the whole run.
fn relay_down() -> GrpcEvents {
    GrpcEvents::start(GrpcEventsConfig {
        // Nothing listens on port 1: the relay is down, and stays so for the whole run.
        address: "127.0.0.1:1".into(),
        node_id: Arc::from("bench"),
        buffer_size: 100_000,
        batch_size: tern_config::WebhookRelayConfig::default().batch_size as usize,
        reconnect_delay: Duration::from_secs(3600),
        always: vec![EventKind::MessagePublish],
        security: proto::grpc::Security::default(),
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// What `publish` and `publish_2_threads` compare: a broker with events off, and one whose
/// emitter's relay is down (and the emitter, for its counters).
fn variants() -> (GrpcEvents, [(&'static str, Arc<Broker>); 2]) {
    let emitter = relay_down();
    let variants = [
        ("events_off", broker(Arc::new(NoEvents))),
        ("relay_down", broker(Arc::new(emitter.clone()))),
    ];
    (emitter, variants)
}

fn publish(c: &mut Criterion) {
    let runtime = runtime();
    let _entered = runtime.enter();
    let (emitter, variants) = variants();
    let mut group = c.benchmark_group("publish");
    for (name, broker) in &variants {
        let mut reader = Reader::new();
        // Fill the event buffer first: the steady state drops the oldest batch per full batch.
        for _ in 0..200_000 {
            broker.publish(reader.next());
        }
        group.bench_function(*name, |b| {
            b.iter(|| black_box(broker.publish(reader.next())));
        });
    }
    group.finish();
    eprintln!("publish/relay_down: emitter {:?}", emitter.stats());
}

fn publish_2_threads(c: &mut Criterion) {
    let runtime = runtime();
    let _entered = runtime.enter();
    let (emitter, variants) = variants();
    let mut group = c.benchmark_group("publish_2_threads");
    for (name, broker) in &variants {
        let mut readers = [Reader::of("bench-publisher-1"), Reader::of("bench-publisher-2")];
        for reader in &mut readers {
            for _ in 0..100_000 {
                broker.publish(reader.next());
            }
        }
        // One iteration: a publish on each thread, at the same time.
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for reader in &mut readers {
                        scope.spawn(move || {
                            for _ in 0..iters {
                                black_box(broker.publish(reader.next()));
                            }
                        });
                    }
                });
                start.elapsed()
            });
        });
    }
    group.finish();
    eprintln!("publish_2_threads/relay_down: emitter {:?}", emitter.stats());
}

/// The emitter alone (relay down), one thread, then two at once, each emitting the event of its
/// own publisher's message: what threads emitting at the same time cost each other.
fn emit(c: &mut Criterion) {
    let runtime = runtime();
    let _entered = runtime.enter();
    let emitter = relay_down();
    let messages = [Reader::of("bench-publisher-1").next(), Reader::of("bench-publisher-2").next()];
    for message in &messages {
        for _ in 0..100_000 {
            emitter.emit_message_publish(message);
        }
    }
    let mut group = c.benchmark_group("emit");
    group.bench_function("1_thread", |b| {
        b.iter(|| emitter.emit_message_publish(black_box(&messages[0])));
    });
    // One iteration: an event emitted on each thread, at the same time.
    group.bench_function("2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for message in &messages {
                    let emitter = &emitter;
                    scope.spawn(move || {
                        for _ in 0..iters {
                            emitter.emit_message_publish(black_box(message));
                        }
                    });
                }
            });
            start.elapsed()
        });
    });
    group.finish();
}

criterion_group!(benches, publish, publish_2_threads, emit);
criterion_main!(benches);
