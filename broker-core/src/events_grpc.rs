//! The event emitter: an [`EventSink`] that batches broker events onto webhook-relay's
//! `EventIngest` stream, at least once.
//!
//! `emit` numbers the event (per-node sequence, this run's incarnation) and appends it to a
//! bounded buffer under a short lock: it never waits on the network. A sender task converts
//! buffered events to protobuf and sends them in batches; the buffer keeps every event until the
//! relay acknowledges it durable, and after a reconnect everything unacknowledged is sent again
//! (the relay skips what it already holds). When the buffer is full the **oldest** event is
//! dropped and counted ([`EmitterStats::dropped`]), so a relay that is down costs memory up to
//! `webhook_relay.buffer_size`, never publish latency.
//!
//! Which events are produced: the kinds named by the configuration's webhook rules and
//! `webhook_relay.stream_events` (known at start, so nothing is missed before the relay
//! connects), plus the kinds the relay asks for in its acks (its own rules and its connected
//! `EventStream` subscribers). `wants()` is one atomic load.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use parking_lot::Mutex;
use proto::{
    events::v1::{self as pb, event::Payload, event_ingest_client::EventIngestClient},
    types::v1 as types,
};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    auth_grpc::client_info,
    events::{BrokerEvent, Event, EventKind, EventSink, SubscriptionEvent},
    message::{Delivery, Message},
};

/// Batches in flight on the stream before the sender waits for acks.
const MAX_UNACKED_BATCHES: usize = 16;

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
    /// Events produced.
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

#[derive(Debug)]
struct Buffer {
    /// Sequence of the next event.
    next_seq: u64,
    /// Events with sequence > acked, ascending.
    events: VecDeque<(u64, BrokerEvent)>,
}

#[derive(Debug)]
struct Shared {
    config: GrpcEventsConfig,
    incarnation: u64,
    /// Kinds from the configuration.
    static_mask: u32,
    /// Kinds the relay asked for (kept across reconnects).
    relay_mask: AtomicU32,
    /// The buffer; locked briefly by `emit` and the sender, never across `.await`.
    buffer: Mutex<Buffer>,
    /// Wakes the sender: new events.
    wake: Notify,
    emitted: AtomicU64,
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
        let incarnation = crate::clock::now_ms();
        let shared = Arc::new(Shared {
            config,
            incarnation,
            static_mask,
            relay_mask: AtomicU32::new(0),
            buffer: Mutex::new(Buffer { next_seq: 1, events: VecDeque::new() }),
            wake: Notify::new(),
            emitted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            connects: AtomicU64::new(0),
        });
        tokio::spawn(run(Arc::downgrade(&shared)));
        Self { shared }
    }

    /// The emitter's counters.
    pub fn stats(&self) -> EmitterStats {
        let s = &self.shared;
        EmitterStats {
            emitted: s.emitted.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
            acked: s.acked.load(Relaxed),
            buffered: s.buffer.lock().events.len() as u64,
            connects: s.connects.load(Relaxed),
        }
    }
}

impl EventSink for GrpcEvents {
    fn wants(&self, kind: EventKind) -> bool {
        let s = &self.shared;
        (s.static_mask | s.relay_mask.load(Relaxed)) & bit(kind) != 0
    }

    fn emit(&self, event: BrokerEvent) {
        let s = &self.shared;
        {
            let mut buffer = s.buffer.lock();
            let seq = buffer.next_seq;
            buffer.next_seq += 1;
            if buffer.events.len() >= s.config.buffer_size {
                buffer.events.pop_front();
                let dropped = s.dropped.fetch_add(1, Relaxed);
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = dropped + 1,
                        "event buffer full (webhook-relay slow or down): dropping the oldest events"
                    );
                }
            }
            buffer.events.push_back((seq, event));
        }
        s.emitted.fetch_add(1, Relaxed);
        s.wake.notify_one();
    }
}

