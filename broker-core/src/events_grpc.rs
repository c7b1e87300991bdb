//! The event emitter: an [`EventSink`] that batches broker events onto webhook-relay's
//! `EventIngest` stream, at least once.
//!
//! `emit` pushes the event onto a bounded lock-free queue (`ArrayQueue::force_push`: when it is
//! full the **oldest** event is displaced and counted in [`EmitterStats::dropped`]); it never
//! waits on the network and takes no lock. What the queue holds is a pointer-sized record: for
//! `message_publish`, the one per message, just the already-routed message's `Arc` (its receive
//! time is the event's timestamp), so the publish path allocates nothing and builds no protobuf.
//! One sender task drains the queue, numbering events (per-node sequence without gaps, this run's
//! incarnation), and encodes them in batches straight to the wire format (`events_wire`). It keeps every sent event until the relay acknowledges it durable and, after a
//! reconnect, sends everything unacknowledged again (the relay skips what it already holds); that
//! window is bounded by the same size, dropping the oldest beyond it. A relay that is down costs
//! memory up to twice `webhook_relay.buffer_size` events, never publish latency.
//!
//! Which events are produced: the kinds named by the configuration's webhook rules and
//! `webhook_relay.stream_events` (known at start, so nothing is missed before the relay
//! connects), plus the kinds the relay asks for in its acks (its own rules and its connected
//! `EventStream` subscribers). `wants()` is one atomic load.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use proto::events::v1 as pb;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;

use crate::{
    events::{BrokerEvent, EventKind, EventSink},
    events_wire::{BatchWriter, Record},
    message::MessageRef,
};

/// Batches in flight on the stream before the sender waits for acks.
const MAX_UNACKED_BATCHES: usize = 16;
/// A batch stops growing past this many bytes (the relay accepts gRPC messages up to 4 MiB).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// The emitter's settings.
#[derive(Debug, Clone)]
pub struct GrpcEventsConfig {
    /// `host:port` of webhook-relay.
    pub address: String,
    /// This node's id.
    pub node_id: Arc<str>,
    /// Most events held (unsent plus unacknowledged).
    pub buffer_size: usize,
    /// Most events per batch.
    pub batch_size: usize,
    /// First wait before reopening a broken stream.
    pub reconnect_delay: Duration,
    /// Kinds produced regardless of what the relay asks for (from the configuration).
    pub always: Vec<EventKind>,
    /// The relay's token (sent on every call) and TLS settings (`webhook_relay.token`, `tls`).
    pub security: proto::grpc::Security,
}

impl GrpcEventsConfig {
    /// The emitter's settings of a loaded configuration, when it names a relay.
    pub fn from_config(config: &tern_config::Config) -> Option<Self> {
        let relay = &config.webhook_relay;
        let always = config
            .webhook_targets()
            .flat_map(|t| t.events.iter().map(|r| r.event))
            .chain(relay.stream_events.iter().copied())
            .map(kind_of)
            .collect();
        Some(Self {
            address: relay.address.clone()?,
            node_id: Arc::from(config.node.id.as_str()),
            buffer_size: relay.buffer_size as usize,
            batch_size: relay.batch_size as usize,
            reconnect_delay: relay.reconnect_delay,
            security: proto::grpc::Security::from_config(relay.token.as_ref(), relay.tls.as_ref()),
            always,
        })
    }
}

fn kind_of(event: tern_config::WebhookEvent) -> EventKind {
    use tern_config::WebhookEvent as W;
    match event {
        W::ClientConnect => EventKind::ClientConnect,
        W::ClientConnack => EventKind::ClientConnack,
        W::ClientConnected => EventKind::ClientConnected,
        W::ClientDisconnected => EventKind::ClientDisconnected,
        W::ClientSubscribe => EventKind::ClientSubscribe,
        W::ClientUnsubscribe => EventKind::ClientUnsubscribe,
        W::SessionSubscribed => EventKind::SessionSubscribed,
        W::SessionUnsubscribed => EventKind::SessionUnsubscribed,
        W::SessionTerminated => EventKind::SessionTerminated,
        W::MessagePublish => EventKind::MessagePublish,
        W::MessageDelivered => EventKind::MessageDelivered,
        W::MessageAcked => EventKind::MessageAcked,
        W::MessageDropped => EventKind::MessageDropped,
    }
}

