//! The whole of `auth {}` changed through the config store (a real Redis) applies to the running
//! service without a restart: `allow_anonymous`, `no_match` on an already connected client, a
//! backend added and removed (an HTTP auth server, a Redis backend whose change watcher is
//! replaced), while a section that does not build is reported and leaves the previous chain
//! answering. The service's Prometheus endpoint counts what it answered.

mod common;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{RawClient, TestBroker, connect, grpc_config, publish_until};
use mqtt_codec::{ConnectReasonCode, ProtocolVersion};
use serde_json::json;
use tern_config_store::ConfigStore;
use test_support::{RedisServer, eventually};
use tokio_util::sync::CancellationToken;

const V5: ProtocolVersion = ProtocolVersion::V5;
const WAIT: Duration = Duration::from_secs(10);

/// auth-service run as its binary runs it (`run_with`), following a Redis config store, with its
/// metrics endpoint; and a broker using it.
struct Service {
    store: Arc<dyn ConfigStore>,
    broker: TestBroker,
    auth_addr: SocketAddr,
    metrics_addr: SocketAddr,
    shutdown: CancellationToken,
    _redis: RedisServer,
    dir: tempfile::TempDir,
}

impl Service {
    /// Starts auth-service from `conf` (written to `auth.conf` in a new working directory).
    async fn start(conf: &str) -> Self {
        Self::start_with(conf, &[]).await
    }

    /// [`Service::start`], with `files` (name, contents) written next to `auth.conf`.
    async fn start_with(conf: &str, files: &[(&str, &str)]) -> Self {
        test_support::install_crypto_provider();
        let dir = tempfile::tempdir().expect("dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let file = dir.path().join("auth.conf");
        std::fs::write(&file, conf).expect("write auth.conf");
        let config = tern_config::load_in(&file, dir.path(), &tern_config::Env::new())
            .expect("auth.conf loads")
            .config;
        let built = auth_service::setup::build(&config).expect("auth chain");
        let redis = RedisServer::start();
        let shutdown = CancellationToken::new();
        let store = common::config_store(&redis, &shutdown);
        let (listener, auth_addr) = test_support::bind_tokio().await;
        let (metrics, metrics_addr) = test_support::bind_tokio().await;
        let options = auth_service::server::RunOptions {
            store: Some((
                Arc::clone(&store),
                auth_service::store::StoreSettings {
                    file: Some(file),
                    base_dir: dir.path().to_path_buf(),
                    env: tern_config::Env::new(),
                    instance: "auth-1".into(),
                    set_level: None,
                },
            )),
            metrics: Some(metrics),
            ..Default::default()
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            auth_service::server::run_with(built, listener, options, stop.cancelled_owned())
                .await
                .expect("auth-service serves");
        });
        let broker = TestBroker::start(grpc_config(auth_addr.to_string())).await;
        Self { store, broker, auth_addr, metrics_addr, shutdown, _redis: redis, dir }
    }

    /// Stores `data` as the `auth` section; returns its version.
    async fn put_auth(&self, data: serde_json::Value) -> u64 {
        self.store.put("auth", data).await.expect("stored").version
    }

    /// What auth-service reported for the `auth` section: the version applied and the error.
    async fn reported(&self) -> (Option<u64>, Option<String>) {
        let applied = self.store.applied().await.expect("applied");
        let mine = applied.iter().find(|a| a.service == "auth-service" && a.instance == "auth-1");
        mine.map_or((None, None), |a| {
            (a.versions.get("auth").copied(), a.errors.get("auth").cloned())
        })
    }

    /// Waits until auth-service reports `version` of the `auth` section applied.
    async fn applied(&self, version: u64) -> bool {
        eventually(WAIT, || async { (self.reported().await.0 == Some(version)).then_some(()) })
            .await
            .is_some()
    }

    /// Waits until auth-service reports an error for `version` of the `auth` section.
    async fn error_of(&self, version: u64) -> Option<String> {
        eventually(WAIT, || async {
            let (_, error) = self.reported().await;
            error.filter(|e| e.starts_with(&format!("version {version}:")))
        })
        .await
    }

