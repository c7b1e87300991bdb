//! Webhook targets applied live from the config store: a real Redis (the store), admin-api's HTTP
//! endpoint writing to it, a real broker sending its events to a real relay over gRPC, the relay
//! following the store, and real HTTP receivers.

mod common;

use std::{path::PathBuf, sync::Arc, time::Duration};

use broker_core::events::{EventKind, EventSink as _};
use common::{Receiver, RunningBroker, RunningRelay, WAIT, client, publish};
use serde_json::{Value, json};
use tern_config_store::{Applied, ConfigStore, RedisStore, redis_store::RedisSettings};
use test_support::RedisServer;
use tokio_util::sync::CancellationToken;

/// A relay following a Redis store, a broker sending to it, and admin-api writing to the store.
struct Live {
    _dir: tempfile::TempDir,
    redis: RedisServer,
    store: Arc<RedisStore>,
    relay: RunningRelay,
    broker: RunningBroker,
    api: std::net::SocketAddr,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A config store on `redis`, polled often.
fn redis_store(redis: &RedisServer, shutdown: &CancellationToken) -> Arc<RedisStore> {
    let settings = RedisSettings {
        url: redis.url(),
        prefix: "tern:".into(),
        timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(200),
    };
    Arc::new(RedisStore::start(settings, shutdown.clone()).expect("store"))
}

/// Starts everything; `webhooks` are the file's targets (the file is written to disk, since the
/// relay re-reads it on every change).
async fn live(webhooks: &str) -> Live {
    test_support::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start();
    let (listener, relay_addr) = test_support::bind_tokio().await;
    let text = format!(
        "{webhooks}listeners.tcp {{\n  bind = \"127.0.0.1:0\"\n}}\nsys.interval = 0\nnode.id = n1\n\
         webhook_relay {{\n  address = \"{relay_addr}\"\n  outbox = \"{}\"\n  reconnect_delay = 50ms\n}}\n",
        dir.path().join("outbox.redb").display()
    );
    let path: PathBuf = dir.path().join("relay.conf");
    std::fs::write(&path, &text).expect("write the configuration");
    let config = match tern_config::load(&path, &tern_config::Env::new()) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("test config: {e}"),
    };
    let shutdown = CancellationToken::new();
    let store = redis_store(&redis, &shutdown);
    let relay = RunningRelay::start(&config, listener).await;
    let follower = webhook_relay::follow::Follower {
        relay: relay.relay.clone(),
        file: Some(path),
        base_dir: dir.path().to_path_buf(),
        env: tern_config::Env::new(),
        instance: "relay-1".into(),
        set_level: None,
    };
    tokio::spawn(follower.run(Arc::clone(&store) as Arc<dyn ConfigStore>, shutdown.clone()));
    let broker = RunningBroker::start(&config).await;
    let state = admin_api::AppState::new(admin_api::Settings {
        http: tern_config::HttpServerConfig::default(),
        auth: admin_api::AuthMode::NoAuth,
        nodes: admin_api::Nodes::new(
            admin_api::NodeSource::Fixed(Vec::new()),
            None,
            None,
            Duration::from_secs(5),
        ),
        store: Arc::clone(&store) as Arc<dyn ConfigStore>,
        base_dir: dir.path().to_path_buf(),
        config_file: None,
        relay: None,
    });
    let (api_listener, api) = test_support::bind_tokio().await;
    let stop = shutdown.clone();
    tokio::spawn(admin_api::serve(state, api_listener, async move { stop.cancelled().await }));
    // The relay has read the store once (and reported) before a test changes it.
    applied(&store, |a| a.errors.is_empty()).await;
    Live { _dir: dir, redis, store, relay, broker, api, http: reqwest::Client::new(), shutdown }
}

