//! `listeners.tcp|ssl|ws|wss {}` (and named ones such as `listeners.tcp.second {}`), read by
//! broker-core, plus the TLS settings shared with outbound HTTP clients. Listener changes need a
//! restart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::mqtt::{MAX_PACKET_SIZE_LIMIT, positive};
use crate::reader::Reader;
use crate::secret::Secret;
use crate::units::ByteSize;

/// The transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// MQTT over TCP (`listeners.tcp`).
    Tcp,
    /// MQTT over TLS (`listeners.ssl`).
    Ssl,
    /// MQTT over WebSocket (`listeners.ws`).
    Ws,
    /// MQTT over WebSocket over TLS (`listeners.wss`).
    Wss,
}

impl ListenerKind {
    /// The block name: `tcp`, `ssl`, `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Ssl => "ssl",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Whether the transport is TLS (`ssl`, `wss`).
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::Wss)
    }

    /// Whether the transport is WebSocket (`ws`, `wss`).
    pub fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "tcp" => Some(Self::Tcp),
            "ssl" => Some(Self::Ssl),
            "ws" => Some(Self::Ws),
            "wss" => Some(Self::Wss),
            _ => None,
        }
    }

    /// NanoMQ's default address for the transport.
    fn default_bind(self) -> SocketAddr {
        let port = match self {
            Self::Tcp => 1883,
            Self::Ssl => 8883,
            Self::Ws => 8083,
            Self::Wss => 8084,
        };
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    }
}

/// The WebSocket path when `bind` has none.
pub const DEFAULT_WS_PATH: &str = "/mqtt";

/// One listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// The transport (the block name under `listeners`).
    pub kind: ListenerKind,
    /// `default` for `listeners.tcp {}`, the sub-block name for `listeners.tcp.second {}`.
    pub name: String,
    /// `bind` (NanoMQ): the address to listen on, `IP:PORT`. Defaults: tcp 0.0.0.0:1883, ssl
    /// 0.0.0.0:8883, ws 0.0.0.0:8083, wss 0.0.0.0:8084. Port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// The WebSocket path, from a `bind` such as `0.0.0.0:8083/mqtt` (NanoMQ); `/mqtt` when the
    /// bind has no path. `None` for tcp and ssl.
    pub path: Option<String>,
    /// `enable` (NanoMQ): `false` keeps the listener configured but closed. Default true.
    pub enable: bool,
    /// TLS settings: always `Some` for ssl and wss (`keyfile`, `certfile`, … in the same block;
    /// a wss listener without its own certificate reuses the ssl listener's, as NanoMQ does).
    pub tls: Option<TlsConfig>,
    /// `max_connections` (Tern): connection limit of this listener; new connections beyond it
    /// are refused. Default 1000000.
    pub max_connections: u32,
    /// `connect_timeout` (Tern): how long a new connection may take to send CONNECT. Default
    /// 10s; a plain integer is seconds.
    pub connect_timeout: Duration,
    /// `proxy_protocol` (Tern): expect a PROXY protocol v1/v2 header first. Default false.
    pub proxy_protocol: bool,
    /// `max_packet_size` (Tern): overrides `mqtt.max_packet_size` on this listener. `None` =
    /// use `mqtt.max_packet_size`.
    pub max_packet_size: Option<ByteSize>,
}

/// Server-side TLS of an ssl or wss listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `keyfile` (NanoMQ): PEM private key. Relative paths are resolved against the working
    /// directory; the file must exist.
    pub keyfile: PathBuf,
    /// `certfile` (NanoMQ): PEM certificate chain; must exist.
    pub certfile: PathBuf,
    /// `cacertfile` (NanoMQ): PEM CA bundle for verifying client certificates; must exist when
    /// given.
    pub cacertfile: Option<PathBuf>,
    /// `key_password` (NanoMQ): password of an encrypted private key.
    pub key_password: Option<Secret>,
    /// `verify_peer` (NanoMQ): request and verify a client certificate. Default false.
    pub verify_peer: bool,
    /// `fail_if_no_peer_cert` (NanoMQ): with `verify_peer`, refuse clients without a
    /// certificate. Default false.
    pub fail_if_no_peer_cert: bool,
    /// `use_identity_as_username` (Tern): use the client certificate's CN as the username.
    /// Default false.
    pub use_identity_as_username: bool,
}

