//! The `broker-core` binary: runs from a HOCON file holding only `listeners.tcp`, accepts an
//! anonymous client, stops cleanly on SIGTERM; refuses a bad file with its location and exit 2.

mod common;

use std::process::Stdio;

use common::{WAIT, v4};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

/// Starts the binary on `conf`, logging at info; returns it and its stderr lines.
fn start(
    conf: &std::path::Path,
) -> (tokio::process::Child, tokio::io::Lines<BufReader<tokio::process::ChildStderr>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker-core"))
        .arg("--conf")
        .arg(conf)
        .env("TERN_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    (child, stderr)
}

#[tokio::test]
async fn runs_from_a_file_with_only_a_tcp_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("tern.conf");
    std::fs::write(&conf, "listeners.tcp { bind = \"127.0.0.1:0\" }\n").expect("write conf");
    let (mut child, mut stderr) = start(&conf);
    let addr: std::net::SocketAddr = tokio::time::timeout(WAIT, async {
        loop {
            let line =
                stderr.next_line().await.expect("read").expect("the broker logs its listener");
            if let Some(rest) = line.split("addr=").nth(1) {
                return rest
                    .split_whitespace()
                    .next()
                    .expect("address")
                    .parse()
                    .expect("socket address");
            }
        }
    })
    .await
    .expect("listening in time");

    let (mut sub, _) = v4::connect(v4::options(addr, "anon-sub")).await;
    sub.subscribe("hello", v4::QoS::AtLeastOnce).await;
    let (publisher, _) = v4::connect(v4::options(addr, "anon-pub")).await;
    publisher.client.publish("hello", v4::QoS::AtLeastOnce, false, "world").await.expect("queued");
    assert_eq!(&sub.publish().await.payload[..], b"world");

    let pid = child.id().expect("pid").to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").expect("status");
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
}

#[tokio::test]
async fn a_bad_file_stops_it_with_file_line_key_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "mqtt {\n  max_packet_size = 10XB\n}\n").expect("write conf");
    let out = Command::new(env!("CARGO_BIN_EXE_broker-core"))
        .arg("--conf")
        .arg(&conf)
        .output()
        .await
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.conf:2"), "{stderr}");
    assert!(stderr.contains("mqtt.max_packet_size"), "{stderr}");
    assert!(stderr.contains("10XB"), "{stderr}");
}

