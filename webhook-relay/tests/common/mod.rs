//! Test helpers: a real HTTP receiver (axum), a relay and a broker (their libraries, on port 0),
//! a TCP proxy that can cut the broker↔relay connection, and an MQTT publisher.

// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use axum::{
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
};
use broker_core::{
    Broker, BrokerConfig,
    auth::AllowAll,
    events_grpc::{GrpcEvents, GrpcEventsConfig},
};
use bytes::Bytes;
use mqtt_codec::{Packet, ProtocolVersion, Publish, QoS};
use parking_lot::Mutex;
use test_support::mqtt::raw::{RawClient, connect_packet};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webhook_relay::{Relay, RelayConfig};

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(30);

/// Parses configuration text (paths relative to `dir`).
pub fn config(text: &str, dir: &Path) -> tern_config::Config {
    match tern_config::parse_str(text, "nanomq.conf", dir, &tern_config::Env::new()) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("test config: {e}"),
    }
}

/// One request the receiver answered with 200.
#[derive(Debug, Clone)]
pub struct Received {
    /// The URL path.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: serde_json::Value,
    pub event_id: String,
}

impl Received {
    pub fn field(&self, name: &str) -> String {
        match &self.json[name] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answer 503 while set.
    down: AtomicBool,
    /// Requests answered 503.
    refused: AtomicUsize,
}

/// An HTTP webhook receiver (axum) on 127.0.0.1:0: `POST /<path>` records the request and answers
/// 200, or 503 while [`Receiver::set_down`] is on.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    stop: CancellationToken,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(hook))
            .with_state(Arc::clone(&state));
        let (listener, addr) = test_support::bind_tokio().await;
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Self { addr, state, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, SeqCst);
    }

    pub fn refused(&self) -> usize {
        self.state.refused.load(SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().clone()
    }

    /// Waits until at least `n` requests were answered 200; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let got = test_support::eventually(WAIT, || async {
            let r = self.received();
            (r.len() >= n).then_some(r)
        })
        .await;
        match got {
            Some(r) => r,
            None => panic!(
                "expected {n} webhooks, got {}: {:#?}",
                self.received().len(),
                self.received()
            ),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn hook(
    State(state): State<Arc<ReceiverState>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if state.down.load(SeqCst) {
        state.refused.fetch_add(1, SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let event_id = headers
        .get(webhook_relay::EVENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    state.received.lock().push(Received { path, headers, body, json, event_id });
    StatusCode::OK
}

/// A relay served from its library on a listener.
pub struct RunningRelay {
    pub addr: SocketAddr,
    pub relay: Relay,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), webhook_relay::RelayError>>,
}

impl RunningRelay {
    pub async fn start(config: &tern_config::Config, listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("relay address");
        let relay = match Relay::open(RelayConfig::from_config(config)) {
            Ok(relay) => relay,
            Err(e) => panic!("relay: {e}"),
        };
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task =
            tokio::spawn(relay.clone().serve(listener, async move { token.cancelled().await }));
        Self { addr, relay, stop, task }
    }

    pub fn metric(
        &self,
        pick: impl Fn(&webhook_relay::Metrics) -> &std::sync::atomic::AtomicU64,
    ) -> u64 {
        pick(&self.relay.metrics()).load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// A broker served from its library, sending its events to the relay its configuration names.
pub struct RunningBroker {
    pub mqtt: SocketAddr,
    pub broker: Arc<Broker>,
    pub events: GrpcEvents,
    stop: CancellationToken,
}

impl RunningBroker {
    pub async fn start(config: &tern_config::Config) -> Self {
        test_support::install_crypto_provider();
        let Some(relay) = GrpcEventsConfig::from_config(config) else {
            panic!("the test config names no webhook_relay.address")
        };
        let events = GrpcEvents::start(relay);
        let settings = BrokerConfig::from_config(config);
        let listeners = match broker_core::server::bind_listeners(config).await {
            Ok(l) => l,
            Err(e) => panic!("broker listeners: {e}"),
        };
        let mqtt = listeners[0].socket.local_addr().expect("broker address");
        let broker = Broker::new(settings, Arc::new(AllowAll), Arc::new(events.clone()));
        let stop = CancellationToken::new();
        tokio::spawn(broker_core::run(Arc::clone(&broker), listeners, stop.clone()));
        Self { mqtt, broker, events, stop }
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An MQTT 3.1.1 client connected as `client_id` with `username`.
pub async fn client(addr: SocketAddr, client_id: &str, username: Option<&str>) -> RawClient {
    let mut connect = connect_packet(ProtocolVersion::V311, client_id);
    connect.username = username.map(Into::into);
    connect.password = username.map(|_| Bytes::from_static(b"public"));
    let (client, ack) = RawClient::connect(addr, connect).await;
    assert_eq!(ack.reason_code, mqtt_codec::ConnectReasonCode::Success, "{ack:?}");
    client
}

/// Publishes at QoS 1 and waits for the PUBACK (the broker has emitted the event by then).
pub async fn publish(
    client: &mut RawClient,
    topic: &str,
    payload: impl Into<Bytes>,
    packet_id: u16,
) {
    let mut p = Publish::new(topic.into(), payload.into());
    p.qos = QoS::AtLeastOnce;
    p.packet_id = Some(test_support::mqtt::packets::id(packet_id));
    client.send(&Packet::Publish(p)).await;
    loop {
        match client.recv().await {
            Some(Packet::PubAck(_)) => return,
            Some(_) => {}
            None => panic!("connection closed before PUBACK"),
        }
    }
}

/// A TCP proxy that can cut every connection through it and refuse new ones until restored.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let (listener, addr) = test_support::bind_tokio().await;
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (c, list) = (Arc::clone(&cut), Arc::clone(&conns));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().push(task.abort_handle());
            }
        });
        Self { addr, cut, conns }
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, SeqCst);
        for conn in self.conns.lock().drain(..) {
            conn.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, SeqCst);
    }
}

/// The `webhook-relay` binary on `conf`, killed when dropped.
pub fn spawn_relay(conf: &Path) -> tokio::process::Child {
    match tokio::process::Command::new(env!("CARGO_BIN_EXE_webhook-relay"))
        .arg("--conf")
        .arg(conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot start webhook-relay: {e}"),
    }
}

/// Waits until something listens on 127.0.0.1:`port`.
pub async fn wait_listening(port: u16) {
    test_support::eventually(WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
    })
    .await
    .expect("webhook-relay listens");
}