    /// Connects through the broker; the CONNACK reason code.
    async fn connect(&self, id: &str, user: Option<(&str, &str)>) -> ConnectReasonCode {
        RawClient::connect(self.broker.addr, connect(V5, id, user)).await.1.reason_code
    }

    /// Waits until connecting as `user` answers `want`.
    async fn connects_with(&self, id: &str, user: Option<(&str, &str)>, want: bool) -> bool {
        eventually(WAIT, || async {
            ((self.connect(id, user).await == ConnectReasonCode::Success) == want).then_some(())
        })
        .await
        .is_some()
    }

    /// The metrics endpoint's samples, by `name{labels}`.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let response = reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), 200);
        let content_type = response.headers().get("content-type").cloned();
        assert_eq!(content_type.expect("content type"), "text/plain; version=0.0.4");
        let text = response.text().await.expect("body");
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .map(|(key, value)| (key.to_owned(), value.parse().expect("a number")))
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tokio::test]
async fn allow_anonymous_flipped_in_the_store_applies_to_the_next_connect() {
    let service = Service::start("auth { allow_anonymous = false }\n").await;
    assert_ne!(service.connect("anon-0", None).await, ConnectReasonCode::Success);

    let version = service.put_auth(json!({"allow_anonymous": true})).await;
    assert!(service.connects_with("anon-1", None, true).await, "anonymous clients are let in");
    assert!(service.applied(version).await, "auth-service reports the version it applied");

    let version = service.put_auth(json!({"allow_anonymous": false})).await;
    assert!(service.connects_with("anon-2", None, false).await, "and refused again");
    assert!(service.applied(version).await);
    assert_eq!(service.reported().await.1, None, "no error reported");
}

#[tokio::test]
async fn no_match_changed_in_the_store_changes_a_connected_clients_publish() {
    // A one-hour cache: only a revocation explains a changed answer for the connected client.
    let service = Service::start(
        r#"auth {
  cache { ttl = 1h }
  acl = { rules = [ {"permit": "deny", "action": "publish", "topics": ["secret/#"]} ] }
}
"#,
    )
    .await;
    let (client, ack) = RawClient::connect(service.broker.addr, connect(V5, "meter", None)).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    let client = tokio::sync::Mutex::new(client);
    let ids = AtomicU16::new(1);
    assert!(publish_until(&client, &ids, "open/1", true).await, "no_match = allow");
    assert!(publish_until(&client, &ids, "secret/1", false).await, "the rule denies");

    service.put_auth(json!({"no_match": "deny"})).await;
    assert!(
        publish_until(&client, &ids, "open/1", false).await,
        "no_match = deny applies to the connected client"
    );
    service.put_auth(json!({"no_match": "allow"})).await;
    assert!(publish_until(&client, &ids, "open/1", true).await, "and back to allow");
}

/// An HTTP auth endpoint that lets `hank` in with password `pw`, counting the requests.
async fn http_auth_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use axum::{extract::Form, http::StatusCode};
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let app = axum::Router::new().route(
        "/auth",
        axum::routing::post(move |Form(form): Form<BTreeMap<String, String>>| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                let known = form.get("username").map(String::as_str) == Some("hank")
                    && form.get("password").map(String::as_str) == Some("pw");
                if known { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
            }
        }),
    );
    let (listener, addr) = test_support::bind_tokio().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, asked)
}

