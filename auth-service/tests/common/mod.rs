//! Test helpers: auth-service and a broker using it, both in-process on 127.0.0.1:0, configured
//! from NanoMQ-format files laid out in a temporary working directory.

// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use broker_core::{
    BoundListener, Broker, BrokerConfig,
    auth::Transport,
    auth_grpc::{GrpcAuth, GrpcAuthConfig},
    connection::ListenerInfo,
    events::NoEvents,
};
use tokio_util::sync::CancellationToken;

pub use test_support::mqtt::{packets, raw::RawClient};

/// The seed's fixtures.
pub fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nanomq")
}

/// A working directory with `etc/nanomq_pwd.conf`, `etc/nanomq_acl.conf` and placeholder
/// certificate files, as the fixtures' relative paths expect.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("etc/certs")).expect("mkdir");
    for file in ["nanomq_pwd.conf", "nanomq_acl.conf"] {
        std::fs::copy(fixtures().join(file), dir.path().join("etc").join(file)).expect("copy");
    }
    for file in ["key.pem", "cert.pem", "cacert.pem"] {
        std::fs::write(dir.path().join("etc/certs").join(file), "placeholder\n").expect("write");
    }
    dir
}

/// Loads a fixture configuration as if run from `dir`.
pub fn fixture_config(name: &str, dir: &Path) -> tern_config::Config {
    tern_config::load_in(&fixtures().join(name), dir, &tern_config::Env::new())
        .expect("fixture loads")
        .config
}

/// A running auth-service.
pub struct AuthService {
    pub addr: SocketAddr,
    pub revocations: auth_service::Revocations,
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl AuthService {
    pub async fn start(config: &tern_config::Config) -> Self {
        Self::start_on(config, "127.0.0.1:0".parse().expect("addr")).await
    }

    pub async fn start_on(config: &tern_config::Config, addr: SocketAddr) -> Self {
        test_support::install_crypto_provider();
        let built = auth_service::setup::build(config).expect("auth chain");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let revocations = auth_service::Revocations::new();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let chain = built.watch(&revocations, Duration::from_millis(100));
        let revoke = revocations.clone();
        let task = tokio::spawn(async move {
            auth_service::serve(chain, revoke, listener, async move { stop.cancelled().await })
                .await
                .expect("auth-service serves");
        });
        Self { addr, revocations, shutdown, task }
    }

    /// Stops serving at once (connected brokers see their calls fail), as a crash would.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The auth-service binary as a separate process (so that "down" really means down).
pub struct AuthProcess {
    pub addr: SocketAddr,
    child: tokio::process::Child,
}

impl AuthProcess {
    /// Starts `auth-service --conf <conf>` in `workdir`, serving on `bind` (port 0: any).
    pub async fn spawn(conf: &Path, workdir: &Path, bind: SocketAddr) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-service"))
            .arg("--conf")
            .arg(conf)
            .current_dir(workdir)
            .env("TERN_AUTH_SERVICE__BIND", bind.to_string())
            .env("TERN_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("auth-service starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let line =
                    lines.next_line().await.expect("read").expect("auth-service logs its address");
                if let Some(rest) = line.split("addr=").nth(1) {
                    let addr = rest.split_whitespace().next().expect("address");
                    return addr.parse::<SocketAddr>().expect("socket address");
                }
            }
        })
        .await
        .expect("auth-service listening in time");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { addr, child }
    }

    /// Kills the process (SIGKILL): every connection to it breaks.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A broker authenticating through auth-service at `auth_addr`.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    pub shutdown: CancellationToken,
}

pub fn grpc_config(address: String) -> GrpcAuthConfig {
    GrpcAuthConfig {
        address,
        timeout: Duration::from_secs(1),
        resolve_interval: Duration::from_millis(200),
        connect_when_unavailable: false,
        publish_when_unavailable: false,
        subscribe_when_unavailable: false,
        cache_max_size: 32,
        cache_ttl: Duration::from_secs(60),
        node_id: Arc::from("test-node"),
        token: None,
        tls: None,
    }
}

impl TestBroker {
    pub async fn start(auth: GrpcAuthConfig) -> Self {
        Self::start_with(Arc::new(GrpcAuth::start(auth))).await
    }

    pub async fn start_with(auth: Arc<dyn broker_core::auth::Authenticator>) -> Self {
        let config = BrokerConfig { sys_interval: None, ..BrokerConfig::default() };
        let broker = Broker::new(config, auth, Arc::new(NoEvents));
        let (socket, addr) = test_support::bind_tokio().await;
        let listener = BoundListener::tcp(
            socket,
            ListenerInfo {
                name: Arc::from("tcp:default"),
                port: addr.port(),
                transport: Transport::Tcp,
                max_packet_size: None,
                connect_timeout: Duration::from_secs(5),
                use_identity_as_username: false,
            },
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(broker_core::run(Arc::clone(&broker), vec![listener], shutdown.clone()));
        Self { addr, broker, shutdown }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A CONNECT with credentials.
pub fn connect(
    version: mqtt_codec::ProtocolVersion,
    id: &str,
    user: Option<(&str, &str)>,
) -> mqtt_codec::Connect {
    let mut c = test_support::mqtt::raw::connect_packet(version, id);
    if let Some((username, password)) = user {
        c.username = Some(username.into());
        c.password = Some(bytes::Bytes::copy_from_slice(password.as_bytes()));
    }
    c
}

/// Publishes at QoS 1 until the publish is allowed (`allowed`) or refused with 0x87 (each try a
/// new packet id); false after 10 s without that answer. An allowed publish without subscribers is
/// answered 0x10 (No matching subscribers).
pub async fn publish_until(
    client: &tokio::sync::Mutex<RawClient>,
    next_id: &std::sync::atomic::AtomicU16,
    topic: &str,
    allowed: bool,
) -> bool {
    use mqtt_codec::PubAckReasonCode;
    test_support::eventually(Duration::from_secs(10), || async {
        let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let code = client.lock().await.puback(id, topic).await;
        let want = if allowed {
            matches!(code, PubAckReasonCode::Success | PubAckReasonCode::NoMatchingSubscribers)
        } else {
            code == PubAckReasonCode::NotAuthorized
        };
        want.then_some(())
    })
    .await
    .is_some()
}

/// A config store in `redis` (prefix `tern:`, re-read every 200 ms), stopped with `shutdown`.
pub fn config_store(
    redis: &test_support::RedisServer,
    shutdown: &CancellationToken,
) -> Arc<dyn tern_config_store::ConfigStore> {
    let settings = tern_config_store::redis_store::RedisSettings {
        url: redis.url(),
        prefix: "tern:".into(),
        timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(200),
    };
    Arc::new(tern_config_store::RedisStore::start(settings, shutdown.clone()).expect("store"))
}
