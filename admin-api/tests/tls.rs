//! BrokerAdmin over mutual TLS: admin-api reaches a node that requires TLS and a client
//! certificate; a caller without TLS, or without a certificate, is refused.

mod common;

#[path = "../../broker-core/tests/common/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::time::Duration;

use broker_core::admin_grpc::AdminSecurity;
use common::{Api, AuthService, Node, TOKEN};
use proto::{
    broker::v1::{StatsRequest, broker_admin_client::BrokerAdminClient},
    grpc::{BearerToken, TlsFiles},
};
use test_support::RedisServer;
use tonic::transport::Endpoint;

#[tokio::test]
async fn admin_api_calls_nodes_over_mutual_tls_and_plain_callers_are_refused() {
    test_support::install_crypto_provider();
    let pki = pki::Pki::new();
    let server = pki.server("node", "node-tls");
    let client = pki.client("admin", "admin-api");
    let server_tls = TlsFiles {
        certfile: server.cert.clone(),
        keyfile: server.key.clone(),
        cacertfile: Some(pki.ca_file()),
        verify_peer: true,
        server_name: None,
    };
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let auth = AuthService::start("", dir.path(), &redis).await;
    let node = Node::start_with(
        "node-tls",
        auth.addr,
        &redis,
        AdminSecurity { token: Some(TOKEN.into()), tls: Some(server_tls) },
    )
    .await;

    let client_tls = TlsFiles {
        certfile: client.cert.clone(),
        keyfile: client.key.clone(),
        cacertfile: Some(pki.ca_file()),
        verify_peer: true,
        server_name: None,
    };
    let basic = admin_api::AuthMode::Basic {
        username: "admin".into(),
        password: tern_config::Secret::new("public"),
    };
    let api = Api::start_with(&redis, basic, dir.path(), Some(client_tls.clone())).await;
    let body = api
        .wait_get("/nodes", |b| b["data"][0]["node_id"] == "node-tls")
        .await
        .expect("admin-api reaches the node over mutual TLS");
    assert_eq!(body["code"], 0);

    // Plain gRPC to a TLS server fails.
    let plain = Endpoint::from_shared(format!("http://{}", node.admin))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect_lazy();
    let mut request = tonic::Request::new(StatsRequest {});
    BearerToken::new(Some(TOKEN)).attach(&mut request);
    assert!(BrokerAdminClient::new(plain).stats(request).await.is_err(), "plain text is refused");

    // TLS without a client certificate fails too.
    let no_cert = TlsFiles { verify_peer: false, ..client_tls };
    let endpoint = Endpoint::from_shared(format!("https://{}", node.admin))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .tls_config(no_cert.client("127.0.0.1").expect("tls"))
        .expect("tls config");
    let mut request = tonic::Request::new(StatsRequest {});
    BearerToken::new(Some(TOKEN)).attach(&mut request);
    assert!(
        BrokerAdminClient::new(endpoint.connect_lazy()).stats(request).await.is_err(),
        "a client without a certificate is refused"
    );
}

async fn broker_with(
    auth: std::net::SocketAddr,
    token: Option<&str>,
    tls: Option<TlsFiles>,
) -> (std::net::SocketAddr, tokio_util::sync::DropGuard) {
    use broker_core::auth_grpc::GrpcAuthConfig;
    let grpc = GrpcAuthConfig {
        token: token.map(str::to_owned),
        tls,
        ..common::grpc_auth(format!("localhost:{}", auth.port()), "n")
    };
    let (_, addr, shutdown) = common::mqtt_broker("n", grpc).await;
    (addr, shutdown.drop_guard())
}

async fn connack(broker: std::net::SocketAddr) -> mqtt_codec::ConnectReasonCode {
    let connect = test_support::mqtt::raw::connect_packet(mqtt_codec::ProtocolVersion::V5, "c");
    test_support::mqtt::raw::RawClient::connect(broker, connect).await.1.reason_code
}

#[tokio::test]
async fn brokers_reach_auth_service_only_with_its_token_over_tls() {
    test_support::install_crypto_provider();
    let pki = pki::Pki::new();
    let server = pki.server("auth", "auth-service");
    let client = pki.client("broker", "broker");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.conf"), "auth { allow_anonymous = true }").expect("write");
    let config =
        tern_config::load_in(&dir.path().join("a.conf"), dir.path(), &tern_config::Env::new())
            .expect("config")
            .config;
    let built = auth_service::setup::build(&config).expect("chain");
    let (listener, auth) = test_support::bind_tokio().await;
    let security = auth_service::server::Security {
        token: Some("auth-token".into()),
        tls: Some(TlsFiles {
            certfile: server.cert.clone(),
            keyfile: server.key.clone(),
            cacertfile: Some(pki.ca_file()),
            verify_peer: true,
            server_name: None,
        }),
    };
    tokio::spawn(auth_service::server::serve_secured(
        built.chain,
        auth_service::Revocations::new(),
        listener,
        security,
        std::future::pending(),
    ));
    let tls = TlsFiles {
        certfile: client.cert.clone(),
        keyfile: client.key.clone(),
        cacertfile: Some(pki.ca_file()),
        verify_peer: true,
        server_name: None,
    };
    let (good, _a) = broker_with(auth, Some("auth-token"), Some(tls.clone())).await;
    assert_eq!(connack(good).await, mqtt_codec::ConnectReasonCode::Success);
    let (wrong_token, _b) = broker_with(auth, Some("guess"), Some(tls.clone())).await;
    assert_ne!(connack(wrong_token).await, mqtt_codec::ConnectReasonCode::Success);
    let (no_tls, _c) = broker_with(auth, Some("auth-token"), None).await;
    assert_ne!(connack(no_tls).await, mqtt_codec::ConnectReasonCode::Success);
}