#[tokio::test]
async fn an_http_auth_backend_added_in_the_store_starts_being_asked_and_stops_when_removed() {
    let (http, asked) = http_auth_server().await;
    let service = Service::start("auth { allow_anonymous = false }\n").await;
    let hank = Some(("hank", "pw"));
    assert_ne!(service.connect("h-0", hank).await, ConnectReasonCode::Success);
    assert_eq!(asked.load(Ordering::Relaxed), 0);

    let with_http = json!({"http_auth": {"auth_req": {
        "url": format!("http://{http}/auth"),
        "method": "post",
        "params": {"username": "%u", "password": "%P"}
    }}});
    let version = service.put_auth(with_http).await;
    assert!(service.connects_with("h-1", hank, true).await, "the new backend lets hank in");
    assert!(asked.load(Ordering::Relaxed) > 0, "the HTTP server was asked");
    assert!(service.applied(version).await);
    let asked_before = asked.load(Ordering::Relaxed);
    assert_ne!(
        service.connect("h-2", Some(("hank", "wrong"))).await,
        ConnectReasonCode::Success,
        "and it decides: a wrong password is refused"
    );
    assert!(asked.load(Ordering::Relaxed) > asked_before);

    service.put_auth(json!({})).await;
    assert!(service.connects_with("h-3", hank, false).await, "the backend is gone again");
    let before = asked.load(Ordering::Relaxed);
    assert_ne!(service.connect("h-4", hank).await, ConnectReasonCode::Success);
    assert_eq!(asked.load(Ordering::Relaxed), before, "the removed backend is not asked");
}

#[tokio::test]
async fn a_call_in_flight_during_a_change_finishes_on_the_chain_it_started_with() {
    use axum::http::StatusCode;
    use proto::{
        auth::v1::{self as pb, auth_service_client::AuthServiceClient},
        types::v1 as types,
    };
    // An HTTP auth endpoint that holds every request until the test releases it.
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let held = Arc::clone(&release);
    let app = axum::Router::new().route(
        "/auth",
        axum::routing::post(move || {
            let (arrived_tx, held) = (arrived_tx.clone(), Arc::clone(&held));
            async move {
                let _ = arrived_tx.send(());
                held.acquire().await.expect("open").forget();
                StatusCode::OK
            }
        }),
    );
    let (listener, http) = test_support::bind_tokio().await;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let service = Service::start("auth { allow_anonymous = false }\n").await;
    let with_http = json!({"http_auth": {"auth_req": {"url": format!("http://{http}/auth")}}});
    let version = service.put_auth(with_http).await;
    assert!(service.applied(version).await);

    let stub =
        AuthServiceClient::connect(format!("http://{}", service.auth_addr)).await.expect("stub");
    let call = |mut stub: AuthServiceClient<_>| async move {
        let client = types::ClientInfo {
            client_id: "h".into(),
            username: Some("hank".into()),
            password: Some(bytes::Bytes::from_static(b"pw")),
            ..Default::default()
        };
        stub.authenticate(pb::AuthenticateRequest { client: Some(client) })
            .await
            .expect("authenticate")
            .into_inner()
    };
    let in_flight = tokio::spawn(call(stub.clone()));
    tokio::time::timeout(WAIT, arrived.recv()).await.expect("asked in time").expect("asked");

    // The HTTP backend is removed while the call waits for it.
    let version = service.put_auth(json!({})).await;
    assert!(service.applied(version).await);
    release.add_permits(1);
    let answer = in_flight.await.expect("call");
    assert_eq!(
        (answer.decision, answer.decided_by.as_str()),
        (i32::from(pb::Decision::Allow), "http"),
        "the call in flight is answered by the chain it started on"
    );
    let answer = call(stub).await;
    assert_eq!(
        (answer.decision, answer.decided_by.as_str()),
        (i32::from(pb::Decision::Deny), "anonymous"),
        "the next call by the new chain"
    );
    assert!(arrived.try_recv().is_err(), "the removed backend was not asked again");
}