/// Client-side TLS of an outbound HTTP connection (`ssl {}` in an `http_auth` request or in
/// `webhook`). NanoMQ parses these blocks but never applies them; Tern applies them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientTlsConfig {
    /// `cacertfile`: CA bundle to verify the server with (default: the system roots).
    pub cacertfile: Option<PathBuf>,
    /// `certfile`: client certificate for mutual TLS (with `keyfile`).
    pub certfile: Option<PathBuf>,
    /// `keyfile`: client private key (with `certfile`).
    pub keyfile: Option<PathBuf>,
    /// `key_password`: password of an encrypted `keyfile`.
    pub key_password: Option<Secret>,
}

/// The listener used when the file has no `listeners` block: TCP on 0.0.0.0:1883.
pub fn default_tcp_listener() -> ListenerConfig {
    ListenerConfig {
        kind: ListenerKind::Tcp,
        name: "default".to_string(),
        bind: ListenerKind::Tcp.default_bind(),
        path: None,
        enable: true,
        tls: None,
        max_connections: 1_000_000,
        connect_timeout: Duration::from_secs(10),
        proxy_protocol: false,
        max_packet_size: None,
    }
}

/// TLS keys as written in one block, before the wss → ssl inheritance.
#[derive(Debug, Default, Clone)]
struct TlsParts {
    keyfile: Option<PathBuf>,
    certfile: Option<PathBuf>,
    cacertfile: Option<PathBuf>,
    key_password: Option<Secret>,
    verify_peer: Option<bool>,
    fail_if_no_peer_cert: Option<bool>,
    use_identity_as_username: Option<bool>,
}

impl TlsParts {
    fn read(r: &mut Reader<'_>, key: &str) -> Self {
        let opt_bool = |r: &mut Reader<'_>, k: &str| r.has(k).then(|| r.bool(k, false));
        Self {
            keyfile: r.existing_file(&format!("{key}.keyfile"), "key file"),
            certfile: r.existing_file(&format!("{key}.certfile"), "certificate file"),
            cacertfile: r.existing_file(&format!("{key}.cacertfile"), "CA certificate file"),
            key_password: r.string(&format!("{key}.key_password")).map(Secret::new),
            verify_peer: opt_bool(r, &format!("{key}.verify_peer")),
            fail_if_no_peer_cert: opt_bool(r, &format!("{key}.fail_if_no_peer_cert")),
            use_identity_as_username: opt_bool(r, &format!("{key}.use_identity_as_username")),
        }
    }

    fn has_certificate(&self) -> bool {
        self.keyfile.is_some() || self.certfile.is_some()
    }

    /// `self` with the blanks filled from `base`.
    fn or(self, base: &TlsParts) -> TlsParts {
        TlsParts {
            keyfile: self.keyfile.or_else(|| base.keyfile.clone()),
            certfile: self.certfile.or_else(|| base.certfile.clone()),
            cacertfile: self.cacertfile.or_else(|| base.cacertfile.clone()),
            key_password: self.key_password.or_else(|| base.key_password.clone()),
            verify_peer: self.verify_peer.or(base.verify_peer),
            fail_if_no_peer_cert: self.fail_if_no_peer_cert.or(base.fail_if_no_peer_cert),
            use_identity_as_username: self
                .use_identity_as_username
                .or(base.use_identity_as_username),
        }
    }
}

