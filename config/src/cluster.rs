//! Tern's multi-node blocks (NanoMQ has no equivalent): `broker_admin {}` (the BrokerAdmin gRPC
//! server of each broker node and how admin-api calls it) and `redis {}` (the node registry and
//! the config store shared by every service).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use crate::{reader::Reader, secret::Secret, units::PlainUnit};

/// `broker_admin {}` (Tern). The block's presence makes broker-core serve BrokerAdmin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAdminConfig {
    /// `broker_admin.bind`: where broker-core serves BrokerAdmin (plus health and reflection).
    /// Default `0.0.0.0:50053`. Restart to change.
    pub bind: SocketAddr,
    /// `broker_admin.advertise`: `host:port` this node registers in Redis for admin-api to call.
    /// Default: `<node.id>:<bind port>` (the container name in a compose deployment).
    pub advertise: Option<String>,
    /// `broker_admin.token`: bearer token every call must carry (`authorization: Bearer …`);
    /// admin-api sends it. Unset: no token (only for trusted networks).
    pub token: Option<Secret>,
    /// `broker_admin.tls {}`: serve (and call) BrokerAdmin over TLS.
    pub tls: Option<GrpcTlsConfig>,
}

impl Default for BrokerAdminConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 50053),
            advertise: None,
            token: None,
            tls: None,
        }
    }
}

/// TLS of a Tern gRPC link, as both ends read it from the same file: the server presents
/// `certfile`/`keyfile` and, with `verify_peer`, requires client certificates signed by
/// `cacertfile`; the client verifies the server against `cacertfile` and, with `verify_peer`,
/// presents `certfile`/`keyfile` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTlsConfig {
    /// `certfile`: PEM certificate chain; must exist.
    pub certfile: PathBuf,
    /// `keyfile`: PEM private key; must exist.
    pub keyfile: PathBuf,
    /// `cacertfile`: PEM CA bundle; must exist when given; required with `verify_peer`.
    pub cacertfile: Option<PathBuf>,
    /// `verify_peer`: mutual TLS. Default false.
    pub verify_peer: bool,
    /// `server_name`: the name clients verify the server certificate against. Default: the
    /// host of the address they call.
    pub server_name: Option<String>,
}

/// `redis {}` (Tern): the Redis that holds the node registry and the config store. Unset: no
/// registry (admin-api then sees no broker node) and each service runs on its file alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis.url`: `redis://[user:password@]host:port/db`, `rediss://…` or
    /// `redis+unix:///path` (secret: may hold a password). Required. Restart to change.
    pub url: Secret,
    /// `redis.prefix`: prefix of every key and channel. Default `tern:`.
    pub prefix: String,
    /// `redis.node_ttl`: how long a node's registration lives unless refreshed (refreshed every
    /// third of it). Default 15s.
    pub node_ttl: Duration,
    /// `redis.timeout`: deadline of one Redis command. Default 2s.
    pub timeout: Duration,
}

fn address(r: &mut Reader<'_>, key: &str, default: SocketAddr) -> SocketAddr {
    match r.non_empty(key) {
        Some(text) => text.parse::<SocketAddr>().unwrap_or_else(|_| {
            r.error(key, format!("{text:?} is not an address like 0.0.0.0:50053"));
            default
        }),
        None => default,
    }
}

/// Whether `text` is `host:port` with a non-empty host and a non-zero port.
pub(crate) fn is_host_port(text: &str) -> bool {
    text.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
}

/// A bearer token: absent, or a non-empty string.
pub(crate) fn read_token(r: &mut Reader<'_>, key: &str) -> Option<Secret> {
    let token = r.string(key).map(Secret::new);
    if token.as_ref().is_some_and(Secret::is_empty) {
        r.error(key, "is empty (leave it out to run without a token)");
    }
    token
}

pub(crate) fn read_broker_admin(r: &mut Reader<'_>) -> Option<BrokerAdminConfig> {
    r.block("broker_admin")?;
    let d = BrokerAdminConfig::default();
    let advertise = r.non_empty("broker_admin.advertise");
    if let Some(a) = &advertise
        && !is_host_port(a)
    {
        r.error("broker_admin.advertise", format!("{a:?} is not host:port"));
    }
    let token = read_token(r, "broker_admin.token");
    Some(BrokerAdminConfig {
        bind: address(r, "broker_admin.bind", d.bind),
        advertise,
        token,
        tls: read_grpc_tls(r, "broker_admin.tls"),
    })
}

