//! The event emitter: an [`EventSink`] that batches broker events onto webhook-relay's
//! `EventIngest` stream, at least once.
//!
//! `emit` encodes the event straight to the wire format (`events_wire`) into a batch being
//! filled, under a short lock; the event's size is worked out before the lock is taken. So nothing
//! of the event outlives the call: a message is not held until the relay acknowledges it (which
//! would also hold the connection's read buffer its topic and payload are cut from), and the
//! encoding reads what is still in the cache. `emit` never waits on the network.
//!
//! There is no lock every publish takes: batches are filled in shards (twice as many as cores),
//! and a client's events always go to the same shard (by its client id), so they keep their order
//! while threads publishing for other clients fill other shards. A batch's events are numbered
//! (the per-node sequence of this run's incarnation) when it is sealed and queued, under the one
//! lock taken per batch; the batch carries the first number (`EventBatch.first_sequence`).
//!
//! A batch is sealed at `webhook_relay.batch_size` events or 1 MiB. A batch that is not full is
//! sent only when nothing is in flight (as Nagle's algorithm does for TCP): under load the stream
//! carries full batches in few, large writes, and when traffic is light an event goes at once.
//!
//! Two bounds, each `webhook_relay.buffer_size` events:
//! - **unsent**: when the relay is slow or down, the **oldest** sealed batch is dropped to make
//!   room, and its events are counted in [`EmitterStats::dropped`] (and `$SYS`, and the
//!   `tern_events_dropped_total` metric). Each shard's batch being filled counts as nearly full
//!   (`batch_size` − 1 events), so sealed ones are dropped as soon as a shard seals one that would
//!   not fit;
//! - **sent, not yet acknowledged**: the sender takes no new batch while this many are in
//!   flight. It keeps them until the relay acknowledges them durable, and after a reconnect sends
//!   them again first (the relay skips what it already holds). Nothing sent is dropped.
//!
//! A relay that is down costs memory up to twice `buffer_size` encoded events, never publish
//! latency.
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

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use proto::events::v1 as pb;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::{codegen::Service as _, service::interceptor::InterceptedService};