/// The sender: (re)connects and streams until the emitter is dropped. The wait before a
/// reconnect doubles per failed attempt up to 10× `reconnect_delay`, with jitter, and starts over
/// once a stream was open.
async fn run(weak: std::sync::Weak<Shared>) {
    let mut failures: u32 = 0;
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let connects = shared.connects.load(Relaxed);
        let reason = match stream_once(&shared).await {
            Ok(()) => return,
            Err(reason) => reason,
        };
        failures =
            if shared.connects.load(Relaxed) > connects { 1 } else { failures.saturating_add(1) };
        tracing::warn!(address = %shared.config.address, %reason, "event stream to webhook-relay broken; reconnecting");
        let base = shared.config.reconnect_delay;
        drop(shared);
        let delay = base.saturating_mul(1 << (failures - 1).min(4)).min(base * 10);
        tokio::time::sleep(delay.mul_f64(0.75 + fastrand::f64() / 2.0)).await;
    }
}

/// One stream: sends everything unacknowledged, then new events as they come; returns when the
/// stream breaks (`Err`) or the emitter is gone (`Ok`).
async fn stream_once(shared: &Arc<Shared>) -> Result<(), String> {
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{}", shared.config.address))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| format!("cannot connect: {e}"))?;
    let mut client = EventIngestClient::new(channel);
    let (tx, rx) = mpsc::channel::<pb::EventBatch>(MAX_UNACKED_BATCHES);
    let mut acks = client
        .publish(ReceiverStream::new(rx))
        .await
        .map_err(|status| format!("publish: {status}"))?
        .into_inner();
    shared.connects.fetch_add(1, Relaxed);
    // Everything unacknowledged goes again.
    let mut sent = shared.acked.load(Relaxed);
    loop {
        let unsent = shared.buffer.lock().events.back().is_some_and(|(seq, _)| *seq > sent);
        if unsent {
            // Reserve first: a batch is built (and `sent` advanced) only once it can be queued.
            tokio::select! {
                permit = tx.reserve() => {
                    let permit = permit.map_err(|_| "the stream closed".to_string())?;
                    if let Some(batch) = next_batch(shared, sent) {
                        if let Some(last) = batch.events.last() {
                            sent = last.sequence;
                        }
                        permit.send(batch);
                    }
                }
                ack = acks.message() => handle_ack(shared, ack)?,
            }
        } else {
            tokio::select! {
                _ = shared.wake.notified() => {}
                ack = acks.message() => handle_ack(shared, ack)?,
            }
        }
    }
}

fn handle_ack(shared: &Shared, ack: Result<Option<pb::Ack>, tonic::Status>) -> Result<(), String> {
    let ack =
        ack.map_err(|status| format!("relay: {status}"))?.ok_or("the relay closed the stream")?;
    let mask = ack.wanted_types.iter().fold(0u32, |m, t| m | (1u32 << (*t).clamp(0, 31)));
    shared.relay_mask.store(mask, Relaxed);
    if ack.incarnation == shared.incarnation && ack.durable_sequence > 0 {
        shared.acked.fetch_max(ack.durable_sequence, Relaxed);
        let mut buffer = shared.buffer.lock();
        while buffer.events.front().is_some_and(|(seq, _)| *seq <= ack.durable_sequence) {
            buffer.events.pop_front();
        }
    }
    Ok(())
}

/// The next batch after sequence `sent`, converted (outside the lock's hot part: events are
/// cloned out — a few `Arc`s each — then converted).
fn next_batch(shared: &Shared, sent: u64) -> Option<pb::EventBatch> {
    let picked: Vec<(u64, BrokerEvent)> = {
        let buffer = shared.buffer.lock();
        let start = buffer.events.partition_point(|(seq, _)| *seq <= sent);
        buffer.events.range(start..).take(shared.config.batch_size).cloned().collect()
    };
    if picked.is_empty() {
        return None;
    }
    let node = &shared.config.node_id;
    let events = picked
        .into_iter()
        .map(|(seq, event)| pb::Event {
            id: format!("{node}/{}/{seq}", shared.incarnation),
            node_id: node.to_string(),
            incarnation: shared.incarnation,
            sequence: seq,
            timestamp_ms: event.timestamp_ms,
            payload: Some(payload(event.kind)),
        })
        .collect();
    Some(pb::EventBatch { node_id: node.to_string(), incarnation: shared.incarnation, events })
}

