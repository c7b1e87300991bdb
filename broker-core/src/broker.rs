//! The broker node: the shared parts every connection uses (router, retained store, session
//! registry, auth and event seams, statistics) and the operations that span connections —
//! publishing, ending and detaching sessions, wills, `$SYS` client events.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use bytestring::ByteString;
use mqtt_codec::{PublishProperties, QoS};

use crate::{
    auth::{Authenticator, Check, ClientIdentity, Permission},
    clock,
    config::BrokerConfig,
    events::{BrokerEvent, Event, EventKind, EventSink},
    mailbox::{LiveQueueLimits, Mailbox, QueueLimits},
    message::{Message, MessageRef, SessionId},
    registry::{Entry, SessionRegistry, Slot},
    retained::{RetainOutcome, RetainedStore},
    router::{Routed, Router},
    session::{Outbound, SessionState},
    stats::Stats,
    store::{SessionSnapshot, SessionStore},
    will::PendingWill,
};

/// One broker node's shared state.
#[derive(Debug)]
pub struct Broker {
    /// Settings; replaced as a whole when the configuration changes ([`Broker::reconfigure`]).
    config: arc_swap::ArcSwap<BrokerConfig>,
    /// The queue limits every mailbox follows.
    queue_limits: Arc<LiveQueueLimits>,
    /// Counts configuration changes, for tasks that follow them.
    changes: tokio::sync::watch::Sender<u64>,
    /// Subscriptions and fan-out.
    pub router: Router,
    /// Retained messages.
    pub retained: RetainedStore,
    /// Sessions by client id.
    pub sessions: SessionRegistry,
    /// Who may connect, publish, subscribe.
    pub auth: Arc<dyn Authenticator>,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Counters and gauges.
    pub stats: Stats,
    /// Where detached sessions are saved to survive a restart (`None`: memory only).
    store: Option<Arc<dyn SessionStore>>,
    next_id: AtomicU64,
    started: Instant,
    started_at_ms: u64,
    this: Weak<Broker>,
}

impl Broker {
    /// A broker node with the given settings, authenticator and event sink.
    pub fn new(
        config: BrokerConfig,
        auth: Arc<dyn Authenticator>,
        events: Arc<dyn EventSink>,
    ) -> Arc<Self> {
        Self::with_store(config, auth, events, None)
    }

