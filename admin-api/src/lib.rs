//! admin-api: NanoMQ's `/api/v4` REST API over every broker node, with configuration coordinated
//! through a shared store (Redis, or in-process for the all-in-one `tern`).
//!
//! - [`routes`]: the route table (also served as `GET /api/v4` and in the OpenAPI document);
//! - [`auth`]: Basic / JWT / no auth, with NanoMQ's 401 codes;
//! - [`nodes`]: the broker nodes from the Redis registry and their BrokerAdmin clients;
//! - [`clients`], [`mqtt`], [`info`], [`configuration`]: the handlers;
//! - [`error`]: NanoMQ's `{"code": N}` errors.
//!
//! The caller binds: [`serve`] takes a bound listener, so tests run on port 0.

pub mod auth;
pub mod body;
pub mod clients;
pub mod configuration;
pub mod error;
pub mod info;
pub mod mqtt;
pub mod nodes;
pub mod openapi;
pub mod routes;
pub mod service_metrics;
pub mod webhooks;

use std::{future::Future, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tern_config_store::ConfigStore;

pub use auth::AuthMode;
pub use nodes::{NodeSource, Nodes};

/// Deadline of one call to a broker node.
pub const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    nodes: Nodes,
    store: Arc<dyn ConfigStore>,
    auth: Arc<AuthMode>,
    /// Largest request body.
    max_body: usize,
    /// Concurrent requests (`http_server.limit_conn`).
    limit: Arc<tokio::sync::Semaphore>,
    /// Where configuration written through the API is validated from (relative paths).
    base_dir: std::path::PathBuf,
    /// The configuration file (for the effective settings `GET /reload` shows).
    config_file: Option<std::path::PathBuf>,
    /// Peaks of the aggregated gauges, sampled at each `/prometheus` scrape (NanoMQ's `_max`).
    peaks: Mutex<proto::prometheus::Peaks>,
    /// admin-api's own request metrics (`GET /metrics`).
    metrics: service_metrics::ServiceMetrics,
    /// webhook-relay's DeadLetters service, when a relay is configured.
    relay: Option<webhooks::RelayClient>,
}

/// What [`AppState::new`] needs.
#[derive(Debug)]
pub struct Settings {
    /// `http_server {}`.
    pub http: tern_config::HttpServerConfig,
    /// How callers authenticate.
    pub auth: AuthMode,
    /// The broker nodes.
    pub nodes: Nodes,
    /// The configuration store.
    pub store: Arc<dyn ConfigStore>,
    /// Directory that relative paths in written configuration resolve against.
    pub base_dir: std::path::PathBuf,
    /// The configuration file, when there is one.
    pub config_file: Option<std::path::PathBuf>,
    /// webhook-relay's DeadLetters client, for `/webhooks/dead_letters` (`None`: those answer
    /// 503/101); see [`webhooks::RelayLink::client`].
    pub relay: Option<webhooks::RelayClient>,
}

impl AppState {
    /// The state for `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                nodes: settings.nodes,
                store: settings.store,
                auth: Arc::new(settings.auth),
                max_body: usize::try_from(settings.http.max_body.as_u64()).unwrap_or(usize::MAX),
                limit: Arc::new(tokio::sync::Semaphore::new(
                    usize::try_from(settings.http.limit_conn).unwrap_or(32).max(1),
                )),
                base_dir: settings.base_dir,
                config_file: settings.config_file,
                peaks: Mutex::new(proto::prometheus::Peaks::default()),
                metrics: service_metrics::ServiceMetrics::default(),
                relay: settings.relay,
            }),
        }
    }

    /// The broker nodes.
    pub fn nodes(&self) -> &Nodes {
        &self.inner.nodes
    }

    /// The configuration store.
    pub fn store(&self) -> &Arc<dyn ConfigStore> {
        &self.inner.store
    }
}

/// Why the API could not be set up from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The JWT key.
    #[error(transparent)]
    Key(#[from] auth::KeyError),
    /// The config store or registry.
    #[error("redis: {0}")]
    Store(#[from] tern_config_store::StoreError),
    /// The working directory.
    #[error("cannot read the working directory: {0}")]
    Cwd(std::io::Error),
    /// webhook-relay's address or TLS files.
    #[error("webhook_relay: {0}")]
    Relay(std::io::Error),
}

/// The state `config` describes: `http_server {}` (defaults when absent), the node registry and
/// config store in `redis {}` (an in-process store and no node without it), and the token and
/// TLS of `broker_admin {}` for calling nodes, and `webhook_relay {}` (address, token, TLS) for
/// the dead-letter endpoints. Must run inside a tokio runtime.
pub fn state_from_config(
    config: &tern_config::Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<AppState, SetupError> {
    let http = config.http_server.clone().unwrap_or_default();
    let auth = AuthMode::from_config(&http)?;
    let admin = config.broker_admin.clone().unwrap_or_default();
    let token = admin.token.as_ref().map(|t| t.expose().to_owned());
    let tls = admin.tls.as_ref().map(proto::grpc::TlsFiles::from);
    let (source, store): (NodeSource, Arc<dyn ConfigStore>) = match &config.redis {
        Some(redis) => {
            let settings = tern_config_store::redis_store::RedisSettings::from_config(redis);
            let manager = tern_config_store::redis_store::connection_manager(
                &settings.url,
                redis.timeout,
                None,
            )?;
            let store = tern_config_store::RedisStore::start(settings, shutdown)?;
            (
                NodeSource::Redis {
                    manager,
                    keys: tern_config_store::redis_store::Keys::new(&redis.prefix),
                    timeout: redis.timeout,
                },
                Arc::new(store),
            )
        }
        None => (NodeSource::Fixed(Vec::new()), Arc::new(tern_config_store::MemoryStore::new())),
    };
    let base_dir = std::env::current_dir().map_err(SetupError::Cwd)?;
    let relay_conf = &config.webhook_relay;
    let relay = match &relay_conf.address {
        Some(address) => Some(
            webhooks::RelayLink {
                address: address.clone(),
                security: proto::grpc::Security::from_config(
                    relay_conf.token.as_ref(),
                    relay_conf.tls.as_ref(),
                ),
            }
            .client(NODE_CALL_TIMEOUT)
            .map_err(SetupError::Relay)?,
        ),
        None => None,
    };
    Ok(AppState::new(Settings {
        http,
        auth,
        nodes: Nodes::new(source, token.as_deref(), tls, NODE_CALL_TIMEOUT),
        store,
        base_dir,
        config_file: config.source.clone(),
        relay,
    }))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, routes::app(state)).with_graceful_shutdown(shutdown).await
}