#[tokio::test]
async fn a_section_that_does_not_load_is_reported_and_the_previous_chain_keeps_answering() {
    let service = Service::start(
        "auth {\n  allow_anonymous = false\n  password { \"alice\": \"secret\" }\n}\n",
    )
    .await;
    let alice = Some(("alice", "secret"));
    assert_eq!(service.connect("a-0", alice).await, ConnectReasonCode::Success);

    // A key file that does not exist: the configuration does not validate.
    let missing = service.dir.path().join("missing.pem");
    let version = service
        .put_auth(json!({"allow_anonymous": true, "jwt": {"public_key": missing.to_str()}}))
        .await;
    let error = service.error_of(version).await.expect("the error is reported");
    assert!(error.contains("auth.jwt.public_key"), "{error}");

    // A key file that exists but holds no key: the configuration validates, the chain does not
    // build.
    let garbage = service.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").expect("write");
    let version = service
        .put_auth(json!({"allow_anonymous": true, "jwt": {"public_key": garbage.to_str()}}))
        .await;
    let error = service.error_of(version).await.expect("the error is reported");
    assert!(error.contains("jwt"), "{error}");

    // The previous chain still answers: alice in, anonymous clients out.
    assert_eq!(service.connect("a-1", alice).await, ConnectReasonCode::Success);
    assert_ne!(service.connect("anon", None).await, ConnectReasonCode::Success);
    assert!(service.reported().await.0.is_none(), "no auth version was applied");

    // A good section afterwards applies and clears the error.
    let version = service.put_auth(json!({"allow_anonymous": true})).await;
    assert!(service.connects_with("anon-2", None, true).await);
    assert!(service.applied(version).await);
    assert_eq!(service.reported().await.1, None);
}

#[tokio::test]
async fn a_password_file_change_keeps_the_users_written_through_the_store() {
    let service = Service::start_with(
        "auth {\n  allow_anonymous = false\n  password = {include \"pwd.conf\"}\n}\n",
        &[("pwd.conf", "\"alice\": \"secret\"\n")],
    )
    .await;
    assert_eq!(service.connect("a-0", Some(("alice", "secret"))).await, ConnectReasonCode::Success);
    let version = service.put_auth(json!({"password": {"bob": "b-secret"}})).await;
    assert!(service.connects_with("b-0", Some(("bob", "b-secret")), true).await);
    assert!(service.applied(version).await);

    // The file changes (renamed over, so its modification time certainly does).
    let pwd = service.dir.path().join("pwd.conf");
    std::fs::write(pwd.with_extension("tmp"), "\"alice\": \"changed\"\n").expect("write");
    std::fs::rename(pwd.with_extension("tmp"), &pwd).expect("rename");
    assert!(
        service.connects_with("a-1", Some(("alice", "changed")), true).await,
        "the file's new password applies"
    );
    assert_eq!(
        service.connect("b-1", Some(("bob", "b-secret"))).await,
        ConnectReasonCode::Success,
        "the user written through the store is still there"
    );
    assert_ne!(service.connect("a-2", Some(("alice", "secret"))).await, ConnectReasonCode::Success);
}

/// Pub/sub connections open on `redis` (a Redis backend's change watcher holds one).
async fn pubsub_clients(redis: &RedisServer) -> usize {
    let mut conn = redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    list.lines().filter(|l| !l.trim().is_empty()).count()
}

#[tokio::test]
async fn a_replaced_chain_stops_its_redis_watcher() {
    let users = RedisServer::start();
    let service = Service::start("auth { allow_anonymous = false }\n").await;
    for _ in 0..3 {
        let version = service.put_auth(json!({"redis": {"url": users.url()}})).await;
        assert!(service.applied(version).await);
    }
    let one = eventually(WAIT, || async { (pubsub_clients(&users).await == 1).then_some(()) });
    assert!(one.await.is_some(), "only the current chain watches Redis");
    let version = service.put_auth(json!({})).await;
    assert!(service.applied(version).await);
    let none = eventually(WAIT, || async { (pubsub_clients(&users).await == 0).then_some(()) });
    assert!(none.await.is_some(), "a chain without Redis watches nothing");
}

