//! TLS (one-way and mutual), WebSocket, WSS and PROXY-protocol listeners with real clients:
//! certificates from a test CA, the client certificate's CN reaching authentication, a certificate
//! replaced on disk served to the next connection, WebSocket framing, oversize packets refused on
//! every transport, and real client addresses behind a proxy.

mod common;

use std::{process::Stdio, sync::Arc};

use broker_core::{
    BrokerConfig,
    auth::{AllowAll, Authenticator, BoxFuture, ClientIdentity, ConnectVerdict, Transport},
    transport::{
        Layers,
        tls::{TlsSettings, TlsSource},
        ws::WsStream,
    },
};
use common::{
    ListenerSpec, TestBroker, WAIT, packets, pki,
    raw::{BoxedStream, RawClient},
};
use mqtt_codec::{ConnectReasonCode, DisconnectReasonCode, Packet, ProtocolVersion, QoS};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Lets everyone in and remembers who came.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<Arc<ClientIdentity>>>,
}

impl Authenticator for Recorder {
    fn authenticate(&self, client: Arc<ClientIdentity>) -> BoxFuture<ConnectVerdict> {
        self.seen.lock().push(Arc::clone(&client));
        AllowAll.authenticate(client)
    }
}

impl Recorder {
    fn identity(&self, client_id: &str) -> Arc<ClientIdentity> {
        self.seen
            .lock()
            .iter()
            .find(|c| &*c.client_id == client_id)
            .cloned()
            .expect("the client reached authentication")
    }
}

fn tls_source(pki: &pki::Pki, server: &pki::Files, verify: Option<bool>) -> Arc<TlsSource> {
    Arc::new(
        TlsSource::load(TlsSettings {
            certfile: server.cert.clone(),
            keyfile: server.key.clone(),
            cacertfile: Some(pki.ca_file()),
            key_password: None,
            verify_peer: verify.is_some(),
            fail_if_no_peer_cert: verify.unwrap_or(false),
        })
        .expect("TLS configuration loads"),
    )
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

async fn ws_connect<S>(stream: S, host: &str, path: &str) -> WsStream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = format!("ws://{host}{path}").into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", "mqtt".parse().expect("header"));
    let (ws, response) =
        tokio_tungstenite::client_async(request, stream).await.expect("WebSocket handshake");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
        Some("mqtt"),
        "the mqtt subprotocol is chosen"
    );
    WsStream::new(ws)
}

fn v5(id: &str) -> mqtt_codec::Connect {
    common::raw::connect_packet(ProtocolVersion::V5, id)
}

async fn connected(stream: BoxedStream, id: &str) -> RawClient {
    let (c, ack) = RawClient::handshake(stream, v5(id)).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    c
}

#[tokio::test]
async fn tcp_tls_and_websocket_clients_exchange_messages() {
    let pki = pki::Pki::new();
    let server = pki.server("server", "broker.test");
    let tls = tls_source(&pki, &server, None);
    let broker = TestBroker::start_full(
        BrokerConfig { sys_interval: None, ..BrokerConfig::default() },
        None,
        Arc::new(AllowAll),
        vec![
            ListenerSpec::tcp(),
            ListenerSpec::new(Transport::Tls, Layers::Tls(Arc::clone(&tls))),
            ListenerSpec::new(Transport::Ws, Layers::Ws { path: "/mqtt".into() }),
            ListenerSpec::new(Transport::Wss, Layers::Wss { tls, path: "/mqtt".into() }),
        ],
    )
    .await;
    let [tcp_addr, tls_addr, ws_addr, wss_addr] = broker.addrs[..] else { panic!("4 listeners") };
    let client_config = pki::client_config(&pki, None);

    let mut subscribers = vec![
        connected(Box::new(TcpStream::connect(tcp_addr).await.expect("tcp")), "on-tcp").await,
        connected(
            Box::new(tls_connect(tls_addr, client_config.clone()).await.expect("tls")),
            "on-tls",
        )
        .await,
        connected(
            Box::new(
                ws_connect(
                    TcpStream::connect(ws_addr).await.expect("tcp"),
                    &ws_addr.to_string(),
                    "/mqtt",
                )
                .await,
            ),
            "on-ws",
        )
        .await,
        connected(
            Box::new(
                ws_connect(
                    tls_connect(wss_addr, client_config).await.expect("tls"),
                    &wss_addr.to_string(),
                    "/mqtt",
                )
                .await,
            ),
            "on-wss",
        )
        .await,
    ];
    for c in &mut subscribers {
        c.send(&packets::subscribe(1, "mesh/#", QoS::AtLeastOnce)).await;
        assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    }
    // Each client publishes once; every client receives all four.
    for (i, c) in subscribers.iter_mut().enumerate() {
        let topic = format!("mesh/{i}");
        c.send(&Packet::Publish(packets::publish(&topic, b"hi", QoS::AtMostOnce, None))).await;
    }
    for c in &mut subscribers {
        let mut topics = Vec::new();
        for _ in 0..4 {
            topics.push(c.next_publish().await.topic.to_string());
        }
        topics.sort();
        assert_eq!(topics, vec!["mesh/0", "mesh/1", "mesh/2", "mesh/3"]);
    }
    broker.stop().await;
}

