//! NanoMQ's HTTP auth (`auth.http_auth {}`) with its exact request contract, on a keep-alive,
//! concurrent HTTP client.
//!
//! Requests, as NanoMQ builds them:
//! - `auth_req` on CONNECT, `super_req` (200 = superuser) and `acl_req` on PUBLISH / SUBSCRIBE;
//! - `params` are sent in config order, each value one placeholder: `%u` username, `%c` client id,
//!   `%a` IPv4 address (empty for IPv6 clients), `%r` protocol name, `%P` password, `%p` listener
//!   port, `%C` certificate CN, `%d` certificate subject, `%A` access (`1` subscribe, `2`
//!   publish), `%t` topic, `%m` mountpoint;
//! - GET puts them in the query string; POST in the body, form-urlencoded (RFC 3986 unreserved
//!   characters kept, everything else `%XX`) unless `headers.content-type` says
//!   `application/json` (a flat object, every value a JSON string). GET is always form-encoded;
//! - every configured header is sent verbatim;
//! - status 200 = allow, anything else = deny (the body is ignored).
//!
//! Differences from NanoMQ (deliberate):
//! - a refused `auth_req` answers 0x86 (bad user name or password), not 0x87; an unreachable or
//!   timed-out auth server is an error (the chain's "unavailable" policy decides), not a deny;
//! - requests run concurrently over a keep-alive pool (`pool_size` idle connections per host),
//!   HTTPS works (rustls; the request's `ssl {}` block gives the CA and client certificate);
//! - `timeout` bounds the whole request (NanoMQ: each of write and read); `connect_timeout`
//!   bounds the connect;
//! - `cache_ttl` caches each allowed `super_req` / `acl_req` answer for `cache_ttl` from when it
//!   was received, keyed by the exact request (NanoMQ flushes the whole map every `cache_ttl` and
//!   keys by a 32-bit hash);
//! - a request without headers still carries its params (NanoMQ then sends none);
//! - one SUBSCRIBE filter per `acl_req` (NanoMQ comma-joins all filters of a packet in `%t`);
//! - opt-in EMQX-style answers ([`HttpSettings::json_answers`]): status 200 with
//!   `{"result": "allow"|"deny"|"ignore", "is_superuser": bool}`, 204 = allow, 4xx/5xx = ignore.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tern_acl::Action;
use tern_config::{ClientTlsConfig, HttpAuthRequest, HttpMethod};

use super::{Authn, Authz, Backend, BackendError, BoxFuture, Client};

const NAME: &str = "http";

/// MQTT 5 CONNACK "Bad User Name or Password".
const BAD_CREDENTIALS: u8 = 0x86;

/// Most cached answers kept at once; past it, expired entries are dropped, then everything.
const CACHE_MAX_ENTRIES: usize = 100_000;

/// The HTTP backend's settings: the parsed `auth.http_auth {}` block (NanoMQ's keys plus Tern's
/// `json_answers`).
pub use tern_config::HttpAuthConfig as HttpSettings;

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Auth,
    Super,
    Acl,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Auth => "auth_req",
            Kind::Super => "super_req",
            Kind::Acl => "acl_req",
        }
    }
}

/// How the params travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// In the query string (GET).
    Query,
    /// Form-urlencoded body.
    Form,
    /// Flat JSON object body.
    Json,
}

/// One configured request, ready to send.
struct Endpoint {
    kind: Kind,
    url: String,
    method: Method,
    encoding: Encoding,
    /// The configured headers, values marked sensitive (they usually carry tokens).
    headers: HeaderMap,
    params: Vec<(String, String)>,
    /// The client of this endpoint's TLS settings (shared between endpoints with equal ones).
    client: reqwest::Client,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("method", &self.method)
            .field("encoding", &self.encoding)
            .field("headers", &self.headers.keys().map(HeaderName::as_str).collect::<Vec<_>>())
            .field("params", &self.params)
            .finish()
    }
}

/// The URL without any `user:password@`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://<redacted>@{host}{}", &rest[authority_end..]),
        None => url.to_owned(),
    }
}

/// A parsed EMQX-style answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allow { superuser: bool },
    Deny,
    Ignore,
}

