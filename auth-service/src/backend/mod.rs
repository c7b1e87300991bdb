//! Authentication and authorization backends, asked in a configured order.
//!
//! Each backend answers for the clients and topics it knows and says [`Authn::Ignore`] /
//! [`Authz::Ignore`] ("not mine") for the rest, so the next backend decides. A backend that fails
//! (an HTTP endpoint down, Redis unreachable) returns an error; the chain treats that as a deny
//! unless configured otherwise, and never as an allow.

use std::{fmt::Debug, future::Future, net::IpAddr, pin::Pin};

/// A boxed, sendable future borrowing its arguments.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who is asking: the client as the broker describes it.
#[derive(Clone, Default)]
pub struct Client {
    /// MQTT client identifier.
    pub client_id: String,
    /// Username from CONNECT (or the certificate CN when the listener uses it as the username).
    pub username: Option<String>,
    /// Password from CONNECT, raw bytes. Never logged (`Debug` redacts it).
    pub password: Option<Vec<u8>>,
    /// Client IP address (`None` if the broker could not tell).
    pub ip: Option<IpAddr>,
    /// Client source port.
    pub port: u16,
    /// Port of the broker listener the client connected to (`%p` in HTTP auth).
    pub listener_port: u16,
    /// Protocol name from CONNECT: `MQTT` or `MQIsdp` (`%r`).
    pub protocol_name: String,
    /// Protocol level: 3, 4 or 5.
    pub protocol_version: u8,
    /// Client certificate Common Name (`%C`).
    pub cert_common_name: Option<String>,
    /// Client certificate subject (`%d`).
    pub cert_subject: Option<String>,
    /// NanoMQ mountpoint (`%m`), when the listener has one.
    pub mountpoint: Option<String>,
}

impl Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("listener_port", &self.listener_port)
            .field("protocol_version", &self.protocol_version)
            .field("cert_common_name", &self.cert_common_name)
            .finish_non_exhaustive()
    }
}

pub use tern_acl::Action;

/// A backend's answer to "may this client connect?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authn {
    /// The credentials are good.
    Allow {
        /// The client skips ACL checks.
        superuser: bool,
    },
    /// Refused, with the MQTT 5 CONNACK reason code (0x86 bad user name or password, 0x87 not
    /// authorized, 0x8C bad authentication method...) and a reason for logs (no secrets).
    Deny {
        /// MQTT 5 CONNACK reason code.
        reason_code: u8,
        /// Why, for logs.
        reason: String,
    },
    /// Not this backend's client: ask the next one.
    Ignore,
}

/// A backend's answer to "may this client do this with this topic?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authz {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
    /// No rule of this backend matched: ask the next one (in the end `no_match` decides).
    Ignore,
}

/// Why a backend could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend's service did not answer in time or could not be reached.
    #[error("{backend}: unavailable: {reason}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// What happened.
        reason: String,
    },
    /// The backend answered something it should not have.
    #[error("{backend}: {reason}")]
    Invalid {
        /// Backend name.
        backend: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// One source of authentication and/or authorization decisions.
pub trait Backend: Send + Sync + Debug {
    /// A short name for logs and `decided_by` ("password_file", "acl_file", "http", "redis",
    /// "jwt").
    fn name(&self) -> &'static str;

    /// May `client` connect? Backends that do not authenticate keep the default (`Ignore`).
    fn authenticate<'a>(
        &'a self,
        client: &'a Client,
    ) -> BoxFuture<'a, Result<Authn, BackendError>> {
        let _ = client;
        Box::pin(std::future::ready(Ok(Authn::Ignore)))
    }

    /// May `client` do `action` on `topic`? Backends that do not authorize keep the default.
    fn authorize<'a>(
        &'a self,
        client: &'a Client,
        action: Action,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Authz, BackendError>> {
        let _ = (client, action, topic);
        Box::pin(std::future::ready(Ok(Authz::Ignore)))
    }

    /// The backend's complete ACL for `client` — its rules that apply to this client, in order,
    /// with placeholders substituted — when it can state it without asking anyone (so a broker can
    /// decide locally). `None` when it cannot (HTTP) or has no ACL at all (`Some(vec![])` means
    /// "I have rules, none concern this client").
    fn acl_for(&self, client: &Client) -> Option<Vec<tern_acl::ClientRule>> {
        let _ = client;
        None
    }

    /// Whether this backend authorizes at all (ACL file, HTTP acl_req, Redis ACL, JWT claims).
    fn authorizes(&self) -> bool {
        false
    }

    /// Whether brokers may cache this backend's answers until a revocation. A backend whose data
    /// can change without the service hearing of it (Redis while its change notifications are not
    /// flowing) answers `false`, and the service then tells brokers not to cache.
    fn cacheable(&self) -> bool {
        true
    }
}

pub mod acl_file;
pub mod http;
pub mod jwt;
pub mod password_file;
pub mod redis;