pub(crate) fn read(r: &mut Reader<'_>) -> Vec<ListenerConfig> {
    if !r.has("listeners") {
        return vec![default_tcp_listener()];
    }
    let Some(kinds) = r.block("listeners") else { return Vec::new() };
    // (listener, its block key, its TLS parts) in file order; TLS is finished afterwards so a
    // wss listener can reuse an ssl listener written after it.
    let mut pending: Vec<(ListenerConfig, String, TlsParts)> = Vec::new();
    for kind_name in kinds {
        let Some(kind) = ListenerKind::from_name(&kind_name) else { continue };
        let kind_key = format!("listeners.{kind_name}");
        let Some(children) = r.block(&kind_key) else { continue };
        let (named, settings): (Vec<String>, Vec<String>) =
            children.into_iter().partition(|child| r.is_block(&format!("{kind_key}.{child}")));
        if named.is_empty() || !settings.is_empty() {
            pending.push(read_one(r, kind, "default", &kind_key));
        }
        for name in named {
            let key = format!("{kind_key}.{name}");
            r.block(&key);
            pending.push(read_one(r, kind, &name, &key));
        }
    }

    let ssl_parts =
        pending.iter().find(|(l, _, _)| l.kind == ListenerKind::Ssl).map(|(_, _, p)| p.clone());
    let mut out = Vec::with_capacity(pending.len());
    for (mut listener, key, parts) in pending {
        if listener.kind.is_tls() {
            let parts = match (&ssl_parts, listener.kind) {
                (Some(ssl), ListenerKind::Wss) if !parts.has_certificate() => parts.or(ssl),
                _ => parts,
            };
            listener.tls = finish_tls(r, &key, listener.kind, parts);
        }
        out.push(listener);
    }
    check_unique_binds(r, &out);
    out
}

fn read_one(
    r: &mut Reader<'_>,
    kind: ListenerKind,
    name: &str,
    key: &str,
) -> (ListenerConfig, String, TlsParts) {
    let d = default_tcp_listener();
    let (bind, path) = match r.string(&format!("{key}.bind")) {
        Some(text) => match parse_bind(&text, kind) {
            Ok(parsed) => parsed,
            Err(reason) => {
                r.error(&format!("{key}.bind"), reason);
                (kind.default_bind(), kind.is_websocket().then(|| DEFAULT_WS_PATH.to_string()))
            }
        },
        None => (kind.default_bind(), kind.is_websocket().then(|| DEFAULT_WS_PATH.to_string())),
    };
    let parts = if kind.is_tls() { TlsParts::read(r, key) } else { TlsParts::default() };
    let listener = ListenerConfig {
        kind,
        name: name.to_string(),
        bind,
        path,
        enable: r.bool(&format!("{key}.enable"), true),
        tls: None,
        max_connections: r.u32_in(
            &format!("{key}.max_connections"),
            d.max_connections,
            1,
            u32::MAX,
        ),
        connect_timeout: positive(r, &format!("{key}.connect_timeout"), d.connect_timeout),
        proxy_protocol: r.bool(&format!("{key}.proxy_protocol"), false),
        max_packet_size: r.opt_size_in(
            &format!("{key}.max_packet_size"),
            ByteSize::b(1),
            MAX_PACKET_SIZE_LIMIT,
        ),
    };
    (listener, key.to_string(), parts)
}

fn finish_tls(
    r: &mut Reader<'_>,
    key: &str,
    kind: ListenerKind,
    parts: TlsParts,
) -> Option<TlsConfig> {
    let reuse = if kind == ListenerKind::Wss { " (or an ssl listener to reuse)" } else { "" };
    let (Some(keyfile), Some(certfile)) = (parts.keyfile.clone(), parts.certfile.clone()) else {
        // A file that was given but does not exist has already been reported.
        for (field, value) in [("keyfile", &parts.keyfile), ("certfile", &parts.certfile)] {
            let field_key = format!("{key}.{field}");
            if value.is_none() && r.peek_text(&field_key).is_none() {
                r.error(&field_key, format!("a TLS listener needs certfile and keyfile{reuse}"));
            }
        }
        return None;
    };
    Some(TlsConfig {
        keyfile,
        certfile,
        cacertfile: parts.cacertfile,
        key_password: parts.key_password,
        verify_peer: parts.verify_peer.unwrap_or(false),
        fail_if_no_peer_cert: parts.fail_if_no_peer_cert.unwrap_or(false),
        use_identity_as_username: parts.use_identity_as_username.unwrap_or(false),
    })
}

/// Two enabled listeners on the same address cannot both bind.
fn check_unique_binds(r: &mut Reader<'_>, listeners: &[ListenerConfig]) {
    let key_of = |l: &ListenerConfig| {
        if l.name == "default" {
            format!("listeners.{}.bind", l.kind.as_str())
        } else {
            format!("listeners.{}.{}.bind", l.kind.as_str(), l.name)
        }
    };
    for (i, later) in listeners.iter().enumerate() {
        if !later.enable || later.bind.port() == 0 {
            continue;
        }
        if let Some(earlier) = listeners[..i].iter().find(|l| l.enable && l.bind == later.bind) {
            r.error(
                &key_of(later),
                format!("{} is already used by {}", later.bind, key_of(earlier)),
            );
        }
    }
}