#[derive(serde::Deserialize)]
struct JsonAnswer {
    result: JsonResult,
    #[serde(default)]
    is_superuser: bool,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum JsonResult {
    Allow,
    Deny,
    Ignore,
}

/// NanoMQ-style HTTP authentication and authorization.
pub struct HttpBackend {
    auth: Option<Endpoint>,
    superuser: Option<Endpoint>,
    acl: Option<Endpoint>,
    json_answers: bool,
    cache_ttl: Duration,
    /// Allowed `super_req` / `acl_req` answers: request → when it stops being valid. Held only
    /// for a lookup or an insert, never across a request.
    cache: Mutex<HashMap<(Kind, String), Instant>>,
}

impl fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBackend")
            .field("auth_req", &self.auth)
            .field("super_req", &self.superuser)
            .field("acl_req", &self.acl)
            .field("json_answers", &self.json_answers)
            .field("cache_ttl", &self.cache_ttl)
            .field("cached", &self.cache.lock().len())
            .finish()
    }
}

impl HttpBackend {
    /// Builds the HTTP clients (one per distinct TLS setting). Fails on an invalid header, an
    /// unreadable CA or client certificate, or a TLS setup error.
    pub fn new(settings: HttpSettings) -> Result<Self, BackendError> {
        let mut clients: Vec<(Option<ClientTlsConfig>, reqwest::Client)> = Vec::new();
        let mut endpoint = |kind: Kind, request: &Option<HttpAuthRequest>| {
            request
                .as_ref()
                .map(|request| {
                    let tls = request.tls.clone();
                    let client = match clients.iter().find(|(t, _)| *t == tls) {
                        Some((_, client)) => client.clone(),
                        None => {
                            let client = build_client(&settings, tls.as_ref())?;
                            clients.push((tls, client.clone()));
                            client
                        }
                    };
                    Endpoint::new(kind, request, client)
                })
                .transpose()
        };
        let auth = endpoint(Kind::Auth, &settings.auth_req)?;
        let superuser = endpoint(Kind::Super, &settings.super_req)?;
        let acl = endpoint(Kind::Acl, &settings.acl_req)?;
        Ok(Self {
            auth,
            superuser,
            acl,
            json_answers: settings.json_answers,
            cache_ttl: settings.cache_ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Sends `endpoint`'s request for `client` (and `access`) and reads the answer.
    async fn ask(
        &self,
        endpoint: &Endpoint,
        client: &Client,
        access: Option<(Action, &str)>,
    ) -> Result<Answer, BackendError> {
        let values = endpoint.render(client, access);
        let cache_key = (self.cache_ttl > Duration::ZERO && endpoint.kind != Kind::Auth)
            .then(|| (endpoint.kind, encode_form(&values)));
        if let Some(key) = &cache_key
            && self.cached(key)
        {
            return Ok(Answer::Allow { superuser: endpoint.kind == Kind::Super });
        }
        let answer = self.send(endpoint, &values).await?;
        if let (Some(key), Answer::Allow { .. }) = (cache_key, answer) {
            self.remember(key);
        }
        Ok(answer)
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        values: &[(&str, Vec<u8>)],
    ) -> Result<Answer, BackendError> {
        let mut url = endpoint.url.clone();
        let mut request = match endpoint.encoding {
            Encoding::Query => {
                if !values.is_empty() {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str(&encode_form(values));
                }
                endpoint.client.request(endpoint.method.clone(), url)
            }
            Encoding::Form => {
                endpoint.client.request(endpoint.method.clone(), url).body(encode_form(values))
            }
            Encoding::Json => {
                endpoint.client.request(endpoint.method.clone(), url).body(encode_json(values))
            }
        };
        request = request.headers(endpoint.headers.clone());
        if endpoint.encoding == Encoding::Form && !endpoint.headers.contains_key(CONTENT_TYPE) {
            request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let unavailable = |e: reqwest::Error| BackendError::Unavailable {
            backend: NAME,
            reason: format!("{}: {}", endpoint.kind.as_str(), describe(e)),
        };
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        if !self.json_answers {
            // NanoMQ: only 200 allows; the body is ignored (and not read: the connection is
            // reused once it is drained or dropped).
            return Ok(if status == StatusCode::OK {
                Answer::Allow { superuser: endpoint.kind == Kind::Super }
            } else {
                Answer::Deny
            });
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(Answer::Allow { superuser: false });
        }
        if !status.is_success() {
            return Ok(Answer::Ignore);
        }
        let body = response.bytes().await.map_err(unavailable)?;
        let parsed: JsonAnswer =
            serde_json::from_slice(&body).map_err(|e| BackendError::Invalid {
                backend: NAME,
                reason: format!(
                    "{}: answer is not {{\"result\": ...}}: {e}",
                    endpoint.kind.as_str()
                ),
            })?;
        Ok(match parsed.result {
            JsonResult::Allow => {
                Answer::Allow { superuser: parsed.is_superuser || endpoint.kind == Kind::Super }
            }
            JsonResult::Deny => Answer::Deny,
            JsonResult::Ignore => Answer::Ignore,
        })
    }

    fn cached(&self, key: &(Kind, String)) -> bool {
        let mut cache = self.cache.lock();
        match cache.get(key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                cache.remove(key);
                false
            }
            None => false,
        }
    }

    fn remember(&self, key: (Kind, String)) {
        let now = Instant::now();
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_MAX_ENTRIES {
            cache.retain(|_, until| *until > now);
            if cache.len() >= CACHE_MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, now + self.cache_ttl);
    }

    /// Whether `super_req` says `client` is a superuser (`%A` / `%t` filled when asked for an
    /// ACL check, as NanoMQ does); `None` if not configured.
    async fn is_superuser(
        &self,
        client: &Client,
        access: Option<(Action, &str)>,
    ) -> Result<Option<bool>, BackendError> {
        let Some(endpoint) = &self.superuser else { return Ok(None) };
        let answer = self.ask(endpoint, client, access).await?;
        Ok(Some(matches!(answer, Answer::Allow { .. })))
    }
}

fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // Without the URL: it may carry credentials (and GET queries carry passwords).
    format!("{what}: {}", e.without_url())
}

fn build_client(
    settings: &HttpSettings,
    tls: Option<&ClientTlsConfig>,
) -> Result<reqwest::Client, BackendError> {
    let invalid = |reason: String| BackendError::Invalid { backend: NAME, reason };
    let pool = usize::try_from(settings.pool_size).unwrap_or(usize::MAX);
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(60))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(tls) = tls {
        if let Some(ca) = &tls.cacertfile {
            let pem = std::fs::read(ca)
                .map_err(|e| invalid(format!("cannot read cacertfile {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid(format!("bad cacertfile {}: {e}", ca.display())))?;
            builder = builder.tls_certs_only(certs);
        }
        match (&tls.certfile, &tls.keyfile) {
            (Some(cert), Some(key)) => {
                let mut pem = read_key(key, tls.key_password.as_ref()).map_err(invalid)?;
                pem.extend(std::fs::read(cert).map_err(|e| {
                    invalid(format!("cannot read certfile {}: {e}", cert.display()))
                })?);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| invalid(format!("bad client certificate or key: {e}")))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err(invalid("ssl: certfile and keyfile go together".into())),
        }
    }
    builder.build().map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))
}

/// The client key as PEM, decrypted when a password is given.
fn read_key(
    path: &std::path::Path,
    password: Option<&tern_config::Secret>,
) -> Result<Vec<u8>, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read keyfile {}: {e}", path.display()))?;
    let Some(password) = password else { return Ok(pem.into_bytes()) };
    use pkcs8::der::pem::PemLabel as _;
    let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes())
        .map_err(|e| format!("bad keyfile {}: {e}", path.display()))?;
    if label != pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL {
        return Ok(pem.into_bytes());
    }
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
        .map_err(|e| format!("bad encrypted keyfile {}: {e}", path.display()))?;
    let document = encrypted
        .decrypt(password.expose())
        .map_err(|_| format!("cannot decrypt keyfile {} (wrong key_password?)", path.display()))?;
    let pem = document
        .to_pem(pkcs8::PrivateKeyInfo::PEM_LABEL, pkcs8::LineEnding::LF)
        .map_err(|e| format!("cannot re-encode keyfile {}: {e}", path.display()))?;
    Ok(pem.as_bytes().to_vec())
}