fn message(m: &Message, qos: mqtt_codec::QoS, retain: bool, ids: &[u32]) -> types::Message {
    let p = &m.properties;
    types::Message {
        topic: m.topic.to_string(),
        payload: m.payload.clone(),
        qos: i32::from(u8::from(qos)),
        retain,
        dup: false,
        properties: Some(types::MessageProperties {
            payload_format_indicator: p.payload_format_indicator.map(u32::from),
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.as_ref().map(ToString::to_string),
            response_topic: p.response_topic.as_ref().map(ToString::to_string),
            correlation_data: p.correlation_data.clone(),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| types::UserProperty { key: k.to_string(), value: v.to_string() })
                .collect(),
            subscription_identifiers: ids.to_vec(),
        }),
        from_client_id: m.from_client_id.to_string(),
        from_username: m.from_username.as_ref().map(ToString::to_string),
        received_at_ms: m.received_at_ms,
    }
}

fn delivered(d: &Delivery) -> types::Message {
    message(&d.message, d.qos, d.retain, &d.subscription_ids)
}

fn subscription(s: &SubscriptionEvent) -> types::Subscription {
    let share_group = match s.filter.strip_prefix("$share/").and_then(|r| r.split_once('/')) {
        Some((group, _)) => group.to_string(),
        None if s.filter.starts_with("$queue/") => "$queue".to_string(),
        None => String::new(),
    };
    types::Subscription {
        topic_filter: s.filter.to_string(),
        qos: i32::from(u8::from(s.options.qos)),
        no_local: s.options.no_local,
        retain_as_published: s.options.retain_as_published,
        retain_handling: u32::from(s.retain_handling),
        subscription_identifier: s.options.subscription_id.unwrap_or(0),
        share_group,
    }
}

fn payload(event: Event) -> Payload {
    let info = |c: &crate::auth::ClientIdentity| Some(client_info(c, false));
    match event {
        Event::ClientConnect { client } => {
            Payload::ClientConnect(pb::ClientConnect { client: info(&client) })
        }
        Event::ClientConnack { client, reason_code, session_present } => {
            Payload::ClientConnack(pb::ClientConnack {
                client: info(&client),
                reason_code: u32::from(reason_code),
                session_present,
            })
        }
        Event::ClientConnected { client, session_present, keepalive, session_expiry_interval } => {
            Payload::ClientConnected(pb::ClientConnected {
                client: info(&client),
                session_present,
                keepalive: u32::from(keepalive),
                session_expiry_interval,
            })
        }
        Event::ClientDisconnected { client, reason_code, reason, graceful } => {
            Payload::ClientDisconnected(pb::ClientDisconnected {
                client: info(&client),
                reason_code: u32::from(reason_code),
                reason: reason.to_string(),
                graceful,
            })
        }
        Event::ClientSubscribe { client, subscriptions } => {
            Payload::ClientSubscribe(pb::ClientSubscribe {
                client: info(&client),
                subscriptions: subscriptions.iter().map(subscription).collect(),
            })
        }
        Event::ClientUnsubscribe { client, filters } => {
            Payload::ClientUnsubscribe(pb::ClientUnsubscribe {
                client: info(&client),
                topic_filters: filters.iter().map(ToString::to_string).collect(),
            })
        }
        Event::SessionSubscribed { client, subscription: s } => {
            Payload::SessionSubscribed(pb::SessionSubscribed {
                client: info(&client),
                subscription: Some(subscription(&s)),
            })
        }
        Event::SessionUnsubscribed { client, filter } => {
            Payload::SessionUnsubscribed(pb::SessionUnsubscribed {
                client: info(&client),
                topic_filter: filter.to_string(),
            })
        }
        Event::SessionTerminated { client, reason } => {
            Payload::SessionTerminated(pb::SessionTerminated {
                client: info(&client),
                reason: reason.to_string(),
            })
        }
        Event::MessagePublish { message: m } => Payload::MessagePublish(pb::MessagePublish {
            message: Some(message(&m, m.qos, m.retain, &[])),
        }),
        Event::MessageDelivered { client, delivery } => {
            Payload::MessageDelivered(pb::MessageDelivered {
                client: info(&client),
                message: Some(delivered(&delivery)),
            })
        }
        Event::MessageAcked { client, delivery } => Payload::MessageAcked(pb::MessageAcked {
            client: info(&client),
            message: Some(delivered(&delivery)),
        }),
        Event::MessageDropped { client_id, message: m, reason } => {
            Payload::MessageDropped(pb::MessageDropped {
                client: client_id.map(|id| types::ClientInfo {
                    client_id: id.to_string(),
                    ..Default::default()
                }),
                message: Some(message(&m, m.qos, m.retain, &[])),
                reason: reason.to_string(),
            })
        }
    }
}
