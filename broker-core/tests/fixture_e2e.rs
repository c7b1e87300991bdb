//! The seed's `nanomq-file-auth.conf`, unchanged apart from host addresses: the `broker-core`
//! binary starts its TCP, TLS and WebSocket listeners (certificates generated where the file
//! points), authenticates through auth-service with the file's password and ACL files, and
//! clients on the three transports exchange messages.

mod common;

use std::{collections::HashMap, net::SocketAddr, process::Stdio};

use common::{WAIT, packets, pki, raw::RawClient};
use mqtt_codec::{ConnectReasonCode, Packet, ProtocolVersion, QoS};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::Command,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nanomq")
}

fn credentials(id: &str, user: &str) -> mqtt_codec::Connect {
    let mut c = common::raw::connect_packet(ProtocolVersion::V311, id);
    c.username = Some(user.into());
    c.password = Some(bytes::Bytes::from_static(b"public"));
    c
}

async fn connected(stream: common::raw::BoxedStream, id: &str, user: &str) -> RawClient {
    let (c, ack) = RawClient::handshake(stream, credentials(id, user)).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success, "{id}");
    c
}

#[tokio::test]
async fn the_seed_file_auth_configuration_runs_with_three_transports() {
    test_support::install_crypto_provider();
    // The working directory the fixture's relative paths expect.
    let pki = pki::Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("certs")).expect("mkdir");
    for file in ["nanomq_pwd.conf", "nanomq_acl.conf"] {
        std::fs::copy(fixtures().join(file), etc.join(file)).expect("copy");
    }
    let server = pki.server("server", "broker.test");
    std::fs::copy(&server.cert, etc.join("certs/cert.pem")).expect("cert");
    std::fs::copy(&server.key, etc.join("certs/key.pem")).expect("key");
    std::fs::copy(pki.ca_file(), etc.join("certs/cacert.pem")).expect("ca");
    let conf = fixtures().join("nanomq-file-auth.conf");

    // auth-service from the same file (in-process here; its own binary is tested in its crate).
    let config =
        tern_config::load_in(&conf, dir.path(), &tern_config::Env::new()).expect("loads").config;
    let built = auth_service::setup::build(&config).expect("auth chain");
    let auth_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let auth_addr = auth_listener.local_addr().expect("addr");
    let stop_auth = CancellationToken::new();
    let stop = stop_auth.clone();
    tokio::spawn(auth_service::serve(
        built.chain,
        auth_service::Revocations::new(),
        auth_listener,
        async move { stop.cancelled().await },
    ));

    // The broker binary, from the unchanged file; only addresses come from the environment.
    let mut broker = Command::new(env!("CARGO_BIN_EXE_broker-core"))
        .arg("--conf")
        .arg(&conf)
        .current_dir(dir.path())
        .env("TERN_AUTH_SERVICE__ADDRESS", auth_addr.to_string())
        .env("TERN_LISTENERS__TCP__BIND", "127.0.0.1:0")
        .env("TERN_LISTENERS__SSL__BIND", "127.0.0.1:0")
        .env("TERN_LISTENERS__WS__BIND", "127.0.0.1:0/mqtt")
        .env("TERN_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("broker-core starts");
    let mut lines = BufReader::new(broker.stderr.take().expect("stderr")).lines();
    let listeners: HashMap<String, SocketAddr> = tokio::time::timeout(WAIT, async {
        let mut found = HashMap::new();
        while found.len() < 3 {
            let line =
                lines.next_line().await.expect("read").expect("the broker logs its listeners");
            let (Some(name), Some(addr)) =
                (line.split("listener=").nth(1), line.split("addr=").nth(1))
            else {
                continue;
            };
            let name = name.split_whitespace().next().expect("name").to_owned();
            let addr =
                addr.split_whitespace().next().expect("addr").parse().expect("socket address");
            found.insert(name, addr);
        }
        found
    })
    .await
    .expect("three listeners in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let tcp = listeners["tcp:default"];
    let ssl = listeners["ssl:default"];
    let ws = listeners["ws:default"];

    let mut admin =
        connected(Box::new(TcpStream::connect(tcp).await.expect("tcp")), "admin-tcp", "admin")
            .await;
    admin.send(&packets::subscribe(1, "#", QoS::AtLeastOnce)).await;
    assert!(matches!(admin.recv().await, Some(Packet::SubAck(_))));

    let tls = {
        let tcp = TcpStream::connect(ssl).await.expect("tcp");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        tokio_rustls::TlsConnector::from(pki::client_config(&pki, None))
            .connect(name, tcp)
            .await
            .expect("TLS")
    };
    let mut client_tls = connected(Box::new(tls), "client-tls", "client").await;

    let ws_stream = {
        let tcp = TcpStream::connect(ws).await.expect("tcp");
        let mut request = format!("ws://{ws}/mqtt").into_client_request().expect("request");
        request.headers_mut().insert("sec-websocket-protocol", "mqtt".parse().expect("header"));
        let (socket, _) = tokio_tungstenite::client_async(request, tcp).await.expect("WebSocket");
        broker_core::transport::ws::WsStream::new(socket)
    };
    let mut admin_ws = connected(Box::new(ws_stream), "admin-ws", "admin").await;

    // TLS client (ACL: only client/only-one) -> TCP admin on "#"; WS admin -> TLS client.
    client_tls.send(&packets::subscribe(1, "client/only-one", QoS::AtLeastOnce)).await;
    assert!(matches!(client_tls.recv().await, Some(Packet::SubAck(_))));
    client_tls
        .send(&Packet::Publish(packets::publish(
            "client/only-one",
            b"from tls",
            QoS::AtLeastOnce,
            Some(1),
        )))
        .await;
    let got = admin.next_publish().await;
    assert_eq!((&*got.topic, &got.payload[..]), ("client/only-one", &b"from tls"[..]));
    assert_eq!(&client_tls.next_publish().await.payload[..], b"from tls");
    admin_ws
        .send(&Packet::Publish(packets::publish(
            "client/only-one",
            b"from ws",
            QoS::AtMostOnce,
            None,
        )))
        .await;
    assert_eq!(&client_tls.next_publish().await.payload[..], b"from ws");
    assert_eq!(&admin.next_publish().await.payload[..], b"from ws");

    broker.start_kill().expect("kill");
    let _ = broker.wait().await;
    stop_auth.cancel();
}
