//! HTTP delivery: per target, a dispatcher reads pending deliveries from the outbox and hands
//! each to one of `pool_size` lanes chosen by client id (so one client's events go out one at a
//! time, in order); each lane POSTs, retries with exponential backoff and jitter until the
//! target's `max_age`, and records the outcome (delivered: removed from the outbox in batches;
//! given up: moved to the dead letters).
//!
//! What counts as delivered is the target's `delivery` mode: `response` waits for the answer
//! (2xx delivered; timeouts, 5xx, 408, 429 retried; any other status is a dead letter), `sent`
//! stops once the request has been handed to the connection in full (NanoMQ's behaviour: a
//! receiver that never answers still gets each event once). In `sent` mode the answer is awaited
//! in the background up to `cancel_timeout` so an answering receiver keeps its keep-alive
//! connection; at most `pool_size` such requests linger, the oldest is closed beyond that, so a
//! receiver that never answers cannot pile up connections.
//!
//! The set of targets can change while the relay runs ([`TargetSet::replace`], from the config
//! store): a supervisor stops the tasks of every target that was removed or changed — what they
//! held unsent goes back to the outbox's pending set, see [`Claim`] — and starts tasks for every
//! new or changed target. A changed target keeps its name, so it goes on with the deliveries
//! already pending for that name, under its new settings.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    hash::{Hash as _, Hasher as _},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use tern_config::{DeliveryMode, WebhookConfig};
use tokio::{
    sync::{Notify, mpsc, oneshot},
    task::{AbortHandle, JoinSet},
};
use tokio_util::sync::CancellationToken;

use crate::{
    EVENT_ID_HEADER, Metrics,
    outbox::{Outbox, Pending},
    route,
};

/// Deliveries read from the outbox per query.
const PAGE: usize = 512;
/// Deliveries waiting in one lane.
const LANE_DEPTH: usize = 16;
/// Most deliveries a dispatcher holds in memory for lanes that are full.
const HELD: usize = 8192;
/// Most completions removed from the outbox in one transaction.
const COMPLETION_BATCH: usize = 1024;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a target's settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{target}: {reason}")]
pub struct TargetError {
    /// The configuration key of the target (`webhook` or `webhooks.<name>`).
    pub target: String,
    /// What is wrong.
    pub reason: String,
}

/// One webhook target at run time.
#[derive(Debug)]
pub struct Target {
    /// Its settings.
    pub config: WebhookConfig,
    /// Its name (the outbox key).
    pub name: Arc<str>,
    client: reqwest::Client,
    headers: HeaderMap,
    /// Wakes the dispatcher: new deliveries were queued.
    pub(crate) wake: Notify,
    /// A lane took a delivery (the dispatcher may have skipped a full lane).
    lane_freed: Notify,
    /// Start the next scan from the beginning (dead letters were re-driven).
    pub(crate) rescan: AtomicBool,
    /// Offsets read from the outbox and not yet recorded as delivered or dead. Shared with the
    /// target that replaces this one (same name), so a delivery whose completion is still being
    /// written is not read and sent again by the new target's dispatcher.
    inflight: Arc<Mutex<HashSet<u64>>>,
    /// `sent` mode: requests whose answer is still awaited in the background, oldest first.
    lingering: Mutex<VecDeque<AbortHandle>>,
}

