//! Smoke runs of every `tern bench` scenario against an in-process broker-core on 127.0.0.1:0:
//! tiny client counts, about a second each, and assertions on what must hold whatever the speed
//! (messages flow; at QoS 1/2 nothing is lost, duplicated or reordered). No timed assertions.

use std::{path::Path, sync::Arc, time::Duration};

use broker_core::{Broker, BrokerConfig, auth::AllowAll, events::NoEvents};
use clap::Parser as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tern::bench::{self, BenchArgs, Summary};
use tokio_util::sync::CancellationToken;

/// A broker-core serving the listeners of a configuration snippet on ephemeral ports.
struct TestBroker {
    /// Port of each listener, in the order of the configuration's listeners.
    ports: Vec<u16>,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestBroker {
    async fn start(conf: &str, dir: &Path) -> Self {
        test_support::install_crypto_provider();
        let loaded = tern_config::parse_str(conf, "test.conf", dir, &tern_config::Env::new())
            .expect("valid configuration");
        let mut settings = BrokerConfig::from_config(&loaded.config);
        settings.sys_interval = None;
        let listeners =
            broker_core::server::bind_listeners(&loaded.config).await.expect("listeners bind");
        let ports =
            listeners.iter().map(|l| l.socket.local_addr().expect("bound").port()).collect();
        let broker = Broker::new(settings, Arc::new(AllowAll), Arc::new(NoEvents));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(broker_core::run(Arc::clone(&broker), listeners, shutdown.clone()));
        Self { ports, broker, shutdown, task }
    }

    async fn tcp() -> Self {
        Self::start(r#"listeners.tcp { bind = "127.0.0.1:0" }"#, Path::new(".")).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("broker stops")
            .expect("broker task");
    }
}

/// Runs `tern bench <line>` against `port`, quietly, for about a second.
async fn bench(line: &str, port: u16) -> Summary {
    let mut argv = vec!["bench".to_owned()];
    argv.extend(line.split_whitespace().map(str::to_owned));
    argv.extend(["-p".into(), port.to_string(), "--quiet".into()]);
    if !line.contains(" -d ") {
        argv.extend(["-d".into(), "1s".into()]);
    }
    let args = BenchArgs::try_parse_from(&argv).expect("valid options");
    let summary = bench::run(&args).await.expect("the run completes");
    // The JSON line is what scripts read: it must always parse.
    let json: serde_json::Value = serde_json::from_str(&summary.to_json()).expect("JSON line");
    assert_eq!(json["sent"].as_u64(), Some(summary.sent));
    summary
}

/// What every run with publishers and subscribers at QoS 1/2 must show.
fn assert_exact(s: &Summary) {
    assert!(s.sent > 0, "messages were sent: {s:#?}");
    assert_eq!(s.connections.failed, 0, "{:?}", s.errors);
    assert_eq!(s.connections.dropped, 0, "{:?}", s.errors);
    assert_eq!(s.acked, s.sent, "every publish acknowledged: {s:#?}");
    assert_eq!(s.unacked, 0);
    assert_eq!(Some(s.received), s.expected, "every delivery arrived: {s:#?}");
    assert_eq!((s.lost, s.duplicates, s.reordered), (0, 0, 0), "{s:#?}");
    assert_eq!(s.latency.count, s.received, "a latency sample per message");
    assert!(s.latency.p50_ms.is_some() && s.latency.p99_ms >= s.latency.p50_ms);
    assert!(s.table().contains("lost/dup/reord"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_at_qos1_lose_nothing() {
    let broker = TestBroker::tcp().await;
    let s = bench("pairs -c 3 -q 1 -r 200", broker.ports[0]).await;
    assert_eq!((s.publishers, s.subscribers), (3, 3));
    assert_eq!(s.connections.connected, 6);
    assert_exact(&s);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanin_at_qos1_lose_nothing() {
    let broker = TestBroker::tcp().await;
    let s = bench("fanin -c 4 -q 1 -r 200", broker.ports[0]).await;
    assert_eq!((s.publishers, s.subscribers), (4, 1));
    assert_exact(&s);
    assert_eq!(s.expected, Some(s.sent));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_at_qos2_delivers_exactly_once() {
    let broker = TestBroker::tcp().await;
    let s = bench("fanout -c 3 -q 2 -r 200", broker.ports[0]).await;
    assert_eq!((s.publishers, s.subscribers), (1, 3));
    assert_exact(&s);
    assert_eq!(s.expected, Some(s.sent * 3));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_group_splits_the_messages() {
    let broker = TestBroker::tcp().await;
    let s = bench("shared -c 3 --pubs 2 -q 1 -r 300", broker.ports[0]).await;
    assert_eq!((s.publishers, s.subscribers), (2, 3));
    assert_exact(&s);
    assert_eq!(s.expected, Some(s.sent), "one delivery per message for the group");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_alone_counts_acknowledgements() {
    let broker = TestBroker::tcp().await;
    let s = bench("pub -c 2 -q 1 -r 100", broker.ports[0]).await;
    assert!(s.sent > 0);
    assert_eq!(s.acked, s.sent);
    assert_eq!((s.subscribers, s.received, s.expected), (0, 0, None));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_alone_measures_another_process_publishers() {
    let broker = TestBroker::tcp().await;
    let port = broker.ports[0];
    let sub = tokio::spawn(async move { bench("sub -c 2 -q 1 -i subs -d 6s", port).await });
    // The subscriptions must be in place before the publishers start.
    let router = &broker.broker.router;
    let subscribed = test_support::eventually(Duration::from_secs(10), || async {
        (router.len() == 2).then_some(())
    })
    .await;
    assert!(subscribed.is_some(), "the sub run subscribed");
    let publishers = bench("pub -c 2 -q 1 -r 100 -i pubs", port).await;
    let s = sub.await.expect("sub run");
    assert!(publishers.sent > 0);
    assert_eq!(s.received, publishers.sent * 2, "each subscriber gets every message");
    assert_eq!((s.lost, s.duplicates, s.reordered), (0, 0, 0), "{s:#?}");
    assert_eq!(s.latency.count, s.received);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_holds_connections_and_reports_broker_memory() {
    let broker = TestBroker::tcp().await;
    // The broker runs in this process: its pid is ours.
    let line = format!("conn -c 30 --connect-rate 300 --broker-pid {}", std::process::id());
    let s = bench(&line, broker.ports[0]).await;
    assert_eq!(s.connections.connected, 30);
    assert_eq!((s.connections.failed, s.connections.dropped), (0, 0));
    assert!(s.connections.connects_per_s > 0.0);
    assert_eq!(s.connections.connect_latency.count, 30);
    let memory = s.broker.expect("broker figures");
    assert!(memory.rss_start > 0 && memory.rss_peak >= memory.rss_start);
    assert!(memory.rss_per_connection.is_some());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rate_qos0_never_reorders() {
    let broker = TestBroker::tcp().await;
    let s = bench("pairs -c 2 --max-rate", broker.ports[0]).await;
    assert!(s.sent > 0 && s.received > 0, "{s:#?}");
    // QoS 0 may be dropped by a full queue; it is never duplicated or reordered.
    assert_eq!((s.duplicates, s.reordered), (0, 0), "{s:#?}");
    assert!(s.received <= s.sent);
    assert!(s.tool.cpu_avg_pct > 0.0);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_pairs_at_qos2() {
    let broker = TestBroker::tcp().await;
    let s = bench("pairs -c 2 -q 2 -V 5 -r 200 --inflight 8", broker.ports[0]).await;
    assert_eq!(s.mqtt_version, "5");
    assert_exact(&s);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_tls_transports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = write_certificates(dir.path());
    let conf = r#"
        listeners.tcp { bind = "127.0.0.1:0" }
        listeners.ws { bind = "127.0.0.1:0" }
        listeners.ssl { bind = "127.0.0.1:0", certfile = "server.pem", keyfile = "server.key" }
        listeners.wss { bind = "127.0.0.1:0" }
    "#;
    let broker = TestBroker::start(conf, dir.path()).await;
    let port = |kind: &str| {
        let i = ["tcp", "ws", "ssl", "wss"].iter().position(|k| *k == kind).expect("kind");
        broker.ports[i]
    };
    let ws = bench("pairs -c 2 -q 1 -r 200 --transport ws", port("ws")).await;
    assert_exact(&ws);
    let tls = format!("pairs -c 2 -q 1 -r 200 --transport tls --cafile {}", ca_file.display());
    assert_exact(&bench(&tls, port("ssl")).await);
    let wss = bench("fanout -c 2 -q 1 -r 200 --transport wss --insecure", port("wss")).await;
    assert_exact(&wss);
    broker.stop().await;
}

/// A CA and a server certificate for 127.0.0.1, as `ca.pem`, `server.pem` and `server.key`.
fn write_certificates(dir: &Path) -> std::path::PathBuf {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "tern bench test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("signed");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write");
    dir.join("ca.pem")
}
