//! The HTTP server of the seed article (an express app there), answering as it does:
//!
//! - every request must carry `authorization: <HS256 JWT signed with "nanoqm-webhook-local">`,
//!   or it is refused;
//! - `POST /mqtt/auth` (form `clientid`, `username`, `password`): 200 for a known user and
//!   password, else 401; `POST /mqtt/superuser`: 200 for a superuser, else 401;
//! - `POST /mqtt/acl` (form `username`, `access` 1 = subscribe / 2 = publish, `topic`): 200 when
//!   one of the user's patterns matches (`#` standing for anything, as the article's regex), else
//!   403;
//! - `POST /mqtt`: the webhook receiver, 200; `GET /health`: 200.
//!
//! Every request is recorded so tests can check what the services sent.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{Form, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use parking_lot::Mutex;

/// The secret the article's server verifies the `authorization` JWT with.
pub const JWT_SECRET: &[u8] = b"nanoqm-webhook-local";

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The path.
    pub path: String,
    /// Whether its `authorization` header held a valid token.
    pub authorized: bool,
    /// Form fields (auth, superuser, ACL requests).
    pub form: BTreeMap<String, String>,
    /// The raw body (webhooks).
    pub body: String,
}

struct User {
    username: &'static str,
    password: &'static str,
    superuser: bool,
    subscribe: &'static [&'static str],
    publish: &'static [&'static str],
}

/// The article's users.
const USERS: &[User] = &[
    User {
        username: "admin",
        password: "public",
        superuser: true,
        subscribe: &["#"],
        publish: &["#"],
    },
    User {
        username: "client",
        password: "public",
        superuser: false,
        subscribe: &["client/only-one"],
        publish: &["client/only-one"],
    },
];

type Requests = Arc<Mutex<Vec<Recorded>>>;

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct SeedServer {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Requests,
    task: tokio::task::JoinHandle<()>,
}

impl SeedServer {
    /// Serves on `127.0.0.1:0`.
    ///
    /// # Panics
    /// When the listener cannot be bound.
    pub async fn start() -> Self {
        let (listener, addr) = test_support::bind_tokio().await;
        let requests = Requests::default();
        let app = Router::new()
            .route("/health", get(|| async { "{\"ok\":true}" }))
            .route("/mqtt", post(webhook))
            .route("/mqtt/auth", post(auth))
            .route("/mqtt/superuser", post(superuser))
            .route("/mqtt/acl", post(acl))
            .with_state(Arc::clone(&requests));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, requests, task }
    }

    /// The requests received on `path` so far.
    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.requests.lock().iter().filter(|r| r.path == path).cloned().collect()
    }
}

impl Drop for SeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Verifies the `authorization` header as the article's `jose.jwtVerify(auth, secret)`.
fn authorized(headers: &HeaderMap) -> bool {
    let Some(token) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(JWT_SECRET),
        &validation,
    )
    .is_ok()
}

fn record(
    requests: &Requests,
    path: &str,
    headers: &HeaderMap,
    form: BTreeMap<String, String>,
    body: String,
) -> bool {
    let ok = authorized(headers);
    requests.lock().push(Recorded { path: path.to_owned(), authorized: ok, form, body });
    ok
}

async fn webhook(State(requests): State<Requests>, headers: HeaderMap, body: String) -> StatusCode {
    if record(&requests, "/mqtt", &headers, BTreeMap::new(), body) {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

fn user(form: &BTreeMap<String, String>) -> Option<&'static User> {
    let name = form.get("username")?;
    USERS.iter().find(|u| u.username == name)
}

async fn auth(
    State(requests): State<Requests>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> StatusCode {
    if !record(&requests, "/mqtt/auth", &headers, form.clone(), String::new()) {
        return StatusCode::UNAUTHORIZED;
    }
    match user(&form) {
        Some(u) if form.get("password").is_some_and(|p| p == u.password) => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn superuser(
    State(requests): State<Requests>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> StatusCode {
    if !record(&requests, "/mqtt/superuser", &headers, form.clone(), String::new()) {
        return StatusCode::UNAUTHORIZED;
    }
    match user(&form) {
        Some(u) if u.superuser && form.get("password").is_some_and(|p| p == u.password) => {
            StatusCode::OK
        }
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn acl(
    State(requests): State<Requests>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> StatusCode {
    if !record(&requests, "/mqtt/acl", &headers, form.clone(), String::new()) {
        return StatusCode::UNAUTHORIZED;
    }
    let Some(u) = user(&form) else { return StatusCode::FORBIDDEN };
    let patterns = match form.get("access").map(String::as_str) {
        Some("1") => u.subscribe,
        Some("2") => u.publish,
        _ => &[],
    };
    let topic = form.get("topic").map_or("", String::as_str);
    if patterns.iter().any(|p| matches(p, topic)) { StatusCode::OK } else { StatusCode::FORBIDDEN }
}

/// The article's `new RegExp("^" + pattern.replace("#", ".*") + "$")` for plain patterns.
fn matches(pattern: &str, topic: &str) -> bool {
    match pattern.split_once('#') {
        Some((before, after)) => {
            topic.len() >= before.len() + after.len()
                && topic.starts_with(before)
                && topic.ends_with(after)
        }
        None => pattern == topic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_token_verifies_with_the_articles_secret() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "eyJhbGciOiJIUzI1NiJ9.eyJlbnZOYW1lIjoibG9jYWwifQ.oWJU9JhpdASfv_9XDHm1wZ2w7IA86N2YAr3aX8NUNEY"
                .parse()
                .expect("header"),
        );
        assert!(authorized(&headers));
        headers.insert("authorization", "not-a-token".parse().expect("header"));
        assert!(!authorized(&headers));
    }

    #[test]
    fn patterns_match_as_the_articles_regex() {
        assert!(matches("#", "a/b"));
        assert!(matches("client/only-one", "client/only-one"));
        assert!(!matches("client/only-one", "client/other"));
        assert!(matches("a/#", "a/b/c"));
    }
}
