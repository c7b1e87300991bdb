//! Rules held in Redis apply at once to connected clients, although brokers cache decisions:
//! auth-service follows Redis keyspace notifications (switching them on in a Redis that has them
//! off, as Debian's does) and revokes cached decisions on every change; after Redis restarts it
//! revokes everything once and keeps following.

mod common;

use std::time::Duration;

use common::{AuthService, RawClient, TestBroker, connect, grpc_config, publish_until};
use mqtt_codec::{ConnectReasonCode, ProtocolVersion};
use test_support::RedisServer;

const V5: ProtocolVersion = ProtocolVersion::V5;
/// Long enough that only a revocation can explain a changed answer within the test.
const CACHE_TTL: &str = "1h";

async fn redis_cmd(server: &RedisServer, args: &[&str]) -> redis::Value {
    let mut conn = redis::Client::open(server.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut conn).await.expect("redis command")
}

/// Redis's `notify-keyspace-events` setting.
async fn notify_flags(server: &RedisServer) -> String {
    let value = redis_cmd(server, &["CONFIG", "GET", "notify-keyspace-events"]).await;
    let mut map: std::collections::HashMap<String, String> =
        redis::FromRedisValue::from_redis_value(value).expect("CONFIG GET answer");
    map.remove("notify-keyspace-events").expect("the setting is listed")
}

/// Waits until auth-service lets brokers cache its answers again (it follows Redis), and returns
/// whether it did within 10 s: only then does a changed answer prove a revocation reached the
/// broker, rather than the broker not caching at all.
async fn caching_allowed(auth: &AuthService) -> bool {
    use proto::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
    let stub = AuthServiceClient::connect(format!("http://{}", auth.addr)).await.expect("connect");
    test_support::eventually(Duration::from_secs(10), || {
        let mut stub = stub.clone();
        async move {
            let answer = stub
                .authorize(pb::AuthorizeRequest {
                    client: Some(proto::types::v1::ClientInfo {
                        client_id: "probe".into(),
                        username: Some("dev".into()),
                        ..Default::default()
                    }),
                    action: pb::Action::Publish.into(),
                    topics: vec![pb::TopicRequest { topic: "open/1".into(), ..Default::default() }],
                })
                .await
                .ok()?
                .into_inner();
            (answer.cache_ttl_ms == 3_600_000).then_some(())
        }
    })
    .await
    .is_some()
}

fn config(redis_url: &str, dir: &std::path::Path) -> tern_config::Config {
    let text = format!(
        r#"auth {{
  allow_anonymous = false
  no_match = deny
  cache {{ max_size = 32, ttl = {CACHE_TTL} }}
  redis {{ url = "{redis_url}" }}
}}"#
    );
    tern_config::parse_str(&text, "redis-live.conf", dir, &tern_config::Env::new())
        .expect("config loads")
        .config
}

#[tokio::test]
async fn redis_acl_changes_reach_connected_clients() {
    let mut redis = RedisServer::start();
    // Debian's redis-server starts with notifications off; the service turns them on.
    assert_eq!(notify_flags(&redis).await, "", "the test starts without keyspace notifications");
    redis_cmd(&redis, &["HSET", "mqtt_user:dev", "password_hash", "pw"]).await;
    redis_cmd(&redis, &["HSET", "mqtt_acl:dev", "open/#", "publish"]).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let auth = AuthService::start(&config(&redis.url(), dir.path())).await;
    let mut grpc = grpc_config(auth.addr.to_string());
    grpc.cache_ttl = Duration::from_secs(3600);
    let broker = TestBroker::start(grpc).await;

    let (client, ack) =
        RawClient::connect(broker.addr, connect(V5, "dev-1", Some(("dev", "pw")))).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    let client = tokio::sync::Mutex::new(client);
    let ids = std::sync::atomic::AtomicU16::new(1);

    // Once the service follows Redis, its answers may be cached for the full hour.
    assert!(caching_allowed(&auth).await, "answers become cacheable");
    assert!(publish_until(&client, &ids, "open/1", true).await);
    assert!(publish_until(&client, &ids, "closed/1", false).await);
    let flags = notify_flags(&redis).await;
    assert!(flags.contains('K') && flags.contains('A'), "notifications switched on: {flags:?}");

    // Grant: the cached deny is revoked and the next publish passes.
    redis_cmd(&redis, &["HSET", "mqtt_acl:dev", "closed/#", "publish"]).await;
    assert!(
        publish_until(&client, &ids, "closed/1", true).await,
        "a rule added in Redis applies to the connected client"
    );
    // Revoke: the cached allow goes as well.
    redis_cmd(&redis, &["HDEL", "mqtt_acl:dev", "closed/#"]).await;
    assert!(
        publish_until(&client, &ids, "closed/1", false).await,
        "a rule removed from Redis stops applying"
    );

    // Redis restarts (notifications off again, pub/sub connection gone): a change made after
    // the restart still reaches the broker.
    redis.restart().expect("redis restarts");
    redis_cmd(&redis, &["HSET", "mqtt_user:dev", "password_hash", "pw"]).await;
    redis_cmd(&redis, &["HSET", "mqtt_acl:dev", "open/#", "publish"]).await;
    assert!(caching_allowed(&auth).await, "answers become cacheable again after the restart");
    assert!(publish_until(&client, &ids, "open/1", true).await);
    assert!(publish_until(&client, &ids, "later/1", false).await);
    redis_cmd(&redis, &["HSET", "mqtt_acl:dev", "later/#", "publish"]).await;
    assert!(
        publish_until(&client, &ids, "later/1", true).await,
        "a rule added after Redis restarted applies"
    );
    auth.stop().await;
}