use crate::{
    events::{BrokerEvent, EventKind, EventSink},
    events_wire::{BatchWriter, Body},
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
    /// Events produced (each is numbered as it is emitted; dropped ones included).
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

/// A sealed batch: events `first..=last()`, encoded as one `EventBatch` behind its gRPC message
/// prefix, so that it goes onto the stream as it is.
#[derive(Debug)]
struct Batch {
    first: u64,
    count: u64,
    bytes: Bytes,
}

impl Batch {
    fn last(&self) -> u64 {
        self.first + self.count - 1
    }
}

/// Bytes of a gRPC message prefix: a compression flag, then the message length (big-endian u32).
const GRPC_PREFIX: usize = 5;
/// Most bytes [`BatchWriter::finish`] appends (a key and a 10-byte varint).
const FINISH_BYTES: usize = 11;

/// The capacity of the buffer that follows a full batch of `len` bytes: an eighth more, so that
/// the next batch of events of about the same size, and the field [`BatchWriter::finish`] adds,
/// fit without the buffer growing (which would copy the whole batch into one twice the size).
fn next_capacity(len: usize) -> usize {
    (len + len / 8).clamp(4096, MAX_BATCH_BYTES + MAX_BATCH_BYTES / 8)
}

/// An empty batch: room for the gRPC prefix, then the batch header.
fn start_batch(writer: &BatchWriter, capacity: usize) -> BytesMut {
    let mut open = BytesMut::with_capacity(capacity);
    open.extend_from_slice(&[0; GRPC_PREFIX]);
    writer.header(&mut open);
    open
}

/// A batch being filled: the gRPC prefix (written at sealing), the batch header, then `count`
/// events, not yet numbered.
#[derive(Debug)]
struct Open {
    buf: BytesMut,
    count: u64,
}

/// One shard's batch being filled, on cache lines of its own: threads filling different shards
/// do not share a line.
#[derive(Debug)]
#[repr(align(128))]
struct Shard(Mutex<Open>);

/// Sealed batches not yet taken by the sender.
#[derive(Debug)]
struct Sealed {
    /// Sequence of the next event numbered (events are numbered when their batch is sealed).
    next_seq: u64,
    /// Oldest first, and the events they hold.
    batches: VecDeque<Batch>,
    events: u64,
}

/// Batches taken by the sender and not yet acknowledged, kept across reconnects.
#[derive(Debug, Default)]
struct Window {
    batches: VecDeque<Batch>,
    events: u64,
}

#[derive(Debug)]
struct Shared {
    config: GrpcEventsConfig,
    incarnation: u64,
    writer: BatchWriter,
    /// Events per batch: `batch_size`, fewer when the buffer is small, so that dropping the
    /// oldest batch drops few events and the shards' batches being filled fit in the buffer.
    batch_events: u64,
    /// `buffer_size`: most events unsent, and most sent and unacknowledged.
    buffer_size: u64,
    /// Most events in sealed batches: `buffer_size` less what the shards' batches being filled
    /// can hold, so that unsent events never exceed `buffer_size`.
    sealed_limit: u64,
    /// Kinds from the configuration.
    static_mask: u32,
    /// Kinds wanted: the configuration's plus those the relay asked for (kept across reconnects).
    wanted: AtomicU32,
    /// The batches being filled, a power of two of them; a client's events always go to the
    /// same one ([`shard_of`] its client id), so they keep their order.
    shards: Box<[Shard]>,
    sealed: Mutex<Sealed>,
    /// Events in the sender's window (changed under the `sealed` lock when batches are taken).
    in_flight: AtomicU64,
    /// Wakes the sender: new events.
    wake: Notify,
    /// Set by the first `emit` after the sender last took a batch, so one wake-up covers a burst
    /// and `emit` rarely touches `wake`.
    signalled: AtomicBool,
    /// Signals every acknowledgement (for `flush`).
    acked_watch: tokio::sync::watch::Sender<u64>,
    dropped: AtomicU64,
    acked: AtomicU64,
    connects: AtomicU64,
    /// Set by [`GrpcEvents::close`]: the sender stops.
    closed: CancellationToken,
}

/// The shard of a client id: its length and up to 8 bytes from each end, mixed; the caller
/// keeps the low bits. Client ids of one application tend to differ in their last characters, so
/// those are read as the low bits of `tail`: a multiplication carries every bit into the top
/// byte, which is what is returned.
fn shard_of(client_id: &str) -> usize {
    let b = client_id.as_bytes();
    let (head, tail) = match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_be_bytes(*tail)),
        _ => {
            let mut short = [0; 8];
            short[8 - b.len()..].copy_from_slice(b);
            (0, u64::from_be_bytes(short))
        }
    };
    let mixed = (head.rotate_left(29) ^ tail ^ b.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 56) as usize
}

/// The gRPC event emitter. Cloning shares it.
#[derive(Debug, Clone)]
pub struct GrpcEvents {
    shared: Arc<Shared>,
}

impl GrpcEvents {
    /// Starts the sender task (it connects lazily and reconnects forever) and returns the sink.
    /// Events are batched in twice as many shards as there are cores (at most 16).
    pub fn start(config: GrpcEventsConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_shards(config, (2 * cores).min(16))
    }

