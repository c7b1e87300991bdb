//! [`Relay`]: opens the outbox, builds the targets, and serves `EventIngest` and `EventStream`
//! (with `grpc.health.v1` and server reflection) while the delivery tasks and the log pruner run.

use std::{
    collections::HashMap,
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use parking_lot::Mutex;
use proto::events::v1::{
    Event, dead_letters_server::DeadLettersServer, event_stream_server::EventStreamServer,
};
use tern_config::WebhookConfig;
use tokio::{
    net::TcpListener,
    sync::{broadcast, watch},
};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::{
    Metrics,
    delivery::{self, ReplaceError, Target, TargetChanges, TargetError, TargetSet, now_ms},
    ingest::IngestService,
    outbox::{DeadLetter, Outbox, OutboxError},
    route,
    stream::StreamService,
};

/// How often old log entries are pruned and the size gauges refreshed.
const PRUNE_INTERVAL: Duration = Duration::from_secs(10);
/// HTTP/2 flow-control window per stream (the connection's is twice that): room for a few of a
/// broker's 1 MiB batches in flight while the relay commits the previous ones.
const STREAM_WINDOW: u32 = 8 << 20;
/// Largest HTTP/2 frame a peer may send (HTTP/2's default is 16 KiB): a broker's batches go in
/// few frames, so in few writes.
const MAX_FRAME: u32 = 1 << 20;
/// Largest `EventBatch` accepted: a batch of one event carrying the largest MQTT message a broker
/// accepts, plus room for its fields (gRPC's default of 4 MiB would refuse a 5 MB publish and
/// hold up that broker's stream for good).
const MAX_BATCH_MESSAGE: usize = tern_config::MAX_PACKET_SIZE_LIMIT.as_u64() as usize + (1 << 20);
/// Live events buffered per subscriber before it must catch up from the log.
const LIVE_BUFFER: usize = 4096;

/// The relay's settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The webhook targets (`webhook {}` then `webhooks.<name> {}`).
    pub targets: Vec<WebhookConfig>,
    /// The outbox file.
    pub outbox: PathBuf,
    /// How long delivered events stay in the log for `Subscribe` resumes.
    pub retention: Duration,
    /// Drop, at open, the pending deliveries of targets not among `targets` (true). A relay
    /// following a config store passes false: the store may hold more targets, and the first
    /// [`Relay::set_targets`] after the store was read drops what is really gone.
    pub forget_unconfigured: bool,
}

impl RelayConfig {
    /// The relay's settings of a loaded configuration.
    pub fn from_config(config: &tern_config::Config) -> Self {
        Self {
            targets: config.webhook_targets().cloned().collect(),
            outbox: config.webhook_relay.outbox.clone(),
            retention: config.webhook_relay.retention,
            forget_unconfigured: true,
        }
    }
}

/// Why the relay cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A target's settings are unusable.
    #[error("webhook target {0}")]
    Target(#[from] TargetError),
    /// The outbox cannot be opened or used.
    #[error("{0}")]
    Outbox(#[from] OutboxError),
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The metrics listener failed.
    #[error("metrics endpoint: {0}")]
    Metrics(std::io::Error),
    /// The TLS settings do not load.
    #[error("webhook_relay.tls: {0}")]
    Tls(std::io::Error),
    /// A blocking outbox task failed (panicked or was cancelled).
    #[error("outbox task: {0}")]
    Task(String),
    /// The delivery threads could not be started.
    #[error("delivery threads: {0}")]
    Delivery(std::io::Error),
}

impl From<ReplaceError> for RelayError {
    fn from(e: ReplaceError) -> Self {
        match e {
            ReplaceError::Target(e) => Self::Target(e),
            ReplaceError::Outbox(e) => Self::Outbox(e),
        }
    }
}

/// What the services and tasks share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) outbox: Outbox,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) targets: Arc<TargetSet>,
    /// Accepted events, after they are durable, for live subscribers.
    pub(crate) live: broadcast::Sender<(u64, Arc<Event>)>,
    /// The event types wanted from brokers (rules plus subscribers).
    pub(crate) wanted: watch::Sender<u32>,
    /// The event types the targets' rules name.
    rules_mask: AtomicU32,
    /// Connected subscribers' type masks.
    pub(crate) subscribers: Mutex<HashMap<u64, u32>>,
    pub(crate) next_subscriber: AtomicU64,
    retention: Duration,
    /// Cancelled when the server is shutting down: open streams end, so that a graceful shutdown
    /// does not wait for brokers and subscribers that never hang up.
    pub(crate) stopping: CancellationToken,
}