/// The bit of a kind in a mask: the proto `EventType` value.
fn bit(kind: EventKind) -> u32 {
    let t = match kind {
        EventKind::ClientConnect => pb::EventType::ClientConnect,
        EventKind::ClientConnack => pb::EventType::ClientConnack,
        EventKind::ClientConnected => pb::EventType::ClientConnected,
        EventKind::ClientDisconnected => pb::EventType::ClientDisconnected,
        EventKind::ClientSubscribe => pb::EventType::ClientSubscribe,
        EventKind::ClientUnsubscribe => pb::EventType::ClientUnsubscribe,
        EventKind::SessionSubscribed => pb::EventType::SessionSubscribed,
        EventKind::SessionUnsubscribed => pb::EventType::SessionUnsubscribed,
        EventKind::SessionTerminated => pb::EventType::SessionTerminated,
        EventKind::MessagePublish => pb::EventType::MessagePublish,
        EventKind::MessageDelivered => pb::EventType::MessageDelivered,
        EventKind::MessageAcked => pb::EventType::MessageAcked,
        EventKind::MessageDropped => pb::EventType::MessageDropped,
    };
    1 << (t as i32)
}

/// The emitter's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EmitterStats {
    /// Events produced (numbered, dropped, or waiting to be numbered).
    pub emitted: u64,
    /// Events dropped because the buffer was full (oldest first).
    pub dropped: u64,
    /// Highest sequence the relay acknowledged as durable.
    pub acked: u64,
    /// Events held (unsent plus unacknowledged).
    pub buffered: u64,
    /// Streams opened (1 + reconnects).
    pub connects: u64,
}

/// The sender's state, kept across reconnects.
#[derive(Debug)]
struct Sender {
    /// Sequence of the next event.
    next_seq: u64,
    /// Numbered events not yet acknowledged, ascending and without gaps: the front one is
    /// `next_seq - unacked.len()`.
    unacked: VecDeque<Record>,
}

impl Sender {
    /// Sequence of the oldest event held.
    fn first_seq(&self) -> u64 {
        self.next_seq - self.unacked.len() as u64
    }
}

#[derive(Debug)]
struct Shared {
    config: GrpcEventsConfig,
    incarnation: u64,
    /// Kinds from the configuration.
    static_mask: u32,
    /// Kinds wanted: the configuration's plus those the relay asked for (kept across reconnects).
    wanted: AtomicU32,
    /// Events emitted and not yet taken by the sender (bounded; the oldest is displaced).
    queue: ArrayQueue<Record>,
    /// Events the sender holds unacknowledged (for stats).
    unacked: AtomicU64,
    /// Wakes the sender: new events.
    wake: Notify,
    /// Set by the first `emit` after the sender last drained, so one wake-up covers a burst and
    /// `emit` rarely touches `wake`.
    signalled: AtomicBool,
    /// Events the sender has numbered (the next sequence - 1), for stats.
    numbered: AtomicU64,
    /// Signals every acknowledgement (for `flush`).
    acked_watch: tokio::sync::watch::Sender<u64>,
    dropped: AtomicU64,
    acked: AtomicU64,
    connects: AtomicU64,
}

/// The gRPC event emitter. Cloning shares it.
#[derive(Debug, Clone)]
pub struct GrpcEvents {
    shared: Arc<Shared>,
}

impl GrpcEvents {
    /// Starts the sender task (it connects lazily and reconnects forever) and returns the sink.
    pub fn start(config: GrpcEventsConfig) -> Self {
        let static_mask = config.always.iter().fold(0, |m, k| m | bit(*k));
        let buffer_size = config.buffer_size.max(1);
        let incarnation = crate::clock::now_ms();
        let shared = Arc::new(Shared {
            config,
            incarnation,
            static_mask,
            wanted: AtomicU32::new(static_mask),
            queue: ArrayQueue::new(buffer_size),
            unacked: AtomicU64::new(0),
            wake: Notify::new(),
            signalled: AtomicBool::new(false),
            numbered: AtomicU64::new(0),
            acked_watch: tokio::sync::watch::channel(0).0,
            dropped: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            connects: AtomicU64::new(0),
        });
        tokio::spawn(run(Arc::downgrade(&shared)));
        Self { shared }
    }

    /// Waits until the relay acknowledged every event emitted so far, or `timeout` passed;
    /// returns whether everything was acknowledged (for a graceful shutdown).
    pub async fn flush(&self, timeout: Duration) -> bool {
        let s = &self.shared;
        let mut acked = s.acked_watch.subscribe();
        let drained = async {
            loop {
                if s.queue.is_empty() && s.unacked.load(Relaxed) == 0 {
                    return;
                }
                s.wake.notify_one();
                if acked.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, drained).await.is_ok()
            && s.queue.is_empty()
            && s.unacked.load(Relaxed) == 0
    }

    /// The emitter's counters.
    pub fn stats(&self) -> EmitterStats {
        let s = &self.shared;
        EmitterStats {
            emitted: s.numbered.load(Relaxed) + s.dropped.load(Relaxed) + s.queue.len() as u64,
            dropped: s.dropped.load(Relaxed),
            acked: s.acked.load(Relaxed),
            buffered: s.queue.len() as u64 + s.unacked.load(Relaxed),
            connects: s.connects.load(Relaxed),
        }
    }
}

impl EventSink for GrpcEvents {
    fn wants(&self, kind: EventKind) -> bool {
        self.shared.wanted.load(Relaxed) & bit(kind) != 0
    }

