//! Hot reload: an ACL rule added to the ACL file makes a previously denied subscription pass for
//! a client that is already connected (the broker drops its cached decisions on the revocation),
//! and a password changed in the password file applies to the next CONNECT.

mod common;

use std::time::Duration;

use common::{AuthService, RawClient, TestBroker, connect, grpc_config, workdir};
use mqtt_codec::{ConnectReasonCode, ProtocolVersion, QoS, SubAckReasonCode};

const V5: ProtocolVersion = ProtocolVersion::V5;

async fn suback(c: &mut RawClient, id: u16, filter: &str) -> SubAckReasonCode {
    c.suback(id, filter, QoS::AtMostOnce).await
}

/// Rewrites a file so that its modification time certainly changes.
fn rewrite(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test]
async fn acl_and_password_file_changes_apply_without_restart() {
    let dir = workdir();
    let config = common::fixture_config("nanomq-file-auth.conf", dir.path());
    let auth = AuthService::start(&config).await;
    let broker = TestBroker::start(grpc_config(auth.addr.to_string())).await;

    let (mut client, _) =
        RawClient::connect(broker.addr, connect(V5, "c", Some(("client", "public")))).await;
    assert_eq!(suback(&mut client, 1, "news").await, SubAckReasonCode::NotAuthorized);

    let acl = dir.path().join("etc/nanomq_acl.conf");
    rewrite(
        &acl,
        r##"rules = [
  {"permit": "allow", "username": "admin", "action": "pubsub", "topics": ["#"]}
  {"permit": "allow", "username": "client", "action": "pubsub", "topics": ["client/only-one", "news"]}
  {"permit": "deny"}
]
"##,
    );
    let client = tokio::sync::Mutex::new(client);
    let granted = test_support::eventually(Duration::from_secs(10), || async {
        let mut client = client.lock().await;
        (suback(&mut client, 2, "news").await == SubAckReasonCode::GrantedQoS0).then_some(())
    })
    .await;
    assert!(granted.is_some(), "the new rule applies to the connected client");

    let passwords = dir.path().join("etc/nanomq_pwd.conf");
    rewrite(&passwords, "\"admin\": \"changed\"\n\"client\": \"public\"\n");
    let switched = test_support::eventually(Duration::from_secs(10), || async {
        let (_, ack) =
            RawClient::connect(broker.addr, connect(V5, "a", Some(("admin", "changed")))).await;
        (ack.reason_code == ConnectReasonCode::Success).then_some(())
    })
    .await;
    assert!(switched.is_some(), "the new password is accepted");
    let (_, old) =
        RawClient::connect(broker.addr, connect(V5, "a2", Some(("admin", "public")))).await;
    assert_eq!(old.reason_code, ConnectReasonCode::BadUserNameOrPassword, "the old one is not");
    auth.stop().await;
}
