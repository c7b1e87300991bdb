//! The JWT backend with tokens signed in the test: HS256, RS256 and ES256 (keys generated here),
//! expiry, wrong signatures and algorithms, claims checks and ACL claims.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_service::backend::jwt::{JwtBackend, JwtKey, JwtSettings};
use auth_service::backend::{Action, Authn, Authz, Backend, Client};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tern_acl::{Permission, RuleAction};
use tern_config::Secret;

const SECRET: &str = "a-long-hmac-secret-for-tests";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET.as_bytes()), claims)
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn client(username: &str, password: &str) -> Client {
    Client {
        client_id: "dev-1".into(),
        username: Some(username.into()),
        password: Some(password.as_bytes().to_vec()),
        ..Client::default()
    }
}

fn hmac_backend() -> JwtBackend {
    JwtBackend::new(JwtSettings::new(JwtKey::Hmac(Secret::new(SECRET)))).unwrap()
}

#[tokio::test]
async fn hmac_tokens() {
    let backend = hmac_backend();
    let good = hs256(&json!({"exp": now() + 3600, "username": "u1"}));
    assert_eq!(
        backend.authenticate(&client("u1", &good)).await.unwrap(),
        Authn::Allow { superuser: false }
    );
    // Without exp: accepted by default (EMQX does too).
    let forever = hs256(&json!({"sub": "u1"}));
    assert_eq!(
        backend.authenticate(&client("u1", &forever)).await.unwrap(),
        Authn::Allow { superuser: false }
    );
    // HS384 / HS512 with the same secret.
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token =
            sign(alg, &EncodingKey::from_secret(SECRET.as_bytes()), &json!({"exp": now() + 60}));
        assert_eq!(
            backend.authenticate(&client("u1", &token)).await.unwrap(),
            Authn::Allow { superuser: false }
        );
    }

    let expired = hs256(&json!({"exp": now() - 10}));
    let wrong_key =
        sign(Algorithm::HS256, &EncodingKey::from_secret(b"another"), &json!({"exp": now() + 60}));
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let not_yet = hs256(&json!({"nbf": now() + 3600}));
    for bad in [&expired, &wrong_key, &tampered, &not_yet] {
        let answer = backend.authenticate(&client("u1", bad)).await.unwrap();
        assert!(matches!(answer, Authn::Deny { reason_code: 0x86, .. }), "{answer:?}");
    }

    // Not a JWT: not this backend's client.
    for password in ["public", "a.b", "x.y.z.w", ""] {
        assert_eq!(
            backend.authenticate(&client("u1", password)).await.unwrap(),
            Authn::Ignore,
            "{password}"
        );
    }
    let no_password = Client { password: None, ..client("u1", "") };
    assert_eq!(backend.authenticate(&no_password).await.unwrap(), Authn::Ignore);
}

#[tokio::test]
async fn required_claims() {
    let mut settings = JwtSettings::new(JwtKey::Hmac(Secret::new(SECRET)));
    settings.require_exp = true;
    settings.issuer = Some("tern-tests".into());
    settings.audience = Some("mqtt".into());
    settings.username_claim = Some("username".into());
    settings.clientid_claim = Some("clientid".into());
    settings.leeway = Duration::from_secs(30);
    let backend = JwtBackend::new(settings).unwrap();
    let claims = json!({"exp": now() + 60, "iss": "tern-tests", "aud": ["mqtt", "other"], "username": "u1", "clientid": "dev-1"});
    let good = hs256(&claims);
    assert_eq!(
        backend.authenticate(&client("u1", &good)).await.unwrap(),
        Authn::Allow { superuser: false }
    );
    // Within the leeway.
    let mut just_expired = claims.clone();
    just_expired["exp"] = json!(now() - 5);
    assert_eq!(
        backend.authenticate(&client("u1", &hs256(&just_expired))).await.unwrap(),
        Authn::Allow { superuser: false }
    );

    let variants = [
        ("exp", Value::Null),
        ("iss", json!("someone-else")),
        ("aud", json!("web")),
        ("username", json!("u2")),
        ("clientid", json!("dev-2")),
    ];
    for (claim, value) in variants {
        let mut c = claims.clone();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(claim);
        } else {
            c[claim] = value;
        }
        let answer = backend.authenticate(&client("u1", &hs256(&c))).await.unwrap();
        assert!(matches!(answer, Authn::Deny { reason_code: 0x86, .. }), "{claim}: {answer:?}");
    }
    // The username claim must match the CONNECT username.
    let answer = backend.authenticate(&client("u9", &good)).await.unwrap();
    assert!(matches!(answer, Authn::Deny { .. }), "{answer:?}");
}