impl Inner {
    pub(crate) fn update_wanted(&self) {
        let rules = self.rules_mask.load(Relaxed);
        let mask = self.subscribers.lock().values().fold(rules, |m, s| m | s);
        self.wanted.send_if_modified(|current| {
            let changed = *current != mask;
            *current = mask;
            changed
        });
    }
}

/// A webhook relay.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl Relay {
    /// Opens the outbox and prepares the targets. Pending deliveries of targets no longer
    /// configured are dropped (with a warning) unless `forget_unconfigured` is off.
    pub fn open(config: RelayConfig) -> Result<Self, RelayError> {
        let targets = config
            .targets
            .into_iter()
            .map(|t| Target::new(t).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let outbox = Outbox::open(&config.outbox)?;
        let metrics = Arc::new(Metrics::default());
        if config.forget_unconfigured {
            let names: Vec<&str> = targets.iter().map(|t| &*t.name).collect();
            let forgotten = outbox.forget_targets(&names)?;
            if forgotten > 0 {
                tracing::warn!(
                    forgotten,
                    "dropped pending webhooks of targets no longer configured"
                );
                metrics.dropped.fetch_add(forgotten, Relaxed);
            }
        }
        let stats = outbox.stats()?;
        metrics.pending.store(stats.pending, Relaxed);
        metrics.outbox_events.store(stats.log_events, Relaxed);
        metrics.outbox_dead.store(stats.dead, Relaxed);
        let rules_mask = rules_mask(&targets);
        Ok(Self {
            inner: Arc::new(Inner {
                outbox,
                metrics,
                targets: Arc::new(TargetSet::new(targets)),
                live: broadcast::channel(LIVE_BUFFER).0,
                wanted: watch::channel(rules_mask).0,
                rules_mask: AtomicU32::new(rules_mask),
                subscribers: Mutex::new(HashMap::new()),
                next_subscriber: AtomicU64::new(1),
                retention: config.retention,
                stopping: CancellationToken::new(),
            }),
        })
    }

    /// The relay's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.inner.metrics)
    }

    /// The settings of the targets the relay delivers to now.
    pub fn targets(&self) -> Vec<WebhookConfig> {
        self.inner.targets.current().iter().map(|t| t.config.clone()).collect()
    }

    /// Replaces the targets while the relay runs (the config store changed them):
    ///
    /// - a target whose settings are unchanged keeps running untouched;
    /// - a changed target (same name) stops its requests in flight and goes on with every
    ///   delivery pending under its name, under the new settings (url, headers, encoding, pool,
    ///   timeouts, retries, delivery mode) — an interrupted request is sent again, so a receiver
    ///   may see an event twice (the `x-tern-event-id` header is the same);
    /// - a removed target's pending deliveries are dropped from the outbox, logged and counted
    ///   (`tern_relay_webhooks_dropped_total`), as are those of any other name not configured
    ///   (a target removed while the relay was down, see [`RelayConfig::forget_unconfigured`]);
    /// - a new target gets the events accepted from now on;
    /// - the event types brokers are asked for follow the new rules at once (every broker stream
    ///   gets a fresh ack), so a newly named event is produced without restarting brokers.
    ///
    /// Settings that cannot be used change nothing. Blocking: it waits for an append in progress
    /// and writes the outbox.
    pub fn set_targets(&self, targets: Vec<WebhookConfig>) -> Result<TargetChanges, RelayError> {
        let inner = &self.inner;
        let changes = inner.targets.replace(targets, &inner.outbox)?;
        if changes.dropped > 0 {
            tracing::warn!(
                removed = ?changes.removed,
                dropped = changes.dropped,
                "dropped the pending webhooks of targets no longer configured"
            );
            inner.metrics.dropped.fetch_add(changes.dropped, Relaxed);
            let _ = inner
                .metrics
                .pending
                .fetch_update(Relaxed, Relaxed, |p| Some(p.saturating_sub(changes.dropped)));
        }
        if !changes.is_empty() {
            tracing::info!(
                added = ?changes.added,
                changed = ?changes.changed,
                removed = ?changes.removed,
                "webhook targets replaced"
            );
        }
        inner.rules_mask.store(rules_mask(&inner.targets.current()), Relaxed);
        inner.update_wanted();
        Ok(changes)
    }

    /// Dead letters, oldest first, of one target or all, at most `limit`.
    pub async fn dead_letters(
        &self,
        target: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, RelayError> {
        let outbox = self.inner.outbox.clone();
        tokio::task::spawn_blocking(move || outbox.dead_letters(target.as_deref(), limit))
            .await
            .map_err(|e| RelayError::Task(e.to_string()))?
            .map_err(RelayError::from)
    }

    /// Queues dead letters of `target` for delivery again (all of them when `offsets` is
    /// empty); returns how many.
    pub async fn redrive(&self, target: &str, offsets: Vec<u64>) -> Result<u64, RelayError> {
        let outbox = self.inner.outbox.clone();
        let name = target.to_string();
        let count = tokio::task::spawn_blocking(move || outbox.redrive(&name, &offsets, now_ms()))
            .await
            .map_err(|e| RelayError::Task(e.to_string()))??;
        let m = &self.inner.metrics;
        m.pending.fetch_add(count, Relaxed);
        m.queued.fetch_add(count, Relaxed);
        if let Some(t) = self.inner.targets.current().iter().find(|t| &*t.name == target) {
            t.rescan.store(true, Relaxed);
            t.wake.notify_one();
        }
        Ok(count)
    }

    /// Serves gRPC on `listener` and delivers webhooks until `shutdown` completes. Pending
    /// deliveries stay in the outbox for the next start.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RelayError> {
        self.serve_secured(listener, proto::grpc::Security::default(), shutdown).await
    }

    /// [`Relay::serve`] requiring `security`'s token on every EventIngest and EventStream call,
    /// over TLS when it has TLS settings (health and reflection stay open).
    pub async fn serve_secured(
        self,
        listener: TcpListener,
        security: proto::grpc::Security,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RelayError> {
        let builder = security.server().map_err(RelayError::Tls)?;
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<IngestService>().await;
        reporter.set_serving::<EventStreamServer<StreamService>>().await;
        reporter.set_serving::<DeadLettersServer<crate::dead_letters::DeadLetterService>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| RelayError::Reflection(e.to_string()))?;
        let stop = CancellationToken::new();
        let shared = delivery::Shared {
            outbox: self.inner.outbox.clone(),
            metrics: Arc::clone(&self.inner.metrics),
            targets: Arc::clone(&self.inner.targets),
            scan: Arc::new(Mutex::new(())),
        };
        let background = delivery::runtime().map_err(RelayError::Delivery)?;
        let deliveries = background.spawn(delivery::run(shared, stop.clone()));
        let pruner = tokio::spawn(prune(Arc::clone(&self.inner), stop.clone()));
        // Wide HTTP/2 windows: a broker streams up to 1 MiB batches back to back.
        let mut builder = builder
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(2 * STREAM_WINDOW)
            .max_frame_size(MAX_FRAME);
        let result = builder
            .add_service(health)
            .add_service(reflection)
            .add_service(InterceptedService::new(
                IngestService {
                    inner: Arc::clone(&self.inner),
                    max_message_size: MAX_BATCH_MESSAGE,
                },
                security.interceptor(),
            ))
            .add_service(EventStreamServer::with_interceptor(
                StreamService { inner: Arc::clone(&self.inner) },
                security.interceptor(),
            ))
            .add_service(DeadLettersServer::with_interceptor(
                crate::dead_letters::DeadLetterService::new(self.clone()),
                security.interceptor(),
            ))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), {
                let stopping = self.inner.stopping.clone();
                async move {
                    shutdown.await;
                    stopping.cancel();
                }
            })
            .await;
        stop.cancel();
        let _ = deliveries.await;
        let _ = pruner.await;
        drop(background);
        result.map_err(RelayError::from)
    }
}

/// The type mask of the events any of `targets` wants.
fn rules_mask(targets: &[Arc<Target>]) -> u32 {
    targets.iter().fold(0, |m, t| m | route::rules_mask(&t.config.events))
}

/// Prunes the log beyond the retention and refreshes the size gauges.
async fn prune(inner: Arc<Inner>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
            _ = stop.cancelled() => return,
        }
        let outbox = inner.outbox.clone();
        let cutoff =
            now_ms().saturating_sub(u64::try_from(inner.retention.as_millis()).unwrap_or(u64::MAX));
        let result = tokio::task::spawn_blocking(move || {
            outbox.prune(cutoff)?;
            outbox.stats()
        })
        .await;
        match result {
            Ok(Ok(stats)) => {
                inner.metrics.outbox_events.store(stats.log_events, Relaxed);
                inner.metrics.outbox_dead.store(stats.dead, Relaxed);
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot prune the outbox"),
            Err(e) => tracing::error!(error = %e, "outbox pruner failed"),
        }
    }
}

/// Serves the metrics as Prometheus text at `GET /metrics` on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    tern_telemetry::prometheus::serve(listener, move || metrics.render(), shutdown)
        .await
        .map_err(RelayError::Metrics)
}
