//! The HTTP backend against a real HTTP server in the test that behaves like the seed's auth
//! server (rejects requests without the configured JWT `authorization` header; 200/401 for auth
//! and superuser, 200/403 for ACL; `access` 1 = subscribe, 2 = publish) and records every
//! request exactly as it arrived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_service::backend::http::{HttpBackend, HttpSettings};
use auth_service::backend::{Action, Authn, Authz, Backend, BackendError, Client};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use tern_config::{ClientTlsConfig, Env, HttpAuthRequest, HttpMethod, Secret};
use tokio::net::{TcpListener, TcpStream};

/// The `authorization` header of the seed's configuration (HS256, secret below).
const SEED_TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJlbnZOYW1lIjoibG9jYWwifQ.oWJU9JhpdASfv_9XDHm1wZ2w7IA86N2YAr3aX8NUNEY";
/// The secret the seed's server verifies it with.
const SEED_SECRET: &[u8] = b"nanoqm-webhook-local";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone)]
struct Server {
    log: Arc<Mutex<Vec<Recorded>>>,
    /// TCP connections accepted.
    connections: Arc<AtomicUsize>,
    /// Requests waiting at `/barrier` until this many are in flight together.
    barrier: Arc<tokio::sync::Barrier>,
    addr: SocketAddr,
    scheme: &'static str,
}

impl Server {
    fn url(&self, path: &str) -> String {
        let host = if self.scheme == "https" { "localhost" } else { "127.0.0.1" };
        format!("{}://{host}:{}{path}", self.scheme, self.addr.port())
    }

    fn requests(&self, path: &str) -> Vec<Recorded> {
        self.log.lock().iter().filter(|r| r.path == path).cloned().collect()
    }
}