impl Target {
    /// Builds the HTTP client and headers of a target.
    pub fn new(config: WebhookConfig) -> Result<Self, TargetError> {
        let key = if config.name == "webhook" {
            "webhook".to_string()
        } else {
            format!("webhooks.{}", config.name)
        };
        let invalid = |reason: String| TargetError { target: key.clone(), reason };
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("headers.{name}: not a valid header name")))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| invalid(format!("headers.{name}: not a valid header value")))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let pool = usize::try_from(config.pool_size).unwrap_or(usize::MAX);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.cancel_timeout)
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(60))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        if let Some(tls) = &config.tls {
            if let Some(ca) = &tls.cacertfile {
                let pem = std::fs::read(ca)
                    .map_err(|e| invalid(format!("ssl.cacertfile {}: {e}", ca.display())))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| invalid(format!("ssl.cacertfile {}: {e}", ca.display())))?;
                builder = builder.tls_certs_only(certs);
            }
            match (&tls.certfile, &tls.keyfile) {
                (Some(_), Some(_)) if tls.key_password.is_some() => {
                    return Err(invalid(
                        "ssl.key_password: encrypted client keys are not supported for webhooks; \
                         use an unencrypted keyfile"
                            .into(),
                    ));
                }
                (Some(cert), Some(key)) => {
                    let mut pem = std::fs::read(key)
                        .map_err(|e| invalid(format!("ssl.keyfile {}: {e}", key.display())))?;
                    pem.extend(
                        std::fs::read(cert).map_err(|e| {
                            invalid(format!("ssl.certfile {}: {e}", cert.display()))
                        })?,
                    );
                    let identity = reqwest::Identity::from_pem(&pem)
                        .map_err(|e| invalid(format!("ssl: bad client certificate or key: {e}")))?;
                    builder = builder.identity(identity);
                }
                (None, None) => {}
                _ => return Err(invalid("ssl: certfile and keyfile go together".into())),
            }
        }
        let client =
            builder.build().map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            name: Arc::from(config.name.as_str()),
            config,
            client,
            headers,
            wake: Notify::new(),
            lane_freed: Notify::new(),
            rescan: AtomicBool::new(false),
            inflight: Arc::default(),
            lingering: Mutex::new(VecDeque::new()),
        })
    }

    fn lanes(&self) -> usize {
        usize::try_from(self.config.pool_size).unwrap_or(1).max(1)
    }
}

/// The configured targets, replaceable while the relay runs.
#[derive(Debug, Default)]
pub struct TargetSet {
    list: RwLock<Arc<Vec<Arc<Target>>>>,
    /// Serialises [`TargetSet::replace`] calls (each builds on the list it read).
    replacing: Mutex<()>,
    /// Wakes the delivery supervisor: the list changed.
    changed: Notify,
}

/// What [`TargetSet::replace`] changed, by target name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TargetChanges {
    /// Targets that were not configured before.
    pub added: Vec<String>,
    /// Targets whose settings changed (their pending deliveries go out under the new settings).
    pub changed: Vec<String>,
    /// Targets no longer configured.
    pub removed: Vec<String>,
    /// Pending deliveries of the removed targets, dropped from the outbox.
    pub dropped: u64,
}

impl TargetChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl TargetSet {
    /// A set holding `targets`.
    pub fn new(targets: Vec<Arc<Target>>) -> Self {
        Self {
            list: RwLock::new(Arc::new(targets)),
            replacing: Mutex::new(()),
            changed: Notify::new(),
        }
    }

    /// The targets now.
    pub fn current(&self) -> Arc<Vec<Arc<Target>>> {
        Arc::clone(&self.list.read())
    }

    /// The targets, held: [`TargetSet::replace`] waits until the guard is dropped (an append
    /// routes a batch to one list from start to commit).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Arc<Vec<Arc<Target>>>> {
        self.list.read()
    }

    /// Replaces the targets by `configs`: a target whose settings did not change keeps running
    /// untouched; a changed one is rebuilt and takes over the deliveries pending under its name;
    /// the pending deliveries of every name not in `configs` are dropped from `outbox` (the
    /// caller logs and counts them). Settings that cannot be used (a bad header, an unreadable
    /// certificate) change nothing. Blocking (an outbox write).
    pub fn replace(
        &self,
        configs: Vec<WebhookConfig>,
        outbox: &Outbox,
    ) -> Result<TargetChanges, ReplaceError> {
        let _replacing = self.replacing.lock();
        let mut changes = TargetChanges::default();
        let current = self.current();
        let mut next = Vec::with_capacity(configs.len());
        for config in configs {
            match current.iter().find(|t| *t.name == *config.name) {
                Some(old) if old.config == config => next.push(Arc::clone(old)),
                Some(old) => {
                    let mut target = Target::new(config)?;
                    target.inflight = Arc::clone(&old.inflight);
                    changes.changed.push(target.name.to_string());
                    next.push(Arc::new(target));
                }
                None => {
                    let target = Target::new(config)?;
                    changes.added.push(target.name.to_string());
                    next.push(Arc::new(target));
                }
            }
        }
        changes.removed = current
            .iter()
            .filter(|t| !next.iter().any(|n| n.name == t.name))
            .map(|t| t.name.to_string())
            .collect();
        let mut list = self.list.write();
        // No append is routing with the old list now, so none can queue for a removed target
        // after this. Also drops what is queued for targets removed while the relay was down
        // (a relay following a store keeps those until it has read it).
        let keep: Vec<&str> = next.iter().map(|t| &*t.name).collect();
        changes.dropped = outbox.forget_targets(&keep)?;
        if changes.is_empty() {
            return Ok(changes);
        }
        *list = Arc::new(next);
        drop(list);
        self.changed.notify_one();
        Ok(changes)
    }
}