impl Live {
    /// `POST /api/v4/configuration/<section>` with `{"data": settings}`; the status and body.
    async fn post(&self, section: &str, settings: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("http://{}/api/v4/configuration/{section}", self.api))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({ "data": settings }).to_string())
            .send()
            .await
            .expect("admin-api answers");
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Writes `settings` as section `section` and waits until the relay reports having handled
    /// that version (applied, or refused with an error); returns the report.
    async fn write_and_wait(&self, section: &str, settings: Value) -> Applied {
        let (status, body) = self.post(section, settings).await;
        assert_eq!(status, 200, "{body}");
        let version = body["data"][section].as_u64().expect("the written version");
        wait_handled(&self.store, section, version).await
    }
}

/// Waits until the relay's report satisfies `check`; returns it.
async fn applied(store: &Arc<RedisStore>, check: impl Fn(&Applied) -> bool) -> Applied {
    let found = test_support::eventually(WAIT, || async {
        let reports = store.applied().await.ok()?;
        reports.into_iter().find(|a| a.service == "webhook-relay" && check(a))
    })
    .await;
    match found {
        Some(report) => report,
        None => panic!("the relay did not report as expected: {:?}", store.applied().await),
    }
}

/// Waits until the relay applied `version` of `section` or reported an error about it.
async fn wait_handled(store: &Arc<RedisStore>, section: &str, version: u64) -> Applied {
    applied(store, |a| {
        a.versions.get(section) == Some(&version)
            || a.errors.get(section).is_some_and(|e| e.starts_with(&format!("version {version}:")))
    })
    .await
}

fn target(url: &str, header: &str, events: Value) -> String {
    format!(
        "  url = \"{url}\"\n  headers.x-token = \"{header}\"\n  retry {{ initial = 20ms, max = 100ms }}\n  events = {events}\n"
    )
}

