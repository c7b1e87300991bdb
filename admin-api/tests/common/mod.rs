//! A whole deployment in one test process, every part on port 0: a private redis-server,
//! auth-service following the config store, broker nodes serving BrokerAdmin (with a token) and
//! registered in Redis, and admin-api; plus an HTTP client and raw MQTT clients.

// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use base64::Engine as _;
use broker_core::{
    BoundListener, Broker, BrokerConfig,
    admin_grpc::{AdminSecurity, Registration},
    auth::Transport,
    auth_grpc::{GrpcAuth, GrpcAuthConfig},
    connection::ListenerInfo,
    events::NoEvents,
};
use mqtt_codec::{Packet, ProtocolVersion, QoS};
use serde_json::Value;
use tern_config_store::{
    ConfigStore, RedisStore,
    redis_store::{Keys, RedisSettings, connection_manager},
};
use test_support::{RedisServer, eventually, mqtt::raw::RawClient};
use tokio_util::sync::CancellationToken;

/// The BrokerAdmin token every node requires.
pub const TOKEN: &str = "node-token-for-tests";
/// How long conditions are polled for.
pub const WAIT: Duration = Duration::from_secs(20);

/// Settings for tests: fast polling and short TTLs.
pub fn redis_settings(redis: &RedisServer) -> RedisSettings {
    RedisSettings {
        url: redis.url(),
        prefix: "tern:".into(),
        timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(200),
    }
}

/// A running auth-service that follows the store.
pub struct AuthService {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
}

impl AuthService {
    /// Starts auth-service from configuration `text` (written to `dir/auth.conf`).
    pub async fn start(text: &str, dir: &Path, redis: &RedisServer) -> Self {
        let file = dir.join("auth.conf");
        std::fs::write(&file, text).expect("write auth.conf");
        let config = tern_config::load_in(&file, dir, &tern_config::Env::new())
            .expect("auth configuration loads")
            .config;
        let built = auth_service::setup::build(&config).expect("auth chain");
        let (listener, addr) = test_support::bind_tokio().await;
        let shutdown = CancellationToken::new();
        let store = RedisStore::start(redis_settings(redis), shutdown.clone()).expect("store");
        let settings = auth_service::store::StoreSettings {
            file: Some(file),
            base_dir: dir.to_path_buf(),
            env: tern_config::Env::new(),
            instance: "auth-1".into(),
            set_level: None,
        };
        let options = auth_service::server::RunOptions {
            store: Some((Arc::new(store), settings)),
            ..Default::default()
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            auth_service::server::run_with(built, listener, options, async move {
                stop.cancelled().await;
            })
            .await
            .expect("auth-service serves");
        });
        Self { addr, shutdown }
    }
}

/// How a test broker `node_id` calls auth-service at `address` (fail closed, no token, no TLS).
pub fn grpc_auth(address: String, node_id: &str) -> GrpcAuthConfig {
    GrpcAuthConfig {
        address,
        timeout: Duration::from_secs(2),
        resolve_interval: Duration::from_millis(200),
        connect_when_unavailable: false,
        publish_when_unavailable: false,
        subscribe_when_unavailable: false,
        cache_max_size: 64,
        cache_ttl: Duration::from_secs(60),
        node_id: Arc::from(node_id),
        token: None,
        tls: None,
    }
}

