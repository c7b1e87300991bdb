//! The seed's file-auth scenario, broker + auth-service, from `nanomq-file-auth.conf` with its
//! `nanomq_pwd.conf` and `nanomq_acl.conf`: `admin` may publish and subscribe anything, `client`
//! only `client/only-one`, wrong passwords and anonymous clients are refused.

mod common;

use common::{AuthService, RawClient, TestBroker, connect, grpc_config, packets, workdir};
use mqtt_codec::{ConnectReasonCode, Packet, ProtocolVersion, QoS, SubAckReasonCode};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

async fn suback(c: &mut RawClient, filter: &str) -> SubAckReasonCode {
    c.suback(1, filter, QoS::AtLeastOnce).await
}

#[tokio::test]
async fn admin_and_client_get_what_the_acl_file_says() {
    let dir = workdir();
    let config = common::fixture_config("nanomq-file-auth.conf", dir.path());
    let auth = AuthService::start(&config).await;
    let broker = TestBroker::start(grpc_config(auth.addr.to_string())).await;

    let (mut admin, ack) =
        RawClient::connect(broker.addr, connect(V311, "admin-1", Some(("admin", "public")))).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    assert_eq!(suback(&mut admin, "#").await, SubAckReasonCode::GrantedQoS1);

    // client (3.1.1 and 5): only client/only-one.
    let (mut c311, ack) =
        RawClient::connect(broker.addr, connect(V311, "client-1", Some(("client", "public"))))
            .await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    assert_eq!(suback(&mut c311, "client/only-one").await, SubAckReasonCode::GrantedQoS1);
    assert_eq!(
        suback(&mut c311, "other/topic").await,
        SubAckReasonCode::UnspecifiedError,
        "refused: 0x80, the only failure code of 3.1.1"
    );
    let (mut c5, _) =
        RawClient::connect(broker.addr, connect(V5, "client-2", Some(("client", "public")))).await;
    assert_eq!(suback(&mut c5, "admin/only").await, SubAckReasonCode::NotAuthorized);
    assert_eq!(suback(&mut c5, "#").await, SubAckReasonCode::NotAuthorized, "no wildcard escape");

    // client's publishes outside client/only-one never reach admin's "#".
    c311.send(&Packet::Publish(packets::publish("other/topic", b"no", QoS::AtLeastOnce, Some(1))))
        .await;
    c311.send(&Packet::Publish(packets::publish(
        "client/only-one",
        b"yes",
        QoS::AtLeastOnce,
        Some(2),
    )))
    .await;
    let got = admin.next_publish().await;
    assert_eq!((&*got.topic, &got.payload[..]), ("client/only-one", &b"yes"[..]));

    // client is subscribed to its own topic: its allowed publish came back to it.
    assert_eq!(&c311.next_publish().await.payload[..], b"yes");
    // admin publishes anywhere; client receives only its topic.
    admin
        .send(&Packet::Publish(packets::publish(
            "admin/private",
            b"not for you",
            QoS::AtMostOnce,
            None,
        )))
        .await;
    admin
        .send(&Packet::Publish(packets::publish(
            "client/only-one",
            b"for you",
            QoS::AtMostOnce,
            None,
        )))
        .await;
    assert_eq!(&c311.next_publish().await.payload[..], b"for you");
    auth.stop().await;
}

#[tokio::test]
async fn wrong_passwords_and_anonymous_clients_are_refused() {
    let dir = workdir();
    let config = common::fixture_config("nanomq-file-auth.conf", dir.path());
    let auth = AuthService::start(&config).await;
    let broker = TestBroker::start(grpc_config(auth.addr.to_string())).await;

    for (version, expected) in [
        (V311, ConnectReasonCode::NotAuthorized), // return code 5, as NanoMQ
        (V5, ConnectReasonCode::BadUserNameOrPassword),
    ] {
        let mut c = RawClient::open(broker.addr, version).await;
        c.send(&Packet::Connect(Box::new(connect(version, "intruder", Some(("admin", "wrong"))))))
            .await;
        let got = c.until_closed().await;
        assert!(
            matches!(got.as_slice(), [Packet::ConnAck(a)] if a.reason_code == expected),
            "{version}: wrong password → {expected:?}, got {got:?}"
        );
        let mut anon = RawClient::open(broker.addr, version).await;
        anon.send(&Packet::Connect(Box::new(connect(version, "anon", None)))).await;
        let got = anon.until_closed().await;
        assert!(
            matches!(got.as_slice(), [Packet::ConnAck(a)] if a.reason_code == expected),
            "{version}: anonymous refused, got {got:?}"
        );
    }
    auth.stop().await;
}

#[tokio::test]
async fn denied_publishes_get_0x87_or_a_disconnect_with_deny_action() {
    let dir = workdir();
    for deny_action in ["ignore", "disconnect"] {
        let env = tern_config::Env::new().with("TERN_AUTH__DENY_ACTION", deny_action);
        let config = tern_config::load_in(
            &common::fixtures().join("nanomq-file-auth.conf"),
            dir.path(),
            &env,
        )
        .expect("fixture loads")
        .config;
        let auth = AuthService::start(&config).await;
        let broker = TestBroker::start(grpc_config(auth.addr.to_string())).await;
        let (mut c, _) =
            RawClient::connect(broker.addr, connect(V5, "client-d", Some(("client", "public"))))
                .await;
        c.send(&Packet::Publish(packets::publish("not/mine", b"x", QoS::AtLeastOnce, Some(3))))
            .await;
        match deny_action {
            "ignore" => match c.recv().await {
                Some(Packet::PubAck(ack)) => {
                    assert_eq!(ack.reason_code, mqtt_codec::PubAckReasonCode::NotAuthorized);
                }
                other => panic!("PUBACK 0x87 expected, got {other:?}"),
            },
            _ => {
                let reason = c.until_closed().await.into_iter().find_map(|p| match p {
                    Packet::Disconnect(d) => Some(d.reason_code),
                    _ => None,
                });
                assert_eq!(reason, Some(mqtt_codec::DisconnectReasonCode::NotAuthorized));
            }
        }
        auth.stop().await;
    }
}
