//! `tern start`: Tern's services in one process, from one configuration file, talking to each
//! other over their real gRPC interfaces on loopback — the same contracts as a compose
//! deployment, so what works on a laptop works split into containers.
//!
//! Services start in the order of [`SERVICES`]; each start function reads the configuration and
//! what the services before it published in the [`Wiring`] (addresses), binds its listeners,
//! spawns its tasks on the shared [`Running`] set and records its [`Endpoint`]s. A service that
//! stops with an error stops the whole process (a half-running launcher would be worse than
//! none).
//!
//! The list is auth-service, webhook-relay (when the file has webhook targets), broker-core,
//! which streams its events to the relay, then admin-api (when the file has `http_server {}`),
//! which calls the broker's BrokerAdmin gRPC. Every service shares one config store: Redis when
//! the file has `redis {}`, else an embedded in-process one.

mod admin;
mod auth;
mod broker;
mod relay;

use std::{fmt, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The default configuration of `tern start` without `--conf`: anonymous MQTT on 1883 and
/// WebSocket on 8083/mqtt.
pub const DEFAULT_CONFIG: &str = include_str!("../../../etc/tern.conf");
/// How the default configuration is named in messages.
pub const DEFAULT_CONFIG_NAME: &str = "etc/tern.conf (built in)";

/// How long services get to finish after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// One service `tern start` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `tern.auth.v1.AuthService`, on loopback, for the broker.
    AuthService,
    /// Webhook delivery and the event stream, on loopback, when the file has webhook targets.
    WebhookRelay,
    /// The MQTT broker, on the listeners of the file.
    BrokerCore,
    /// NanoMQ's HTTP API, when the file has `http_server {}`.
    AdminApi,
}

/// Start order: each service may use what the ones before it put in the [`Wiring`].
pub const SERVICES: &[Service] =
    &[Service::AuthService, Service::WebhookRelay, Service::BrokerCore, Service::AdminApi];

impl Service {
    /// The service's name, as its own binary is called.
    pub fn name(self) -> &'static str {
        match self {
            Self::AuthService => "auth-service",
            Self::WebhookRelay => "webhook-relay",
            Self::BrokerCore => "broker-core",
            Self::AdminApi => "admin-api",
        }
    }

    async fn start(self, run: &mut Running, wiring: &mut Wiring) -> Result<(), LaunchError> {
        match self {
            Self::AuthService => auth::start(run, wiring).await,
            Self::WebhookRelay => relay::start(run, wiring).await,
            Self::BrokerCore => broker::start(run, wiring).await,
            Self::AdminApi => admin::start(run, wiring).await,
        }
    }
}

/// What started services tell the ones started after them.
#[derive(Debug)]
pub struct Wiring {
    /// The configuration every service reads its sections from.
    pub config: tern_config::Config,
    /// Where auth-service serves gRPC (set by auth-service's start).
    pub auth_service: Option<SocketAddr>,
    /// Where webhook-relay takes events (set by its start, when it runs).
    pub webhook_relay: Option<SocketAddr>,
    /// The broker's BrokerAdmin interface (set by broker-core's start when admin-api will run).
    pub broker_admin: Option<BrokerAdminNode>,
    /// The config store every service follows (Redis with `redis {}`, else in-process).
    pub store: Arc<dyn tern_config_store::ConfigStore>,
    /// The directory relative paths resolve against (the working directory).
    pub base_dir: std::path::PathBuf,
    /// The process's logging, whose level follows the store's `log` section.
    pub telemetry: Option<Arc<tern_telemetry::Telemetry>>,
}

/// The in-process broker's BrokerAdmin server, for admin-api.
#[derive(Debug, Clone)]
pub struct BrokerAdminNode {
    /// Its loopback address.
    pub addr: SocketAddr,
    /// The bearer token it requires (made at start, never printed).
    pub token: String,
    /// When the broker started, epoch ms.
    pub started_at_ms: u64,
    /// Its MQTT listeners, as `<kind>:<name>@<address>`.
    pub listeners: Vec<String>,
}

/// Something a service listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The service.
    pub service: &'static str,
    /// What it is, e.g. `MQTT over TCP`, `gRPC (AuthService, health, reflection)`.
    pub what: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// How a client reaches it, e.g. `mqtt://0.0.0.0:1883`, `ws://0.0.0.0:8083/mqtt`.
    pub url: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<13} {:<40} {}", self.service, self.what, self.url)
    }
}

/// Why `tern start` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A service could not start (configuration it cannot use, a port taken...).
    #[error("{service}: {message}")]
    Start {
        /// The service.
        service: &'static str,
        /// Why.
        message: String,
    },
    /// A running service stopped with an error.
    #[error("{service} stopped: {message}")]
    Failed {
        /// The service.
        service: &'static str,
        /// Why.
        message: String,
    },
}

/// The running services.
#[derive(Debug)]
pub struct Running {
    /// Everything they listen on, in start order.
    pub endpoints: Vec<Endpoint>,
    /// Warnings about the configuration the operator should see (blocks no running service
    /// reads, settings `tern start` overrides).
    pub notes: Vec<String>,
    /// The started services' tasks, in start order; stopped in reverse order.
    units: Vec<Unit>,
    /// Cancelled to stop everything: by the caller, or by a service that stopped on its own.
    shutdown: CancellationToken,
    /// Why a service stopped on its own, if one did.
    failure: Arc<Mutex<Option<LaunchError>>>,
}

