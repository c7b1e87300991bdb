//! `http_server {}`: NanoMQ's `/api/v4` REST API, served by admin-api. The block's presence
//! enables it. Port and address changes need a restart.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::reader::Reader;
use crate::secret::Secret;
use crate::units::ByteSize;

/// The `http_server {}` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpServerConfig {
    /// `http_server.port` (NanoMQ). Default 8081; 0 picks a free port (tests).
    pub port: u16,
    /// `http_server.ip_addr` (NanoMQ): address to listen on. Default 0.0.0.0.
    pub ip_addr: IpAddr,
    /// `http_server.limit_conn` (NanoMQ): concurrent requests served. Default 32.
    pub limit_conn: u32,
    /// `http_server.username` (NanoMQ): Basic auth user. Default `admin`.
    pub username: String,
    /// `http_server.password` (NanoMQ): Basic auth password. Default `public`.
    pub password: Secret,
    /// `http_server.max_body` (NanoMQ): largest request body. Default 1MB.
    pub max_body: ByteSize,
    /// `http_server.auth_type` (NanoMQ): `basic`, `jwt` or `no_auth`. Default `basic`.
    pub auth_type: HttpAuthType,
    /// `http_server.jwt.public.keyfile` (NanoMQ): RS256 public key verifying JWTs; required
    /// with `auth_type = jwt`; must exist when given.
    pub jwt_public_keyfile: Option<PathBuf>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            port: 8081,
            ip_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            limit_conn: 32,
            username: "admin".to_string(),
            password: Secret::new("public"),
            max_body: ByteSize::mb(1),
            auth_type: HttpAuthType::Basic,
            jwt_public_keyfile: None,
        }
    }
}

/// How the REST API authenticates callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAuthType {
    /// HTTP Basic with `username` / `password` (`basic`).
    Basic,
    /// RS256 JWT verified with `jwt.public.keyfile` (`jwt`).
    Jwt,
    /// No authentication (`no_auth`).
    NoAuth,
}

pub(crate) fn read(r: &mut Reader<'_>) -> Option<HttpServerConfig> {
    r.block("http_server")?;
    // `enable` is the NanoMQ 0.14–0.18 switch; honour an explicit `false`.
    if !r.bool("http_server.enable", true) {
        r.consume("http_server");
        return None;
    }
    let d = HttpServerConfig::default();
    let ip_addr = match r.string("http_server.ip_addr") {
        Some(text) => text.trim().parse::<IpAddr>().unwrap_or_else(|_| {
            r.error("http_server.ip_addr", format!("{text:?} is not an IP address"));
            d.ip_addr
        }),
        None => d.ip_addr,
    };
    let auth_type = r.choice(
        "http_server.auth_type",
        d.auth_type,
        &[
            ("basic", HttpAuthType::Basic),
            ("jwt", HttpAuthType::Jwt),
            ("no_auth", HttpAuthType::NoAuth),
        ],
    );
    let jwt_public_keyfile = if r.has("http_server.jwt") && r.block("http_server.jwt").is_some() {
        r.block("http_server.jwt.public");
        r.existing_file("http_server.jwt.public.keyfile", "JWT public key file")
    } else {
        None
    };
    if auth_type == HttpAuthType::Jwt
        && jwt_public_keyfile.is_none()
        && r.peek_text("http_server.jwt.public.keyfile").is_none()
    {
        r.error("http_server.jwt.public.keyfile", "is required when auth_type = jwt");
    }
    Some(HttpServerConfig {
        port: r.u16_in("http_server.port", d.port, 0, u16::MAX),
        ip_addr,
        limit_conn: r.u32_in("http_server.limit_conn", d.limit_conn, 1, u32::MAX),
        username: r.non_empty("http_server.username").unwrap_or(d.username),
        password: r.string("http_server.password").map(Secret::new).unwrap_or(d.password),
        max_body: r.size_in("http_server.max_body", d.max_body, ByteSize::b(1), ByteSize::mb(260)),
        auth_type,
        jwt_public_keyfile,
    })
}
