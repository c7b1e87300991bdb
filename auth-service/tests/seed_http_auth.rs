//! The seed's HTTP-auth scenario end to end: broker + auth-service configured from
//! `nanomq-http-auth.conf` (the auth server's address from the environment), against an HTTP
//! server behaving like the seed's: it rejects requests without the configured `authorization`
//! token, answers 200/401 for auth and superuser and 200/403 for ACL.

mod common;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{Form, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use common::{AuthService, RawClient, TestBroker, connect, grpc_config, packets, workdir};
use mqtt_codec::{ConnectReasonCode, Packet, ProtocolVersion, QoS, SubAckReasonCode};
use parking_lot::Mutex;
use std::collections::HashMap;

/// The token of the seed's configuration.
const TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJlbnZOYW1lIjoibG9jYWwifQ.oWJU9JhpdASfv_9XDHm1wZ2w7IA86N2YAr3aX8NUNEY";

type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(TOKEN)
}

async fn auth(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> StatusCode {
    seen.lock().push(("auth".into(), f.clone()));
    let ok = authorized(&headers)
        && matches!(
            (f.get("username").map(String::as_str), f.get("password").map(String::as_str)),
            (Some("admin" | "client"), Some("public"))
        );
    if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
}

async fn superuser(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> StatusCode {
    seen.lock().push(("superuser".into(), f.clone()));
    if authorized(&headers) && f.get("username").map(String::as_str) == Some("admin") {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn acl(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> StatusCode {
    seen.lock().push(("acl".into(), f.clone()));
    let ok = authorized(&headers)
        && f.get("username").map(String::as_str) == Some("client")
        && matches!(f.get("access").map(String::as_str), Some("1" | "2"))
        && f.get("topic").map(String::as_str) == Some("client/only-one");
    if ok { StatusCode::OK } else { StatusCode::FORBIDDEN }
}

async fn seed_server() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/mqtt/auth", post(auth))
        .route("/mqtt/superuser", post(superuser))
        .route("/mqtt/acl", post(acl))
        .with_state(Arc::clone(&seen));
    let (listener, addr) = test_support::bind_tokio().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

async fn suback(c: &mut RawClient, filter: &str) -> SubAckReasonCode {
    c.suback(1, filter, QoS::AtLeastOnce).await
}

#[tokio::test]
async fn http_auth_allows_and_refuses_as_the_seed_server_says() {
    let (http, seen) = seed_server().await;
    let dir = workdir();
    let env = tern_config::Env::new()
        .with("TERN_AUTH__HTTP_AUTH__AUTH_REQ__URL", format!("http://{http}/mqtt/auth"))
        .with("TERN_AUTH__HTTP_AUTH__SUPER_REQ__URL", format!("http://{http}/mqtt/superuser"))
        .with("TERN_AUTH__HTTP_AUTH__ACL_REQ__URL", format!("http://{http}/mqtt/acl"));
    let config =
        tern_config::load_in(&common::fixtures().join("nanomq-http-auth.conf"), dir.path(), &env)
            .expect("fixture loads")
            .config;
    let auth = AuthService::start(&config).await;
    let broker = TestBroker::start(grpc_config(auth.addr.to_string())).await;
    let v5 = ProtocolVersion::V5;

    let (mut admin, ack) =
        RawClient::connect(broker.addr, connect(v5, "admin-1", Some(("admin", "public")))).await;
    assert_eq!(ack.reason_code, ConnectReasonCode::Success);
    assert_eq!(suback(&mut admin, "#").await, SubAckReasonCode::GrantedQoS1, "superuser");

    let (mut client, _) =
        RawClient::connect(broker.addr, connect(v5, "client-1", Some(("client", "public")))).await;
    assert_eq!(suback(&mut client, "client/only-one").await, SubAckReasonCode::GrantedQoS1);
    assert_eq!(suback(&mut client, "other/topic").await, SubAckReasonCode::NotAuthorized);
    client
        .send(&Packet::Publish(packets::publish("other/topic", b"no", QoS::AtLeastOnce, Some(1))))
        .await;
    client
        .send(&Packet::Publish(packets::publish(
            "client/only-one",
            b"yes",
            QoS::AtLeastOnce,
            Some(2),
        )))
        .await;
    let got = admin.next_publish().await;
    assert_eq!((&*got.topic, &got.payload[..]), ("client/only-one", &b"yes"[..]));

    let mut wrong = RawClient::open(broker.addr, v5).await;
    wrong.send(&Packet::Connect(Box::new(connect(v5, "x", Some(("client", "nope")))))).await;
    let got = wrong.until_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.reason_code == ConnectReasonCode::BadUserNameOrPassword),
        "got {got:?}"
    );

    // The exact parameters the fixture's params blocks ask for.
    let seen = seen.lock().clone();
    let (_, first_auth) = seen
        .iter()
        .find(|(kind, f)| kind == "auth" && f["username"] == "client")
        .expect("auth_req");
    let mut keys: Vec<&String> = first_auth.keys().collect();
    keys.sort();
    assert_eq!(keys, ["clientid", "password", "username"]);
    assert_eq!(first_auth["clientid"], "client-1");
    let (_, acl_req) = seen.iter().find(|(kind, _)| kind == "acl").expect("acl_req");
    let mut keys: Vec<&String> = acl_req.keys().collect();
    keys.sort();
    assert_eq!(keys, ["access", "clientid", "ipaddr", "mountpoint", "topic", "username"]);
    assert_eq!(acl_req["ipaddr"], "127.0.0.1");
    auth.stop().await;
}
