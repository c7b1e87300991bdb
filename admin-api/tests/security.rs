//! Security: JWT authentication as NanoMQ does it (RS256, verified with the configured public
//! key, `iss` = the key file's name); BrokerAdmin refuses calls without its token; a node that
//! refuses admin-api is reported as an error, not hidden.

mod common;

use std::time::Duration;

use common::Api;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proto::broker::v1::{StatsRequest, broker_admin_client::BrokerAdminClient};
use serde_json::json;
use test_support::RedisServer;

fn rsa_key() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key")
}

fn token(key: &rcgen::KeyPair, iss: &str, exp_offset: i64) -> String {
    let now = i64::try_from(tern_config_store::now_ms() / 1000).expect("time");
    let claims = json!({"iss": iss, "sub": "operator", "exp": now + exp_offset, "iat": now});
    let encoding = EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).expect("encoding key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &encoding).expect("token")
}

#[tokio::test]
async fn tokens_signed_with_the_key_and_the_right_iss_pass_and_others_get_nanomq_codes() {
    test_support::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rsa_key();
    let key_file = dir.path().join("jwtRS256.key.pub");
    std::fs::write(&key_file, key.public_key_pem()).expect("write key");
    let redis = RedisServer::start();
    let mode = admin_api::AuthMode::jwt_from_file(&key_file).expect("key loads");
    let mut api = Api::start(&redis, mode, dir.path()).await;

    let mut status_with = async |authorization: Option<String>| {
        api.authorization = authorization;
        api.get("/brokers").await
    };
    let (status, body) =
        status_with(Some(format!("Bearer {}", token(&key, "jwtRS256.key.pub", 3600)))).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");

    let (status, body) =
        status_with(Some(format!("Bearer {}", token(&key, "other.pub", 3600)))).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(103)), "wrong iss: {body}");

    let stranger = rsa_key();
    let (status, body) =
        status_with(Some(format!("Bearer {}", token(&stranger, "jwtRS256.key.pub", 3600)))).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(103)), "wrong key: {body}");

    let (status, body) =
        status_with(Some(format!("Bearer {}", token(&key, "jwtRS256.key.pub", -3600)))).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(116)), "expired: {body}");

    let (status, body) = status_with(Some("Bearer not.a.jwt".into())).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(103)), "{body}");
    let (status, body) = status_with(None).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(104)), "{body}");
}

#[tokio::test]
async fn broker_admin_refuses_calls_without_its_token() {
    test_support::install_crypto_provider();
    let redis = RedisServer::start();
    let auth =
        common::AuthService::start("", tempfile::tempdir().expect("dir").path(), &redis).await;
    let node = common::Node::start("node-t", auth.addr, &redis).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.admin))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect");
    let mut anonymous = BrokerAdminClient::new(channel.clone());
    let refused = anonymous.stats(StatsRequest {}).await.expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(StatsRequest {});
    proto::grpc::BearerToken::new(Some("guess")).attach(&mut wrong);
    assert_eq!(
        anonymous.stats(wrong).await.expect_err("wrong token").code(),
        tonic::Code::Unauthenticated
    );
    let mut right = tonic::Request::new(StatsRequest {});
    proto::grpc::BearerToken::new(Some(common::TOKEN)).attach(&mut right);
    let stats = anonymous.stats(right).await.expect("with the token").into_inner();
    assert_eq!(stats.node_id, "node-t");
    // Health stays open for probes.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tern.broker.v1.BrokerAdmin".into(),
        })
        .await
        .expect("health");
    assert_eq!(
        serving.into_inner().status,
        i32::from(tonic_health::pb::health_check_response::ServingStatus::Serving)
    );
}

#[tokio::test]
async fn nodes_refusing_admin_api_are_reported_not_hidden() {
    test_support::install_crypto_provider();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let auth = common::AuthService::start("", dir.path(), &redis).await;
    let security =
        broker_core::admin_grpc::AdminSecurity { token: Some("another-token".into()), tls: None };
    let _node = common::Node::start_with("node-x", auth.addr, &redis, security).await;
    let basic = admin_api::AuthMode::Basic {
        username: "admin".into(),
        password: tern_config::Secret::new("public"),
    };
    let api = Api::start(&redis, basic, dir.path()).await;
    // The node is registered, but admin-api's token is not the node's.
    let failed = test_support::eventually(common::WAIT, || async {
        let (status, body) = api.get("/clients").await;
        (status == 502).then_some(body)
    })
    .await
    .expect("a node that refuses the call is an error, not an empty list");
    assert_eq!(failed["code"], 101);
    let (status, body) = api.delete("/clients/someone").await;
    assert_eq!((status, body["code"].as_i64()), (502, Some(101)), "{body}");
}