#[tokio::test]
async fn rsa_and_ecdsa_public_keys() {
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rsa_pub = dir.path().join("rsa.pub.pem");
    let ec_pub = dir.path().join("ec.pub.pem");
    std::fs::write(&rsa_pub, rsa.public_key_pem()).unwrap();
    std::fs::write(&ec_pub, ec.public_key_pem()).unwrap();
    let rsa_sign = EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap();
    let ec_sign = EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap();
    let claims = json!({"exp": now() + 60, "is_superuser": true});

    let rsa_backend =
        JwtBackend::new(JwtSettings::new(JwtKey::public_key_file(&rsa_pub).unwrap())).unwrap();
    let ec_backend =
        JwtBackend::new(JwtSettings::new(JwtKey::public_key_file(&ec_pub).unwrap())).unwrap();

    for alg in [Algorithm::RS256, Algorithm::RS512, Algorithm::PS256] {
        let token = sign(alg, &rsa_sign, &claims);
        assert_eq!(
            rsa_backend.authenticate(&client("u", &token)).await.unwrap(),
            Authn::Allow { superuser: true },
            "{alg:?}"
        );
        // The wrong key family.
        assert!(matches!(
            ec_backend.authenticate(&client("u", &token)).await.unwrap(),
            Authn::Deny { .. }
        ));
    }
    let es = sign(Algorithm::ES256, &ec_sign, &claims);
    assert_eq!(
        ec_backend.authenticate(&client("u", &es)).await.unwrap(),
        Authn::Allow { superuser: true }
    );
    assert!(matches!(
        rsa_backend.authenticate(&client("u", &es)).await.unwrap(),
        Authn::Deny { .. }
    ));

    // Algorithm confusion: HS256 signed with the RSA public key as the HMAC secret.
    let confused =
        sign(Algorithm::HS256, &EncodingKey::from_secret(rsa.public_key_pem().as_bytes()), &claims);
    assert!(matches!(
        rsa_backend.authenticate(&client("u", &confused)).await.unwrap(),
        Authn::Deny { .. }
    ));
    // An expired RS256 token.
    let expired = sign(Algorithm::RS256, &rsa_sign, &json!({"exp": now() - 100}));
    assert!(matches!(
        rsa_backend.authenticate(&client("u", &expired)).await.unwrap(),
        Authn::Deny { .. }
    ));
    assert!(JwtKey::public_key_file(&dir.path().join("missing.pem")).is_err());
}

#[tokio::test]
async fn superuser_claim() {
    let backend = hmac_backend();
    for (value, superuser) in
        [(json!(true), true), (json!("true"), true), (json!(false), false), (json!(1), false)]
    {
        let token = hs256(&json!({"exp": now() + 60, "is_superuser": value}));
        assert_eq!(
            backend.authenticate(&client("u", &token)).await.unwrap(),
            Authn::Allow { superuser }
        );
    }
    let mut settings = JwtSettings::new(JwtKey::Hmac(Secret::new(SECRET)));
    settings.superuser_claim = None;
    let never = JwtBackend::new(settings).unwrap();
    let token = hs256(&json!({"is_superuser": true}));
    assert_eq!(
        never.authenticate(&client("u", &token)).await.unwrap(),
        Authn::Allow { superuser: false }
    );
}

