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

/// Serves `chain` on `listener` until `shutdown` completes.
pub async fn serve(
    chain: Arc<Chain>,
    revocations: Revocations,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<AuthServiceServer<AuthGrpc>>().await;
    let reflection =
        proto::grpc::reflection().map_err(|e| ServeError::Reflection(e.to_string()))?;
    let service = AuthGrpc::new(chain, revocations.0);
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(AuthServiceServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