fn header(r: &common::Received, name: &str) -> String {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_written_through_admin_api_gets_the_next_publish_with_its_header() {
    let first = Receiver::start().await;
    let added = Receiver::start().await;
    let publish_rule = json!([{"event": "on_message_publish", "topic": "t/#"}]);
    let s = live(&format!(
        "webhooks.first {{\n{}}}\n",
        target(&first.url("first"), "one", publish_rule.clone())
    ))
    .await;
    let mut c = client(s.broker.mqtt, "c1", None).await;
    publish(&mut c, "t/1", "before", 1).await;
    first.wait_for(1).await;

    let report = s
        .write_and_wait(
            "webhooks",
            json!({"added": {
                "url": added.url("added"),
                "headers": {"x-token": "two"},
                "events": publish_rule,
            }}),
        )
        .await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(s.relay.relay.targets().iter().any(|t| t.name == "added"));

    publish(&mut c, "t/2", "after", 2).await;
    let got = added.wait_for(1).await;
    assert_eq!(got[0].field("topic"), "t/2", "only events accepted after the change: {got:#?}");
    assert_eq!(header(&got[0], "x-token"), "two");
    let got = first.wait_for(2).await;
    assert_eq!(got[1].field("topic"), "t/2", "the file's target keeps receiving");
    assert_eq!(header(&got[1], "x-token"), "one");
    assert_eq!(added.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_follow_a_changed_target_and_a_removed_one_drops_them() {
    let old = Receiver::start().await;
    let new = Receiver::start().await;
    old.set_down(true);
    let rule = json!([{"event": "on_message_publish", "topic": "t"}]);
    let s = live(&format!(
        "webhooks.main {{\n{}}}\nwebhooks.other {{\n{}}}\n",
        target(&old.url("main"), "old", rule.clone()),
        target(&old.url("other"), "old", rule)
    ))
    .await;
    let mut c = client(s.broker.mqtt, "c1", None).await;
    for i in 1..=3u16 {
        publish(&mut c, "t", i.to_string(), i).await;
    }
    // Six deliveries owed (three per target), retried against a receiver answering 503.
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.pending) == 6 && old.refused() >= 2).then_some(())
    })
    .await
    .expect("the relay is retrying six deliveries");

    // `main` moves to another receiver with another header: what it owed goes there.
    let report = s
        .write_and_wait(
            "webhooks",
            json!({"main": {"url": new.url("main"), "headers": {"x-token": "new"}}}),
        )
        .await;
    assert!(report.errors.is_empty(), "{report:?}");
    let got = new.wait_for(3).await;
    let payloads: Vec<String> = got.iter().map(|r| r.field("payload")).collect();
    assert_eq!(payloads, ["1", "2", "3"], "in order, none lost: {got:#?}");
    assert!(got.iter().all(|r| header(r, "x-token") == "new"));

    // `other` is removed: its three deliveries are dropped and counted.
    let report = s.write_and_wait("webhooks", json!({"other": {"enable": false}})).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(s.relay.metric(|m| &m.dropped), 3);
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.pending) == 0).then_some(())
    })
    .await
    .expect("nothing left pending");
    let names: Vec<String> = s.relay.relay.targets().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["main"]);
    old.set_down(false);
    publish(&mut c, "t", "4", 4).await;
    new.wait_for(4).await;
    assert!(old.received().is_empty(), "the removed target gets nothing: {:#?}", old.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_stored_section_is_reported_and_the_old_target_keeps_receiving() {
    let receiver = Receiver::start().await;
    let rule = json!([{"event": "on_message_publish", "topic": "t"}]);
    let s = live(&format!("webhook {{\n{}}}\n", target(&receiver.url("hook"), "one", rule))).await;
    // Written to the store directly, as admin-api would refuse it.
    let written = s
        .store
        .put("webhook", json!({"url": "ftp://nowhere", "headers": {"x-token": "bad"}}))
        .await
        .expect("stored");
    let report = wait_handled(&s.store, "webhook", written.version).await;
    let error = report.errors.get("webhook").cloned().unwrap_or_default();
    assert!(error.contains("webhook.url"), "{report:?}");
    assert!(!report.versions.contains_key("webhook"), "{report:?}");
    // admin-api refuses the same settings.
    let (status, body) = s.post("webhook", json!({"url": "ftp://nowhere"})).await;
    assert_eq!(status, 400, "{body}");

    let mut c = client(s.broker.mqtt, "c1", None).await;
    publish(&mut c, "t", "still", 1).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].field("payload"), "still");
    assert_eq!(header(&got[0], "x-token"), "one");

    // A valid write afterwards applies and clears the error.
    let report = s.write_and_wait("webhook", json!({"url": receiver.url("fixed")})).await;
    assert!(report.errors.is_empty(), "{report:?}");
    publish(&mut c, "t", "fixed", 2).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].path, "fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_named_event_is_produced_by_the_running_broker() {
    let receiver = Receiver::start().await;
    let s = live(&format!(
        "webhooks.hook {{\n{}}}\n",
        target(
            &receiver.url("hook"),
            "one",
            json!([{"event": "on_message_publish", "topic": "t"}])
        )
    ))
    .await;
    // The broker's file names only publishes, and the relay asked for nothing more.
    let events = &s.broker.events;
    assert!(events.wants(EventKind::MessagePublish));
    assert!(!events.wants(EventKind::ClientConnected));

    // admin-api validates a target on its own (it does not read the relay's file): the url goes
    // with it.
    let report = s
        .write_and_wait(
            "webhooks",
            json!({"hook": {"url": receiver.url("hook"), "events": [
                {"event": "on_message_publish", "topic": "t"},
                {"event": "on_client_connected"},
            ]}}),
        )
        .await;
    assert!(report.errors.is_empty(), "{report:?}");
    test_support::eventually(WAIT, || async {
        events.wants(EventKind::ClientConnected).then_some(())
    })
    .await
    .expect("the relay's ack asks the broker for client_connected");

    let _c = client(s.broker.mqtt, "late", None).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].field("action"), "client_connected", "{got:#?}");
    assert_eq!(got[0].field("clientid"), "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_targets_stay_and_a_write_after_it_is_back_applies() {
    let first = Receiver::start().await;
    let later = Receiver::start().await;
    let rule = json!([{"event": "on_message_publish", "topic": "t"}]);
    let mut s = live(&format!(
        "webhooks.first {{\n{}}}\n",
        target(&first.url("first"), "one", rule.clone())
    ))
    .await;
    let mut c = client(s.broker.mqtt, "c1", None).await;

    s.redis.kill();
    let (status, body) = s.post("webhooks", json!({"later": {"url": later.url("later")}})).await;
    assert_eq!(status, 503, "writes are refused while Redis is down: {body}");
    publish(&mut c, "t", "while down", 1).await;
    let got = first.wait_for(1).await;
    assert_eq!(got[0].field("payload"), "while down");

    // Back, empty (no persistence): a new write is applied.
    s.redis.restart().expect("redis restarts");
    let written = test_support::eventually(WAIT, || async {
        s.store
            .put("webhooks", json!({"later": {"url": later.url("later"), "events": rule.clone()}}))
            .await
            .ok()
    })
    .await
    .expect("Redis takes writes again");
    let report = wait_handled(&s.store, "webhooks", written.version).await;
    assert!(report.errors.is_empty(), "{report:?}");
    publish(&mut c, "t", "back", 2).await;
    let got = later.wait_for(1).await;
    assert_eq!(got[0].field("payload"), "back");
    let got = first.wait_for(2).await;
    assert_eq!(got[1].field("payload"), "back", "the file's target stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_binary_follows_redis_when_its_file_has_a_redis_block() {
    test_support::install_crypto_provider();
    let receiver = Receiver::start().await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    // No target in the file.
    let text = format!(
        "listeners.tcp {{\n  bind = \"127.0.0.1:0\"\n}}\nsys.interval = 0\nnode.id = relay-bin\nlog.level = error\n\
         redis {{\n  url = \"{}\"\n}}\n\
         webhook_relay {{\n  bind = \"127.0.0.1:{port}\"\n  address = \"127.0.0.1:{port}\"\n  outbox = \"{}\"\n  reconnect_delay = 50ms\n}}\n",
        redis.url(),
        dir.path().join("outbox.redb").display()
    );
    let conf = dir.path().join("relay.conf");
    std::fs::write(&conf, &text).expect("write the configuration");
    let config = common::config(&text, dir.path());
    let _relay = common::spawn_relay(&conf);
    common::wait_listening(port).await;
    let broker = RunningBroker::start(&config).await;

    let shutdown = CancellationToken::new();
    let store = redis_store(&redis, &shutdown);
    let hooks = store
        .put(
            "webhooks",
            json!({"bin": {
                "url": receiver.url("bin"),
                "headers": {"x-token": "stored"},
                "events": [{"event": "on_message_publish", "topic": "b/#"}],
            }}),
        )
        .await
        .expect("stored");
    let log = store.put("log", json!({"level": "info"})).await.expect("stored");
    let report = applied(&store, |a| {
        a.instance == "relay-bin"
            && a.versions.get("webhooks") == Some(&hooks.version)
            && a.versions.get("log") == Some(&log.version)
    })
    .await;
    assert!(report.errors.is_empty(), "{report:?}");
    // The broker's file names no event: publishes are produced once the relay's ack asks.
    test_support::eventually(WAIT, || async {
        broker.events.wants(EventKind::MessagePublish).then_some(())
    })
    .await
    .expect("the relay asks the broker for publishes");

    let mut c = client(broker.mqtt, "c1", None).await;
    publish(&mut c, "b/1", "from redis", 1).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(
        (got[0].field("payload"), header(&got[0], "x-token")),
        ("from redis".into(), "stored".into())
    );
    shutdown.cancel();
}
