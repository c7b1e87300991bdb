//! `auth.http_auth {}`: NanoMQ's HTTP auth requests, made by auth-service. The block's presence
//! enables it.

use std::time::Duration;

use crate::listener::{ClientTlsConfig, read_client_tls};
use crate::mqtt::positive;
use crate::reader::Reader;
use crate::secret::Secret;
use crate::units::PlainUnit;

/// `auth.http_auth {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAuthConfig {
    /// `auth_req {}` (NanoMQ): asked on CONNECT.
    pub auth_req: Option<HttpAuthRequest>,
    /// `super_req {}` (NanoMQ): asked before ACL checks; 200 = superuser.
    pub super_req: Option<HttpAuthRequest>,
    /// `acl_req {}` (NanoMQ): asked on publish and subscribe.
    pub acl_req: Option<HttpAuthRequest>,
    /// `timeout` (NanoMQ): bound on writing the request and reading the response. Default 5s;
    /// a plain integer is seconds.
    pub timeout: Duration,
    /// `connect_timeout` (NanoMQ): bound on the TCP (and TLS) connect. Default 5s; a plain
    /// integer is seconds.
    pub connect_timeout: Duration,
    /// `pool_size` (NanoMQ parses it, never uses it): Tern's connection pool size per request
    /// type. Default 32.
    pub pool_size: u32,
    /// `cache_ttl` (NanoMQ): how long an allowed result is reused. Default 0s = no cache, as in
    /// NanoMQ (broker-core's `auth.cache` still caches decisions per client).
    pub cache_ttl: Duration,
    /// `json_answers` (Tern): read EMQX-style JSON answers
    /// (`{"result": "allow"|"deny"|"ignore", "is_superuser": bool}`) instead of NanoMQ's
    /// status-only ones. Default false.
    pub json_answers: bool,
}

impl Default for HttpAuthConfig {
    fn default() -> Self {
        Self {
            auth_req: None,
            super_req: None,
            acl_req: None,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            pool_size: 32,
            cache_ttl: Duration::ZERO,
            json_answers: false,
        }
    }
}

/// One HTTP auth request (`auth_req`, `super_req` or `acl_req`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAuthRequest {
    /// `url` (required): an `http://` or `https://` URL.
    pub url: String,
    /// `method`: `get` or `post` (case-insensitive). Default `post`.
    pub method: HttpMethod,
    /// `headers.<name> = value` in file order. Values are secrets: they often carry tokens.
    pub headers: Vec<(String, Secret)>,
    /// `params = {name = "%X", …}` in file order; each value is exactly one NanoMQ placeholder
    /// (`%u %c %a %r %P %p %C %d %A %t %m`).
    pub params: Vec<(String, String)>,
    /// `ssl {}`: TLS for an `https://` URL (NanoMQ parses but ignores it; Tern applies it).
    pub tls: Option<ClientTlsConfig>,
}

/// The HTTP method of an auth request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`: params in the query string.
    Get,
    /// `POST`: params in the body.
    Post,
}

/// NanoMQ's placeholders for `params` values.
pub const PLACEHOLDERS: &[&str] =
    &["%u", "%c", "%a", "%r", "%P", "%p", "%C", "%d", "%A", "%t", "%m"];

pub(crate) fn read(r: &mut Reader<'_>) -> Option<HttpAuthConfig> {
    const KEY: &str = "auth.http_auth";
    r.block(KEY)?;
    // `enable` is the NanoMQ 0.14–0.18 switch; honour an explicit `false`.
    if !r.bool("auth.http_auth.enable", true) {
        r.consume(KEY);
        return None;
    }
    let d = HttpAuthConfig::default();
    let config = HttpAuthConfig {
        auth_req: read_request(r, "auth.http_auth.auth_req"),
        super_req: read_request(r, "auth.http_auth.super_req"),
        acl_req: read_request(r, "auth.http_auth.acl_req"),
        timeout: positive(r, "auth.http_auth.timeout", d.timeout),
        connect_timeout: positive(r, "auth.http_auth.connect_timeout", d.connect_timeout),
        pool_size: r.u32_in("auth.http_auth.pool_size", d.pool_size, 1, u32::MAX),
        cache_ttl: r.duration("auth.http_auth.cache_ttl", d.cache_ttl, PlainUnit::Seconds),
        json_answers: r.bool("auth.http_auth.json_answers", d.json_answers),
    };
    if config.auth_req.is_none() && config.super_req.is_none() && config.acl_req.is_none() {
        r.warn(format!(
            "{}: auth.http_auth has no auth_req, super_req or acl_req; it does nothing",
            r.location(KEY)
        ));
    }
    Some(config)
}

fn read_request(r: &mut Reader<'_>, key: &str) -> Option<HttpAuthRequest> {
    r.block(key)?;
    let url_key = format!("{key}.url");
    let url = match r.non_empty(&url_key) {
        Some(url) => {
            if let Err(reason) = validate_http_url(&url) {
                r.error(&url_key, reason);
            }
            url
        }
        None => {
            if r.peek_text(&url_key).is_none() {
                r.error(&url_key, "is required (the auth server's http:// or https:// URL)");
            }
            String::new()
        }
    };
    let method = r.choice(
        &format!("{key}.method"),
        HttpMethod::Post,
        &[("get", HttpMethod::Get), ("post", HttpMethod::Post)],
    );
    let headers = r
        .entries(&format!("{key}.headers"))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, Secret::new(value)))
        .collect();
    let params_key = format!("{key}.params");
    let params = r.entries(&params_key).unwrap_or_default();
    for (name, value) in &params {
        if !PLACEHOLDERS.contains(&value.as_str()) {
            r.error(
                &format!("{params_key}.{name}"),
                format!(
                    "{value:?} is not a placeholder (use exactly one of {})",
                    PLACEHOLDERS.join(" ")
                ),
            );
        }
    }
    Some(HttpAuthRequest {
        url,
        method,
        headers,
        params,
        tls: read_client_tls(r, &format!("{key}.ssl")),
    })
}

/// An `http://` or `https://` URL with a host and, if given, a valid port.
pub(crate) fn validate_http_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{url:?} is not a valid http or https URL ({why})"));
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url["http://".len()..]
    } else if lower.starts_with("https://") {
        &url["https://".len()..]
    } else {
        return bad("it must start with http:// or https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.chars().any(char::is_whitespace) {
        return bad("it contains spaces");
    }
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => return bad("unclosed ["),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return bad("no host");
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return bad("bad port");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for good in [
            "http://127.0.0.1:3000/mqtt/auth",
            "https://auth.example.com/x?y=1",
            "http://[::1]:8080/",
            "HTTP://host",
            "http://user:pw@host:80/p",
        ] {
            assert_eq!(validate_http_url(good), Ok(()), "{good}");
        }
        for bad in [
            "ftp://x",
            "127.0.0.1:3000",
            "http://",
            "http://:80/",
            "http://h:99999/",
            "http://h:x/",
            "http://a b/",
        ] {
            assert!(validate_http_url(bad).is_err(), "{bad}");
        }
    }
}