impl Endpoint {
    fn new(
        kind: Kind,
        request: &HttpAuthRequest,
        client: reqwest::Client,
    ) -> Result<Self, BackendError> {
        let invalid = |reason: String| BackendError::Invalid {
            backend: NAME,
            reason: format!("{}: {reason}", kind.as_str()),
        };
        let mut headers = HeaderMap::new();
        let mut json = false;
        for (name, value) in &request.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("invalid header name {name:?}")))?;
            let mut header_value = HeaderValue::from_str(value.expose())
                .map_err(|_| invalid(format!("invalid value for header {name:?}")))?;
            if header == CONTENT_TYPE {
                json = value.expose().to_ascii_lowercase().contains("application/json");
            } else {
                header_value.set_sensitive(true);
            }
            headers.append(header, header_value);
        }
        let (method, encoding) = match request.method {
            // NanoMQ forces GET to form encoding, in the query string.
            HttpMethod::Get => (Method::GET, Encoding::Query),
            HttpMethod::Post if json => (Method::POST, Encoding::Json),
            HttpMethod::Post => (Method::POST, Encoding::Form),
        };
        reqwest::Url::parse(&request.url)
            .map_err(|e| invalid(format!("invalid url {:?}: {e}", redact_url(&request.url))))?;
        Ok(Self {
            kind,
            url: request.url.clone(),
            method,
            encoding,
            headers,
            params: request.params.clone(),
            client,
        })
    }

    /// The param values for `client` in config order (raw bytes: a password may not be UTF-8).
    fn render<'s>(
        &'s self,
        client: &Client,
        access: Option<(Action, &str)>,
    ) -> Vec<(&'s str, Vec<u8>)> {
        self.params
            .iter()
            .map(|(name, placeholder)| {
                (name.as_str(), placeholder_value(placeholder, client, access))
            })
            .collect()
    }
}