/// One service's tasks and the token that stops them.
#[derive(Debug)]
struct Unit {
    service: Service,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Spawns one of `service`'s tasks; it gets the service's stop token and must return once
    /// that is cancelled. A task that returns before (with an error or not) stops everything.
    fn spawn<F, Fut>(&mut self, service: Service, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        if self.units.last().is_none_or(|u| u.service != service) {
            self.units.push(Unit {
                service,
                stop: CancellationToken::new(),
                tasks: JoinSet::new(),
            });
        }
        let Some(unit) = self.units.last_mut() else { return };
        let stop = unit.stop.clone();
        let task = task(stop.clone());
        let everything = self.shutdown.clone();
        let failure = Arc::clone(&self.failure);
        unit.tasks.spawn(async move {
            let outcome = task.await;
            if stop.is_cancelled() {
                if let Err(message) = outcome {
                    tracing::warn!(service = service.name(), "stopped with an error: {message}");
                }
                return;
            }
            let message = outcome.err().unwrap_or_else(|| "stopped unexpectedly".into());
            failure.lock().get_or_insert(LaunchError::Failed { service: service.name(), message });
            everything.cancel();
        });
    }

    /// The first endpoint of `service` whose description contains `what`.
    pub fn endpoint(&self, service: Service, what: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.service == service.name() && e.what.contains(what))
    }

    /// Waits until the shutdown token is cancelled — by the caller, or because a service stopped
    /// on its own — then stops the services in reverse start order (the broker before the
    /// auth-service it calls), giving each [`SHUTDOWN_GRACE`]. Returns the failure, if any.
    pub async fn wait(mut self) -> Result<(), LaunchError> {
        self.shutdown.cancelled().await;
        self.stop_all().await;
        match self.failure.lock().take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn stop_all(&mut self) {
        while let Some(mut unit) = self.units.pop() {
            unit.stop.cancel();
            let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
                while unit.tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    service = unit.service.name(),
                    "did not stop within {SHUTDOWN_GRACE:?}; stopping it anyway"
                );
                unit.tasks.abort_all();
            }
        }
    }
}

/// Starts every service of [`SERVICES`] on `config`; they stop when `shutdown` is cancelled.
/// `telemetry` (the process's logging) follows `log.level` changes made through the store.
/// Must run inside a multi-threaded tokio runtime.
pub async fn start(
    config: tern_config::Config,
    telemetry: Option<Arc<tern_telemetry::Telemetry>>,
    shutdown: CancellationToken,
) -> Result<Running, LaunchError> {
    let mut running = Running {
        endpoints: Vec::new(),
        notes: unserved_blocks(&config),
        units: Vec::new(),
        shutdown,
        failure: Arc::default(),
    };
    let store: Arc<dyn tern_config_store::ConfigStore> = match &config.redis {
        Some(redis) => Arc::new(
            tern_config_store::RedisStore::from_config(redis, running.shutdown.clone()).map_err(
                |e| LaunchError::Start { service: "config store", message: e.to_string() },
            )?,
        ),
        None => Arc::new(tern_config_store::MemoryStore::new()),
    };
    let base_dir = std::env::current_dir().map_err(|e| LaunchError::Start {
        service: "config store",
        message: format!("cannot read the working directory: {e}"),
    })?;
    let mut wiring = Wiring {
        config,
        auth_service: None,
        webhook_relay: None,
        broker_admin: None,
        store,
        base_dir,
        telemetry,
    };
    for service in SERVICES {
        if let Err(error) = service.start(&mut running, &mut wiring).await {
            // Let what already started close its listeners before the error is reported.
            running.stop_all().await;
            return Err(error);
        }
    }
    Ok(running)
}

/// Blocks of the file that no service of this build serves, said out loud rather than ignored.
fn unserved_blocks(config: &tern_config::Config) -> Vec<String> {
    let mut notes = Vec::new();
    if config.webhook_relay.address.is_some() && relay::wanted(config) {
        notes.push(
            "webhook_relay.address: tern start runs its own webhook-relay on loopback and uses that"
                .into(),
        );
    }
    if config.broker_admin.is_some() {
        notes.push(
            "broker_admin {}: tern start serves BrokerAdmin on loopback for its admin-api only, with a token of its own"
                .into(),
        );
    }
    if config.auth_service.address.is_some() {
        notes.push(
            "auth_service.address: tern start runs its own auth-service on loopback and uses that"
                .into(),
        );
    }
    for (set, what) in [
        (config.auth_service.token.is_some() || config.auth_service.tls.is_some(), "auth_service"),
        (
            config.webhook_relay.token.is_some() || config.webhook_relay.tls.is_some(),
            "webhook_relay",
        ),
    ] {
        if set {
            notes.push(format!(
                "{what}.token / tls: inside tern start the services talk over loopback only, without them"
            ));
        }
    }
    notes
}

/// Loads the configuration `tern start` runs: `path`, `NANOMQ_CONF_PATH` or `TERN_CONF` when one
/// is named, else [`DEFAULT_CONFIG`].
pub fn load_config(
    path: Option<&Path>,
    env: &tern_config::Env,
) -> Result<tern_config::Loaded, tern_config::ConfigError> {
    match tern_config::resolve_conf_path(path, env) {
        Some(path) => tern_config::load(&path, env),
        None => tern_config::parse_str(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, Path::new("."), env),
    }
}

/// `host:port` for a URL: IPv6 in brackets.
fn authority(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_configuration_loads_without_warnings() {
        let loaded = load_config(None, &tern_config::Env::new()).expect("valid default");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let binds: Vec<String> =
            loaded.config.listeners.iter().map(|l| l.bind.to_string()).collect();
        assert_eq!(binds, ["0.0.0.0:1883", "0.0.0.0:8083"]);
        assert!(loaded.config.auth.allow_anonymous);
        assert!(unserved_blocks(&loaded.config).is_empty());
    }
}