#[tokio::test]
async fn check_config_accepts_a_good_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("ok.conf");
    std::fs::write(
        &conf,
        "mqtt { max_packet_size = 1KB }\nlisteners.tcp { bind = \"0.0.0.0:1883\" }\n",
    )
    .expect("write conf");
    let out = Command::new(env!("CARGO_BIN_EXE_broker-core"))
        .args(["--check-config", "--conf"])
        .arg(&conf)
        .output()
        .await
        .expect("binary runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[tokio::test]
async fn authentication_it_cannot_enforce_stops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("auth.conf");
    std::fs::write(
        &conf,
        "listeners.tcp { bind = \"127.0.0.1:0\" }\nauth { allow_anonymous = false }\n",
    )
    .expect("write conf");
    let out = Command::new(env!("CARGO_BIN_EXE_broker-core"))
        .arg("--conf")
        .arg(&conf)
        .output()
        .await
        .expect("binary runs");
    assert!(!out.status.success(), "fails closed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("allow_anonymous = false"), "{stderr}");
}

#[tokio::test]
async fn the_nanomq_fixtures_pass_the_configuration_check() {
    // The fixtures name ./etc/... files relative to the working directory, as NanoMQ does.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/nanomq");
    let dir = tempfile::tempdir().expect("tempdir");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("certs")).expect("mkdir");
    for file in ["nanomq_pwd.conf", "nanomq_acl.conf"] {
        std::fs::copy(format!("{fixtures}/{file}"), etc.join(file)).expect("copy");
    }
    let pki = common::pki::Pki::new();
    let server = pki.server("server", "broker.test");
    std::fs::copy(&server.cert, etc.join("certs/cert.pem")).expect("cert");
    std::fs::copy(&server.key, etc.join("certs/key.pem")).expect("key");
    std::fs::copy(pki.ca_file(), etc.join("certs/cacert.pem")).expect("ca");
    for file in ["nanomq-file-auth.conf", "nanomq-http-auth.conf"] {
        let out = Command::new(env!("CARGO_BIN_EXE_broker-core"))
            .current_dir(dir.path())
            .args(["--check-config", "--conf"])
            .arg(format!("{fixtures}/{file}"))
            .output()
            .await
            .expect("binary runs");
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn logs_to_the_file_that_log_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("tern.conf");
    let logs = dir.path().join("logs");
    std::fs::write(
        &conf,
        format!(
            "listeners.tcp {{ bind = \"127.0.0.1:0\" }}\nlog {{\n  to = [file]\n  level = info\n  dir = \"{}\"\n  file = \"broker.log\"\n}}\n",
            logs.display()
        ),
    )
    .expect("write conf");
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker-core"))
        .arg("--conf")
        .arg(&conf)
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let file = logs.join("broker.log");
    let logged = test_support::eventually(WAIT, || async {
        let text = std::fs::read_to_string(&file).ok()?;
        text.contains("listening").then_some(text)
    })
    .await;
    assert!(logged.is_some(), "the listener address is logged to {}", file.display());
    child.start_kill().expect("kill");
    let _ = child.wait().await;
}

#[tokio::test]
async fn serves_its_own_prometheus_metrics_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("tern.conf");
    std::fs::write(
        &conf,
        "node { id = \"metrics-node\", metrics_bind = \"127.0.0.1:0\" }\n\
         sys.interval = 0\n\
         listeners.tcp { bind = \"127.0.0.1:0\" }\n",
    )
    .expect("write conf");
    let (_child, mut stderr) = start(&conf);
    let field = |line: &str, key: &str| -> Option<std::net::SocketAddr> {
        line.split(key).nth(1)?.split_whitespace().next()?.parse().ok()
    };
    let (mut mqtt, mut metrics) = (None, None);
    tokio::time::timeout(WAIT, async {
        while mqtt.is_none() || metrics.is_none() {
            let line = stderr.next_line().await.expect("read").expect("the broker logs");
            mqtt = mqtt.or_else(|| field(&line, " addr="));
            metrics = metrics.or_else(|| field(&line, " metrics="));
        }
    })
    .await
    .expect("both addresses logged in time");
    let (mqtt, metrics) = (mqtt.expect("mqtt"), metrics.expect("metrics"));

    let url = format!("http://{metrics}/metrics");
    let received = |text: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with("tern_messages_received_total{"))?;
        line.rsplit(' ').next()?.parse().ok()
    };
    let (publisher, _) = v4::connect(v4::options(mqtt, "counted")).await;
    // Connecting published the client's `$SYS` status message: count from here.
    let before = test_support::eventually(WAIT, || async {
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        text.contains("\nnanomq_connections_count 1\n").then(|| received(&text)).flatten()
    })
    .await
    .expect("the connected client is counted");
    for _ in 0..3 {
        publisher.client.publish("m/1", v4::QoS::AtLeastOnce, false, "x").await.expect("queued");
    }
    let last = std::sync::Mutex::new(String::new());
    let text = test_support::eventually(WAIT, || async {
        let text = match reqwest::get(&url).await {
            Ok(response) => response.text().await.unwrap_or_else(|e| e.to_string()),
            Err(error) => error.to_string(),
        };
        let want =
            format!("tern_messages_received_total{{node=\"metrics-node\"}} {}\n", before + 3);
        let counted = text.contains(&want);
        *last.lock().expect("lock") = text.clone();
        counted.then_some(text)
    })
    .await
    .unwrap_or_else(|| panic!("the three messages are counted: {}", last.lock().expect("lock")));
    assert!(text.contains("# TYPE tern_events_dropped_total counter\n"), "{text}");
}