    fn emit(&self, event: BrokerEvent) {
        self.shared.push(Record::of(event));
    }

    fn emit_message_publish(&self, message: &MessageRef) {
        self.shared.push(Record::Publish(Arc::clone(message)));
    }

    fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }
}

impl Shared {
    fn push(&self, record: Record) {
        if self.queue.force_push(record).is_some() {
            self.count_drop();
        }
        if !self.signalled.load(Relaxed) && !self.signalled.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    fn count_drop(&self) {
        let dropped = self.dropped.fetch_add(1, Relaxed) + 1;
        if dropped.is_power_of_two() {
            tracing::warn!(
                dropped,
                "event buffer full (webhook-relay slow or down): dropping the oldest events"
            );
        }
    }

    /// Moves emitted events into the sender's window, numbering them.
    fn drain(&self, sender: &mut Sender) {
        // Events pushed after this point signal again.
        self.signalled.store(false, Ordering::Release);
        while let Some(record) = self.queue.pop() {
            sender.unacked.push_back(record);
            sender.next_seq += 1;
            if sender.unacked.len() > self.config.buffer_size.max(1) {
                sender.unacked.pop_front();
                self.count_drop();
            }
        }
        self.numbered.store(sender.next_seq - 1, Relaxed);
        self.unacked.store(sender.unacked.len() as u64, Relaxed);
    }
}

/// The sender: (re)connects and streams until the emitter is dropped. The wait before a
/// reconnect doubles per failed attempt up to 10× `reconnect_delay`, with jitter, and starts over
/// once a stream was open.
async fn run(weak: std::sync::Weak<Shared>) {
    let mut failures: u32 = 0;
    let mut sender = Sender { next_seq: 1, unacked: VecDeque::new() };
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let connects = shared.connects.load(Relaxed);
        let reason = match stream_once(&shared, &mut sender).await {
            Ok(()) => return,
            Err(reason) => reason,
        };
        failures =
            if shared.connects.load(Relaxed) > connects { 1 } else { failures.saturating_add(1) };
        if failures == 1 {
            tracing::warn!(address = %shared.config.address, %reason, "event stream to webhook-relay broken; reconnecting");
        } else {
            tracing::debug!(address = %shared.config.address, %reason, failures, "webhook-relay still unreachable");
        }
        let base = shared.config.reconnect_delay;
        drop(shared);
        let delay = base.saturating_mul(1 << (failures - 1).min(4)).min(base * 10);
        tokio::time::sleep(delay.mul_f64(0.75 + fastrand::f64() / 2.0)).await;
    }
}

/// One stream: sends everything unacknowledged, then new events as they come; returns when the
/// stream breaks (`Err`) or the emitter is gone (`Ok`).
async fn stream_once(shared: &Arc<Shared>, sender: &mut Sender) -> Result<(), String> {
    let security = &shared.config.security;
    let endpoint = security
        .endpoint(&shared.config.address)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| format!("cannot connect: {e}"))?;
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(
        channel,
        proto::grpc::AttachToken(security.interceptor()),
    ));
    grpc.ready().await.map_err(|e| format!("cannot connect: {e}"))?;
    let (tx, rx) = mpsc::channel::<Bytes>(MAX_UNACKED_BATCHES);
    let mut acks = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/tern.events.v1.EventIngest/Publish",
            ),
            proto::grpc::EncodedRequests::<pb::Ack>::default(),
        )
        .await
        .map_err(|status| format!("publish: {status}"))?
        .into_inner();
    shared.connects.fetch_add(1, Relaxed);
    let writer = BatchWriter::new(&shared.config.node_id, shared.incarnation);
    // Everything unacknowledged goes again.
    let mut sent = shared.acked.load(Relaxed);
    loop {
        shared.drain(sender);
        // Something held is newer than what this stream sent (an ack can pass `sent` when the relay
        // already held events from an earlier stream).
        if !sender.unacked.is_empty() && sender.next_seq - 1 > sent {
            // Reserve first: a batch is built (and `sent` advanced) only once it can be queued.
            tokio::select! {
                permit = tx.reserve() => {
                    let permit = permit.map_err(|_| "the stream closed".to_string())?;
                    if let Some((batch, last)) = next_batch(shared, sender, &writer, sent) {
                        sent = last;
                        permit.send(batch);
                    }
                }
                ack = acks.message() => handle_ack(shared, sender, ack)?,
            }
        } else {
            tokio::select! {
                _ = shared.wake.notified() => {}
                ack = acks.message() => handle_ack(shared, sender, ack)?,
            }
        }
    }
}

