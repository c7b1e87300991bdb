//! The gRPC server: AuthService plus `grpc.health.v1` and server reflection (so `grpcurl` works
//! out of the box), on a listener the caller bound.

use std::{future::Future, sync::Arc};

pub use proto::auth::v1::revocation::Scope;
use proto::auth::v1::{Revocation, auth_service_server::AuthServiceServer};
use tokio::{net::TcpListener, sync::broadcast};
use tokio_stream::wrappers::TcpListenerStream;

use crate::{chain::Chain, live::LiveChain, metrics::Metrics, service::AuthGrpc};

/// Capacity of the revocation broadcast (a watcher further behind is told to drop everything).
const REVOCATION_BUFFER: usize = 256;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The reflection service could not be built from the descriptors.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The TLS files do not load.
    #[error("auth_service.tls: {0}")]
    Tls(std::io::Error),
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The metrics endpoint failed.
    #[error("metrics endpoint: {0}")]
    Metrics(std::io::Error),
}

/// A running service's handle for pushing revocations (file reloads, admin changes), and the
/// service's metrics, which count them.
#[derive(Debug, Clone)]
pub struct Revocations {
    sender: broadcast::Sender<Revocation>,
    metrics: Arc<Metrics>,
}

impl Revocations {
    /// A new channel, with new metrics.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(REVOCATION_BUFFER).0,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A receiver of every revocation pushed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Revocation> {
        self.sender.subscribe()
    }

    /// Tells every watching broker to drop its cached decisions.
    pub fn revoke_all(&self, reason: &str) {
        self.revoke(Scope::All(true), reason);
    }

    /// Tells every watching broker to drop the cached decisions in `scope`.
    pub fn revoke(&self, scope: Scope, reason: &str) {
        self.metrics.revoked();
        // No watcher is not an error.
        let _ = self.sender.send(Revocation {
            scope: Some(scope),
            disconnect: false,
            reason: reason.to_owned(),
        });
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

/// How often the password and ACL files are checked for changes.
pub const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a built service on `listener` until `shutdown` completes: serves gRPC and re-reads the
/// watched files every [`RELOAD_INTERVAL`] (and follows Redis rule changes). What the `auth-service` binary and `tern start` run.
pub async fn run(
    built: crate::setup::Built,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    run_with(built, listener, RunOptions::default(), shutdown).await
}

/// What [`run_with`] adds to [`run`].
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Token and TLS required of callers.
    pub security: Security,
    /// Apply `auth` (and `log`) changes from a config store (admin-api's configuration API).
    pub store: Option<(Arc<dyn tern_config_store::ConfigStore>, crate::store::StoreSettings)>,
    /// Serve Prometheus text at `GET /metrics` on this listener (`auth_service.metrics_bind`).
    pub metrics: Option<TcpListener>,
}

/// [`run`] with `options`: a secured server, the config store followed, metrics served.
pub async fn run_with(
    built: crate::setup::Built,
    listener: TcpListener,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let revocations = Revocations::new();
    let live = Arc::new(LiveChain::start(built, revocations, RELOAD_INTERVAL));
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_on_return = stop.clone().drop_guard();
    if let Some((store, settings)) = options.store {
        let follower = crate::store::Follower { settings, live: Arc::clone(&live) };
        tokio::spawn(follower.run(store, stop.clone()));
    }
    let metrics_served = options.metrics.map(|metrics_listener| {
        let metrics = Arc::clone(live.revocations().metrics());
        tokio::spawn(tern_telemetry::prometheus::serve(
            metrics_listener,
            move || metrics.render(),
            stop.clone().cancelled_owned(),
        ))
    });
    let metrics_failed = async {
        match metrics_served {
            Some(task) => match task.await {
                Ok(Err(error)) => ServeError::Metrics(error),
                Ok(Ok(())) => std::future::pending().await,
                Err(join) => ServeError::Metrics(std::io::Error::other(join.to_string())),
            },
            None => std::future::pending().await,
        }
    };
    let served = tokio::select! {
        served = serve_live(Arc::clone(&live), listener, options.security, shutdown) => served,
        error = metrics_failed => Err(error),
    };
    stop.cancel();
    live.stop();
    served
}

/// Serves `chain` on `listener` until `shutdown` completes, without TLS or token.
pub async fn serve(
    chain: Arc<Chain>,
    revocations: Revocations,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_secured(chain, revocations, listener, Security::default(), shutdown).await
}

/// How the server is secured (`auth_service.token`, `auth_service.tls`).
pub type Security = proto::grpc::Security;

/// The security `auth_service {}` configures.
pub fn security_of(config: &tern_config::AuthServiceConfig) -> Security {
    Security::from_config(config.token.as_ref(), config.tls.as_ref())
}

/// Serves `chain` on `listener` with `security` until `shutdown` completes. Health and reflection
/// stay open (probes, `grpcurl list`); AuthService calls need the token when one is set.
pub async fn serve_secured(
    chain: Arc<Chain>,
    revocations: Revocations,
    listener: TcpListener,
    security: Security,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_live(Arc::new(LiveChain::fixed(chain, revocations)), listener, security, shutdown).await
}

/// Serves the chain `live` holds (replaced as the configuration changes) on `listener` with
/// `security` until `shutdown` completes.
pub async fn serve_live(
    live: Arc<LiveChain>,
    listener: TcpListener,
    security: Security,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<AuthServiceServer<AuthGrpc>>().await;
    let reflection =
        proto::grpc::reflection().map_err(|e| ServeError::Reflection(e.to_string()))?;
    // Ends the brokers' WatchRevocations streams when shutdown begins; a graceful shutdown waits
    // for every open request, and those streams never end on their own.
    let (stopping, stop_rx) = tokio::sync::watch::channel(());
    let service = AuthGrpc::new(live).with_stop(stop_rx);
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(());
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &security.tls {
        builder = builder.tls_config(tls.server().map_err(ServeError::Tls)?)?;
    }
    builder
        .add_service(health)
        .add_service(reflection)
        .add_service(AuthServiceServer::with_interceptor(
            service,
            proto::grpc::BearerToken::new(security.token.as_deref()),
        ))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