/// A free local port (bound, then released) for a process that must bind a fixed address.
pub fn free_port() -> u16 {
    let (listener, addr) = test_support::bind_tcp();
    drop(listener);
    addr.port()
}

/// An HTTP server that reads requests and never answers (like the seed's webhook route), counting
/// requests and open connections.
pub struct SilentReceiver {
    pub addr: SocketAddr,
    /// The event id of every request read, in arrival order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Connections open now.
    pub open: Arc<AtomicUsize>,
    /// Most connections open at once.
    pub max_open: Arc<AtomicUsize>,
}

impl SilentReceiver {
    pub async fn start() -> Self {
        let (listener, addr) = test_support::bind_tokio().await;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let (r, o, m) = (Arc::clone(&requests), Arc::clone(&open), Arc::clone(&max_open));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let now = o.fetch_add(1, SeqCst) + 1;
                m.fetch_max(now, SeqCst);
                let (r, o) = (Arc::clone(&r), Arc::clone(&o));
                tokio::spawn(async move {
                    read_requests(stream, &r).await;
                    o.fetch_sub(1, SeqCst);
                });
            }
        });
        Self { addr, requests, open, max_open }
    }
}

/// Reads HTTP/1.1 requests (headers and a Content-Length body) until the peer closes.
async fn read_requests(mut stream: tokio::net::TcpStream, out: &Mutex<Vec<String>>) {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
            };
            let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            out.lock().push(header(webhook_relay::EVENT_ID_HEADER).unwrap_or_default());
            buf.drain(..end + 4 + len);
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