#[tokio::test]
async fn the_metrics_endpoint_counts_calls_backends_revocations_and_the_applied_version() {
    use proto::{
        auth::v1::{self as pb, auth_service_client::AuthServiceClient},
        types::v1 as types,
    };
    let service = Service::start(
        r#"auth {
  allow_anonymous = false
  password { "alice": "secret" }
  acl = { rules = [ {"permit": "allow", "action": "publish", "topics": ["a/#"]} ] }
  no_match = deny
}
"#,
    )
    .await;
    let mut stub =
        AuthServiceClient::connect(format!("http://{}", service.auth_addr)).await.expect("stub");
    let info = |password: &str| types::ClientInfo {
        client_id: "m".into(),
        username: Some("alice".into()),
        password: Some(bytes::Bytes::copy_from_slice(password.as_bytes())),
        protocol_name: "MQTT".into(),
        protocol_version: 5,
        ..Default::default()
    };
    for password in ["secret", "secret", "wrong"] {
        stub.authenticate(pb::AuthenticateRequest { client: Some(info(password)) })
            .await
            .expect("authenticate");
    }
    let invalid = stub.authenticate(pb::AuthenticateRequest { client: None }).await;
    assert!(invalid.is_err(), "no client is an invalid request");
    stub.authorize(pb::AuthorizeRequest {
        client: Some(info("")),
        action: pb::Action::Publish.into(),
        topics: ["a/1", "b/1"]
            .iter()
            .map(|t| pb::TopicRequest { topic: (*t).into(), ..Default::default() })
            .collect(),
    })
    .await
    .expect("authorize");

    let m = service.metrics().await;
    let get = |key: &str| m.get(key).copied().unwrap_or_else(|| panic!("{key} in {m:?}"));
    assert_eq!(get(r#"tern_auth_authenticate_total{result="allow"}"#), 2.0);
    assert_eq!(get(r#"tern_auth_authenticate_total{result="deny"}"#), 1.0);
    assert_eq!(get(r#"tern_auth_authenticate_total{result="error"}"#), 1.0);
    assert_eq!(get(r#"tern_auth_authorize_total{action="publish",result="allow"}"#), 1.0);
    assert_eq!(get(r#"tern_auth_authorize_total{action="publish",result="deny"}"#), 1.0);
    assert_eq!(get(r#"tern_auth_authorize_total{action="subscribe",result="allow"}"#), 0.0);
    let answers = |backend: &str, operation: &str, answer: &str| {
        get(&format!(
            r#"tern_auth_backend_answers_total{{backend="{backend}",operation="{operation}",answer="{answer}"}}"#
        ))
    };
    assert_eq!(answers("password_file", "authenticate", "allow"), 2.0);
    assert_eq!(answers("password_file", "authenticate", "deny"), 1.0);
    assert_eq!(answers("acl_file", "authorize", "allow"), 1.0);
    assert_eq!(answers("acl_file", "authorize", "ignore"), 1.0, "b/1: no rule, no_match denied");
    assert_eq!(get(r#"tern_auth_call_duration_seconds_count{method="authenticate"}"#), 4.0);
    assert_eq!(get(r#"tern_auth_call_duration_seconds_count{method="authorize"}"#), 1.0);
    assert!(get(r#"tern_auth_call_duration_seconds_sum{method="authenticate"}"#) > 0.0);
    assert_eq!(get(r#"tern_auth_call_duration_seconds_bucket{method="authorize",le="+Inf"}"#), 1.0);
    assert!(!m.contains_key(r#"tern_auth_config_version{section="auth"}"#), "nothing applied");

    // The test's broker watches revocations; a change in the store is applied and revoked.
    let watching = eventually(WAIT, || async {
        (service.metrics().await.get("tern_auth_revocation_watchers") == Some(&1.0)).then_some(())
    });
    assert!(watching.await.is_some(), "the broker's revocation stream is counted");
    let revocations = get("tern_auth_revocations_total");
    let version = service.put_auth(json!({"no_match": "allow"})).await;
    assert!(service.applied(version).await);
    let m = service.metrics().await;
    assert_eq!(m.get(r#"tern_auth_config_version{section="auth"}"#), Some(&(version as f64)));
    assert!(m["tern_auth_revocations_total"] > revocations, "the change was revoked");
    assert_eq!(m["tern_auth_config_apply_failures_total"], 0.0);
}