pub(crate) fn read_grpc_tls(r: &mut Reader<'_>, key: &str) -> Option<GrpcTlsConfig> {
    if !r.has(key) || r.block(key).is_none() {
        return None;
    }
    let certfile = r.existing_file(&format!("{key}.certfile"), "certificate file");
    let keyfile = r.existing_file(&format!("{key}.keyfile"), "key file");
    let cacertfile = r.existing_file(&format!("{key}.cacertfile"), "CA certificate file");
    let verify_peer = r.bool(&format!("{key}.verify_peer"), false);
    let server_name = r.non_empty(&format!("{key}.server_name"));
    if certfile.is_none() && r.peek_text(&format!("{key}.certfile")).is_none() {
        r.error(&format!("{key}.certfile"), "is required");
    }
    if keyfile.is_none() && r.peek_text(&format!("{key}.keyfile")).is_none() {
        r.error(&format!("{key}.keyfile"), "is required");
    }
    if verify_peer && cacertfile.is_none() && r.peek_text(&format!("{key}.cacertfile")).is_none() {
        r.error(&format!("{key}.cacertfile"), "is required with verify_peer = true");
    }
    Some(GrpcTlsConfig {
        certfile: certfile?,
        keyfile: keyfile?,
        cacertfile,
        verify_peer,
        server_name,
    })
}

pub(crate) fn read_redis(r: &mut Reader<'_>) -> Option<RedisConfig> {
    r.block("redis")?;
    let url = match r.non_empty("redis.url") {
        Some(url)
            if url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://")
                || url.starts_with("unix://") =>
        {
            url
        }
        Some(_) => {
            r.error("redis.url", "must start with redis://, rediss://, redis+unix:// or unix://");
            String::new()
        }
        None => {
            r.error("redis.url", "is required");
            String::new()
        }
    };
    let prefix = r.string("redis.prefix").unwrap_or_else(|| "tern:".to_string());
    let node_ttl = r.duration("redis.node_ttl", Duration::from_secs(15), PlainUnit::Seconds);
    if node_ttl < Duration::from_secs(3) {
        r.error("redis.node_ttl", "must be at least 3s");
    }
    let timeout = r.duration("redis.timeout", Duration::from_secs(2), PlainUnit::Seconds);
    if timeout.is_zero() {
        r.error("redis.timeout", "must be more than 0");
    }
    Some(RedisConfig { url: Secret::new(url), prefix, node_ttl, timeout })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Env, parse_str};

    fn parse(text: &str) -> Result<crate::Loaded, crate::ConfigError> {
        parse_str(text, "t.conf", Path::new("/"), &Env::new())
    }

    #[test]
    fn broker_admin_and_redis_blocks_parse() {
        let loaded = parse(
            "broker_admin { bind = \"127.0.0.1:7000\", advertise = \"n1:7000\", token = s3cret }\n\
             redis { url = \"redis://r:6379/0\", prefix = \"x:\", node_ttl = 30s }",
        )
        .expect("valid");
        let admin = loaded.config.broker_admin.expect("enabled");
        assert_eq!(admin.bind.port(), 7000);
        assert_eq!(admin.advertise.as_deref(), Some("n1:7000"));
        assert_eq!(admin.token.as_ref().map(|t| t.expose()), Some("s3cret"));
        let redis = loaded.config.redis.expect("redis");
        assert_eq!(redis.prefix, "x:");
        assert_eq!(redis.node_ttl.as_secs(), 30);
        assert!(!format!("{admin:?}").contains("s3cret"), "token redacted");
        let auth = parse("auth_service { token = t0k }").expect("valid").config.auth_service;
        assert_eq!(auth.token.as_ref().map(|t| t.expose()), Some("t0k"));
        assert!(auth.tls.is_none());
    }

    #[test]
    fn bad_values_name_their_key() {
        let error =
            parse("broker_admin { advertise = nope, token = \"\" }\nredis { url = \"http://x\" }")
                .expect_err("invalid")
                .to_string();
        assert!(error.contains("broker_admin.advertise"), "{error}");
        assert!(error.contains("broker_admin.token"), "{error}");
        assert!(error.contains("redis.url"), "{error}");
        let missing = parse("redis { prefix = a }").expect_err("no url").to_string();
        assert!(missing.contains("redis.url") && missing.contains("required"), "{missing}");
        let tls =
            parse("auth_service.tls { verify_peer = true }").expect_err("no files").to_string();
        assert!(tls.contains("auth_service.tls.certfile"), "{tls}");
        assert!(tls.contains("auth_service.tls.cacertfile"), "{tls}");
    }
}