#[tokio::test]
async fn mosquitto_publishes_over_tls_with_cafile() {
    let pki = pki::Pki::new();
    let server = pki.server("server", "broker.test");
    let broker = TestBroker::start_full(
        BrokerConfig { sys_interval: None, ..BrokerConfig::default() },
        None,
        Arc::new(AllowAll),
        vec![
            ListenerSpec::tcp(),
            ListenerSpec::new(Transport::Tls, Layers::Tls(tls_source(&pki, &server, None))),
        ],
    )
    .await;
    let (mut sub, _) = RawClient::connect(broker.addrs[0], v5("sub")).await;
    sub.send(&packets::subscribe(1, "secure", QoS::AtLeastOnce)).await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    let status = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.addrs[1].port().to_string()])
            .arg("--cafile")
            .arg(pki.ca_file())
            .args(["-t", "secure", "-q", "1", "-m", "over tls"])
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("mosquitto_pub finishes")
    .expect("mosquitto_pub runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(&sub.next_publish().await.payload[..], b"over tls");
    broker.stop().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_certificate_and_passes_its_identity() {
    let pki = pki::Pki::new();
    let server = pki.server("server", "broker.test");
    let device = pki.client("device", "device-42");
    let recorder = Arc::new(Recorder::default());
    let tls = tls_source(&pki, &server, Some(true));
    let mut as_username = ListenerSpec::new(Transport::Tls, Layers::Tls(Arc::clone(&tls)));
    as_username.use_identity_as_username = true;
    let broker = TestBroker::start_full(
        BrokerConfig { sys_interval: None, ..BrokerConfig::default() },
        None,
        recorder.clone(),
        vec![ListenerSpec::new(Transport::Tls, Layers::Tls(tls)), as_username],
    )
    .await;

    // Without a certificate: the handshake (or the first read after it, with TLS 1.3) fails.
    let anonymous = tls_connect(broker.addrs[0], pki::client_config(&pki, None)).await;
    if let Ok(stream) = anonymous {
        let mut c = RawClient::over(Box::new(stream), ProtocolVersion::V5);
        let _ = tokio::io::AsyncWriteExt::write_all(
            &mut c.stream,
            &[0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 30, 0, 0, 0],
        )
        .await;
        assert!(c.recv().await.is_none(), "no CONNACK without a client certificate");
    }
    assert!(recorder.seen.lock().is_empty(), "nobody reached authentication");

    // With one: connected, and the CN and subject reach authentication.
    let config = pki::client_config(&pki, Some(&device));
    let stream = tls_connect(broker.addrs[0], config.clone()).await.expect("tls");
    let _c = connected(Box::new(stream), "dev").await;
    let identity = recorder.identity("dev");
    assert_eq!(identity.cert_common_name.as_deref(), Some("device-42"));
    assert!(identity.cert_subject.as_deref().is_some_and(|s| s.contains("CN=device-42")));
    assert_eq!(identity.username, None);

    // use_identity_as_username: the CN becomes the username.
    let stream = tls_connect(broker.addrs[1], config).await.expect("tls");
    let _d = connected(Box::new(stream), "dev-cn").await;
    assert_eq!(recorder.identity("dev-cn").username.as_deref(), Some("device-42"));
    broker.stop().await;
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_is_served_to_the_next_connection() {
    let pki = pki::Pki::new();
    let server = pki.server("server", "first.test");
    let broker = TestBroker::start_full(
        BrokerConfig { sys_interval: None, ..BrokerConfig::default() },
        None,
        Arc::new(AllowAll),
        vec![ListenerSpec::new(Transport::Tls, Layers::Tls(tls_source(&pki, &server, None)))],
    )
    .await;
    let config = pki::client_config(&pki, None);
    let served_cn = |stream: &TlsStream| {
        let cert = stream.get_ref().1.peer_certificates().expect("server cert")[0].clone();
        broker_core::transport::tls::peer_identity(&cert).0
    };
    let first = tls_connect(broker.addr, config.clone()).await.expect("tls");
    assert_eq!(served_cn(&first).as_deref(), Some("first.test"));

    // Renewal writes new files under the same names.
    let renewed = pki.server("server", "second.test");
    assert_eq!(renewed.cert, server.cert);
    let switched = test_support::eventually(WAIT, || {
        let config = config.clone();
        async move {
            let stream = tls_connect(broker.addr, config).await.ok()?;
            (served_cn(&stream).as_deref() == Some("second.test")).then_some(())
        }
    })
    .await;
    assert!(switched.is_some(), "new connections get the new certificate");
    broker.stop().await;
}

#[tokio::test]
async fn websocket_framing_is_independent_of_packet_boundaries() {
    let broker = TestBroker::start_full(
        BrokerConfig { sys_interval: None, ..BrokerConfig::default() },
        None,
        Arc::new(AllowAll),
        vec![ListenerSpec::new(Transport::Ws, Layers::Ws { path: "/mqtt".into() })],
    )
    .await;
    let tcp = TcpStream::connect(broker.addr).await.expect("tcp");
    let mut c = RawClient::over(
        Box::new(ws_connect(tcp, &broker.addr.to_string(), "/mqtt").await),
        ProtocolVersion::V311,
    );
    // CONNECT split over two frames (each write is one binary frame).
    let connect = [0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 1, b'w'];
    c.send_bytes(&connect[..5]).await;
    c.send_bytes(&connect[5..]).await;
    assert!(matches!(c.recv().await, Some(Packet::ConnAck(_))));
    // SUBSCRIBE and PINGREQ in one frame.
    let mut both = bytes::BytesMut::new();
    mqtt_codec::encode(
        &packets::subscribe(1, "x", QoS::AtMostOnce),
        ProtocolVersion::V311,
        &mut both,
    )
    .expect("encode");
    mqtt_codec::encode(&Packet::PingReq, ProtocolVersion::V311, &mut both).expect("encode");
    c.send_bytes(&both).await;
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    assert!(matches!(c.recv().await, Some(Packet::PingResp)));

    // Another path is not an MQTT endpoint.
    let tcp = TcpStream::connect(broker.addr).await.expect("tcp");
    let refused = tokio_tungstenite::client_async(format!("ws://{}/other", broker.addr), tcp).await;
    assert!(refused.is_err(), "404 for another path");
    broker.stop().await;
}

#[tokio::test]
async fn oversize_packets_are_refused_on_every_transport() {
    let pki = pki::Pki::new();
    let server = pki.server("server", "broker.test");
    let tls = tls_source(&pki, &server, None);
    let broker = TestBroker::start_full(
        BrokerConfig { max_packet_size: 1024, sys_interval: None, ..BrokerConfig::default() },
        None,
        Arc::new(AllowAll),
        vec![
            ListenerSpec::tcp(),
            ListenerSpec::new(Transport::Tls, Layers::Tls(Arc::clone(&tls))),
            ListenerSpec::new(Transport::Ws, Layers::Ws { path: "/mqtt".into() }),
            ListenerSpec::new(Transport::Wss, Layers::Wss { tls, path: "/mqtt".into() }),
        ],
    )
    .await;
    let config = pki::client_config(&pki, None);
    let streams: Vec<(&str, BoxedStream)> = vec![
        ("tcp", Box::new(TcpStream::connect(broker.addrs[0]).await.expect("tcp"))),
        ("tls", Box::new(tls_connect(broker.addrs[1], config.clone()).await.expect("tls"))),
        (
            "ws",
            Box::new(
                ws_connect(TcpStream::connect(broker.addrs[2]).await.expect("tcp"), "h", "/mqtt")
                    .await,
            ),
        ),
        (
            "wss",
            Box::new(
                ws_connect(tls_connect(broker.addrs[3], config).await.expect("tls"), "h", "/mqtt")
                    .await,
            ),
        ),
    ];
    for (name, stream) in streams {
        let mut c = connected(stream, &format!("big-{name}")).await;
        c.send_bytes(&[0x30, 0xd0, 0x0f]).await; // the header of a 2000-byte PUBLISH
        let reason = c.until_closed().await.into_iter().find_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        });
        assert_eq!(reason, Some(DisconnectReasonCode::PacketTooLarge), "{name}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn proxy_protocol_gives_the_real_client_address() {
    let recorder = Arc::new(Recorder::default());
    let mut spec = ListenerSpec::tcp();
    spec.proxy_protocol = true;
    let broker = TestBroker::start_full(
        BrokerConfig { sys_interval: None, ..BrokerConfig::default() },
        None,
        recorder.clone(),
        vec![spec],
    )
    .await;
    let mut tcp = TcpStream::connect(broker.addr).await.expect("tcp");
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        b"PROXY TCP4 203.0.113.5 127.0.0.1 40000 1883\r\n",
    )
    .await
    .expect("write");
    let _c = connected(Box::new(tcp), "proxied").await;
    assert_eq!(recorder.identity("proxied").peer, "203.0.113.5:40000".parse().expect("addr"));

    // Without a header the connection is refused.
    let mut bare = RawClient::open(broker.addr, ProtocolVersion::V5).await;
    bare.send(&Packet::Connect(Box::new(v5("bare")))).await;
    assert!(bare.until_closed().await.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn encrypted_pkcs8_keys_load_with_key_password() {
    let pki = pki::Pki::new();
    let server = pki.server("server", "broker.test");
    let encrypted = pki.dir.path().join("server-encrypted.key");
    let out = tokio::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:s3cret", "-in"])
        .arg(&server.key)
        .arg("-out")
        .arg(&encrypted)
        .output()
        .await
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let settings = |password: Option<&str>| TlsSettings {
        certfile: server.cert.clone(),
        keyfile: encrypted.clone(),
        cacertfile: None,
        key_password: password.map(tern_config::Secret::new),
        verify_peer: false,
        fail_if_no_peer_cert: false,
    };
    assert!(TlsSource::load(settings(Some("s3cret"))).is_ok());
    let wrong = TlsSource::load(settings(Some("nope"))).expect_err("wrong password");
    assert!(wrong.to_string().contains("key_password"), "{wrong}");
    let missing = TlsSource::load(settings(None)).expect_err("no password");
    assert!(missing.to_string().contains("encrypted"), "{missing}");
}

/// A broker with TCP, TLS, WS and WSS listeners, and the CA its certificate comes from.
async fn all_transports() -> (TestBroker, pki::Pki) {
    let pki = pki::Pki::new();
    let server = pki.server("server", "broker.test");
    let tls = tls_source(&pki, &server, None);
    let broker = TestBroker::start_full(
        BrokerConfig { sys_interval: None, ..BrokerConfig::default() },
        None,
        Arc::new(AllowAll),
        vec![
            ListenerSpec::tcp(),
            ListenerSpec::new(Transport::Tls, Layers::Tls(Arc::clone(&tls))),
            ListenerSpec::new(Transport::Ws, Layers::Ws { path: "/mqtt".into() }),
            ListenerSpec::new(Transport::Wss, Layers::Wss { tls, path: "/mqtt".into() }),
        ],
    )
    .await;
    (broker, pki)
}

fn assert_all_passed(name: &str, out: &std::process::Output, scenarios: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for scenario in scenarios {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {scenario}")),
            "{name} {scenario}:\n{stdout}\n{stderr}"
        );
    }
    assert!(out.status.success(), "{name}:\n{stdout}\n{stderr}");
}

#[tokio::test]
async fn mqtt_js_over_tcp_ws_and_wss() {
    let (broker, pki) = all_transports().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    let [tcp, _tls, ws, wss] = broker.addrs[..] else { panic!("4 listeners") };
    let out = tokio::time::timeout(
        WAIT * 6,
        tokio::process::Command::new("node")
            .current_dir(dir)
            .arg("mqttjs_interop.mjs")
            .arg(format!("mqtt://{tcp}"))
            .arg(format!("ws://{ws}/mqtt"))
            .arg(format!("wss://{wss}/mqtt"))
            .arg(pki.ca_file())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("MQTT.js scenarios finish")
    .expect("node runs (scripts/test installs the mqtt package)");
    let scenarios: Vec<String> = ["v311", "v5"]
        .iter()
        .flat_map(|v| ["tcp", "ws", "wss"].map(|t| format!("{v}-sub-on-{t}")))
        .collect();
    let names: Vec<&str> = scenarios.iter().map(String::as_str).collect();
    assert_all_passed("MQTT.js", &out, &names);
    broker.stop().await;
}

#[tokio::test]
async fn paho_over_websockets() {
    let (broker, _pki) = all_transports().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/paho_interop.py");
    for version in ["311", "5"] {
        let out = tokio::time::timeout(
            WAIT * 6,
            tokio::process::Command::new("python3")
                .arg(script)
                .args([
                    "127.0.0.1",
                    &broker.addrs[2].port().to_string(),
                    version,
                    "websockets",
                    "/mqtt",
                ])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("paho scenarios finish")
        .expect("python3 runs");
        assert_all_passed(
            &format!("paho MQTT {version} over WebSocket"),
            &out,
            &["roundtrip", "retained", "will", "persistent_session", "shared"],
        );
    }
    broker.stop().await;
}
