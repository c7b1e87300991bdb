//! The Redis backend against a private `redis-server`: users (plain, PHC, salted SHA-256),
//! the superuser flag, per-user ACL hashes, a custom key layout, and Redis going away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use auth_service::backend::redis::{RedisBackend, RedisSettings, SaltPosition};
use auth_service::backend::{Action, Authn, Authz, Backend, BackendError, Client};
use auth_service::passwd::{self, Algorithm, Cost};
use sha2::{Digest, Sha256};
use test_support::RedisServer;

async fn connection(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn hset(conn: &mut redis::aio::MultiplexedConnection, key: &str, fields: &[(&str, &str)]) {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key);
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    let _: i64 = cmd.query_async(conn).await.unwrap();
}

fn client(username: Option<&str>, password: Option<&str>) -> Client {
    Client {
        client_id: "dev-1".into(),
        username: username.map(str::to_owned),
        password: password.map(|p| p.as_bytes().to_vec()),
        ..Client::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn users_in_emqx_layout() {
    let server = RedisServer::start();
    let mut conn = connection(&server).await;
    let argon = passwd::hash_password_with(Algorithm::Argon2id, "argon-pw", Cost::MINIMUM).unwrap();
    let bcrypt = passwd::hash_password_with(Algorithm::Bcrypt, "bcrypt-pw", Cost::MINIMUM).unwrap();
    hset(&mut conn, "mqtt_user:plain", &[("password_hash", "public")]).await;
    hset(&mut conn, "mqtt_user:argon", &[("password_hash", &argon), ("is_superuser", "1")]).await;
    hset(&mut conn, "mqtt_user:bcrypt", &[("password_hash", &bcrypt), ("is_superuser", "false")])
        .await;
    let salted = hex(&Sha256::digest(b"s4ltsalted-pw"));
    hset(
        &mut conn,
        "mqtt_user:salted",
        &[("password_hash", &salted), ("salt", "s4lt"), ("is_superuser", "true")],
    )
    .await;
    hset(&mut conn, "mqtt_user:nohash", &[("is_superuser", "1")]).await;

    let backend = RedisBackend::new(RedisSettings::new(server.url())).unwrap();
    let cases = [
        ("plain", "public", Authn::Allow { superuser: false }),
        ("argon", "argon-pw", Authn::Allow { superuser: true }),
        ("bcrypt", "bcrypt-pw", Authn::Allow { superuser: false }),
        ("salted", "salted-pw", Authn::Allow { superuser: true }),
    ];
    for (user, password, expected) in cases {
        assert_eq!(
            backend.authenticate(&client(Some(user), Some(password))).await.unwrap(),
            expected,
            "{user}"
        );
        let wrong = backend.authenticate(&client(Some(user), Some("wrong"))).await.unwrap();
        assert!(matches!(wrong, Authn::Deny { reason_code: 0x86, .. }), "{user}: {wrong:?}");
        let missing = backend.authenticate(&client(Some(user), None)).await.unwrap();
        assert!(matches!(missing, Authn::Deny { reason_code: 0x86, .. }), "{user}: {missing:?}");
    }
    // Unknown users, users without a password hash, clients without a username: not ours.
    for who in [
        client(Some("nobody"), Some("x")),
        client(Some("nohash"), Some("x")),
        client(None, Some("x")),
    ] {
        assert_eq!(backend.authenticate(&who).await.unwrap(), Authn::Ignore, "{who:?}");
    }
    // Changes apply at once.
    hset(&mut conn, "mqtt_user:plain", &[("password_hash", "changed")]).await;
    assert!(matches!(
        backend.authenticate(&client(Some("plain"), Some("public"))).await.unwrap(),
        Authn::Deny { .. }
    ));
    assert_eq!(
        backend.authenticate(&client(Some("plain"), Some("changed"))).await.unwrap(),
        Authn::Allow { superuser: false }
    );
}

#[tokio::test]
async fn custom_layout_and_salt_suffix() {
    let server = RedisServer::start();
    let mut conn = connection(&server).await;
    let salted = hex(&Sha256::digest(b"pwSALT"));
    hset(&mut conn, "users/u1/dev-1", &[("password_hash", &salted), ("salt", "SALT")]).await;
    hset(&mut conn, "acls/dev-1", &[("t/dev-1", "publish")]).await;
    let settings = RedisSettings {
        user_key: "users/${username}/${clientid}".into(),
        acl_key: Some("acls/${clientid}".into()),
        salt_position: SaltPosition::Suffix,
        ..RedisSettings::new(server.url())
    };
    let backend = RedisBackend::new(settings).unwrap();
    let who = client(Some("u1"), Some("pw"));
    assert_eq!(backend.authenticate(&who).await.unwrap(), Authn::Allow { superuser: false });
    assert_eq!(backend.authorize(&who, Action::Publish, "t/dev-1").await.unwrap(), Authz::Allow);
    // The client-id key works without a username too.
    let anon = client(None, None);
    assert_eq!(backend.authorize(&anon, Action::Publish, "t/dev-1").await.unwrap(), Authz::Allow);
}

#[tokio::test]
async fn acl_hashes() {
    let server = RedisServer::start();
    let mut conn = connection(&server).await;
    hset(
        &mut conn,
        "mqtt_acl:u1",
        &[
            ("pub/${clientid}/#", "publish"),
            ("sub/+", "subscribe"),
            ("both", "all"),
            ("secret/#", r#"{"action": "all", "permission": "deny"}"#),
            ("#", "subscribe"),
        ],
    )
    .await;
    let backend = RedisBackend::new(RedisSettings::new(server.url())).unwrap();
    assert!(backend.authorizes());
    let who = client(Some("u1"), None);
    let cases = [
        (Action::Publish, "pub/dev-1/x", Authz::Allow),
        (Action::Publish, "pub/dev-2/x", Authz::Ignore),
        (Action::Subscribe, "pub/dev-1/x", Authz::Allow),
        (Action::Subscribe, "sub/a", Authz::Allow),
        (Action::Publish, "sub/a", Authz::Ignore),
        (Action::Publish, "both", Authz::Allow),
        (Action::Subscribe, "both", Authz::Allow),
        // The deny comes first, whatever Redis's field order: `#` cannot win over it.
        (Action::Subscribe, "secret/x", Authz::Deny),
        (Action::Subscribe, "#", Authz::Deny),
        (Action::Publish, "secret/x", Authz::Deny),
    ];
    for (action, topic, expected) in cases {
        assert_eq!(
            backend.authorize(&who, action, topic).await.unwrap(),
            expected,
            "{action:?} {topic}"
        );
    }
    // A user without an ACL hash, or without a username: not ours.
    assert_eq!(
        backend.authorize(&client(Some("u2"), None), Action::Publish, "x").await.unwrap(),
        Authz::Ignore
    );
    assert_eq!(
        backend.authorize(&client(None, None), Action::Publish, "x").await.unwrap(),
        Authz::Ignore
    );
    // Rules are read live; nothing is preloaded.
    assert_eq!(backend.acl_for(&who), None);
    hset(&mut conn, "mqtt_acl:u2", &[("x", "publish")]).await;
    assert_eq!(
        backend.authorize(&client(Some("u2"), None), Action::Publish, "x").await.unwrap(),
        Authz::Allow
    );
}

#[tokio::test]
async fn redis_down_is_unavailable_then_recovers() {
    let mut server = RedisServer::start();
    let mut conn = connection(&server).await;
    hset(&mut conn, "mqtt_user:u1", &[("password_hash", "pw")]).await;
    let backend = RedisBackend::new(RedisSettings {
        timeout: Duration::from_secs(1),
        ..RedisSettings::new(server.url())
    })
    .unwrap();
    let who = client(Some("u1"), Some("pw"));
    assert_eq!(backend.authenticate(&who).await.unwrap(), Authn::Allow { superuser: false });

    server.kill();
    let started = Instant::now();
    let err = backend.authenticate(&who).await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
    let err = backend.authorize(&who, Action::Publish, "t").await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    server.restart().unwrap();
    let mut conn = connection(&server).await;
    hset(&mut conn, "mqtt_user:u1", &[("password_hash", "pw")]).await;
    let back = test_support::eventually(Duration::from_secs(10), || async {
        backend.authenticate(&who).await.ok().filter(|a| *a == Authn::Allow { superuser: false })
    })
    .await;
    assert!(back.is_some(), "the backend reconnects by itself");
}

#[tokio::test]
async fn down_at_start_and_debug() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis+unix://{}?protocol=resp3", dir.path().join("none.sock").display());
    let backend = RedisBackend::new(RedisSettings {
        timeout: Duration::from_millis(500),
        ..RedisSettings::new(url)
    })
    .unwrap();
    let err = backend.authenticate(&client(Some("u"), Some("p"))).await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");

    let backend =
        RedisBackend::new(RedisSettings::new("redis://admin:hunter2@127.0.0.1:1/0")).unwrap();
    let debug = format!("{backend:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(RedisBackend::new(RedisSettings::new("nonsense://")).is_err());
}