/// Why [`TargetSet::replace`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    /// A target's settings are unusable.
    #[error("webhook target {0}")]
    Target(#[from] TargetError),
    /// The outbox could not drop a removed target's deliveries.
    #[error("{0}")]
    Outbox(#[from] crate::OutboxError),
}

/// What the delivery tasks share.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The outbox.
    pub outbox: Outbox,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The targets.
    pub targets: Arc<TargetSet>,
    /// Orders a dispatcher's "read pending, leave out what is in flight" against "record an
    /// outcome, forget it as in flight", so a snapshot taken before an outcome was recorded is
    /// never filtered after it was forgotten (which would send it twice). Held only in blocking
    /// sections, never across `.await`.
    pub scan: Arc<Mutex<()>>,
}

/// A completed delivery: its target and offset.
type Done = (Arc<Target>, u64);

/// The running tasks of one target.
struct Running {
    target: Arc<Target>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// How much lower the delivery threads' CPU priority is than the relay's (added to its nice
/// value, at most 19).
const DELIVERY_NICE: i32 = 10;

/// The runtime deliveries run on: threads (workers and blocking ones) of lower CPU priority than
/// the rest of the relay, so that when the CPU is short, taking brokers' events durably — and the
/// brokers themselves, on a shared machine — come first and deliveries catch up from the outbox
/// afterwards. Where CPU is to spare it changes nothing.
pub fn runtime() -> std::io::Result<Background> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("relay-delivery")
        .on_thread_start(|| {
            // Best effort: a platform or sandbox that refuses leaves the thread as it was.
            // Relative to the process (its main thread), not to the thread that started this one.
            let process = Some(rustix::process::getpid());
            if let Ok(now) = rustix::process::getpriority_process(process) {
                let _ = rustix::process::setpriority_process(None, (now + DELIVERY_NICE).min(19));
            }
        })
        .enable_all()
        .build()
        .map(|rt| Background(Some(rt)))
}

