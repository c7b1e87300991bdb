//! The JWT and Redis backends configured from `auth.jwt {}` and `auth.redis {}`, end to end
//! through a broker: a signed token as the password lets a client in with the ACL its claims
//! carry; a user stored in Redis (hashed password, ACL hash) connects and is held to that ACL.

mod common;

use common::{AuthService, RawClient, TestBroker, connect, grpc_config};
use mqtt_codec::{ConnectReasonCode, ProtocolVersion, QoS, SubAckReasonCode};
use redis::AsyncCommands as _;

const V5: ProtocolVersion = ProtocolVersion::V5;

async fn suback(c: &mut RawClient, filter: &str) -> SubAckReasonCode {
    c.suback(1, filter, QoS::AtMostOnce).await
}

fn config(text: &str) -> tern_config::Config {
    tern_config::parse_str(text, "test.conf", std::path::Path::new("."), &tern_config::Env::new())
        .expect("valid configuration")
        .config
}

#[tokio::test]
async fn jwt_tokens_from_auth_jwt() {
    let config = config(
        "auth { allow_anonymous = false\n jwt { secret = \"s3cret\", username_claim = \"sub\" } }\n",
    );
    let auth = AuthService::start(&config).await;
    let broker = TestBroker::start(grpc_config(auth.addr.to_string())).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    let claims = serde_json::json!({
        "sub": "device-9",
        "exp": exp,
        "acl": { "sub": ["devices/device-9/#"], "pub": ["devices/device-9/up"] }
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
    )
    .expect("token");
    let (mut c, ack) =
        RawClient::connect(broker.addr, connect(V5, "d9", Some(("device-9", &token)))).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    assert_eq!(suback(&mut c, "devices/device-9/cmd").await, SubAckReasonCode::GrantedQoS0);
    assert_eq!(suback(&mut c, "devices/other/cmd").await, SubAckReasonCode::NotAuthorized);

    let (_, ack) =
        RawClient::connect(broker.addr, connect(V5, "d9b", Some(("device-9", "not-a-token"))))
            .await;
    assert_eq!(ack.reason_code, ConnectReasonCode::BadUserNameOrPassword);
    auth.stop().await;
}

#[tokio::test]
async fn users_from_auth_redis() {
    let redis_server = test_support::RedisServer::start();
    let client = redis::Client::open(redis_server.url()).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let hash = auth_service::passwd::hash_password_with(
        auth_service::passwd::Algorithm::Bcrypt,
        "pw",
        auth_service::passwd::Cost::MINIMUM,
    )
    .expect("hash");
    let () = conn.hset("mqtt_user:sensor", "password_hash", hash).await.expect("HSET");
    let () = conn.hset("mqtt_acl:sensor", "sensors/sensor/#", "all").await.expect("HSET");

    let config = config(&format!(
        "auth {{ allow_anonymous = false\n no_match = deny\n redis {{ url = \"{}\" }} }}\n",
        redis_server.url()
    ));
    let auth = AuthService::start(&config).await;
    let broker = TestBroker::start(grpc_config(auth.addr.to_string())).await;
    let (mut c, ack) =
        RawClient::connect(broker.addr, connect(V5, "s", Some(("sensor", "pw")))).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    assert_eq!(suback(&mut c, "sensors/sensor/temp").await, SubAckReasonCode::GrantedQoS0);
    assert_eq!(suback(&mut c, "sensors/other/temp").await, SubAckReasonCode::NotAuthorized);
    let (_, ack) =
        RawClient::connect(broker.addr, connect(V5, "s2", Some(("sensor", "bad")))).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::BadUserNameOrPassword);
    auth.stop().await;
}
