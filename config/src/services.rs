//! Tern's own service blocks (NanoMQ has no equivalent): where auth-service and webhook-relay
//! listen and how brokers reach them.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use crate::{auth::Permit, reader::Reader, units::PlainUnit};

/// What a broker does when auth-service cannot be reached, per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnavailablePolicy {
    /// `auth_service.on_unavailable.connect`: default `deny` (CONNACK 0x88 / 3).
    pub connect: Permit,
    /// `auth_service.on_unavailable.publish`: default `deny` (for publishes not decided from the
    /// cache or the preloaded ACL).
    pub publish: Permit,
    /// `auth_service.on_unavailable.subscribe`: default `deny`.
    pub subscribe: Permit,
}

impl Default for UnavailablePolicy {
    fn default() -> Self {
        Self { connect: Permit::Deny, publish: Permit::Deny, subscribe: Permit::Deny }
    }
}

/// `auth_service {}` (Tern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthServiceConfig {
    /// `auth_service.bind`: where the auth-service binary serves gRPC. Default `0.0.0.0:50051`.
    /// Restart to change.
    pub bind: SocketAddr,
    /// `auth_service.address`: `host:port` where brokers reach auth-service (the host name is
    /// resolved every `resolve_interval` and calls are balanced over every address it returns).
    /// Unset: brokers have no auth-service (and refuse to start if `auth {}` asks for
    /// authentication). Restart to change.
    pub address: Option<String>,
    /// `auth_service.timeout`: deadline of one call from a broker. Default 2s. Hot.
    pub timeout: Duration,
    /// `auth_service.resolve_interval`: how often brokers re-resolve `address`. Default 5s.
    pub resolve_interval: Duration,
    /// `auth_service.on_unavailable {}`: fail open or closed, per operation. Hot.
    pub on_unavailable: UnavailablePolicy,
    /// `auth_service.token`: bearer token auth-service requires on every call and brokers send.
    /// Unset: none. Restart to change.
    pub token: Option<crate::Secret>,
    /// `auth_service.tls {}`: auth-service serves TLS (optionally mutual) and brokers call it
    /// over TLS. Restart to change.
    pub tls: Option<crate::GrpcTlsConfig>,
    /// `auth_service.metrics_bind`: where auth-service serves Prometheus text at `/metrics`.
    /// Unset: no metrics endpoint. Restart to change.
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for AuthServiceConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 50051),
            address: None,
            timeout: Duration::from_secs(2),
            resolve_interval: Duration::from_secs(5),
            on_unavailable: UnavailablePolicy::default(),
            token: None,
            tls: None,
            metrics_bind: None,
        }
    }
}

const PERMITS: &[(&str, Permit)] = &[("allow", Permit::Allow), ("deny", Permit::Deny)];

pub(crate) fn read_auth_service(r: &mut Reader<'_>) -> AuthServiceConfig {
    let d = AuthServiceConfig::default();
    if r.has("auth_service") && r.block("auth_service").is_none() {
        return d;
    }
    let bind = read_bind(r, "auth_service.bind", d.bind);
    let address = read_address(r, "auth_service.address");
    let u = &d.on_unavailable;
    let token = crate::cluster::read_token(r, "auth_service.token");
    let tls = crate::cluster::read_grpc_tls(r, "auth_service.tls");
    let metrics_bind = r
        .has("auth_service.metrics_bind")
        .then(|| read_bind(r, "auth_service.metrics_bind", SocketAddr::from(([0, 0, 0, 0], 9101))));
    AuthServiceConfig {
        token,
        tls,
        metrics_bind,
        bind,
        address,
        timeout: r.duration("auth_service.timeout", d.timeout, PlainUnit::Seconds),
        resolve_interval: r.duration(
            "auth_service.resolve_interval",
            d.resolve_interval,
            PlainUnit::Seconds,
        ),
        on_unavailable: UnavailablePolicy {
            connect: r.choice("auth_service.on_unavailable.connect", u.connect, PERMITS),
            publish: r.choice("auth_service.on_unavailable.publish", u.publish, PERMITS),
            subscribe: r.choice("auth_service.on_unavailable.subscribe", u.subscribe, PERMITS),
        },
    }
}

/// A listen address such as `0.0.0.0:50051`.
pub(crate) fn read_bind(r: &mut Reader<'_>, key: &str, default: SocketAddr) -> SocketAddr {
    match r.non_empty(key) {
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                r.error(key, format!("{text:?} is not an address like {default}"));
                default
            }
        },
        None => default,
    }
}

/// A `host:port` a client connects to.
fn read_address(r: &mut Reader<'_>, key: &str) -> Option<String> {
    let address = r.non_empty(key);
    if let Some(a) = &address {
        let valid = a.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if !valid {
            r.error(key, format!("{a:?} is not host:port"));
        }
    }
    address
}