fn handle_ack(
    shared: &Shared,
    sender: &mut Sender,
    ack: Result<Option<pb::Ack>, tonic::Status>,
) -> Result<(), String> {
    let ack =
        ack.map_err(|status| format!("relay: {status}"))?.ok_or("the relay closed the stream")?;
    let mask = ack.wanted_types.iter().fold(0u32, |m, t| m | (1u32 << (*t).clamp(0, 31)));
    shared.wanted.store(shared.static_mask | mask, Relaxed);
    if ack.incarnation == shared.incarnation && ack.durable_sequence > 0 {
        shared.acked.fetch_max(ack.durable_sequence, Relaxed);
        let done = ack.durable_sequence.saturating_add(1).saturating_sub(sender.first_seq());
        sender.unacked.drain(..(done.min(sender.unacked.len() as u64) as usize));
        shared.unacked.store(sender.unacked.len() as u64, Relaxed);
        shared.acked_watch.send_replace(ack.durable_sequence);
    }
    Ok(())
}

/// The next batch after sequence `sent`, encoded, with the sequence of its last event.
fn next_batch(
    shared: &Shared,
    sender: &Sender,
    writer: &BatchWriter,
    sent: u64,
) -> Option<(Bytes, u64)> {
    // Events dropped from the window before they were sent are skipped.
    let first = sender.first_seq().max(sent + 1);
    let start = usize::try_from(first - sender.first_seq()).ok()?;
    if start >= sender.unacked.len() {
        return None;
    }
    let (batch, count) = writer.batch(
        first,
        sender.unacked.range(start..),
        shared.config.batch_size.max(1),
        MAX_BATCH_BYTES,
    );
    Some((batch, first + count as u64 - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{events::Event, test_util::message};
    use mqtt_codec::QoS;

    fn emitter(buffer_size: usize) -> GrpcEvents {
        GrpcEvents::start(GrpcEventsConfig {
            // Nothing listens on port 1: the relay is down.
            address: "127.0.0.1:1".into(),
            node_id: Arc::from("n1"),
            buffer_size,
            batch_size: 16,
            reconnect_delay: Duration::from_secs(60),
            always: vec![EventKind::MessagePublish],
            security: proto::grpc::Security::default(),
        })
    }

    #[tokio::test]
    async fn a_full_buffer_drops_the_oldest_and_counts_it_without_blocking() {
        let events = emitter(3);
        assert!(events.wants(EventKind::MessagePublish));
        assert!(!events.wants(EventKind::ClientConnect), "no rule wants it");
        for i in 0..5 {
            events.emit(BrokerEvent {
                timestamp_ms: i,
                kind: Event::MessagePublish {
                    message: message(&format!("t/{i}"), QoS::AtMostOnce, false),
                },
            });
        }
        let stats = events.stats();
        assert_eq!((stats.emitted, stats.dropped, stats.buffered), (5, 2, 3));
        assert_eq!(EventSink::dropped(&events), 2, "what $SYS reports");
        let left: Vec<u64> =
            std::iter::from_fn(|| events.shared.queue.pop()).map(|e| e.timestamp_ms()).collect();
        assert_eq!(left, [2, 3, 4], "the oldest went first");
    }

    #[test]
    fn wanted_kinds_come_from_the_webhook_rules_and_stream_events() {
        let text = "webhook {\n  url = \"http://h/\"\n  events = [{event = on_client_connack}]\n}\n\
                    webhook_relay {\n  address = \"relay:50052\"\n  stream_events = [on_message_acked]\n}\n";
        let loaded = tern_config::parse_str(
            text,
            "t.conf",
            std::path::Path::new("."),
            &tern_config::Env::new(),
        );
        let config = loaded.map(|l| l.config).unwrap_or_default();
        let relay = GrpcEventsConfig::from_config(&config);
        assert_eq!(
            relay.map(|r| r.always),
            Some(vec![EventKind::ClientConnack, EventKind::MessageAcked])
        );
        assert!(GrpcEventsConfig::from_config(&tern_config::Config::default()).is_none());
    }
}