/// The value of one NanoMQ placeholder.
fn placeholder_value(
    placeholder: &str,
    client: &Client,
    access: Option<(Action, &str)>,
) -> Vec<u8> {
    let text = |s: Option<&str>| s.unwrap_or_default().as_bytes().to_vec();
    match placeholder {
        "%u" => text(client.username.as_deref()),
        "%c" => client.client_id.as_bytes().to_vec(),
        "%a" => match client.ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_string().into_bytes(),
            // NanoMQ sends an empty address for IPv6 clients.
            _ => Vec::new(),
        },
        "%r" => client.protocol_name.as_bytes().to_vec(),
        "%P" => client.password.clone().unwrap_or_default(),
        "%p" => client.listener_port.to_string().into_bytes(),
        "%C" => text(client.cert_common_name.as_deref()),
        "%d" => text(client.cert_subject.as_deref()),
        "%A" => match access {
            Some((Action::Subscribe, _)) => b"1".to_vec(),
            Some((Action::Publish, _)) => b"2".to_vec(),
            None => Vec::new(),
        },
        "%t" => access.map(|(_, topic)| topic.as_bytes().to_vec()).unwrap_or_default(),
        "%m" => text(client.mountpoint.as_deref()),
        _ => Vec::new(),
    }
}

/// `k=v&k=v`, keys and values percent-encoded (RFC 3986 unreserved characters kept).
fn encode_form(values: &[(&str, Vec<u8>)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in values.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(name.as_bytes(), &mut out);
        out.push('=');
        percent_encode(value, &mut out);
    }
    out
}

