//! What every Tern gRPC server and client shares: server reflection over Tern's descriptors, the
//! bearer-token check, and TLS (optionally mutual) from PEM files.

use std::{io, path::PathBuf, sync::Arc};

use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::Interceptor,
    transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig},
};
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

/// Server reflection (v1) listing every Tern service and `grpc.health.v1`, so `grpcurl` works
/// without proto files.
pub fn reflection()
-> Result<ServerReflectionServer<impl ServerReflection>, tonic_reflection::server::Error> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// A server interceptor requiring `authorization: Bearer <token>` when a token is configured.
/// The comparison takes time that depends only on the lengths.
#[derive(Clone, Default)]
pub struct BearerToken(Option<Arc<str>>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BearerToken").field(&self.0.as_ref().map(|_| "<redacted>")).finish()
    }
}

impl BearerToken {
    /// Require `token` (`None`: accept every call).
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(Arc::from))
    }

    /// Whether a token is required.
    pub fn is_required(&self) -> bool {
        self.0.is_some()
    }

    /// Adds this token to an outgoing request (client side).
    pub fn attach<T>(&self, request: &mut Request<T>) {
        if let Some(token) = &self.0
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
        {
            request.metadata_mut().insert("authorization", value);
        }
    }
}

/// A client interceptor adding a [`BearerToken`] to every call (nothing when it has no token).
#[derive(Debug, Clone, Default)]
pub struct AttachToken(pub BearerToken);

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.0.attach(&mut request);
        Ok(request)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        let y = if a.is_empty() { 0 } else { a[i % a.len()] };
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

impl Interceptor for BearerToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.0 else { return Ok(request) };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        match given {
            Some(token) if constant_time_eq(expected.as_bytes(), token.trim().as_bytes()) => {
                Ok(request)
            }
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
            None => Err(Status::unauthenticated("bearer token required")),
        }
    }
}

/// How a gRPC server is secured: a bearer token every call of its services must carry, and TLS
/// (optionally mutual). Health and reflection stay open (probes, `grpcurl list`).
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Bearer token required on every call (`None`: none).
    pub token: Option<String>,
    /// TLS, optionally mutual.
    pub tls: Option<TlsFiles>,
}

impl Security {
    /// The security a service's `token` and `tls {}` settings configure.
    pub fn from_config(
        token: Option<&tern_config::Secret>,
        tls: Option<&tern_config::GrpcTlsConfig>,
    ) -> Self {
        Self { token: token.map(|t| t.expose().to_owned()), tls: tls.map(TlsFiles::from) }
    }

    /// The interceptor checking the token.
    pub fn interceptor(&self) -> BearerToken {
        BearerToken::new(self.token.as_deref())
    }

    /// A server builder with TLS when configured (files that do not load are an error).
    pub fn server(&self) -> io::Result<tonic::transport::Server> {
        let builder = tonic::transport::Server::builder();
        match &self.tls {
            Some(tls) => builder
                .tls_config(tls.server()?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string())),
            None => Ok(builder),
        }
    }

    /// A client endpoint for `host:port`: `https` with these TLS settings when configured, else
    /// `http`.
    pub fn endpoint(&self, address: &str) -> io::Result<tonic::transport::Endpoint> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let invalid = |e: tonic::transport::Error| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{address}: {e}"))
        };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(invalid)?;
        match &self.tls {
            Some(tls) => {
                let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
                endpoint.tls_config(tls.client(host)?).map_err(invalid)
            }
            None => Ok(endpoint),
        }
    }
}

/// TLS files of a gRPC link (see `tern_config::GrpcTlsConfig`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub certfile: PathBuf,
    /// PEM private key.
    pub keyfile: PathBuf,
    /// PEM CA bundle.
    pub cacertfile: Option<PathBuf>,
    /// Mutual TLS.
    pub verify_peer: bool,
    /// Name the client verifies the server certificate against.
    pub server_name: Option<String>,
}

impl From<&tern_config::GrpcTlsConfig> for TlsFiles {
    fn from(tls: &tern_config::GrpcTlsConfig) -> Self {
        Self {
            certfile: tls.certfile.clone(),
            keyfile: tls.keyfile.clone(),
            cacertfile: tls.cacertfile.clone(),
            verify_peer: tls.verify_peer,
            server_name: tls.server_name.clone(),
        }
    }
}

fn read(path: &PathBuf) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

impl TlsFiles {
    /// The server side: our identity, and with `verify_peer` the CA that client certificates
    /// must chain to.
    pub fn server(&self) -> io::Result<ServerTlsConfig> {
        let identity = Identity::from_pem(read(&self.certfile)?, read(&self.keyfile)?);
        let mut tls = ServerTlsConfig::new().identity(identity);
        if self.verify_peer
            && let Some(ca) = &self.cacertfile
        {
            tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        Ok(tls)
    }

    /// The client side, calling `host`: the CA to verify the server with and, with
    /// `verify_peer`, our identity.
    pub fn client(&self, host: &str) -> io::Result<ClientTlsConfig> {
        let mut tls = ClientTlsConfig::new()
            .domain_name(self.server_name.clone().unwrap_or_else(|| host.to_owned()));
        match &self.cacertfile {
            Some(ca) => tls = tls.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => tls = tls.with_enabled_roots(),
        }
        if self.verify_peer {
            tls = tls.identity(Identity::from_pem(read(&self.certfile)?, read(&self.keyfile)?));
        }
        Ok(tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(v) = value {
            request.metadata_mut().insert("authorization", v.parse().expect("ascii"));
        }
        request
    }

    #[test]
    fn token_is_required_only_when_configured() {
        let mut open = BearerToken::new(None);
        assert!(open.call(with_header(None)).is_ok());
        let mut guarded = BearerToken::new(Some("s3cret"));
        let missing = guarded.call(with_header(None)).expect_err("no token");
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(guarded.call(with_header(Some("Bearer wrong"))).is_err());
        assert!(guarded.call(with_header(Some("Bearer s3cre"))).is_err());
        assert!(guarded.call(with_header(Some("Bearer s3cret"))).is_ok());
        let mut request = Request::new(());
        guarded.attach(&mut request);
        assert!(guarded.call(request.map(|()| ())).is_ok());
        assert!(!format!("{guarded:?}").contains("s3cret"));
    }
}

/// A client codec for streams whose requests are already encoded (sent as they are) and whose
/// responses are prost messages `R`: brokers send `EventBatch`es they encode themselves this way.
#[derive(Debug)]
pub struct EncodedRequests<R>(std::marker::PhantomData<fn() -> R>);

impl<R> Default for EncodedRequests<R> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<R> Clone for EncodedRequests<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for EncodedRequests<R> {}

impl<R: prost::Message + Default + Send + 'static> tonic::codec::Codec for EncodedRequests<R> {
    type Encode = bytes::Bytes;
    type Decode = R;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl<R> tonic::codec::Encoder for EncodedRequests<R> {
    type Item = bytes::Bytes;
    type Error = Status;

    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        bytes::BufMut::put(dst, item);
        Ok(())
    }
}

impl<R: prost::Message + Default> tonic::codec::Decoder for EncodedRequests<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("cannot decode a response: {e}")))
    }
}
