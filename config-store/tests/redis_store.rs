//! The Redis config store and node registry against a real redis-server: writes reach watchers,
//! a Redis restart is survived (last good snapshot kept, writes refused while down, re-read after),
//! and node registrations appear and disappear.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use tern_config_store::{
    Applied, ConfigStore, RedisStore, Snapshot, StoreError,
    nodes::{self, NodeRecord},
    redis_store::{Keys, RedisSettings, connection_manager},
};
use test_support::{RedisServer, eventually};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

fn settings(redis: &RedisServer) -> RedisSettings {
    RedisSettings {
        url: redis.url(),
        prefix: "t:".into(),
        timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(200),
    }
}

async fn wait_for(store: &RedisStore, check: impl Fn(&Snapshot) -> bool) -> Option<Arc<Snapshot>> {
    let rx = store.watch();
    eventually(WAIT, || {
        let current = rx.borrow().clone();
        let ok = check(&current);
        async move { ok.then_some(current) }
    })
    .await
}

#[tokio::test]
async fn writes_reach_every_watcher_and_survive_a_redis_restart() {
    let mut redis = RedisServer::start();
    let shutdown = CancellationToken::new();
    let writer = RedisStore::start(settings(&redis), shutdown.clone()).expect("store");
    let reader = RedisStore::start(settings(&redis), shutdown.clone()).expect("store");

    let written = writer.put("auth", json!({"allow_anonymous": false})).await.expect("put");
    assert_eq!(written.version, 1);
    let seen = wait_for(&reader, |s| s.sections.get("auth").is_some_and(|a| a.version == 1))
        .await
        .expect("the reader sees the write");
    assert!(seen.connected);
    assert_eq!(seen.sections["auth"].data, json!({"allow_anonymous": false}));

    redis.kill();
    let down = wait_for(&reader, |s| !s.connected).await.expect("the reader notices");
    assert_eq!(down.sections["auth"].version, 1, "the last good configuration is kept");
    let refused = writer.put("auth", json!({})).await.expect_err("Redis is down");
    assert!(matches!(refused, StoreError::Unavailable(_)), "{refused}");

    redis.restart().expect("restart");
    // The restarted Redis is empty: versions count from 1 again, in a new epoch.
    let again = eventually(WAIT, || {
        let writer = writer.clone();
        async move { writer.put("auth", json!({"allow_anonymous": true})).await.ok() }
    })
    .await
    .expect("writes work again");
    assert_ne!(again.epoch, written.epoch);
    let seen = wait_for(&reader, |s| {
        s.connected && s.sections.get("auth").is_some_and(|a| a.data["allow_anonymous"] == true)
    })
    .await
    .expect("the reader sees the write made after the restart");
    assert_ne!(seen.sections["auth"].stamp(), written.stamp());

    reader
        .report_applied(Applied {
            service: "auth-service".into(),
            instance: "a1".into(),
            versions: [("auth".to_string(), again.version)].into(),
            errors: Default::default(),
            at_ms: 1,
        })
        .await
        .expect("report");
    let applied = writer.applied().await.expect("applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].versions["auth"], again.version);
    shutdown.cancel();
}

#[tokio::test]
async fn nodes_register_refresh_and_unregister() {
    let redis = RedisServer::start();
    let keys = Keys::new("t:");
    let timeout = Duration::from_millis(500);
    let manager = connection_manager(&redis.url(), timeout, None).expect("manager");
    let record = NodeRecord {
        node_id: "n1".into(),
        grpc_address: "127.0.0.1:1".into(),
        tls: false,
        version: "0".into(),
        started_at_ms: 1,
        listeners: vec![],
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(nodes::keep_registered(
        manager.clone(),
        keys.clone(),
        record.clone(),
        Duration::from_secs(3),
        timeout,
        shutdown.clone(),
    ));
    let listed = eventually(WAIT, || {
        let (manager, keys) = (manager.clone(), keys.clone());
        async move { nodes::list(&manager, &keys, timeout).await.ok().filter(|n| !n.is_empty()) }
    })
    .await
    .expect("registered");
    assert_eq!(listed, vec![record]);
    let mut conn = manager.clone();
    let ttl: i64 =
        redis::cmd("PTTL").arg(keys.node("n1")).query_async(&mut conn).await.expect("pttl");
    assert!(ttl > 0 && ttl <= 3000, "the registration expires unless refreshed: {ttl}");
    shutdown.cancel();
    task.await.expect("task");
    assert!(nodes::list(&manager, &keys, timeout).await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_with_reads_in_flight_on_one_subscribed_connection_stay_in_step() {
    let redis = RedisServer::start();
    let shutdown = CancellationToken::new();
    let store = Arc::new(RedisStore::start(settings(&redis), shutdown.clone()).expect("store"));
    // The store listens to its own change channel: its writes come back to it as pushes, and
    // every write makes it re-read, while another task reads the applied reports.
    wait_for(&store, |s| s.connected).await.expect("connected");
    let stop = CancellationToken::new();
    let reader = {
        let (store, stop) = (Arc::clone(&store), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.is_cancelled() {
                if let Err(e) = store.applied().await {
                    return Err(format!("read {reads}: {e}"));
                }
                reads += 1;
            }
            Ok(reads)
        })
    };
    for i in 0..100u64 {
        let written = match store.put("mqtt", json!({"n": i})).await {
            Ok(written) => written,
            Err(e) => panic!("write {i}: {e}"),
        };
        assert_eq!(written.version, i + 1, "each write gets the next version");
    }
    stop.cancel();
    let reads = reader.await.expect("reader task");
    assert!(reads.is_ok(), "{reads:?}");
    let seen = wait_for(&store, |s| s.sections.get("mqtt").is_some_and(|m| m.version == 100))
        .await
        .expect("the last write read back");
    assert_eq!(seen.sections["mqtt"].data, json!({"n": 99}));
    shutdown.cancel();
}