    /// [`start`](Self::start) with `shards` batches being filled (rounded up to a power of two).
    fn with_shards(config: GrpcEventsConfig, shards: usize) -> Self {
        let static_mask = config.always.iter().fold(0, |m, k| m | bit(*k));
        let buffer_size = config.buffer_size.max(1) as u64;
        let shards = shards.max(1).next_power_of_two();
        let batch_events = (config.batch_size.max(1) as u64)
            .min(buffer_size / 8)
            .min(buffer_size / (2 * shards as u64))
            .max(1);
        // A shard's batch holds at most `batch_events - 1` events between calls: it is sealed
        // at `batch_events`.
        let sealed_limit =
            buffer_size.saturating_sub(shards as u64 * (batch_events - 1)).max(batch_events);
        let incarnation = crate::clock::now_ms();
        let writer = BatchWriter::new(&config.node_id, incarnation);
        let shards = (0..shards)
            .map(|_| Shard(Mutex::new(Open { buf: start_batch(&writer, 4096), count: 0 })))
            .collect();
        let shared = Arc::new(Shared {
            config,
            incarnation,
            writer,
            batch_events,
            buffer_size,
            sealed_limit,
            static_mask,
            wanted: AtomicU32::new(static_mask),
            shards,
            sealed: Mutex::new(Sealed { next_seq: 1, batches: VecDeque::new(), events: 0 }),
            in_flight: AtomicU64::new(0),
            wake: Notify::new(),
            signalled: AtomicBool::new(false),
            acked_watch: tokio::sync::watch::channel(0).0,
            dropped: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            closed: CancellationToken::new(),
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
                if s.drained() {
                    return;
                }
                s.wake.notify_one();
                if acked.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, drained).await.is_ok() && s.drained()
    }

    /// Stops the sender, at shutdown once [`flush`](Self::flush) returned: its stream is closed
    /// and not reopened (so the relay stopping next is not a broken stream). Events emitted
    /// afterwards are held and go nowhere.
    pub fn close(&self) {
        self.shared.closed.cancel();
    }

    /// The emitter's counters.
    pub fn stats(&self) -> EmitterStats {
        let s = &self.shared;
        let open = s.open_events();
        let sealed = s.sealed.lock();
        EmitterStats {
            emitted: sealed.next_seq - 1 + open,
            dropped: s.dropped.load(Relaxed),
            acked: s.acked.load(Relaxed),
            buffered: open + sealed.events + s.in_flight.load(Relaxed),
            connects: s.connects.load(Relaxed),
        }
    }
}

impl EventSink for GrpcEvents {
    fn wants(&self, kind: EventKind) -> bool {
        self.shared.wanted.load(Relaxed) & bit(kind) != 0
    }

    fn emit(&self, event: BrokerEvent) {
        let client_id = event.kind.client_id();
        self.shared.push(client_id, event.timestamp_ms, &Body::of(&event.kind));
    }

    fn emit_message_publish(&self, message: &MessageRef) {
        self.shared.push(&message.from_client_id, message.received_at_ms, &Body::publish(message));
    }

    fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }
}

impl Shared {
    /// Encodes one event into its client's batch being filled (numbered when the batch is
    /// sealed).
    fn push(&self, client_id: &str, timestamp_ms: u64, body: &Body) {
        let shard = &self.shards[shard_of(client_id) & (self.shards.len() - 1)];
        let (mut dropped, mut sealed) = (0, false);
        {
            let mut open = shard.0.lock();
            BatchWriter::put_event(&mut open.buf, timestamp_ms, body);
            open.count += 1;
            if open.count >= self.batch_events || open.buf.len() >= MAX_BATCH_BYTES {
                dropped = self.seal(&mut open);
                sealed = true;
            }
        }
        if dropped > 0 {
            self.count_drops(dropped);
        }
        // The sender is woken by the first event after it last took a batch (it may be idle),
        // and by every sealed batch (it may be waiting for an ack with a small batch in flight).
        if sealed || (!self.signalled.load(Relaxed) && !self.signalled.swap(true, Ordering::AcqRel))
        {
            self.wake.notify_one();
        }
    }

