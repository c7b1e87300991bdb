//! The `auth-service` binary with `redis {}` follows the config store: a `log.level` written there
//! changes what it logs, and it serves its metrics on `auth_service.metrics_bind`.

mod common;

use std::{net::SocketAddr, time::Duration};

use proto::{
    auth::v1::{self as pb, auth_service_client::AuthServiceClient},
    types::v1 as types,
};
use test_support::{RedisServer, eventually};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// The address logged after `key=` on `line`.
fn logged_addr(line: &str, key: &str) -> Option<SocketAddr> {
    let rest = line.split(&format!("{key}=")).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

async fn authenticate(addr: SocketAddr, client_id: &str) {
    let mut stub = AuthServiceClient::connect(format!("http://{addr}")).await.expect("connect");
    let client = types::ClientInfo { client_id: client_id.into(), ..Default::default() };
    stub.authenticate(pb::AuthenticateRequest { client: Some(client) }).await.expect("call");
}

#[tokio::test]
async fn the_binary_applies_the_stored_log_level_and_serves_its_metrics() {
    test_support::install_crypto_provider();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("auth.conf");
    let text = format!(
        "auth_service {{ bind = \"127.0.0.1:0\", metrics_bind = \"127.0.0.1:0\" }}\n\
         log {{ level = info }}\nredis {{ url = \"{}\" }}\nnode.id = auth-bin\n",
        redis.url()
    );
    std::fs::write(&conf, text).expect("write");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-service"))
        .arg("--conf")
        .arg(&conf)
        .current_dir(dir.path())
        .env_remove("TERN_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("auth-service starts");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let _ = lines_tx.send(line);
        }
    });
    let (mut grpc, mut metrics) = (None, None);
    let started = tokio::time::timeout(WAIT, async {
        while grpc.is_none() || metrics.is_none() {
            let line = lines.recv().await.expect("auth-service logs its addresses");
            grpc = grpc.or_else(|| logged_addr(&line, "addr"));
            metrics = metrics.or_else(|| logged_addr(&line, "metrics_addr"));
        }
    });
    started.await.expect("auth-service listening in time");
    let (grpc, metrics) = (grpc.expect("gRPC address"), metrics.expect("metrics address"));

    // At info, a call is not logged.
    authenticate(grpc, "before").await;

    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let store = common::config_store(&redis, &shutdown);
    let written = eventually(WAIT, || async {
        store.put("log", serde_json::json!({"level": "debug"})).await.ok()
    })
    .await
    .expect("stored");
    let applied = eventually(WAIT, || async {
        let applied = store.applied().await.ok()?;
        applied
            .iter()
            .any(|a| a.service == "auth-service" && a.versions.get("log") == Some(&written.version))
            .then_some(())
    });
    assert!(applied.await.is_some(), "auth-service reports the log version it applied");

    // At debug, it is.
    authenticate(grpc, "after").await;
    let logged = tokio::time::timeout(WAIT, async {
        loop {
            let line = lines.recv().await.expect("auth-service keeps logging");
            if line.contains("DEBUG") && line.contains("authenticate client_id=") {
                return line;
            }
        }
    })
    .await
    .expect("the call is logged at debug");
    assert!(logged.contains("client_id=after"), "only the call after the change: {logged}");

    let body = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(body.contains("tern_auth_authenticate_total{result=\"allow\"} 2\n"), "{body}");
    assert!(body.contains("tern_auth_config_version{section=\"log\"} "), "{body}");
    let _ = child.start_kill();
    let _ = child.wait().await;
}
