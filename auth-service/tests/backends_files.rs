//! The password-file and ACL-file backends with the seed's files: `nanomq_pwd.conf` through
//! `tern_config::parse_password_file`, hashed entries of every algorithm, reload, and
//! `nanomq_acl.conf` through `tern_config::parse_acl_file` with the seed's matrix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use auth_service::backend::acl_file::AclFile;
use auth_service::backend::password_file::PasswordFile;
use auth_service::backend::{Action, Authn, Authz, Backend, Client};
use auth_service::passwd::{self, Algorithm, Cost};
use tern_acl::{ClientPolicy, Permission, Rule};
use tern_config::Secret;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nanomq")
}

fn client(client_id: &str, username: Option<&str>, password: Option<&str>) -> Client {
    Client {
        client_id: client_id.into(),
        username: username.map(str::to_owned),
        password: password.map(|p| p.as_bytes().to_vec()),
        ip: Some("127.0.0.1".parse().unwrap()),
        ..Client::default()
    }
}

#[tokio::test]
async fn seed_password_file() {
    let path = fixtures().join("nanomq_pwd.conf");
    let entries = tern_config::parse_password_file(&path).unwrap();
    let backend = PasswordFile::new(entries, Some(path.clone()));
    assert_eq!(backend.len(), 2);
    assert_eq!(backend.file(), Some(path.as_path()));
    for user in ["admin", "client"] {
        let ok = backend.authenticate(&client("c", Some(user), Some("public"))).await.unwrap();
        assert_eq!(ok, Authn::Allow { superuser: false }, "{user}");
        let bad = backend.authenticate(&client("c", Some(user), Some("Public"))).await.unwrap();
        assert!(matches!(bad, Authn::Deny { reason_code: 0x86, .. }), "{user}: {bad:?}");
    }
    assert_eq!(
        backend.authenticate(&client("c", Some("other"), Some("public"))).await.unwrap(),
        Authn::Ignore
    );
    assert_eq!(backend.authenticate(&client("c", None, None)).await.unwrap(), Authn::Ignore);
    assert!(!backend.authorizes());
    assert_eq!(backend.acl_for(&client("c", Some("admin"), None)), None);
}

#[tokio::test]
async fn hashed_entries_and_reload_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pwd.conf");
    let mut lines = vec!["\"plain\": \"plain-pw\"".to_owned()];
    let recommended = passwd::hash_password(Algorithm::Argon2id, "strong-pw").unwrap();
    lines.push(format!("\"recommended\": \"{recommended}\""));
    for alg in [Algorithm::Argon2id, Algorithm::Bcrypt, Algorithm::Pbkdf2Sha256] {
        let hash = passwd::hash_password_with(alg, &format!("{alg}-pw"), Cost::MINIMUM).unwrap();
        lines.push(format!("\"{alg}\": \"{hash}\""));
    }
    std::fs::write(&path, lines.join("\n")).unwrap();
    let backend =
        PasswordFile::new(tern_config::parse_password_file(&path).unwrap(), Some(path.clone()));

    let allow = Authn::Allow { superuser: false };
    assert_eq!(
        backend.authenticate(&client("c", Some("plain"), Some("plain-pw"))).await.unwrap(),
        allow
    );
    assert_eq!(
        backend.authenticate(&client("c", Some("recommended"), Some("strong-pw"))).await.unwrap(),
        allow
    );
    for alg in ["argon2id", "bcrypt", "pbkdf2-sha256"] {
        let ok = backend
            .authenticate(&client("c", Some(alg), Some(&format!("{alg}-pw"))))
            .await
            .unwrap();
        assert_eq!(ok, allow, "{alg}");
        let bad = backend.authenticate(&client("c", Some(alg), Some("nope"))).await.unwrap();
        assert!(matches!(bad, Authn::Deny { reason_code: 0x86, .. }), "{alg}");
        // The hash itself is not a password.
        let stored = lines.iter().find(|l| l.starts_with(&format!("\"{alg}\""))).unwrap();
        let hash = stored.rsplit('"').nth(1).unwrap();
        let replay = backend.authenticate(&client("c", Some(alg), Some(hash))).await.unwrap();
        assert!(matches!(replay, Authn::Deny { .. }), "{alg}");
    }

    // The chain reloads on change: the whole table is swapped.
    std::fs::write(&path, "\"newcomer\": \"pw\"\n").unwrap();
    backend.reload(tern_config::parse_password_file(&path).unwrap());
    assert_eq!(
        backend.authenticate(&client("c", Some("plain"), Some("plain-pw"))).await.unwrap(),
        Authn::Ignore
    );
    assert_eq!(
        backend.authenticate(&client("c", Some("newcomer"), Some("pw"))).await.unwrap(),
        allow
    );
}

#[tokio::test]
async fn seed_acl_file_matrix() {
    let parsed = tern_config::parse_acl_file(&fixtures().join("nanomq_acl.conf")).unwrap();
    let backend = AclFile::new(Rule::from_config_all(&parsed).unwrap());
    assert!(backend.authorizes());
    let admin = client("admin-1", Some("admin"), Some("public"));
    let user = client("client-1", Some("client"), Some("public"));
    let other = client("other-1", Some("other"), None);
    for action in [Action::Publish, Action::Subscribe] {
        for topic in ["client/only-one", "x/y"] {
            assert_eq!(
                backend.authorize(&admin, action, topic).await.unwrap(),
                Authz::Allow,
                "{topic}"
            );
        }
        assert_eq!(
            backend.authorize(&user, action, "client/only-one").await.unwrap(),
            Authz::Allow
        );
        // `#` does not reach `$SYS` any more: the catch-all deny decides.
        assert_eq!(backend.authorize(&admin, action, "$SYS/brokers").await.unwrap(), Authz::Deny);
        assert_eq!(backend.authorize(&user, action, "client/other").await.unwrap(), Authz::Deny);
        assert_eq!(
            backend.authorize(&other, action, "client/only-one").await.unwrap(),
            Authz::Deny
        );
    }
    // The same decisions from the preloaded policy a broker gets.
    for (who, topic, expected) in [
        (&admin, "anything", Permission::Allow),
        (&user, "client/only-one", Permission::Allow),
        (&user, "client/x", Permission::Deny),
        (&other, "client/only-one", Permission::Deny),
    ] {
        let policy =
            ClientPolicy { rules: backend.acl_for(who).unwrap(), no_match: Permission::Allow };
        assert_eq!(policy.check(Action::Publish, topic), expected, "{who:?} {topic}");
    }
}

#[test]
fn debug_output_has_no_passwords() {
    let backend = PasswordFile::new(vec![("admin".into(), Secret::new("hunter2"))], None);
    let debug = format!("{backend:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let acl = AclFile::new(vec![]);
    assert_eq!(format!("{acl:?}"), "AclFile { rules: 0 }");
}