#[tokio::test]
async fn acl_claims_emqx4_shape() {
    let backend = hmac_backend();
    assert!(backend.authorizes());
    let token = hs256(&json!({
        "exp": now() + 60,
        "acl": {"pub": ["devices/${clientid}/up"], "sub": ["devices/${clientid}/down/#"], "all": ["shared/+"]}
    }));
    let who = client("u", &token);
    let check = |action, topic: &'static str| {
        let backend = &backend;
        let who = &who;
        async move { backend.authorize(who, action, topic).await.unwrap() }
    };
    assert_eq!(check(Action::Publish, "devices/dev-1/up").await, Authz::Allow);
    assert_eq!(check(Action::Subscribe, "devices/dev-1/up").await, Authz::Deny);
    assert_eq!(check(Action::Subscribe, "devices/dev-1/down/x").await, Authz::Allow);
    assert_eq!(check(Action::Subscribe, "devices/dev-1/down/#").await, Authz::Allow);
    assert_eq!(check(Action::Publish, "devices/dev-2/up").await, Authz::Deny);
    assert_eq!(check(Action::Publish, "shared/a").await, Authz::Allow);
    assert_eq!(check(Action::Subscribe, "shared/#").await, Authz::Deny);
    assert_eq!(check(Action::Publish, "other").await, Authz::Deny);

    // The preloadable form: the same rules, placeholders substituted, then deny everything.
    let rules = backend.acl_for(&who).unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(rules.last().unwrap().permit, Permission::Deny);
    assert!(rules.last().unwrap().topics.is_empty());
    let publish = rules.iter().find(|r| r.action == RuleAction::Publish).unwrap();
    assert_eq!(publish.topics[0].filter, "devices/dev-1/up");
    let policy = tern_acl::ClientPolicy { rules, no_match: Permission::Allow };
    assert_eq!(policy.check(Action::Publish, "devices/dev-1/up"), Permission::Allow);
    assert_eq!(policy.check(Action::Publish, "other"), Permission::Deny);
}

#[tokio::test]
async fn acl_claims_emqx5_shape_and_failures() {
    let backend = hmac_backend();
    let token = hs256(&json!({
        "acl": [
            {"permission": "deny", "action": "all", "topic": "secret/#"},
            {"permission": "allow", "action": "subscribe", "topics": ["#"]},
            {"permission": "allow", "action": "publish", "topic": "@exact/+"}
        ]
    }));
    let who = client("u", &token);
    assert_eq!(backend.authorize(&who, Action::Subscribe, "a/b").await.unwrap(), Authz::Allow);
    assert_eq!(backend.authorize(&who, Action::Subscribe, "secret/x").await.unwrap(), Authz::Deny);
    assert_eq!(backend.authorize(&who, Action::Subscribe, "#").await.unwrap(), Authz::Deny);
    assert_eq!(backend.authorize(&who, Action::Publish, "exact/+").await.unwrap(), Authz::Allow);
    assert_eq!(backend.authorize(&who, Action::Publish, "exact/x").await.unwrap(), Authz::Deny);

    // No ACL claim: not this backend's decision; nothing to preload.
    let plain = client("u", &hs256(&json!({"exp": now() + 60})));
    assert_eq!(backend.authorize(&plain, Action::Publish, "x").await.unwrap(), Authz::Ignore);
    assert_eq!(backend.acl_for(&plain), Some(vec![]));
    // Not a JWT at all.
    let other = client("u", "public");
    assert_eq!(backend.authorize(&other, Action::Publish, "x").await.unwrap(), Authz::Ignore);
    assert_eq!(backend.acl_for(&other), Some(vec![]));
    // Expired since CONNECT: everything denied.
    let expired = client("u", &hs256(&json!({"exp": now() - 10, "acl": {"all": ["#"]}})));
    assert_eq!(backend.authorize(&expired, Action::Publish, "x").await.unwrap(), Authz::Deny);
    let rules = backend.acl_for(&expired).unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].permit, Permission::Deny);
    // A malformed ACL claim denies everything.
    let malformed = client("u", &hs256(&json!({"acl": {"pub": ["a/#/b"]}})));
    assert_eq!(backend.authorize(&malformed, Action::Publish, "a/x").await.unwrap(), Authz::Deny);
}

#[tokio::test]
async fn debug_output_has_no_secrets() {
    let backend = hmac_backend();
    let token = hs256(&json!({"exp": now() + 60}));
    let who = client("u", &token);
    let debug = format!("{backend:?} {who:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains(&token), "{debug}");
    let b64 =
        JwtBackend::new(JwtSettings::new(JwtKey::HmacBase64(Secret::new("c2VjcmV0LXNlY3JldA=="))))
            .unwrap();
    assert!(!format!("{b64:?}").contains("c2VjcmV0"), "{b64:?}");
    let token = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"secret-secret"),
        &json!({"exp": now() + 60}),
    );
    assert_eq!(
        b64.authenticate(&client("u", &token)).await.unwrap(),
        Authn::Allow { superuser: false }
    );
}
