//! A graceful shutdown finishes while brokers hold their WatchRevocations streams open (those
//! streams never end on their own, and a graceful gRPC shutdown waits for open requests).

use std::time::Duration;

use proto::auth::v1::{WatchRevocationsRequest, auth_service_client::AuthServiceClient};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn shutdown_ends_revocation_watches_instead_of_waiting_for_them() {
    test_support::install_crypto_provider();
    let built = auth_service::setup::build(&tern_config::Config::default()).expect("chain");
    let (listener, addr) = test_support::bind_tokio().await;
    let stop = CancellationToken::new();
    let server = tokio::spawn(auth_service::run(built, listener, stop.clone().cancelled_owned()));
    let mut client = AuthServiceClient::connect(format!("http://{addr}")).await.expect("connects");
    let mut watch = client
        .watch_revocations(WatchRevocationsRequest { node_id: "node-1".into() })
        .await
        .expect("watching")
        .into_inner();

    stop.cancel();
    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops although a watch is open");
    served.expect("server task").expect("clean stop");
    let end = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the watcher learns the stream ended");
    assert!(matches!(end, Ok(None)), "the stream ends cleanly: {end:?}");
}