/// `webhook_relay {}` (Tern): the relay's own settings and how brokers reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRelayConfig {
    /// `webhook_relay.bind`: where the webhook-relay binary serves gRPC (EventIngest,
    /// EventStream, health, reflection). Default `0.0.0.0:50052`. Restart to change.
    pub bind: SocketAddr,
    /// `webhook_relay.address`: `host:port` where brokers send their events. Unset: brokers
    /// produce no events. Restart to change.
    pub address: Option<String>,
    /// `webhook_relay.outbox`: the relay's on-disk outbox file (redb). Default
    /// `tern-webhook-outbox.redb` in the working directory. Restart to change.
    pub outbox: PathBuf,
    /// `webhook_relay.retention`: how long events stay in the relay's log for
    /// `EventStream.Subscribe` resumes (pending and dead-lettered deliveries are kept until
    /// delivered or re-driven). Default 1h.
    pub retention: Duration,
    /// `webhook_relay.metrics_bind`: where the relay serves Prometheus text at `/metrics`.
    /// Unset: no metrics endpoint.
    pub metrics_bind: Option<SocketAddr>,
    /// `webhook_relay.buffer_size`: most events a broker holds unsent (beyond it the oldest batch
    /// is dropped and counted), and most it holds sent but unacknowledged (at it the broker sends
    /// no more until acknowledged). Default 100000.
    pub buffer_size: u32,
    /// `webhook_relay.batch_size`: most events per batch on the broker's stream. Default 4096.
    pub batch_size: u32,
    /// `webhook_relay.reconnect_delay`: the broker's wait before reopening a broken stream
    /// (doubled per failure up to 10× this). Default 500ms.
    pub reconnect_delay: Duration,
    /// `webhook_relay.stream_events`: event names (as in webhook rules) brokers produce for
    /// `EventStream` subscribers even when no webhook rule and no connected subscriber wants
    /// them — so a subscriber can resume without gaps. Default none.
    pub stream_events: Vec<crate::WebhookEvent>,
    /// `webhook_relay.token`: bearer token the relay requires on every EventIngest and
    /// EventStream call, and brokers send. Unset: none. Restart to change.
    pub token: Option<crate::Secret>,
    /// `webhook_relay.tls {}`: the relay serves TLS (optionally mutual) and brokers call it over
    /// TLS. Restart to change.
    pub tls: Option<crate::GrpcTlsConfig>,
}

impl Default for WebhookRelayConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 50052),
            address: None,
            outbox: PathBuf::from("tern-webhook-outbox.redb"),
            retention: Duration::from_secs(3600),
            metrics_bind: None,
            buffer_size: 100_000,
            batch_size: 4096,
            reconnect_delay: Duration::from_millis(500),
            stream_events: Vec::new(),
            token: None,
            tls: None,
        }
    }
}

pub(crate) fn read_webhook_relay(r: &mut Reader<'_>) -> WebhookRelayConfig {
    let d = WebhookRelayConfig::default();
    if r.has("webhook_relay") && r.block("webhook_relay").is_none() {
        return d;
    }
    let metrics_bind = r.has("webhook_relay.metrics_bind").then(|| {
        read_bind(r, "webhook_relay.metrics_bind", SocketAddr::from(([0, 0, 0, 0], 9102)))
    });
    let mut stream_events = Vec::new();
    for name in r.string_list("webhook_relay.stream_events").unwrap_or_default() {
        let wanted = name.trim().to_ascii_lowercase();
        match crate::WebhookEvent::ALL.iter().find(|(n, _)| *n == wanted) {
            Some((_, event)) => stream_events.push(*event),
            None => r.error(
                "webhook_relay.stream_events",
                format!("unknown event {name:?} (use names such as on_message_publish)"),
            ),
        }
    }
    let reconnect_delay =
        r.duration("webhook_relay.reconnect_delay", d.reconnect_delay, PlainUnit::Seconds);
    if reconnect_delay.is_zero() {
        r.error("webhook_relay.reconnect_delay", "must be greater than 0");
    }
    WebhookRelayConfig {
        bind: read_bind(r, "webhook_relay.bind", d.bind),
        address: read_address(r, "webhook_relay.address"),
        outbox: r.path("webhook_relay.outbox").unwrap_or(d.outbox),
        retention: r.duration("webhook_relay.retention", d.retention, PlainUnit::Seconds),
        metrics_bind,
        buffer_size: r.u32_in("webhook_relay.buffer_size", d.buffer_size, 1, 100_000_000),
        batch_size: r.u32_in("webhook_relay.batch_size", d.batch_size, 1, 65_536),
        reconnect_delay: if reconnect_delay.is_zero() {
            d.reconnect_delay
        } else {
            reconnect_delay
        },
        stream_events,
        token: crate::cluster::read_token(r, "webhook_relay.token"),
        tls: crate::cluster::read_grpc_tls(r, "webhook_relay.tls"),
    }
}