/// `0.0.0.0:1883`, `[::]:8883`; for WebSocket also `0.0.0.0:8083/mqtt`.
pub(crate) fn parse_bind(
    text: &str,
    kind: ListenerKind,
) -> Result<(SocketAddr, Option<String>), String> {
    let trimmed = text.trim();
    let (address, path) = match trimmed.find('/') {
        Some(slash) => (&trimmed[..slash], Some(&trimmed[slash..])),
        None => (trimmed, None),
    };
    let path = match (kind.is_websocket(), path) {
        (true, Some(p)) => Some(p.to_string()),
        (true, None) => Some(DEFAULT_WS_PATH.to_string()),
        (false, Some(_)) => {
            return Err(format!("{text:?} has a path; only ws and wss listeners take one"));
        }
        (false, None) => None,
    };
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok((addr, path));
    }
    if address.parse::<IpAddr>().is_ok()
        || address.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
    {
        return Err(format!("{text:?} has no port (use IP:PORT, e.g. 0.0.0.0:1883)"));
    }
    if !address.contains(':') {
        return Err(format!("{text:?} has no port (use IP:PORT, e.g. 0.0.0.0:1883)"));
    }
    Err(format!(
        "{text:?} is not an address (use IP:PORT, e.g. 0.0.0.0:1883; host names are not resolved)"
    ))
}

/// The `ssl {}` block of an outbound HTTP client at `key`, if present.
pub(crate) fn read_client_tls(r: &mut Reader<'_>, key: &str) -> Option<ClientTlsConfig> {
    r.block(key)?;
    let tls = ClientTlsConfig {
        cacertfile: r.existing_file(&format!("{key}.cacertfile"), "CA certificate file"),
        certfile: r.existing_file(&format!("{key}.certfile"), "certificate file"),
        keyfile: r.existing_file(&format!("{key}.keyfile"), "key file"),
        key_password: r.string(&format!("{key}.key_password")).map(Secret::new),
    };
    // NanoMQ's client ssl blocks may carry `enable`; the block's presence is what counts.
    r.bool(&format!("{key}.enable"), true);
    let given = |r: &Reader<'_>, k: &str| r.peek_text(&format!("{key}.{k}")).is_some();
    if given(r, "certfile") != given(r, "keyfile") {
        r.error(&format!("{key}.keyfile"), "certfile and keyfile go together (client certificate)");
    }
    Some(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        let (addr, path) = parse_bind("0.0.0.0:1883", ListenerKind::Tcp).unwrap();
        assert_eq!(addr, "0.0.0.0:1883".parse().unwrap());
        assert_eq!(path, None);
        let (addr, path) = parse_bind("0.0.0.0:8083/mqtt", ListenerKind::Ws).unwrap();
        assert_eq!(addr.port(), 8083);
        assert_eq!(path.as_deref(), Some("/mqtt"));
        let (_, path) = parse_bind("127.0.0.1:8084", ListenerKind::Wss).unwrap();
        assert_eq!(path.as_deref(), Some("/mqtt"));
        assert_eq!(parse_bind("[::]:1883", ListenerKind::Tcp).unwrap().0.port(), 1883);
        assert!(parse_bind("0.0.0.0", ListenerKind::Tcp).unwrap_err().contains("has no port"));
        assert!(parse_bind("[::1]", ListenerKind::Tcp).unwrap_err().contains("has no port"));
        assert!(parse_bind("0.0.0.0/mqtt", ListenerKind::Ws).unwrap_err().contains("has no port"));
        assert!(
            parse_bind("0.0.0.0:1883/mqtt", ListenerKind::Tcp).unwrap_err().contains("has a path")
        );
        assert!(
            parse_bind("localhost:1883", ListenerKind::Tcp).unwrap_err().contains("not an address")
        );
        assert!(
            parse_bind("0.0.0.0:99999", ListenerKind::Tcp).unwrap_err().contains("not an address")
        );
    }
}
