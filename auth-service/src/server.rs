//! The gRPC server: AuthService plus `grpc.health.v1` and server reflection (so `grpcurl` works
//! out of the box), on a listener the caller bound.

use std::{future::Future, sync::Arc};

pub use proto::auth::v1::revocation::Scope;
use proto::auth::v1::{Revocation, auth_service_server::AuthServiceServer};
use tokio::{net::TcpListener, sync::broadcast};
use tokio_stream::wrappers::TcpListenerStream;

use crate::{chain::Chain, service::AuthGrpc};

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
}

/// A running service's handle for pushing revocations (file reloads, admin changes).
#[derive(Debug, Clone)]
pub struct Revocations(broadcast::Sender<Revocation>);

impl Revocations {
    /// A new channel.
    pub fn new() -> Self {
        Self(broadcast::channel(REVOCATION_BUFFER).0)
    }

    /// Tells every watching broker to drop its cached decisions.
    pub fn revoke_all(&self, reason: &str) {
        self.revoke(Scope::All(true), reason);
    }

    /// Tells every watching broker to drop the cached decisions in `scope`.
    pub fn revoke(&self, scope: Scope, reason: &str) {
        // No watcher is not an error.
        let _ = self.0.send(Revocation {
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
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Bearer token required on every AuthService call.
    pub token: Option<String>,
    /// TLS, optionally mutual.
    pub tls: Option<proto::grpc::TlsFiles>,
}

impl Security {
    /// The security `auth_service {}` configures.
    pub fn from_config(config: &tern_config::AuthServiceConfig) -> Self {
        Self {
            token: config.token.as_ref().map(|t| t.expose().to_owned()),
            tls: config.tls.as_ref().map(proto::grpc::TlsFiles::from),
        }
    }
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
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<AuthServiceServer<AuthGrpc>>().await;
    let reflection =
        proto::grpc::reflection().map_err(|e| ServeError::Reflection(e.to_string()))?;
    let service = AuthGrpc::new(chain, revocations.0);
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