/// A listener that counts connections.
struct Counting {
    inner: TcpListener,
    count: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Counting {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(accepted) = self.inner.accept().await {
                self.count.fetch_add(1, Ordering::SeqCst);
                return accepted;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TLS listener (handshake in the accept loop: fine for a test).
struct Tls {
    inner: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    count: Arc<AtomicUsize>,
}

impl axum::serve::Listener for Tls {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                self.count.fetch_add(1, Ordering::SeqCst);
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

async fn spawn_server(tls: Option<rustls::ServerConfig>, barrier: usize) -> Server {
    let (listener, addr) = test_support::bind_tokio().await;
    let server = Server {
        log: Arc::default(),
        connections: Arc::default(),
        barrier: Arc::new(tokio::sync::Barrier::new(barrier)),
        addr,
        scheme: if tls.is_some() { "https" } else { "http" },
    };
    let app = Router::new().fallback(handle).with_state(server.clone());
    let count = server.connections.clone();
    match tls {
        None => {
            tokio::spawn(async move {
                axum::serve(Counting { inner: listener, count }, app).await.unwrap();
            });
        }
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            tokio::spawn(async move {
                axum::serve(Tls { inner: listener, acceptor, count }, app).await.unwrap();
            });
        }
    }
    server
}

/// The seed's users: (username, password, superuser, allowed topics).
const USERS: &[(&str, &str, bool, &str)] =
    &[("admin", "public", true, "#"), ("client", "public", false, "client/only-one")];

async fn handle(
    State(server): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    server.log.lock().push(Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: body.clone(),
    });
    // The seed's server: every request needs a valid JWT in `authorization`.
    if !seed_token_valid(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let params = params(&method, &uri, &headers, &body);
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let user = USERS.iter().find(|u| u.0 == get("username"));
    match uri.path() {
        "/mqtt/auth" => match user {
            Some(u) if u.1 == get("password") => StatusCode::OK.into_response(),
            _ => StatusCode::UNAUTHORIZED.into_response(),
        },
        "/mqtt/superuser" => match user {
            Some(u) if u.1 == get("password") && u.2 => StatusCode::OK.into_response(),
            _ => StatusCode::UNAUTHORIZED.into_response(),
        },
        "/mqtt/acl" => {
            // access 1 = subscribe, 2 = publish; both lists are the same for the seed's users.
            let allowed = matches!(get("access").as_str(), "1" | "2")
                && user.is_some_and(|u| {
                    let pattern = u.3.replace('#', ".*");
                    regex_like_match(&pattern, &get("topic"))
                });
            if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN }.into_response()
        }
        "/slow" => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        "/barrier" => {
            server.barrier.wait().await;
            StatusCode::OK.into_response()
        }
        "/json/auth" | "/json/acl" => match get("username").as_str() {
            "allow-user" => json(r#"{"result": "allow", "is_superuser": true}"#),
            "plain-user" => json(r#"{"result": "allow"}"#),
            "deny-user" => json(r#"{"result": "deny"}"#),
            "ignore-user" => json(r#"{"result": "ignore"}"#),
            "empty-user" => StatusCode::NO_CONTENT.into_response(),
            "garbage-user" => (StatusCode::OK, "not json").into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn json(body: &'static str) -> Response {
    ([("content-type", "application/json")], body).into_response()
}

/// The seed's `^pattern$` match where the only special sequence is `.*`.
fn regex_like_match(pattern: &str, topic: &str) -> bool {
    match pattern.split_once(".*") {
        None => pattern == topic,
        Some((prefix, suffix)) => {
            topic.len() >= prefix.len() + suffix.len()
                && topic.starts_with(prefix)
                && topic.ends_with(suffix)
        }
    }
}

fn seed_token_valid(headers: &HeaderMap) -> bool {
    let Some(token) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let key = jsonwebtoken::DecodingKey::from_secret(SEED_SECRET);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).is_ok()
}

fn params(method: &Method, uri: &Uri, headers: &HeaderMap, body: &str) -> HashMap<String, String> {
    if method == Method::GET {
        return form_decode(uri.query().unwrap_or_default());
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if json { serde_json::from_str(body).unwrap_or_default() } else { form_decode(body) }
}

fn form_decode(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn request(
    url: String,
    method: HttpMethod,
    headers: &[(&str, &str)],
    params: &[(&str, &str)],
) -> HttpAuthRequest {
    HttpAuthRequest {
        url,
        method,
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), Secret::new(*v))).collect(),
        params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        tls: None,
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");
const AUTHORIZATION: (&str, &str) = ("authorization", SEED_TOKEN);

fn settings() -> HttpSettings {
    HttpSettings {
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

fn client(client_id: &str, username: &str, password: &[u8]) -> Client {
    Client {
        client_id: client_id.into(),
        username: Some(username.into()),
        password: Some(password.to_vec()),
        ip: Some("127.0.0.1".parse().unwrap()),
        port: 50000,
        listener_port: 1883,
        protocol_name: "MQTT".into(),
        protocol_version: 4,
        ..Client::default()
    }
}

/// The seed's `nanomq-http-auth.conf`, loaded through tern-config with the auth server moved to
/// `server`.
fn seed_settings(server: &Server) -> HttpSettings {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/certs")).unwrap();
    for file in ["key.pem", "cert.pem", "cacert.pem"] {
        std::fs::write(dir.path().join("etc/certs").join(file), "placeholder\n").unwrap();
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nanomq");
    let text = std::fs::read_to_string(fixtures.join("nanomq-http-auth.conf")).unwrap();
    let text = text.replace("127.0.0.1:3000", &format!("127.0.0.1:{}", server.addr.port()));
    let path = dir.path().join("nanomq.conf");
    std::fs::write(&path, text).unwrap();
    let loaded = tern_config::load_in(&path, dir.path(), &Env::new()).unwrap();
    loaded.config.auth.http_auth.expect("http_auth block")
}

#[tokio::test]
async fn seed_matrix_and_exact_form_bodies() {
    let server = spawn_server(None, 1).await;
    let backend = HttpBackend::new(seed_settings(&server)).unwrap();
    assert!(backend.authorizes());

    let admin = client("admin-1", "admin", b"public");
    let user = client("client-1", "client", b"public");
    let wrong = client("client-2", "client", b"wrong");
    let stranger = client("x-1", "nobody", b"public");

    assert_eq!(backend.authenticate(&admin).await.unwrap(), Authn::Allow { superuser: true });
    assert_eq!(backend.authenticate(&user).await.unwrap(), Authn::Allow { superuser: false });
    for refused in [&wrong, &stranger] {
        let answer = backend.authenticate(refused).await.unwrap();
        assert!(matches!(answer, Authn::Deny { reason_code: 0x86, .. }), "{answer:?}");
    }

    for action in [Action::Publish, Action::Subscribe] {
        assert_eq!(
            backend.authorize(&admin, action, "anything/at/all").await.unwrap(),
            Authz::Allow
        );
        assert_eq!(
            backend.authorize(&user, action, "client/only-one").await.unwrap(),
            Authz::Allow
        );
        assert_eq!(backend.authorize(&user, action, "client/other").await.unwrap(), Authz::Deny);
        assert_eq!(
            backend.authorize(&stranger, action, "client/only-one").await.unwrap(),
            Authz::Deny
        );
    }

    // The exact bodies, in the seed's param order.
    let auth = server.requests("/mqtt/auth");
    assert_eq!(auth[0].method, Method::POST);
    assert_eq!(auth[0].body, "clientid=admin-1&username=admin&password=public");
    assert_eq!(auth[1].body, "clientid=client-1&username=client&password=public");
    assert_eq!(auth[2].body, "clientid=client-2&username=client&password=wrong");
    let superuser = server.requests("/mqtt/superuser");
    assert_eq!(superuser[0].body, "clientid=admin-1&username=admin&password=public");
    let acl = server.requests("/mqtt/acl");
    assert_eq!(
        acl[0].body,
        "clientid=client-1&username=client&access=2&ipaddr=127.0.0.1&topic=client%2Fonly-one&mountpoint="
    );
    assert_eq!(
        acl[2].body,
        "clientid=x-1&username=nobody&access=2&ipaddr=127.0.0.1&topic=client%2Fonly-one&mountpoint="
    );
    assert!(acl.iter().any(|r| r.body.contains("access=1&")), "a subscribe check was sent");
    // Every configured header, verbatim.
    for r in server.log.lock().iter() {
        assert_eq!(r.headers["authorization"], SEED_TOKEN);
        assert_eq!(r.headers["content-type"], "application/x-www-form-urlencoded");
        assert_eq!(r.query, None);
    }
    // Keep-alive: the whole conversation took one connection (requests were sequential).
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_authorization_header_is_refused_by_the_seed_server() {
    let server = spawn_server(None, 1).await;
    let backend = HttpBackend::new(HttpSettings {
        auth_req: Some(request(
            server.url("/mqtt/auth"),
            HttpMethod::Post,
            &[FORM],
            &[("clientid", "%c"), ("username", "%u"), ("password", "%P")],
        )),
        ..settings()
    })
    .unwrap();
    let answer = backend.authenticate(&client("admin-1", "admin", b"public")).await.unwrap();
    assert!(matches!(answer, Authn::Deny { reason_code: 0x86, .. }), "{answer:?}");
}

#[tokio::test]
async fn percent_encoding_json_bodies_and_get_queries() {
    let server = spawn_server(None, 1).await;
    let all = [
        ("u", "%u"),
        ("c", "%c"),
        ("a", "%a"),
        ("r", "%r"),
        ("P", "%P"),
        ("p", "%p"),
        ("C", "%C"),
        ("d", "%d"),
        ("m", "%m"),
    ];
    let backend = HttpBackend::new(HttpSettings {
        auth_req: Some(request(server.url("/form"), HttpMethod::Post, &[AUTHORIZATION], &all)),
        super_req: Some(request(
            server.url("/json?x=1"),
            HttpMethod::Post,
            &[AUTHORIZATION, JSON, ("x-extra", "Value With Spaces")],
            &[("clientid", "%c"), ("access", "%A"), ("password", "%P")],
        )),
        acl_req: Some(request(
            server.url("/get?static=yes"),
            HttpMethod::Get,
            &[AUTHORIZATION, JSON],
            &[("username", "%u"), ("access", "%A"), ("topic", "%t")],
        )),
        ..settings()
    })
    .unwrap();
    let mut odd = client("c 1/ü", "user+name", b"p&w=d%\"");
    odd.cert_common_name = Some("device-7".into());
    odd.cert_subject = Some("CN=device-7,O=Tern".into());
    odd.ip = Some("fd00::1".parse().unwrap());
    // Unknown paths answer 404: denied, but every request is recorded.
    assert!(matches!(backend.authenticate(&odd).await.unwrap(), Authn::Deny { .. }));
    assert_eq!(backend.authorize(&odd, Action::Subscribe, "a/+/b #").await.unwrap(), Authz::Deny);

    let form = &server.requests("/form")[0];
    assert_eq!(
        form.body,
        "u=user%2Bname&c=c%201%2F%C3%BC&a=&r=MQTT&P=p%26w%3Dd%25%22&p=1883&C=device-7&d=CN%3Ddevice-7%2CO%3DTern&m="
    );
    assert_eq!(form.headers["content-type"], "application/x-www-form-urlencoded");

    let json = &server.requests("/json")[0];
    assert_eq!(json.query.as_deref(), Some("x=1"));
    assert_eq!(json.body, r#"{"clientid":"c 1/ü","access":"1","password":"p&w=d%\""}"#);
    assert_eq!(json.headers["content-type"], "application/json");
    assert_eq!(json.headers["x-extra"], "Value With Spaces");

    let get = &server.requests("/get")[0];
    assert_eq!(get.method, Method::GET);
    assert_eq!(
        get.query.as_deref(),
        Some("static=yes&username=user%2Bname&access=1&topic=a%2F%2B%2Fb%20%23")
    );
    assert_eq!(get.body, "");
}

#[tokio::test]
async fn timeouts_and_unreachable_servers() {
    let server = spawn_server(None, 1).await;
    let backend = HttpBackend::new(HttpSettings {
        auth_req: Some(request(
            server.url("/slow"),
            HttpMethod::Post,
            &[AUTHORIZATION],
            &[("u", "%u")],
        )),
        acl_req: Some(request(
            server.url("/slow"),
            HttpMethod::Post,
            &[AUTHORIZATION],
            &[("u", "%u")],
        )),
        timeout: Duration::from_millis(300),
        ..settings()
    })
    .unwrap();
    let who = client("c", "admin", b"public");
    let started = Instant::now();
    let err = backend.authenticate(&who).await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
    let err = backend.authorize(&who, Action::Publish, "t").await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // The error names neither the password nor the URL's query.
    assert!(!err.to_string().contains("public"), "{err}");

    // Nobody listening: unavailable, quickly.
    let (closed, addr) = test_support::bind_tcp();
    drop(closed);
    let backend = HttpBackend::new(HttpSettings {
        auth_req: Some(request(format!("http://{addr}/x"), HttpMethod::Post, &[], &[("u", "%u")])),
        connect_timeout: Duration::from_millis(500),
        ..settings()
    })
    .unwrap();
    let err = backend.authenticate(&who).await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
}

#[tokio::test]
async fn requests_run_concurrently() {
    const IN_FLIGHT: usize = 4;
    let server = spawn_server(None, IN_FLIGHT).await;
    let backend = Arc::new(
        HttpBackend::new(HttpSettings {
            acl_req: Some(request(
                server.url("/barrier"),
                HttpMethod::Post,
                &[AUTHORIZATION],
                &[("topic", "%t")],
            )),
            // NanoMQ's one-at-a-time client would hit this: no request answers until all four
            // are in flight.
            timeout: Duration::from_secs(5),
            ..settings()
        })
        .unwrap(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..IN_FLIGHT {
        let backend = backend.clone();
        tasks.push(tokio::spawn(async move {
            let who = client(&format!("c{i}"), "u", b"p");
            backend.authorize(&who, Action::Publish, &format!("t/{i}")).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Authz::Allow);
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(server.requests("/barrier").len(), IN_FLIGHT);
}

#[tokio::test]
async fn allowed_answers_are_cached_per_request() {
    let server = spawn_server(None, 1).await;
    let seed = seed_settings(&server);
    let backend =
        HttpBackend::new(HttpSettings { cache_ttl: Duration::from_secs(60), ..seed }).unwrap();
    let user = client("client-1", "client", b"public");
    let admin = client("admin-1", "admin", b"public");
    for _ in 0..3 {
        assert_eq!(
            backend.authorize(&user, Action::Publish, "client/only-one").await.unwrap(),
            Authz::Allow
        );
    }
    // super_req (401, not cached) each time; acl_req (200) once.
    assert_eq!(server.requests("/mqtt/acl").len(), 1);
    assert_eq!(server.requests("/mqtt/superuser").len(), 3);
    // Another topic or action is another request; a denied answer is not cached.
    assert_eq!(
        backend.authorize(&user, Action::Subscribe, "client/only-one").await.unwrap(),
        Authz::Allow
    );
    assert_eq!(backend.authorize(&user, Action::Publish, "client/x").await.unwrap(), Authz::Deny);
    assert_eq!(backend.authorize(&user, Action::Publish, "client/x").await.unwrap(), Authz::Deny);
    assert_eq!(server.requests("/mqtt/acl").len(), 4);
    // An allowed super_req is cached too (and then skips acl_req).
    for _ in 0..3 {
        assert_eq!(backend.authorize(&admin, Action::Publish, "x").await.unwrap(), Authz::Allow);
    }
    assert_eq!(
        server.requests("/mqtt/superuser").iter().filter(|r| r.body.contains("admin")).count(),
        1
    );

    // Expiry.
    let backend = HttpBackend::new(HttpSettings {
        cache_ttl: Duration::from_millis(100),
        ..seed_settings(&server)
    })
    .unwrap();
    let before = server.requests("/mqtt/acl").len();
    let cached_at = Instant::now();
    backend.authorize(&user, Action::Publish, "client/only-one").await.unwrap();
    // Wait (polling the clock) until the 100 ms entry has certainly expired.
    let expired = test_support::eventually(Duration::from_secs(5), || async {
        (cached_at.elapsed() > Duration::from_millis(150)).then_some(())
    })
    .await;
    assert!(expired.is_some());
    backend.authorize(&user, Action::Publish, "client/only-one").await.unwrap();
    assert_eq!(server.requests("/mqtt/acl").len(), before + 2);
}

#[tokio::test]
async fn json_answers() {
    let server = spawn_server(None, 1).await;
    let backend = HttpBackend::new(HttpSettings {
        auth_req: Some(request(
            server.url("/json/auth"),
            HttpMethod::Post,
            &[AUTHORIZATION, JSON],
            &[("username", "%u")],
        )),
        acl_req: Some(request(
            server.url("/json/acl"),
            HttpMethod::Post,
            &[AUTHORIZATION, JSON],
            &[("username", "%u"), ("topic", "%t")],
        )),
        json_answers: true,
        ..settings()
    })
    .unwrap();
    let who = |name: &str| client("c", name, b"p");
    assert_eq!(
        backend.authenticate(&who("allow-user")).await.unwrap(),
        Authn::Allow { superuser: true }
    );
    assert_eq!(
        backend.authenticate(&who("plain-user")).await.unwrap(),
        Authn::Allow { superuser: false }
    );
    assert!(matches!(
        backend.authenticate(&who("deny-user")).await.unwrap(),
        Authn::Deny { reason_code: 0x86, .. }
    ));
    assert_eq!(backend.authenticate(&who("ignore-user")).await.unwrap(), Authn::Ignore);
    assert_eq!(
        backend.authenticate(&who("empty-user")).await.unwrap(),
        Authn::Allow { superuser: false }
    );
    // 4xx: ignore, as EMQX.
    assert_eq!(backend.authenticate(&who("unknown-user")).await.unwrap(), Authn::Ignore);
    assert!(matches!(
        backend.authenticate(&who("garbage-user")).await,
        Err(BackendError::Invalid { .. })
    ));

    assert_eq!(
        backend.authorize(&who("plain-user"), Action::Publish, "t").await.unwrap(),
        Authz::Allow
    );
    assert_eq!(
        backend.authorize(&who("deny-user"), Action::Publish, "t").await.unwrap(),
        Authz::Deny
    );
    assert_eq!(
        backend.authorize(&who("ignore-user"), Action::Publish, "t").await.unwrap(),
        Authz::Ignore
    );
    assert_eq!(
        backend.authorize(&who("unknown-user"), Action::Publish, "t").await.unwrap(),
        Authz::Ignore
    );
}

#[tokio::test]
async fn https_endpoints() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let server = spawn_server(Some(config), 1).await;

    let mut auth = request(
        server.url("/mqtt/auth"),
        HttpMethod::Post,
        &[FORM, AUTHORIZATION],
        &[("clientid", "%c"), ("username", "%u"), ("password", "%P")],
    );
    auth.tls = Some(ClientTlsConfig { cacertfile: Some(ca), ..ClientTlsConfig::default() });
    let backend =
        HttpBackend::new(HttpSettings { auth_req: Some(auth.clone()), ..settings() }).unwrap();
    let admin = client("admin-1", "admin", b"public");
    assert_eq!(backend.authenticate(&admin).await.unwrap(), Authn::Allow { superuser: false });
    assert!(matches!(
        backend.authenticate(&client("c", "admin", b"bad")).await.unwrap(),
        Authn::Deny { .. }
    ));
    assert_eq!(
        server.requests("/mqtt/auth")[0].body,
        "clientid=admin-1&username=admin&password=public"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "TLS connection reused");

    // Without the CA (system roots only), the self-signed server is not trusted.
    auth.tls = None;
    let untrusting = HttpBackend::new(HttpSettings { auth_req: Some(auth), ..settings() }).unwrap();
    assert!(matches!(untrusting.authenticate(&admin).await, Err(BackendError::Unavailable { .. })));
}

#[tokio::test]
async fn debug_output_has_no_secrets() {
    let server = spawn_server(None, 1).await;
    let backend = HttpBackend::new(seed_settings(&server)).unwrap();
    let who = client("admin-1", "admin", b"public-secret");
    backend.authenticate(&who).await.unwrap();
    let debug = format!("{backend:?}");
    assert!(!debug.contains("eyJhbGci"), "{debug}");
    assert!(!debug.contains("public-secret"), "{debug}");
    assert!(debug.contains("authorization"), "header names are shown: {debug}");
}

#[tokio::test]
async fn invalid_settings_are_errors() {
    let bad_header = HttpSettings {
        auth_req: Some(request(
            "http://127.0.0.1:1/x".into(),
            HttpMethod::Post,
            &[("bad header", "v")],
            &[],
        )),
        ..settings()
    };
    assert!(matches!(HttpBackend::new(bad_header), Err(BackendError::Invalid { .. })));
    let mut missing_ca = request("https://127.0.0.1:1/x".into(), HttpMethod::Post, &[], &[]);
    missing_ca.tls = Some(ClientTlsConfig {
        cacertfile: Some("/nonexistent/ca.pem".into()),
        ..ClientTlsConfig::default()
    });
    let err =
        HttpBackend::new(HttpSettings { acl_req: Some(missing_ca), ..settings() }).unwrap_err();
    assert!(err.to_string().contains("cacertfile"), "{err}");
    let none = HttpBackend::new(settings()).unwrap();
    assert!(!none.authorizes());
    let who = client("c", "u", b"p");
    assert_eq!(none.authenticate(&who).await.unwrap(), Authn::Ignore);
    assert_eq!(none.authorize(&who, Action::Publish, "t").await.unwrap(), Authz::Ignore);
}