    /// Seals a shard's batch, if it holds anything: numbers its events, queues it, and drops the
    /// oldest sealed batches beyond the buffer; returns the events dropped. Called with the
    /// shard's lock held (the `sealed` lock is taken inside: always in that order).
    fn seal(&self, open: &mut Open) -> u64 {
        if open.count == 0 {
            return 0;
        }
        // What can be done before the `sealed` lock is: room for the last field (there is room
        // unless events grew: see `next_capacity`), and the buffer that replaces a full one.
        open.buf.reserve(FINISH_BYTES);
        let fresh = (open.buf.len() >= open.buf.capacity() / 4)
            .then(|| start_batch(&self.writer, next_capacity(open.buf.len())));
        let mut sealed = self.sealed.lock();
        let first = sealed.next_seq;
        sealed.next_seq += open.count;
        BatchWriter::finish(&mut open.buf, first);
        // 1 MiB and one event at most (an MQTT packet is under 256 MiB): the length fits.
        let len = u32::try_from(open.buf.len() - GRPC_PREFIX).unwrap_or(u32::MAX);
        open.buf[1..GRPC_PREFIX].copy_from_slice(&len.to_be_bytes());
        let bytes = match fresh {
            Some(fresh) => std::mem::replace(&mut open.buf, fresh).freeze(),
            None => {
                // A small batch (a quiet moment): copied out, and the buffer kept.
                let bytes = Bytes::copy_from_slice(&open.buf);
                open.buf.truncate(GRPC_PREFIX + self.writer.header_len());
                bytes
            }
        };
        sealed.batches.push_back(Batch { first, count: open.count, bytes });
        sealed.events += open.count;
        open.count = 0;
        let mut dropped = 0;
        while sealed.events > self.sealed_limit {
            let Some(oldest) = sealed.batches.pop_front() else { break };
            sealed.events -= oldest.count;
            dropped += oldest.count;
        }
        dropped
    }

    /// Seals the fullest shard's batch, if any holds events (the sender, when nothing is in
    /// flight). One, not all: under load the others go on filling, so the stream carries as few,
    /// as large batches as with one buffer; when it is quiet, the next goes once this one is
    /// acknowledged.
    fn seal_fullest(&self) {
        let fullest = self.shards.iter().max_by_key(|shard| shard.0.lock().count);
        if let Some(shard) = fullest {
            let dropped = self.seal(&mut shard.0.lock());
            if dropped > 0 {
                self.count_drops(dropped);
            }
        }
    }

    /// Events in the shards' batches being filled.
    fn open_events(&self) -> u64 {
        self.shards.iter().map(|shard| shard.0.lock().count).sum()
    }

    fn count_drops(&self, n: u64) {
        let before = self.dropped.fetch_add(n, Relaxed);
        let after = before + n;
        // Warned at 1, 2, 4, 8, ... events dropped.
        if before == 0 || after.ilog2() > before.ilog2() {
            tracing::warn!(
                dropped = after,
                "event buffer full (webhook-relay slow or down): dropping the oldest events"
            );
        }
    }

    /// Whether a batch is ready to be taken: a sealed one, or, when `idle` (nothing in flight),
    /// one being filled.
    fn ready(&self, idle: bool) -> bool {
        // The `sealed` lock is let go before a shard's is taken (the order is shard, then sealed).
        let sealed = !self.sealed.lock().batches.is_empty();
        sealed || (idle && self.open_events() > 0)
    }

    /// Takes the oldest sealed batch into the window; when there is none and `idle`, seals the
    /// fullest batch being filled first.
    fn take(&self, window: &mut Window, idle: bool) -> bool {
        // Events pushed after this point signal again.
        self.signalled.store(false, Ordering::Release);
        if idle && self.sealed.lock().batches.is_empty() {
            self.seal_fullest();
        }
        let mut sealed = self.sealed.lock();
        let Some(batch) = sealed.batches.pop_front() else { return false };
        sealed.events -= batch.count;
        window.events += batch.count;
        window.batches.push_back(batch);
        // Under the lock, so that `drained` never sees a batch in neither place.
        self.in_flight.store(window.events, Relaxed);
        true
    }

    /// Nothing unsent and nothing unacknowledged. The shards are looked at first: a batch moves
    /// from a shard to the sealed queue, and from there to the window, never back.
    fn drained(&self) -> bool {
        if self.open_events() > 0 {
            return false;
        }
        let sealed = self.sealed.lock();
        sealed.events == 0 && self.in_flight.load(Relaxed) == 0
    }
}

