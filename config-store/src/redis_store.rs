//! [`RedisStore`]: configuration sections in Redis, a change channel, and a background task that
//! keeps the [`Snapshot`] current.
//!
//! Pub/sub loses whatever is published while a subscriber is disconnected, so the task never
//! relies on it alone: it re-reads every section at start, after every reconnect (the RESP3
//! connection manager resubscribes by itself and reports it), on every change notice, and every
//! `poll_interval` as a safety net. A failed read keeps the last good sections and marks the
//! snapshot disconnected.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use redis::{PushKind, aio::ConnectionManager};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::{Applied, BoxFuture, ConfigStore, Section, Snapshot, StoreError, now_ms};

/// Capacity of the push-notice queue; a notice that does not fit is dropped, since the one
/// already queued triggers the same full re-read.
const PUSH_QUEUE: usize = 16;

/// How often services re-read the whole configuration without a notice, by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Settings of a [`RedisStore`].
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://…` or `redis+unix://…`; RESP3 is requested automatically.
    pub url: String,
    /// Prefix of every key and channel (`tern:`).
    pub prefix: String,
    /// Deadline of one command.
    pub timeout: Duration,
    /// How often the whole configuration is re-read even without a notice.
    pub poll_interval: Duration,
}

impl RedisSettings {
    /// The settings of a `redis {}` block.
    pub fn from_config(redis: &tern_config::RedisConfig) -> Self {
        Self {
            url: redis.url.expose().to_owned(),
            prefix: redis.prefix.clone(),
            timeout: redis.timeout,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

/// The key names under a prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// A section's document.
    pub fn section(&self, name: &str) -> String {
        format!("{}config:{name}", self.prefix)
    }

    /// The set of section names.
    pub fn sections(&self) -> String {
        format!("{}config:sections", self.prefix)
    }

    /// The version counter.
    pub fn version(&self) -> String {
        format!("{}config:version", self.prefix)
    }

    /// The data-set epoch.
    pub fn epoch(&self) -> String {
        format!("{}config:epoch", self.prefix)
    }

    /// The change channel.
    pub fn changed(&self) -> String {
        format!("{}config:changed", self.prefix)
    }

    /// The hash of applied reports.
    pub fn applied(&self) -> String {
        format!("{}config:applied", self.prefix)
    }

    /// A broker node's registration.
    pub fn node(&self, id: &str) -> String {
        format!("{}nodes:{id}", self.prefix)
    }

    /// The pattern matching every node registration.
    pub fn nodes_pattern(&self) -> String {
        format!("{}nodes:*", self.prefix)
    }
}

/// A RESP3 URL for `url` (pub/sub on a connection manager needs it).
pub fn resp3_url(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// Opens a connection manager (lazily connected) for `url`.
pub fn connection_manager(
    url: &str,
    timeout: Duration,
    push: Option<mpsc::Sender<redis::PushInfo>>,
) -> Result<ConnectionManager, StoreError> {
    let client = redis::Client::open(resp3_url(url))
        .map_err(|e| StoreError::Unavailable(format!("bad Redis URL: {e}")))?;
    let mut config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    if let Some(push) = push {
        config = config
            .set_push_sender(move |info: redis::PushInfo| push.try_send(info))
            .set_automatic_resubscription();
    }
    client.get_connection_manager_lazy(config).map_err(unavailable)
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Configuration in Redis.
#[derive(Debug, Clone)]
pub struct RedisStore {
    keys: Keys,
    timeout: Duration,
    manager: ConnectionManager,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    /// The same snapshot's sender: a write is visible to this process at once.
    publish: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStoreTask")
    }
}

struct Inner {
    keys: Keys,
    timeout: Duration,
    manager: ConnectionManager,
    snapshot: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl RedisStore {
    /// [`RedisStore::start`] on the settings of `redis {}`.
    pub fn from_config(
        redis: &tern_config::RedisConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, StoreError> {
        Self::start(RedisSettings::from_config(redis), shutdown)
    }

    /// Starts the store: connects in the background (a Redis that is down is not an error: the
    /// snapshot stays empty and disconnected until it comes up) and keeps the snapshot current
    /// until `shutdown`.
    pub fn start(settings: RedisSettings, shutdown: CancellationToken) -> Result<Self, StoreError> {
        let (push_tx, push_rx) = mpsc::channel(PUSH_QUEUE);
        let manager = connection_manager(&settings.url, settings.timeout, Some(push_tx))?;
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let tx = Arc::new(tx);
        let keys = Keys::new(&settings.prefix);
        let inner = Inner {
            keys: keys.clone(),
            timeout: settings.timeout,
            manager: manager.clone(),
            snapshot: Arc::clone(&tx),
        };
        tokio::spawn(inner.run(push_rx, settings.poll_interval, shutdown));
        Ok(Self { keys, timeout: settings.timeout, manager, snapshot: rx, publish: tx })
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        timed(self.timeout, fut).await
    }
}

async fn timed<T>(
    timeout: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(StoreError::Unavailable("Redis did not answer in time".into())),
    }
}

impl Inner {
    async fn run(
        self,
        mut pushes: mpsc::Receiver<redis::PushInfo>,
        poll_interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut subscribed = false;
        let mut tick = tokio::time::interval(poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !subscribed {
                let mut manager = self.manager.clone();
                let channel = self.keys.changed();
                subscribed = timed(self.timeout, manager.subscribe(&channel)).await.is_ok();
            }
            self.reload().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                push = pushes.recv() => match push.map(|p| p.kind) {
                    None => return,
                    Some(PushKind::Disconnection) => {
                        tracing::warn!("config store: Redis connection lost; keeping the last configuration");
                        self.mark_disconnected();
                    }
                    // A message, or the resubscription after a reconnect: re-read everything.
                    Some(_) => {}
                },
            }
        }
    }

    fn mark_disconnected(&self) {
        self.snapshot.send_if_modified(|current| {
            if current.connected {
                let mut next = (**current).clone();
                next.connected = false;
                *current = Arc::new(next);
                true
            } else {
                false
            }
        });
    }

    async fn reload(&self) {
        match read_all(&self.keys, self.timeout, &self.manager).await {
            Ok(mut sections) => {
                // A read that started before this process's own write must not undo it.
                let current = self.snapshot.borrow().clone();
                for (name, mine) in &current.sections {
                    if let Some(read) = sections.get(name)
                        && read.epoch == mine.epoch
                        && read.version < mine.version
                    {
                        sections.insert(name.clone(), mine.clone());
                    }
                }
                let next = Snapshot { sections, connected: true };
                self.snapshot.send_if_modified(|current| {
                    if **current == next {
                        false
                    } else {
                        if !current.connected {
                            tracing::info!("config store: Redis reachable; configuration re-read");
                        }
                        *current = Arc::new(next);
                        true
                    }
                });
            }
            Err(error) => {
                tracing::debug!(%error, "config store: cannot read");
                self.mark_disconnected();
            }
        }
    }
}

async fn read_all(
    keys: &Keys,
    timeout: Duration,
    manager: &ConnectionManager,
) -> Result<BTreeMap<String, Section>, StoreError> {
    let mut conn = manager.clone();
    let names: Vec<String> =
        timed(timeout, redis::cmd("SMEMBERS").arg(keys.sections()).query_async(&mut conn)).await?;
    let mut sections = BTreeMap::new();
    if names.is_empty() {
        return Ok(sections);
    }
    let section_keys: Vec<String> = names.iter().map(|n| keys.section(n)).collect();
    let docs: Vec<Option<String>> =
        timed(timeout, redis::cmd("MGET").arg(&section_keys).query_async(&mut conn)).await?;
    for ((name, key), doc) in names.into_iter().zip(section_keys).zip(docs) {
        let Some(doc) = doc else { continue };
        match serde_json::from_str::<Section>(&doc) {
            Ok(section) => {
                sections.insert(name, section);
            }
            Err(e) => {
                // One bad document must not hide the others.
                tracing::warn!(key, error = %e, "config store: ignoring a section that does not decode");
            }
        }
    }
    Ok(sections)
}

impl ConfigStore for RedisStore {
    fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    fn put<'a>(
        &'a self,
        section: &'a str,
        data: serde_json::Value,
    ) -> BoxFuture<'a, Result<Section, StoreError>> {
        Box::pin(async move {
            let mut conn = self.manager.clone();
            let version: u64 = self
                .timed(redis::cmd("INCR").arg(self.keys.version()).query_async(&mut conn))
                .await?;
            let candidate = format!("{:016x}", fastrand::u64(..));
            let (epoch,): (String,) = self
                .timed(
                    redis::pipe()
                        .cmd("SET")
                        .arg(self.keys.epoch())
                        .arg(&candidate)
                        .arg("NX")
                        .ignore()
                        .cmd("GET")
                        .arg(self.keys.epoch())
                        .query_async::<(String,)>(&mut conn),
                )
                .await?;
            let doc = Section { data, version, epoch, updated_at_ms: now_ms() };
            let text = serde_json::to_string(&doc).map_err(|e| StoreError::Corrupt {
                key: self.keys.section(section),
                reason: e.to_string(),
            })?;
            self.timed(
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(self.keys.section(section))
                    .arg(text)
                    .ignore()
                    .cmd("SADD")
                    .arg(self.keys.sections())
                    .arg(section)
                    .ignore()
                    .query_async::<()>(&mut conn),
            )
            .await?;
            // Not inside the MULTI: this connection is subscribed to the channel, and before
            // Redis 7.2 a PUBLISH to a channel the publishing connection is subscribed to puts
            // the push message inside the EXEC reply and the PUBLISH reply after it, which
            // shifts every later reply on the connection by one (redis/redis#12326). A notice
            // lost between the two is covered by the periodic re-read.
            self.timed(
                redis::cmd("PUBLISH")
                    .arg(self.keys.changed())
                    .arg(format!("{section} {version}"))
                    .query_async::<i64>(&mut conn),
            )
            .await?;
            self.publish.send_modify(|current| {
                let mut next = (**current).clone();
                next.sections.insert(section.to_owned(), doc.clone());
                *current = Arc::new(next);
            });
            Ok(doc)
        })
    }

    fn report_applied<'a>(&'a self, applied: Applied) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.manager.clone();
            let field = format!("{}/{}", applied.service, applied.instance);
            let text = serde_json::to_string(&applied).map_err(|e| StoreError::Corrupt {
                key: self.keys.applied(),
                reason: e.to_string(),
            })?;
            self.timed(
                redis::cmd("HSET")
                    .arg(self.keys.applied())
                    .arg(field)
                    .arg(text)
                    .query_async::<()>(&mut conn),
            )
            .await
        })
    }

    fn applied(&self) -> BoxFuture<'_, Result<Vec<Applied>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.manager.clone();
            let all: BTreeMap<String, String> = self
                .timed(redis::cmd("HGETALL").arg(self.keys.applied()).query_async(&mut conn))
                .await?;
            Ok(all.values().filter_map(|text| serde_json::from_str(text).ok()).collect())
        })
    }
}
