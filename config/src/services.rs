//! Tern's own service blocks (NanoMQ has no equivalent): where auth-service listens and how
//! brokers reach it.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
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
        }
    }
}

const PERMITS: &[(&str, Permit)] = &[("allow", Permit::Allow), ("deny", Permit::Deny)];

pub(crate) fn read_auth_service(r: &mut Reader<'_>) -> AuthServiceConfig {
    let d = AuthServiceConfig::default();
    if r.has("auth_service") && r.block("auth_service").is_none() {
        return d;
    }
    let bind = match r.non_empty("auth_service.bind") {
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                r.error(
                    "auth_service.bind",
                    format!("{text:?} is not an address like 0.0.0.0:50051"),
                );
                d.bind
            }
        },
        None => d.bind,
    };
    let address = r.non_empty("auth_service.address");
    if let Some(a) = &address {
        let valid = a.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if !valid {
            r.error("auth_service.address", format!("{a:?} is not host:port"));
        }
    }
    let u = &d.on_unavailable;
    let token = crate::cluster::read_token(r, "auth_service.token");
    let tls = crate::cluster::read_grpc_tls(r, "auth_service.tls");
    AuthServiceConfig {
        token,
        tls,
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