/// The sender: (re)connects and streams until the emitter is dropped. The wait before a
/// reconnect doubles per failed attempt up to 10× `reconnect_delay`, with jitter, and starts over
/// once a stream was open.
async fn run(weak: std::sync::Weak<Shared>) {
    let mut failures: u32 = 0;
    let mut window = Window::default();
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let connects = shared.connects.load(Relaxed);
        let closed = shared.closed.clone();
        let reason = tokio::select! {
            biased;
            () = closed.cancelled() => return,
            result = stream_once(&shared, &mut window) => match result {
                Ok(()) => return,
                Err(reason) => reason,
            },
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
        tokio::select! {
            biased;
            () = closed.cancelled() => return,
            () = tokio::time::sleep(delay.mul_f64(0.75 + fastrand::f64() / 2.0)) => {}
        }
    }
}

/// One stream: sends everything unacknowledged, then new batches as they come; returns when the
/// stream breaks (`Err`) or the emitter is gone (`Ok`).
async fn stream_once(shared: &Arc<Shared>, window: &mut Window) -> Result<(), String> {
    let security = &shared.config.security;
    let endpoint = security
        .endpoint(&shared.config.address)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| format!("cannot connect: {e}"))?;
    let mut service =
        InterceptedService::new(channel, proto::grpc::AttachToken(security.interceptor()));
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (tx, rx) = mpsc::channel::<Bytes>(MAX_UNACKED_BATCHES);
    // The call is made by hand rather than through `tonic::client::Grpc`, whose encoder would copy
    // every batch into a buffer of its own: batches carry their gRPC prefix and go as they are.
    let request = http::Request::builder()
        .method(http::Method::POST)
        .version(http::Version::HTTP_2)
        .uri("/tern.events.v1.EventIngest/Publish")
        .header(http::header::TE, "trailers")
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(tonic::body::Body::new(BatchBody(rx)))
        .map_err(|e| format!("publish: {e}"))?;
    let response = service.call(request).await.map_err(|e| format!("publish: {e}"))?;
    if let Some(status) = tonic::Status::from_header_map(response.headers()) {
        // A response of trailers only: the relay refused the stream.
        return Err(format!("publish: {status}"));
    }
    let status = response.status();
    let mut acks = tonic::codec::Streaming::new_response(
        proto::grpc::EncodedRequests::<pb::Ack>::default(),
        response.into_body(),
        status,
        None,
        None,
    );
    shared.connects.fetch_add(1, Relaxed);
    // Everything unacknowledged goes again: `next` is the window index of the next batch this
    // stream carries (acks remove batches from the front).
    let mut next = 0usize;
    loop {
        // A batch held but not sent on this stream, else a new one while the window has room.
        // Like Nagle's algorithm, a batch that is not full goes only when nothing is in flight:
        // under load, batches fill up and the stream carries fewer, larger writes; when quiet, an
        // event goes at once.
        let resend = next < window.batches.len();
        let idle = window.batches.is_empty();
        let room = window.events < shared.buffer_size;
        if resend || (room && shared.ready(idle)) {
            // Reserve first: a batch is taken (and `next` advanced) only once it can be queued.
            tokio::select! {
                permit = tx.reserve() => {
                    let permit = permit.map_err(|_| "the stream closed".to_string())?;
                    if (resend || shared.take(window, idle))
                        && let Some(batch) = window.batches.get(next)
                    {
                        permit.send(batch.bytes.clone());
                        next += 1;
                    }
                }
                ack = acks.message() => next = next.saturating_sub(handle_ack(shared, window, ack)?),
            }
        } else {
            tokio::select! {
                _ = shared.wake.notified() => {}
                ack = acks.message() => next = next.saturating_sub(handle_ack(shared, window, ack)?),
            }
        }
    }
}

/// The event stream's request body: each batch is one gRPC message, prefix included.
struct BatchBody(mpsc::Receiver<Bytes>);