/// A broker node `id` authenticating through `grpc`, serving MQTT on 127.0.0.1:0 until the
/// returned token is cancelled.
pub async fn mqtt_broker(
    id: &str,
    grpc: GrpcAuthConfig,
) -> (Arc<Broker>, SocketAddr, CancellationToken) {
    let config =
        BrokerConfig { node_id: Arc::from(id), sys_interval: None, ..BrokerConfig::default() };
    let broker = Broker::new(config, Arc::new(GrpcAuth::start(grpc)), Arc::new(NoEvents));
    let (socket, mqtt) = test_support::bind_tokio().await;
    let listener = BoundListener::tcp(
        socket,
        ListenerInfo {
            name: Arc::from("tcp:default"),
            port: mqtt.port(),
            transport: Transport::Tcp,
            max_packet_size: None,
            connect_timeout: Duration::from_secs(5),
            use_identity_as_username: false,
        },
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(broker_core::run(Arc::clone(&broker), vec![listener], shutdown.clone()));
    (broker, mqtt, shutdown)
}

/// One broker node.
pub struct Node {
    pub id: String,
    pub mqtt: SocketAddr,
    pub admin: SocketAddr,
    pub broker: Arc<Broker>,
    pub shutdown: CancellationToken,
}

impl Node {
    /// A node authenticating through `auth`, serving BrokerAdmin with [`TOKEN`], registered in
    /// `redis`, and following the store (`log`).
    pub async fn start(id: &str, auth: SocketAddr, redis: &RedisServer) -> Self {
        Self::start_with(id, auth, redis, AdminSecurity { token: Some(TOKEN.into()), tls: None })
            .await
    }

    /// [`Node::start`] with BrokerAdmin secured by `security`.
    pub async fn start_with(
        id: &str,
        auth: SocketAddr,
        redis: &RedisServer,
        security: AdminSecurity,
    ) -> Self {
        let grpc = grpc_auth(auth.to_string(), id);
        let (broker, mqtt, shutdown) = mqtt_broker(id, grpc).await;
        let (admin_listener, admin) = test_support::bind_tokio().await;
        let registration = Registration {
            redis_url: redis.url(),
            prefix: "tern:".into(),
            ttl: Duration::from_secs(6),
            timeout: Duration::from_millis(500),
            advertise: admin.to_string(),
            listeners: vec![format!("tcp:default@{mqtt}")],
        };
        tokio::spawn(broker_core::admin_grpc::run(
            Arc::clone(&broker),
            admin_listener,
            security,
            Some(registration),
            shutdown.clone(),
        ));
        let store = RedisStore::start(redis_settings(redis), shutdown.clone()).expect("store");
        let follower = broker_core::config_follow::follower(
            Arc::clone(&broker),
            None,
            std::env::temp_dir(),
            tern_config::Env::new(),
            None,
        );
        tokio::spawn(follower.run(Arc::new(store), shutdown.clone()));
        Self { id: id.into(), mqtt, admin, broker, shutdown }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A running admin-api.
pub struct Api {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub authorization: Option<String>,
    pub shutdown: CancellationToken,
}

/// HTTP Basic credentials.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Api {
    /// admin-api over the nodes registered in `redis`, authenticating callers with `auth`.
    pub async fn start(redis: &RedisServer, auth: admin_api::AuthMode, dir: &Path) -> Self {
        Self::start_with(redis, auth, dir, None).await
    }

    /// [`Api::start`] calling the nodes over TLS with `tls`.
    pub async fn start_with(
        redis: &RedisServer,
        auth: admin_api::AuthMode,
        dir: &Path,
        tls: Option<proto::grpc::TlsFiles>,
    ) -> Self {
        test_support::install_crypto_provider();
        let shutdown = CancellationToken::new();
        let settings = redis_settings(redis);
        let manager = connection_manager(&settings.url, settings.timeout, None).expect("manager");
        let store = RedisStore::start(settings, shutdown.clone()).expect("store");
        let nodes = admin_api::Nodes::new(
            admin_api::NodeSource::Redis {
                manager,
                keys: Keys::new("tern:"),
                timeout: Duration::from_millis(500),
            },
            Some(TOKEN),
            tls,
            Duration::from_secs(5),
        );
        let state = admin_api::AppState::new(admin_api::Settings {
            http: tern_config::HttpServerConfig::default(),
            auth,
            nodes,
            store: Arc::new(store),
            base_dir: dir.to_path_buf(),
            config_file: None,
            relay: None,
        });
        let (listener, addr) = test_support::bind_tokio().await;
        let stop = shutdown.clone();
        tokio::spawn(admin_api::serve(state, listener, async move { stop.cancelled().await }));
        Self {
            addr,
            http: reqwest::Client::new(),
            authorization: Some(basic("admin", "public")),
            shutdown,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/api/v4{path}", self.addr)
    }

    /// Sends a request with this API's credentials; returns the status and the body (JSON, or a
    /// JSON string holding the text when the body is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Polls `GET path` until `check` accepts the body.
    pub async fn wait_get(&self, path: &str, check: impl Fn(&Value) -> bool) -> Option<Value> {
        eventually(WAIT, || async {
            let (status, body) = self.get(path).await;
            (status == 200 && check(&body)).then_some(body)
        })
        .await
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The deployment: Redis, auth-service, two nodes, admin-api.
pub struct Cluster {
    pub redis: RedisServer,
    pub auth: AuthService,
    pub nodes: Vec<Node>,
    pub api: Api,
    pub dir: tempfile::TempDir,
}

/// auth-service settings for the cluster: anyone may connect; subscribing is allowed; publishing
/// is denied unless a rule allows it.
pub const AUTH_CONF: &str = r#"
auth {
  allow_anonymous = true
  no_match = deny
  acl { rules = [ {"permit": "allow", "action": "subscribe"} ] }
}
"#;

impl Cluster {
    pub async fn start() -> Self {
        Self::start_with(AUTH_CONF).await
    }

    /// A cluster whose auth-service starts from `auth_conf`.
    pub async fn start_with(auth_conf: &str) -> Self {
        test_support::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = RedisServer::start();
        let auth = AuthService::start(auth_conf, dir.path(), &redis).await;
        let nodes = vec![
            Node::start("node-a", auth.addr, &redis).await,
            Node::start("node-b", auth.addr, &redis).await,
        ];
        let api = Api::start(
            &redis,
            admin_api::AuthMode::Basic {
                username: "admin".into(),
                password: tern_config::Secret::new("public"),
            },
            dir.path(),
        )
        .await;
        let cluster = Self { redis, auth, nodes, api, dir };
        cluster
            .api
            .wait_get("/nodes", |b| b["data"].as_array().is_some_and(|n| n.len() == 2))
            .await
            .expect("both nodes registered");
        cluster
    }
}

/// An MQTT 5 client connected to `addr` as `id` (with a username).
pub async fn client(addr: SocketAddr, id: &str, username: &str) -> RawClient {
    let mut connect = test_support::mqtt::raw::connect_packet(ProtocolVersion::V5, id);
    connect.username = Some(username.into());
    let (client, ack) = RawClient::connect(addr, connect).await;
    assert_eq!(ack.reason_code, mqtt_codec::ConnectReasonCode::Success, "{id} connects");
    client
}

/// Publishes at QoS 1 and returns the PUBACK reason code.
pub async fn puback(
    client: &mut RawClient,
    packet_id: u16,
    topic: &str,
) -> mqtt_codec::PubAckReasonCode {
    client.puback(packet_id, topic).await
}

/// Publishes (a new packet id each time) until the PUBACK reason code satisfies `want`.
pub async fn wait_for_puback(
    client: &mut RawClient,
    topic: &str,
    first_id: u16,
    want: impl Fn(mqtt_codec::PubAckReasonCode) -> bool,
) -> bool {
    let client = tokio::sync::Mutex::new(client);
    let next = std::sync::atomic::AtomicU16::new(first_id);
    let (client, next, want) = (&client, &next, &want);
    eventually(WAIT, move || async move {
        let mut client = client.lock().await;
        let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        want(puback(&mut client, id, topic).await).then_some(())
    })
    .await
    .is_some()
}