/// The delivery runtime; dropping it stops its threads without waiting, so it may be dropped
/// inside another runtime's task (as when the relay's serving future is dropped).
#[derive(Debug)]
pub struct Background(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Background {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &Self::Target {
        // Only `drop` takes it.
        self.0.as_ref().unwrap_or_else(|| unreachable!("the runtime is taken only on drop"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs the completion writer and, for every target of the set, its dispatcher and lanes —
/// stopping and starting them as the set changes — until `shutdown`.
pub async fn run(shared: Shared, shutdown: CancellationToken) {
    let (done_tx, done_rx) = mpsc::channel::<Done>(COMPLETION_BATCH * 4);
    let writer = tokio::spawn(completions(shared.clone(), done_rx));
    let mut running: HashMap<Arc<str>, Running> = HashMap::new();
    loop {
        let current = shared.targets.current();
        let stale: Vec<Arc<str>> = running
            .values()
            .filter(|r| !current.iter().any(|t| Arc::ptr_eq(t, &r.target)))
            .map(|r| Arc::clone(&r.target.name))
            .collect();
        for name in stale {
            if let Some(r) = running.remove(&name) {
                stop(r).await;
            }
        }
        for target in current.iter() {
            if !running.contains_key(&target.name) {
                let r = start(&shared, target, &done_tx, &shutdown);
                running.insert(Arc::clone(&target.name), r);
            }
        }
        tokio::select! {
            () = shared.targets.changed.notified() => {}
            () = shutdown.cancelled() => break,
        }
    }
    for (_, r) in running.drain() {
        stop(r).await;
    }
    drop(done_tx);
    let _ = writer.await;
}

/// Starts a target's lanes and dispatcher.
fn start(
    shared: &Shared,
    target: &Arc<Target>,
    done: &mpsc::Sender<Done>,
    shutdown: &CancellationToken,
) -> Running {
    let stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    let mut lanes = Vec::new();
    for _ in 0..target.lanes() {
        let (tx, rx) = mpsc::channel::<Claim>(LANE_DEPTH);
        tasks.spawn(lane(shared.clone(), Arc::clone(target), rx, done.clone(), stop.clone()));
        lanes.push(tx);
    }
    tasks.spawn(dispatch(shared.clone(), Arc::clone(target), lanes, stop.clone()));
    Running { target: Arc::clone(target), stop, tasks }
}

/// Stops a target's tasks and waits for them: what they held unsent is released (see [`Claim`]).
async fn stop(mut running: Running) {
    running.stop.cancel();
    while running.tasks.join_next().await.is_some() {}
}

/// A pending delivery a dispatcher read: its offset is in the target's in-flight set (so it is
/// not read again) until its outcome is recorded ([`Claim::settle`]), or until the claim is
/// dropped unsettled — the target was stopped before sending it — which puts it back for the
/// next dispatcher of that name.
struct Claim {
    item: Pending,
    inflight: Arc<Mutex<HashSet<u64>>>,
    settled: bool,
}

impl Claim {
    /// The outcome is being recorded; whoever records it forgets the offset as in flight.
    fn settle(&mut self) {
        self.settled = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.settled {
            self.inflight.lock().remove(&self.item.offset);
        }
    }
}

/// Removes delivered entries from the outbox in batches, then forgets them as in flight.
async fn completions(shared: Shared, mut rx: mpsc::Receiver<Done>) {
    let mut batch = Vec::with_capacity(COMPLETION_BATCH);
    while rx.recv_many(&mut batch, COMPLETION_BATCH).await > 0 {
        let outbox = shared.outbox.clone();
        let scan = Arc::clone(&shared.scan);
        let done = std::mem::take(&mut batch);
        let result = tokio::task::spawn_blocking(move || {
            let keys: Vec<(&str, u64)> =
                done.iter().map(|(t, offset)| (&*t.name, *offset)).collect();
            let _scan = scan.lock();
            let r = outbox.complete(&keys);
            for (t, offset) in &done {
                t.inflight.lock().remove(offset);
            }
            r
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot record delivered webhooks (they will be sent again)")
            }
            Err(e) => tracing::error!(error = %e, "completion writer failed"),
        }
    }
}

fn lane_of(client_id: &str, lanes: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    client_id.hash(&mut h);
    usize::try_from(h.finish() % lanes as u64).unwrap_or(0)
}

async fn dispatch(
    shared: Shared,
    target: Arc<Target>,
    lanes: Vec<mpsc::Sender<Claim>>,
    shutdown: CancellationToken,
) {
    // Deliveries read from the outbox, per lane, waiting for room in the lane. The outbox is read
    // once, in order (`cursor`), and at most `HELD` deliveries wait here, so a lane that is stuck
    // retrying holds up the others only once it has `HELD` deliveries waiting.
    let mut waiting: Vec<VecDeque<Claim>> = lanes.iter().map(|_| VecDeque::new()).collect();
    let mut held = 0usize;
    let mut cursor = 0u64;
    let mut exhausted = false;
    loop {
        if target.rescan.swap(false, Relaxed) {
            cursor = 0;
            exhausted = false;
        }
        // Read more while there is room.
        while !exhausted && held < HELD {
            let outbox = shared.outbox.clone();
            let scan = Arc::clone(&shared.scan);
            let t = Arc::clone(&target);
            let page = tokio::task::spawn_blocking(move || {
                let _scan = scan.lock();
                let mut items = outbox.pending(&t.name, cursor, PAGE)?;
                let last = items.last().map(|i| i.offset);
                let mut inflight = t.inflight.lock();
                items.retain(|i| inflight.insert(i.offset));
                Ok::<_, crate::OutboxError>((items, last))
            })
            .await;
            let (items, last) = match page {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    tracing::error!(target = %target.name, error = %e, "cannot read the outbox");
                    (Vec::new(), None)
                }
                Err(_) => (Vec::new(), None),
            };
            let Some(last) = last else {
                exhausted = true;
                break;
            };
            cursor = last;
            for item in items {
                let lane = lane_of(route::client_id(&item.event), lanes.len());
                let inflight = Arc::clone(&target.inflight);
                waiting[lane].push_back(Claim { item, inflight, settled: false });
                held += 1;
            }
        }
        // Hand what fits to the lanes, in order per lane.
        for (queue, lane) in waiting.iter_mut().zip(&lanes) {
            while let Some(item) = queue.pop_front() {
                match lane.try_send(item) {
                    Ok(()) => held -= 1,
                    Err(mpsc::error::TrySendError::Full(item)) => {
                        queue.push_front(item);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        }
        tokio::select! {
            _ = target.wake.notified() => exhausted = false,
            _ = target.lane_freed.notified(), if held > 0 => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The outcome of one attempt.
enum Outcome {
    Delivered,
    Retry(String),
    Dead(String),
}

async fn lane(
    shared: Shared,
    target: Arc<Target>,
    mut rx: mpsc::Receiver<Claim>,
    done: mpsc::Sender<Done>,
    shutdown: CancellationToken,
) {
    let config = &target.config;
    loop {
        let mut claim = tokio::select! {
            claim = rx.recv() => match claim { Some(claim) => claim, None => return },
            _ = shutdown.cancelled() => return,
        };
        target.lane_freed.notify_one();
        let item = claim.item.clone();
        if let Some(error) = &item.decode_error {
            // Stored as the broker sent it and checked only for framing at intake.
            claim.settle();
            kill(&shared, &target, item.offset, format!("the event does not decode: {error}"))
                .await;
            continue;
        }
        let Some(body) = crate::body::render(&item.event, config.body_encoding) else {
            // Nothing to send (an event without payload): count it as done.
            claim.settle();
            let _ = done.send((Arc::clone(&target), item.offset)).await;
            continue;
        };
        let body = Bytes::from(body);
        let mut attempt: u32 = 0;
        loop {
            let outcome = tokio::select! {
                outcome = send(&target, &item.event.id, body.clone()) => outcome,
                _ = shutdown.cancelled() => return,
            };
            match outcome {
                Outcome::Delivered => {
                    shared.metrics.delivered.fetch_add(1, Relaxed);
                    shared.metrics.pending.fetch_sub(1, Relaxed);
                    shared.metrics.observe_latency(Duration::from_millis(
                        now_ms().saturating_sub(item.enqueued_ms),
                    ));
                    claim.settle();
                    let _ = done.send((Arc::clone(&target), item.offset)).await;
                    break;
                }
                Outcome::Retry(reason) => {
                    let delay = backoff(config.retry_initial, config.retry_max, attempt);
                    let age = Duration::from_millis(now_ms().saturating_sub(item.enqueued_ms));
                    if age + delay > config.max_age {
                        let reason = format!(
                            "gave up after {} (max_age); last attempt: {reason}",
                            tern_config::format_duration(age)
                        );
                        claim.settle();
                        kill(&shared, &target, item.offset, reason).await;
                        break;
                    }
                    shared.metrics.retried.fetch_add(1, Relaxed);
                    tracing::debug!(target = %target.name, id = %item.event.id, %reason, ?delay, "webhook will be retried");
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                Outcome::Dead(reason) => {
                    claim.settle();
                    kill(&shared, &target, item.offset, reason).await;
                    break;
                }
            }
        }
    }
}

async fn kill(shared: &Shared, target: &Arc<Target>, offset: u64, reason: String) {
    tracing::warn!(target = %target.name, offset, %reason, "webhook moved to the dead letters");
    let outbox = shared.outbox.clone();
    let scan = Arc::clone(&shared.scan);
    let t = Arc::clone(target);
    let result = tokio::task::spawn_blocking(move || {
        let _scan = scan.lock();
        let r = outbox.kill(&t.name, offset, &reason, now_ms());
        t.inflight.lock().remove(&offset);
        r
    })
    .await;
    match result {
        Ok(Ok(())) => {
            shared.metrics.dead_lettered.fetch_add(1, Relaxed);
            shared.metrics.pending.fetch_sub(1, Relaxed);
        }
        Ok(Err(e)) => tracing::error!(error = %e, "cannot record a dead letter"),
        Err(e) => tracing::error!(error = %e, "dead letter writer failed"),
    }
}

/// `initial × 2^attempt`, with ±50% jitter, capped at `max`.
fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let base = initial.saturating_mul(1u32 << attempt.min(20)).min(max);
    base.mul_f64(0.5 + fastrand::f64()).min(max)
}

async fn send(target: &Target, id: &str, body: Bytes) -> Outcome {
    let timeout = target.config.cancel_timeout;
    let request = target.client.post(&target.config.url).headers(target.headers.clone());
    let request = match HeaderValue::from_str(id) {
        Ok(v) => request.header(EVENT_ID_HEADER, v),
        Err(_) => request,
    };
    match target.config.delivery {
        DeliveryMode::Response => {
            let response = match tokio::time::timeout(timeout, request.body(body).send()).await {
                Err(_) => return Outcome::Retry(format!("no answer within {timeout:?}")),
                Ok(Err(e)) => return Outcome::Retry(describe(&e)),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            // Read the answer so the connection goes back to the pool.
            let _ = tokio::time::timeout(timeout, response.bytes()).await;
            if status.is_success() {
                Outcome::Delivered
            } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                Outcome::Retry(format!("HTTP {status}"))
            } else {
                Outcome::Dead(format!("HTTP {status}"))
            }
        }
        DeliveryMode::Sent => {
            let (written_tx, mut written_rx) = oneshot::channel();
            let len = body.len();
            let stream = SentBody { data: Some(body), yielded: false, written: Some(written_tx) };
            let mut pending = Box::pin(
                request.header(CONTENT_LENGTH, len).body(reqwest::Body::wrap_stream(stream)).send(),
            );
            let raced = tokio::time::timeout(timeout, async {
                tokio::select! {
                    biased;
                    result = &mut pending => Some(result),
                    written = &mut written_rx => match written {
                        Ok(()) => None,
                        Err(_) => Some((&mut pending).await),
                    },
                }
            })
            .await;
            match raced {
                Err(_) => Outcome::Retry(format!("request not written within {timeout:?}")),
                Ok(Some(Ok(_answered))) => Outcome::Delivered,
                Ok(Some(Err(e))) => Outcome::Retry(describe(&e)),
                Ok(None) => {
                    linger(target, pending, timeout);
                    Outcome::Delivered
                }
            }
        }
    }
}

/// Awaits the answer of a written `sent`-mode request in the background (so the connection can
/// be reused), closing the oldest such request beyond `pool_size`.
fn linger<F>(target: &Target, pending: Pin<Box<F>>, timeout: Duration)
where
    F: Future + Send + 'static,
{
    let task = tokio::spawn(async move {
        let _ = tokio::time::timeout(timeout, pending).await;
    });
    let mut lingering = target.lingering.lock();
    lingering.retain(|t| !t.is_finished());
    lingering.push_back(task.abort_handle());
    while lingering.len() > target.lanes() {
        if let Some(oldest) = lingering.pop_front() {
            oldest.abort();
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{what}: {}", e.to_string().replace(e.url().map_or("", |u| u.as_str()), "<url>"))
}

/// A request body that reports when the HTTP stack has taken all of it (`sent` mode).
struct SentBody {
    data: Option<Bytes>,
    yielded: bool,
    written: Option<oneshot::Sender<()>>,
}

impl SentBody {
    fn signal(&mut self) {
        if self.yielded
            && let Some(tx) = self.written.take()
        {
            let _ = tx.send(());
        }
    }
}

impl futures_util::Stream for SentBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.data.take() {
            Some(data) => {
                self.yielded = true;
                Poll::Ready(Some(Ok(data)))
            }
            None => {
                self.signal();
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for SentBody {
    fn drop(&mut self) {
        // The HTTP stack drops the body once it has written the announced length.
        self.signal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::v1::{Event, EventBatch};

    #[test]
    fn deliveries_run_on_threads_of_lower_priority_than_the_process() {
        let nice = |pid| rustix::process::getpriority_process(pid).expect("getpriority");
        let process = nice(Some(rustix::process::getpid()));
        let rt = runtime().expect("runtime");
        let rt = &*rt;
        let (worker, blocking) = rt.block_on(async {
            let worker = tokio::spawn(async move { nice(None) }).await.expect("task");
            let blocking = tokio::task::spawn_blocking(move || nice(None)).await.expect("task");
            (worker, blocking)
        });
        let expected = (process + DELIVERY_NICE).min(19);
        assert_eq!((worker, blocking), (expected, expected), "process nice {process}");
        assert_eq!(nice(None), process, "the calling thread is left alone");
    }

    fn targets(text: &str) -> Vec<WebhookConfig> {
        let env = tern_config::Env::new();
        match tern_config::parse_str(text, "test.conf", std::path::Path::new("."), &env) {
            Ok(loaded) => loaded.config.webhook_targets().cloned().collect(),
            Err(e) => panic!("test config: {e}"),
        }
    }

    const A: &str =
        "webhooks.a { url = \"http://127.0.0.1:1/a\", events = [{event = on_message_publish}] }\n";
    const B: &str =
        "webhooks.b { url = \"http://127.0.0.1:1/b\", events = [{event = on_message_publish}] }\n";

    #[test]
    fn replace_keeps_unchanged_targets_hands_over_changed_ones_and_drops_removed_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(&dir.path().join("outbox.redb")).expect("outbox");
        let set = TargetSet::new(
            targets(&format!("{A}{B}"))
                .into_iter()
                .map(|c| Target::new(c).map(Arc::new).expect("target"))
                .collect(),
        );
        let before = set.current();
        // One event queued for each target.
        let batch = EventBatch {
            node_id: "n1".into(),
            incarnation: 1,
            events: vec![Event { sequence: 1, ..Default::default() }],
            first_sequence: 0,
        };
        let names: Vec<Arc<str>> = before.iter().map(|t| Arc::clone(&t.name)).collect();
        outbox.append(batch, 0, &names, |_, to| to.extend([0, 1])).expect("append");

        // Same settings: nothing changes, the running target stays.
        let same = set.replace(targets(&format!("{A}{B}")), &outbox).expect("replace");
        assert!(same.is_empty() && same.dropped == 0, "{same:?}");
        assert!(Arc::ptr_eq(&set.current()[0], &before[0]));

        // `a` changes its url, `b` goes, `c` comes.
        let next = "webhooks.a { url = \"http://127.0.0.1:2/a\", events = [{event = on_message_publish}] }\n\
                    webhooks.c { url = \"http://127.0.0.1:1/c\", events = [{event = on_client_connected}] }\n";
        let changes = set.replace(targets(next), &outbox).expect("replace");
        assert_eq!(changes.changed, ["a"]);
        assert_eq!(changes.added, ["c"]);
        assert_eq!(changes.removed, ["b"]);
        assert_eq!(changes.dropped, 1, "b's queued delivery");
        let now = set.current();
        assert_eq!(now[0].config.url, "http://127.0.0.1:2/a");
        assert!(Arc::ptr_eq(&now[0].inflight, &before[0].inflight), "a's claims carry over");
        assert_eq!(outbox.pending("a", 0, 10).expect("pending").len(), 1, "a keeps its delivery");
        assert!(outbox.pending("b", 0, 10).expect("pending").is_empty());

        // A target that cannot be built changes nothing.
        let bad = "webhooks.a { url = \"http://127.0.0.1:1/a\", headers.x = \"bad\\nvalue\", events = [{event = on_message_publish}] }\n";
        let error = set.replace(targets(bad), &outbox).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("webhook target webhooks.a: headers.x: not a valid header value")
        );
        assert!(Arc::ptr_eq(&set.current()[0], &now[0]));
        assert_eq!(set.current().len(), 2);
    }
}