fn percent_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// A flat JSON object in param order, every value a string.
fn encode_json(values: &[(&str, Vec<u8>)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(name));
        out.push(':');
        out.push_str(&json_string(&String::from_utf8_lossy(value)));
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

impl Backend for HttpBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn authenticate<'a>(
        &'a self,
        client: &'a Client,
    ) -> BoxFuture<'a, Result<Authn, BackendError>> {
        Box::pin(async move {
            let Some(endpoint) = &self.auth else { return Ok(Authn::Ignore) };
            match self.ask(endpoint, client, None).await? {
                Answer::Allow { superuser: true } => Ok(Authn::Allow { superuser: true }),
                Answer::Allow { superuser: false } => {
                    let superuser = match self.is_superuser(client, None).await {
                        Ok(answer) => answer.unwrap_or(false),
                        Err(e) => {
                            tracing::warn!(error = %e, "super_req failed; not a superuser");
                            false
                        }
                    };
                    Ok(Authn::Allow { superuser })
                }
                Answer::Deny => Ok(Authn::Deny {
                    reason_code: BAD_CREDENTIALS,
                    reason: "auth_req refused".into(),
                }),
                Answer::Ignore => Ok(Authn::Ignore),
            }
        })
    }

    fn authorize<'a>(
        &'a self,
        client: &'a Client,
        action: Action,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Authz, BackendError>> {
        Box::pin(async move {
            let superuser = match self.is_superuser(client, Some((action, topic))).await {
                Ok(answer) => answer,
                // With an acl_req to ask, a failed super_req only means "not known to be one".
                Err(e) if self.acl.is_some() => {
                    tracing::debug!(error = %e, "super_req failed; asking acl_req");
                    Some(false)
                }
                Err(e) => return Err(e),
            };
            if superuser == Some(true) {
                return Ok(Authz::Allow);
            }
            match &self.acl {
                Some(endpoint) => {
                    Ok(match self.ask(endpoint, client, Some((action, topic))).await? {
                        Answer::Allow { .. } => Authz::Allow,
                        Answer::Deny => Authz::Deny,
                        Answer::Ignore => Authz::Ignore,
                    })
                }
                // NanoMQ: super_req without acl_req denies whoever is not a superuser.
                None if superuser.is_some() => Ok(Authz::Deny),
                None => Ok(Authz::Ignore),
            }
        })
    }

    fn authorizes(&self) -> bool {
        self.acl.is_some() || self.superuser.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_keeps_only_unreserved() {
        let values = vec![
            ("clientid", b"c 1/+#&=".to_vec()),
            ("username", "üser~._-".as_bytes().to_vec()),
            ("password", vec![0xff, b'*']),
        ];
        assert_eq!(
            encode_form(&values),
            "clientid=c%201%2F%2B%23%26%3D&username=%C3%BCser~._-&password=%FF%2A"
        );
        assert_eq!(encode_form(&[]), "");
    }

    #[test]
    fn json_encoding_is_flat_strings_in_order() {
        let values = vec![("b", b"1".to_vec()), ("a", b"q\"x".to_vec())];
        assert_eq!(encode_json(&values), r#"{"b":"1","a":"q\"x"}"#);
    }

    #[test]
    fn placeholders() {
        let client = Client {
            client_id: "c1".into(),
            username: Some("u1".into()),
            password: Some(b"pw".to_vec()),
            ip: Some("::ffff:10.0.0.1".parse().unwrap()),
            listener_port: 1883,
            protocol_name: "MQTT".into(),
            ..Client::default()
        };
        let sub = Some((Action::Subscribe, "t/#"));
        assert_eq!(placeholder_value("%a", &client, None), b"10.0.0.1");
        assert_eq!(placeholder_value("%A", &client, sub), b"1");
        assert_eq!(placeholder_value("%A", &client, Some((Action::Publish, "t"))), b"2");
        assert_eq!(placeholder_value("%t", &client, sub), b"t/#");
        assert_eq!(placeholder_value("%P", &client, None), b"pw");
        assert_eq!(placeholder_value("%p", &client, None), b"1883");
        assert_eq!(placeholder_value("%r", &client, None), b"MQTT");
        assert_eq!(placeholder_value("%m", &client, None), b"");
        assert_eq!(placeholder_value("%C", &client, None), b"");
        let v6 = Client { ip: Some("fd00::1".parse().unwrap()), ..client };
        assert_eq!(placeholder_value("%a", &v6, None), b"");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("http://u:p@h:1/x?y"), "http://<redacted>@h:1/x?y");
        assert_eq!(redact_url("http://h/x@y"), "http://h/x@y");
    }
}