impl http_body::Body for BatchBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|batch| batch.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// Applies an ack; returns how many batches it removed from the front of the window.
fn handle_ack(
    shared: &Shared,
    window: &mut Window,
    ack: Result<Option<pb::Ack>, tonic::Status>,
) -> Result<usize, String> {
    let ack =
        ack.map_err(|status| format!("relay: {status}"))?.ok_or("the relay closed the stream")?;
    let mask = ack.wanted_types.iter().fold(0u32, |m, t| m | (1u32 << (*t).clamp(0, 31)));
    shared.wanted.store(shared.static_mask | mask, Relaxed);
    let mut removed = 0;
    if ack.incarnation == shared.incarnation && ack.durable_sequence > 0 {
        shared.acked.fetch_max(ack.durable_sequence, Relaxed);
        while window.batches.front().is_some_and(|b| b.last() <= ack.durable_sequence) {
            if let Some(batch) = window.batches.pop_front() {
                window.events -= batch.count;
                removed += 1;
            }
        }
        shared.in_flight.store(window.events, Relaxed);
        shared.acked_watch.send_replace(ack.durable_sequence);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{events::Event, test_util::message};
    use mqtt_codec::QoS;

    fn config(buffer_size: usize, batch_size: usize) -> GrpcEventsConfig {
        GrpcEventsConfig {
            // Nothing listens on port 1: the relay is down.
            address: "127.0.0.1:1".into(),
            node_id: Arc::from("n1"),
            buffer_size,
            batch_size,
            reconnect_delay: Duration::from_secs(60),
            always: vec![EventKind::MessagePublish],
            security: proto::grpc::Security::default(),
        }
    }

    /// An emitter filling one batch at a time (the counts below are exact).
    fn emitter(buffer_size: usize, batch_size: usize) -> GrpcEvents {
        GrpcEvents::with_shards(config(buffer_size, batch_size), 1)
    }

    /// Every event held unsent, decoded and numbered as webhook-relay numbers them, in the order
    /// of the batches (the batches being filled are sealed first).
    fn held(events: &GrpcEvents) -> Vec<pb::Event> {
        use prost::Message as _;
        let s = &events.shared;
        for shard in &*s.shards {
            let dropped = s.seal(&mut shard.0.lock());
            assert_eq!(dropped, 0, "these tests read what they held");
        }
        let sealed = s.sealed.lock();
        let mut held = Vec::new();
        let mut next = None;
        for batch in &sealed.batches {
            let prefix =
                u32::from_be_bytes(batch.bytes[1..GRPC_PREFIX].try_into().unwrap_or_default());
            assert_eq!((batch.bytes[0], prefix as usize), (0, batch.bytes.len() - GRPC_PREFIX));
            let decoded =
                pb::EventBatch::decode(batch.bytes.slice(GRPC_PREFIX..)).unwrap_or_default();
            assert_eq!((decoded.node_id.as_str(), decoded.incarnation), ("n1", s.incarnation));
            assert_eq!(decoded.events.len() as u64, batch.count);
            assert_eq!(decoded.first_sequence, batch.first, "numbered from the batch's first");
            assert!(next.is_none_or(|next| batch.first >= next), "queued in sequence order");
            next = Some(batch.first + batch.count);
            for (event, sequence) in decoded.events.into_iter().zip(batch.first..) {
                assert_eq!(event.sequence, 0, "numbered by the batch");
                held.push(pb::Event { sequence, ..event });
            }
        }
        held
    }

    /// The events held unsent: (sequence, timestamp).
    fn unsent(events: &GrpcEvents) -> Vec<(u64, u64)> {
        held(events).iter().map(|e| (e.sequence, e.timestamp_ms)).collect()
    }

    fn publish_at(events: &GrpcEvents, timestamp_ms: u64) {
        events.emit(BrokerEvent {
            timestamp_ms,
            kind: Event::MessagePublish {
                message: message(&format!("t/{timestamp_ms}"), QoS::AtMostOnce, false),
            },
        });
    }

    #[tokio::test]
    async fn a_full_buffer_drops_the_oldest_and_counts_it_without_blocking() {
        let events = emitter(3, 16);
        assert!(events.wants(EventKind::MessagePublish));
        assert!(!events.wants(EventKind::ClientConnect), "no rule wants it");
        for i in 0..5 {
            publish_at(&events, i);
        }
        let stats = events.stats();
        assert_eq!((stats.emitted, stats.dropped, stats.buffered), (5, 2, 3));
        assert_eq!(EventSink::dropped(&events), 2, "what $SYS reports");
        assert_eq!(unsent(&events), [(3, 2), (4, 3), (5, 4)], "the oldest went first");
    }

    #[tokio::test]
    async fn events_are_sealed_in_batches_and_the_oldest_batch_makes_room() {
        // 80 events held at most, in batches of 10 (an eighth of the buffer, being less than
        // batch_size). The batch being filled counts as nearly full (9 events), so sealed
        // batches may hold 71 events: the 80th event seals an eighth batch, which makes room by
        // dropping the oldest batch whole.
        let events = emitter(80, 64);
        for i in 0..79 {
            publish_at(&events, 1000 + i);
        }
        assert_eq!(events.stats().dropped, 0);
        let sizes: Vec<u64> = events.shared.sealed.lock().batches.iter().map(|b| b.count).collect();
        assert_eq!(sizes, [10; 7]);
        publish_at(&events, 1079);
        let stats = events.stats();
        assert_eq!((stats.emitted, stats.dropped, stats.buffered), (80, 10, 70));
        publish_at(&events, 2000);
        let stats = events.stats();
        assert_eq!((stats.emitted, stats.dropped, stats.buffered), (81, 10, 71));
        let held = unsent(&events);
        assert_eq!(held.first(), Some(&(11, 1010)));
        assert_eq!(held.last(), Some(&(81, 2000)));
        assert_eq!(held.len(), 71);
    }

    #[tokio::test]
    async fn each_client_keeps_its_order_across_shards_and_every_event_is_numbered_once() {
        // 8 shards; 12 clients publishing in turns, 50 events each, in batches of 7: batches of
        // different shards are sealed in whatever order they fill.
        let events = GrpcEvents::with_shards(config(100_000, 7), 8);
        let clients: Vec<String> = (0..12).map(|c| format!("client-{c}")).collect();
        for i in 0..50u64 {
            for (c, client) in clients.iter().enumerate() {
                let message = Arc::new(crate::message::Message {
                    topic: format!("t/{c}").into(),
                    payload: Bytes::from_static(b"payload"),
                    qos: QoS::AtMostOnce,
                    retain: false,
                    properties: mqtt_codec::PublishProperties::default(),
                    publisher: None,
                    from_client_id: client.as_str().into(),
                    from_username: None,
                    received_at: std::time::Instant::now(),
                    received_at_ms: i,
                });
                events.emit_message_publish(&message);
            }
        }
        let shards: std::collections::HashSet<usize> =
            clients.iter().map(|c| shard_of(c) & 7).collect();
        assert!(shards.len() >= 4, "the clients are spread over shards: {shards:?}");
        let held = held(&events);
        let sequences: Vec<u64> = held.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, (1..=600).collect::<Vec<_>>(), "numbered 1..=600 without gaps");
        for client in &clients {
            let times: Vec<u64> = held
                .iter()
                .filter_map(|e| match &e.payload {
                    Some(pb::event::Payload::MessagePublish(p)) => p.message.as_ref(),
                    _ => None,
                })
                .filter(|m| m.from_client_id == *client)
                .map(|m| m.received_at_ms)
                .collect();
            assert_eq!(times, (0..50).collect::<Vec<_>>(), "{client}: in the order published");
        }
        let stats = events.stats();
        assert_eq!((stats.emitted, stats.dropped, stats.buffered), (600, 0, 600));
    }

    #[tokio::test]
    async fn a_full_batch_is_sealed_without_its_buffer_growing() {
        // Events of one size: each batch is as long as the one before, and its buffer, sized
        // after that one, holds it and the first sequence written at sealing. A buffer that grew
        // would be a new allocation, the whole batch copied into it.
        let events = emitter(100_000, 500);
        let shard = &events.shared.shards[0];
        for round in 0..3 {
            for i in 0..499 {
                publish_at(&events, 1_000_000 + i);
            }
            let filled_in = shard.0.lock().buf.as_ptr();
            publish_at(&events, 1_000_499);
            let sealed = events.shared.sealed.lock();
            let batch = sealed.batches.back().expect("a full batch");
            assert_eq!(batch.count, 500);
            if round > 0 {
                assert_eq!(batch.bytes.as_ptr(), filled_in, "round {round}: sealed where filled");
            }
            assert!(shard.0.lock().buf.capacity() >= batch.bytes.len() + FINISH_BYTES);
        }
    }

    #[tokio::test]
    async fn a_batch_is_sealed_at_a_mebibyte() {
        let events = emitter(100_000, 512);
        let big = Arc::new(crate::message::Message {
            topic: "big".into(),
            payload: Bytes::from(vec![1u8; 300 << 10]),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: mqtt_codec::PublishProperties::default(),
            publisher: None,
            from_client_id: "c".into(),
            from_username: None,
            received_at: std::time::Instant::now(),
            received_at_ms: 1,
        });
        for _ in 0..4 {
            events.emit_message_publish(&big);
        }
        let sizes: Vec<(u64, usize)> =
            events.shared.sealed.lock().batches.iter().map(|b| (b.count, b.bytes.len())).collect();
        assert_eq!(sizes.len(), 1, "{sizes:?}");
        assert_eq!(sizes[0].0, 4);
        assert!(sizes[0].1 >= MAX_BATCH_BYTES);
        assert_eq!(unsent(&events).len(), 4);
    }

    #[tokio::test]
    async fn a_batch_that_is_not_full_waits_while_another_is_in_flight() {
        // Batches of 100 events; the sender task never connects, so only this test takes.
        let events = emitter(1000, 100);
        let s = &events.shared;
        for i in 0..5 {
            publish_at(&events, i);
        }
        let mut window = Window::default();
        assert!(!s.ready(false), "5 of 100 events, and a batch in flight: it waits");
        assert!(s.ready(true), "nothing in flight: it goes");
        assert!(s.take(&mut window, true));
        assert_eq!((window.batches.len(), window.events), (1, 5));
        for i in 5..110 {
            publish_at(&events, i);
        }
        assert!(s.ready(false), "a full batch goes even with another in flight");
        assert!(s.take(&mut window, false));
        assert!(!s.take(&mut window, false), "the 5 events after it wait");
        let firsts: Vec<(u64, u64)> = window.batches.iter().map(|b| (b.first, b.count)).collect();
        assert_eq!(firsts, [(1, 5), (6, 100)]);
        assert_eq!(events.stats().buffered, 110, "in flight and unsent");
        assert!(!s.drained());
    }

    #[tokio::test]
    async fn when_nothing_is_in_flight_the_fullest_batch_goes_and_the_others_after_it() {
        let events = GrpcEvents::with_shards(config(1000, 100), 4);
        let s = &events.shared;
        // Two clients whose events go to different shards.
        let ids: Vec<String> = (0..16).map(|i| format!("client-{i}")).collect();
        let a = &ids[0];
        let b = ids.iter().find(|id| shard_of(id) & 3 != shard_of(a) & 3).expect("another shard");
        let publish = |client: &str, at: u64| {
            events.emit(BrokerEvent {
                timestamp_ms: at,
                kind: Event::MessageDropped {
                    client_id: Some(client.into()),
                    message: message("t", QoS::AtMostOnce, false),
                    reason: "queue_full",
                },
            });
        };
        publish(b, 1);
        for at in 2..5 {
            publish(a, at);
        }
        let mut window = Window::default();
        assert!(s.take(&mut window, true));
        assert!(!s.take(&mut window, false), "the other batch is not full: it waits");
        let taken: Vec<(u64, u64)> = window.batches.iter().map(|b| (b.first, b.count)).collect();
        assert_eq!(taken, [(1, 3)], "the fullest went, alone");
        // Acknowledged: nothing in flight, so the other goes.
        window = Window::default();
        assert!(s.ready(true));
        assert!(s.take(&mut window, true));
        let taken: Vec<(u64, u64)> = window.batches.iter().map(|b| (b.first, b.count)).collect();
        assert_eq!(taken, [(4, 1)]);
        assert!(!s.ready(true), "nothing left");
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