    /// A broker node that saves detached sessions to `store` and restores them in [`Broker::restore_sessions`].
    pub fn with_store(
        config: BrokerConfig,
        auth: Arc<dyn Authenticator>,
        events: Arc<dyn EventSink>,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            store,
            router: Router::new(config.shared_strategy),
            retained: RetainedStore::new(config.max_retained_messages),
            sessions: SessionRegistry::new(),
            auth,
            events,
            stats: Stats::default(),
            next_id: AtomicU64::new(1),
            started: Instant::now(),
            started_at_ms: clock::now_ms(),
            queue_limits: LiveQueueLimits::new(queue_limits(&config)),
            config: arc_swap::ArcSwap::from_pointee(config),
            changes: tokio::sync::watch::Sender::new(0),
            this: this.clone(),
        })
    }

    /// A fresh id for a session or a connection.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// How long the broker has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the broker started, epoch ms.
    pub fn started_at_ms(&self) -> u64 {
        self.started_at_ms
    }

    /// The settings in force. A connection keeps the settings of its CONNECT (what it was told in
    /// CONNACK) for its lifetime.
    pub fn config(&self) -> Arc<BrokerConfig> {
        self.config.load_full()
    }

    /// Applies new settings without a restart: queue limits, the retained-store limit, the
    /// shared-subscription strategy, the connection limit and the `$SYS` interval apply at once
    /// to everyone; connections keep the settings of their CONNECT (what CONNACK told them), so
    /// the rest applies to clients connecting from then on. The node id never changes.
    pub fn reconfigure(&self, mut config: BrokerConfig) {
        let old = self.config();
        config.node_id = Arc::clone(&old.node_id);
        self.queue_limits.set(queue_limits(&config));
        self.retained.set_max_messages(config.max_retained_messages);
        self.router.set_strategy(config.shared_strategy);
        self.config.store(Arc::new(config));
        self.changes.send_modify(|n| *n += 1);
    }

    /// A receiver that sees every [`Broker::reconfigure`].
    pub fn config_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A new mailbox following the configured queue limits.
    pub fn new_mailbox(&self, session: SessionId, client_id: ByteString) -> Arc<Mailbox> {
        Arc::new(Mailbox::with_limits(session, client_id, Arc::clone(&self.queue_limits)))
    }

    /// Emits an event if the sink wants its kind.
    pub fn emit(&self, kind: EventKind, build: impl FnOnce() -> Event) {
        if self.events.wants(kind) {
            self.events.emit(BrokerEvent { timestamp_ms: clock::now_ms(), kind: build() });
        }
    }

    /// Publishes an authorized message: updates the retained store when RETAIN is set, then
    /// routes it to every matching session.
    pub fn publish(&self, message: MessageRef) -> Routed {
        self.stats.messages_received.inc();
        if self.events.wants(EventKind::MessagePublish) {
            // Stamped with the message's receive time: no second clock read per publish.
            self.events.emit_message_publish(&message);
        }
        if message.retain
            && self.config.load().retain_available
            && self.retained.set(Arc::clone(&message)) == RetainOutcome::Full
        {
            tracing::debug!(topic = %message.topic, "retained store full; message not retained");
        }
        let routed = self.router.route(&message, |dropped| {
            self.stats.messages_dropped.inc();
            self.emit(EventKind::MessageDropped, || Event::MessageDropped {
                client_id: Some(dropped.mailbox.client_id().clone()),
                message: Arc::clone(&dropped.delivery.message),
                reason: dropped.reason.as_str(),
            });
        });
        if routed.queued == 0 && routed.dropped == 0 {
            self.emit(EventKind::MessageDropped, || Event::MessageDropped {
                client_id: None,
                message: Arc::clone(&message),
                reason: "no_subscribers",
            });
        }
        routed
    }

    /// Publishes a message from the broker itself (`$SYS`, the admin API): no ACL, no publisher.
    pub fn publish_internal(&self, topic: ByteString, payload: Bytes, qos: QoS, retain: bool) {
        self.publish(Arc::new(Message {
            topic,
            payload,
            qos,
            retain,
            properties: PublishProperties::default(),
            publisher: None,
            from_client_id: ByteString::new(),
            from_username: None,
            received_at: Instant::now(),
            received_at_ms: clock::now_ms(),
        }));
    }

    /// Ends a session: removes its subscriptions, drops its queue, and reports it.
    pub fn end_session(&self, state: &SessionState, reason: &'static str) {
        for record in state.subscriptions.values() {
            self.router.unsubscribe(&record.filter, &state.mailbox);
        }
        let dropped = state.mailbox.close();
        if !dropped.is_empty() {
            self.stats.messages_dropped.add(dropped.len() as u64);
        }
        if let Some(store) = &self.store {
            store.remove(&state.client.client_id);
        }
        let client = Arc::clone(&state.client);
        self.emit(EventKind::SessionTerminated, || Event::SessionTerminated { client, reason });
    }

    fn snapshot(state: &SessionState, disconnected_at_ms: u64) -> SessionSnapshot {
        SessionSnapshot {
            client_id: state.client.client_id.clone(),
            client: Arc::clone(&state.client),
            expiry_interval: state.expiry_interval,
            disconnected_at_ms,
            subscriptions: state
                .subscriptions
                .iter()
                .map(|(filter, record)| (filter.clone(), record.clone()))
                .collect(),
            inflight: state.outbound.iter().cloned().collect(),
            queued: state.mailbox.snapshot(),
        }
    }

    /// Saves every detached session (at shutdown, when their queues are final).
    pub async fn persist_sessions(&self) {
        let Some(store) = &self.store else { return };
        for entry in self.sessions.all() {
            if let Slot::Detached(d) = &*entry.slot.lock().await {
                store.save(Self::snapshot(&d.state, d.disconnected_at_ms));
            }
        }
    }

    /// Rebuilds the sessions the store saved before this start (detached, with their
    /// subscriptions, unacknowledged and queued messages, and the rest of their expiry).
    /// Returns how many were restored.
    pub fn restore_sessions(&self) -> usize {
        let Some(store) = &self.store else { return 0 };
        let now_ms = clock::now_ms();
        let mut restored = 0;
        for snapshot in store.load() {
            let elapsed = now_ms.saturating_sub(snapshot.disconnected_at_ms) / 1000;
            let remaining = if snapshot.expiry_interval == u32::MAX {
                None
            } else {
                match u64::from(snapshot.expiry_interval).checked_sub(elapsed) {
                    Some(left) if left > 0 => Some(Duration::from_secs(left)),
                    _ => {
                        store.remove(&snapshot.client_id);
                        continue;
                    }
                }
            };
            let id = SessionId(self.next_id());
            let mailbox = self.new_mailbox(id, snapshot.client_id.clone());
            mailbox.set_online(false);
            mailbox.unpop(snapshot.queued);
            let mut state = SessionState::new(id, Arc::clone(&mailbox), snapshot.client);
            state.expiry_interval = snapshot.expiry_interval;
            state.outbound = Outbound::from_entries(snapshot.inflight);
            for (filter, record) in snapshot.subscriptions {
                self.router.subscribe(&record.filter, &mailbox, record.options);
                state.subscriptions.insert(filter, record);
            }
            let inserted = self.sessions.insert_detached(
                &snapshot.client_id,
                Box::new(state),
                snapshot.disconnected_at_ms,
            );
            if let Some((entry, generation)) = inserted {
                if let Some(after) = remaining {
                    self.spawn_expiry(&entry, generation, after);
                }
                restored += 1;
            }
        }
        restored
    }

    /// Keeps a session for its client after the connection ended: starts its expiry timer and, for
    /// a will with a delay, the will timer.
    pub async fn detach_session(
        &self,
        entry: &Arc<Entry>,
        conn_id: u64,
        state: Box<SessionState>,
        will: Option<PendingWill>,
    ) {
        let expiry = state.expiry_interval;
        let will_delay = will.as_ref().map(PendingWill::delay_secs);
        state.mailbox.set_online(false);
        if let Some(store) = &self.store {
            store.save(Self::snapshot(&state, clock::now_ms()));
        }
        match self.sessions.detach(entry, conn_id, state, will).await {
            Ok(generation) => {
                if expiry != u32::MAX {
                    self.spawn_expiry(entry, generation, Duration::from_secs(u64::from(expiry)));
                }
                if let Some(delay) = will_delay.filter(|&delay| delay < expiry) {
                    self.spawn_will(entry, generation, Duration::from_secs(u64::from(delay)));
                }
            }
            // Taken over meanwhile: the new owner has the session; nothing to keep here.
            Err((state, will)) => {
                tracing::debug!(client_id = %state.client.client_id, "detach after takeover ignored");
                drop(will);
            }
        }
    }

    fn spawn_expiry(&self, entry: &Arc<Entry>, generation: u64, after: Duration) {
        let broker = self.this.clone();
        let entry = Arc::clone(entry);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Some(broker) = broker.upgrade() else { return };
            if let Some((state, will)) = broker.sessions.take_detached(&entry, generation).await {
                // A will still waiting is sent when the session ends.
                if let Some(will) = will {
                    broker.publish_will(will).await;
                }
                broker.end_session(&state, "expired");
            }
        });
    }

    fn spawn_will(&self, entry: &Arc<Entry>, generation: u64, after: Duration) {
        let broker = self.this.clone();
        let entry = Arc::clone(entry);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Some(broker) = broker.upgrade() else { return };
            if let Some(will) = broker.sessions.take_will(&entry, generation).await {
                broker.publish_will(will).await;
            }
        });
    }

    /// Publishes a will message, if its client may publish to the will topic.
    pub async fn publish_will(&self, pending: PendingWill) {
        let will = &pending.will;
        let allowed = match pending.authorizer.publish(&will.topic, will.qos, will.retain) {
            Check::Ready(p) => p,
            Check::Pending(fut) => tokio::time::timeout(self.config.load().auth_timeout, fut)
                .await
                .unwrap_or(Permission::Deny),
        };
        if allowed != Permission::Allow {
            tracing::info!(client_id = %pending.client.client_id, topic = %will.topic, "will not published: not authorized");
            return;
        }
        let props = &will.properties;
        self.publish(Arc::new(Message {
            topic: will.topic.clone(),
            payload: will.payload.clone(),
            qos: will.qos,
            retain: will.retain,
            properties: PublishProperties {
                payload_format_indicator: props.payload_format_indicator,
                message_expiry_interval: props.message_expiry_interval,
                content_type: props.content_type.clone(),
                response_topic: props.response_topic.clone(),
                correlation_data: props.correlation_data.clone(),
                user_properties: props.user_properties.clone(),
                ..PublishProperties::default()
            },
            publisher: Some(pending.session),
            from_client_id: pending.client.client_id.clone(),
            from_username: pending.client.username.clone(),
            received_at: Instant::now(),
            received_at_ms: clock::now_ms(),
        }));
    }

    /// Publishes NanoMQ's `$SYS/brokers/client_status/<clientid>` online message.
    pub fn sys_client_online(&self, client: &ClientIdentity, return_code: u8) {
        let payload = crate::sys::online_payload(client, return_code, clock::now_ms());
        self.publish_internal(
            crate::sys::client_status_topic(&client.client_id),
            payload,
            QoS::AtMostOnce,
            false,
        );
    }

    /// Publishes NanoMQ's `$SYS/brokers/client_status/<clientid>` offline message.
    pub fn sys_client_offline(&self, client: &ClientIdentity, reason_code: u8) {
        let payload = crate::sys::offline_payload(client, reason_code, clock::now_ms());
        self.publish_internal(
            crate::sys::client_status_topic(&client.client_id),
            payload,
            QoS::AtMostOnce,
            false,
        );
    }
}

/// The queue limits of `config`.
fn queue_limits(config: &BrokerConfig) -> QueueLimits {
    QueueLimits {
        max_len: config.max_mqueue_len,
        overflow: config.mqueue_overflow,
        queue_qos0_offline: config.queue_qos0_offline,
    }
}
