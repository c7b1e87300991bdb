//! Identical concurrent CONNECTs (a reconnect storm of one device) are authenticated once: the
//! broker joins the Authenticate call already in flight instead of asking again.

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, routing::post};
use broker_core::auth_grpc::GrpcAuth;
use common::{AuthService, RawClient, TestBroker, connect, grpc_config};
use mqtt_codec::{ConnectReasonCode, ProtocolVersion};

#[derive(Clone)]
struct Gate {
    requests: Arc<AtomicUsize>,
    open: tokio::sync::watch::Receiver<bool>,
}

async fn auth(State(gate): State<Gate>) -> StatusCode {
    gate.requests.fetch_add(1, Ordering::SeqCst);
    let mut open = gate.open.clone();
    let _ = open.wait_for(|o| *o).await;
    StatusCode::OK
}

const CLIENTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_connects_share_one_authentication() {
    let (release, open) = tokio::sync::watch::channel(false);
    let gate = Gate { requests: Arc::default(), open };
    let app = Router::new().route("/auth", post(auth)).with_state(gate.clone());
    let (listener, http) = test_support::bind_tokio().await;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = tern_config::parse_str(
        &format!(
            "auth {{ allow_anonymous = false\n http_auth.auth_req {{ url = \"http://{http}/auth\"\n headers.content-type = \"application/x-www-form-urlencoded\"\n params = {{ username = \"%u\" }} }} }}\n"
        ),
        "test.conf",
        std::path::Path::new("."),
        &tern_config::Env::new(),
    )
    .expect("valid")
    .config;
    let service = AuthService::start(&config).await;
    let grpc = Arc::new(GrpcAuth::start(grpc_config(service.addr.to_string())));
    let broker = TestBroker::start_with(grpc.clone()).await;

    let mut connects = Vec::new();
    for _ in 0..CLIENTS {
        let addr = broker.addr;
        connects.push(tokio::spawn(async move {
            let (_c, ack) = RawClient::connect(
                addr,
                connect(ProtocolVersion::V5, "same-device", Some(("dev", "pw"))),
            )
            .await;
            ack.reason_code
        }));
    }
    let joined = test_support::eventually(std::time::Duration::from_secs(10), || async {
        (grpc.coalesced() == (CLIENTS - 1) as u64).then_some(())
    })
    .await;
    assert!(joined.is_some(), "the later CONNECTs joined the first one's call");
    release.send_replace(true);
    for c in connects {
        assert_eq!(c.await.expect("task"), ConnectReasonCode::Success);
    }
    assert_eq!(gate.requests.load(Ordering::SeqCst), 1, "one HTTP auth request for five CONNECTs");
    service.stop().await;
}
