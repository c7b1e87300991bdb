//! The authentication and authorization seam.
//!
//! At CONNECT the broker asks an [`Authenticator`] once (a network call is fine there, under a
//! deadline). The answer carries a per-client [`ClientAuthorizer`], which answers publish checks
//! synchronously whenever it can (preloaded ACL, cached decisions) and only returns a future when
//! it must ask someone — so the publish path has no network round trip in the common case.
//!
//! [`AllowAll`] is the default: every client may connect, publish and subscribe. The auth-service
//! issue adds the gRPC implementation with its decision cache.

use std::{fmt::Debug, future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use bytes::Bytes;
use bytestring::ByteString;
use mqtt_codec::{ConnectReasonCode, ProtocolVersion, QoS, UserProperty};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The transport a client connected over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS.
    Tls,
    /// WebSocket.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

/// Who a client is, as far as the broker knows at CONNECT. Shared (`Arc`) by the connection, the
/// authorizer and events.
#[derive(Clone)]
pub struct ClientIdentity {
    /// Client identifier (assigned by the broker when the client sent an empty one).
    pub client_id: ByteString,
    /// Username from CONNECT (or the certificate CN when the listener uses it as the username).
    pub username: Option<ByteString>,
    /// Password from CONNECT. Never logged: `Debug` redacts it.
    pub password: Option<Bytes>,
    /// Peer address (after PROXY protocol, when enabled).
    pub peer: SocketAddr,
    /// Listener name, e.g. `tcp:default`.
    pub listener: Arc<str>,
    /// Port of that listener (`%p` in HTTP auth).
    pub listener_port: u16,
    /// Transport of the listener.
    pub transport: Transport,
    /// Protocol version from CONNECT.
    pub protocol: ProtocolVersion,
    /// Client certificate Common Name, over TLS with a client certificate.
    pub cert_common_name: Option<Arc<str>>,
    /// Client certificate subject.
    pub cert_subject: Option<Arc<str>>,
    /// Keep alive requested, seconds.
    pub keepalive: u16,
    /// Clean Session / Clean Start flag.
    pub clean_start: bool,
    /// MQTT 5 enhanced authentication method and data.
    pub auth_method: Option<ByteString>,
    /// MQTT 5 enhanced authentication data. Redacted in `Debug`.
    pub auth_data: Option<Bytes>,
    /// MQTT 5 CONNECT user properties.
    pub user_properties: Vec<UserProperty>,
    /// The broker node id.
    pub node_id: Arc<str>,
}

impl Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("peer", &self.peer)
            .field("listener", &self.listener)
            .field("transport", &self.transport)
            .field("protocol", &self.protocol)
            .field("cert_common_name", &self.cert_common_name)
            .field("keepalive", &self.keepalive)
            .field("clean_start", &self.clean_start)
            .field("auth_method", &self.auth_method)
            .field("auth_data", &self.auth_data.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What to do with a denied publish or subscribe (NanoMQ's `auth.deny_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenyAction {
    /// Drop the publish (0x87 on MQTT 5 QoS 1/2) or refuse the subscription; stay connected.
    #[default]
    Ignore,
    /// Disconnect the client (DISCONNECT 0x87 on MQTT 5).
    Disconnect,
}

/// A yes/no decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
}

/// A publish check: answered now, or later.
pub enum Check {
    /// Decided now.
    Ready(Permission),
    /// Must be asked; the connection awaits it before handling its next packet (so the
    /// publisher's order is kept).
    Pending(BoxFuture<Permission>),
}

impl Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(p) => f.debug_tuple("Ready").field(p).finish(),
            Self::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// Decides what one connected client may do.
pub trait ClientAuthorizer: Send + Sync + Debug {
    /// May the client publish to `topic`?
    fn publish(&self, topic: &str, qos: QoS, retain: bool) -> Check;
    /// May the client subscribe to each filter (as sent, `$share/...` included)? One answer per
    /// filter, in order.
    fn subscribe(&self, filters: Vec<(ByteString, QoS)>) -> BoxFuture<Vec<Permission>>;
    /// What to do with a denied request.
    fn deny_action(&self) -> DenyAction;
}

/// The answer to a CONNECT.
#[derive(Debug, Clone)]
pub enum ConnectVerdict {
    /// The client may connect.
    Allow {
        /// Superusers skip ACL checks (the authorizer already knows).
        superuser: bool,
        /// Decides the client's publishes and subscribes.
        authorizer: Arc<dyn ClientAuthorizer>,
    },
    /// The client is refused with this reason (MQTT 5 code; mapped for 3.1.1).
    Deny(ConnectReasonCode),
}

/// Decides whether clients may connect.
pub trait Authenticator: Send + Sync + Debug {
    /// Authenticates a client. The broker applies its own deadline.
    fn authenticate(&self, client: Arc<ClientIdentity>) -> BoxFuture<ConnectVerdict>;
}

/// Everyone may do everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, _client: Arc<ClientIdentity>) -> BoxFuture<ConnectVerdict> {
        Box::pin(std::future::ready(ConnectVerdict::Allow {
            superuser: false,
            authorizer: Arc::new(AllowAll),
        }))
    }
}

impl ClientAuthorizer for AllowAll {
    fn publish(&self, _topic: &str, _qos: QoS, _retain: bool) -> Check {
        Check::Ready(Permission::Allow)
    }

    fn subscribe(&self, filters: Vec<(ByteString, QoS)>) -> BoxFuture<Vec<Permission>> {
        Box::pin(std::future::ready(vec![Permission::Allow; filters.len()]))
    }

    fn deny_action(&self) -> DenyAction {
        DenyAction::Ignore
    }
}
