//! Three auth-service replicas behind one name (a resolver returning the three addresses, as
//! Docker's DNS does for `--scale auth-service=3`): one is killed during a storm of 500 connects,
//! and every client still connects.

mod common;

use std::{collections::HashSet, net::SocketAddr, sync::Arc};

use broker_core::{
    auth::BoxFuture,
    auth_grpc::{GrpcAuth, Resolve},
};
use common::{AuthProcess, RawClient, TestBroker, connect, fixtures, grpc_config, workdir};
use mqtt_codec::{ConnectReasonCode, ProtocolVersion};

/// "auth-service:50051" resolving to every replica.
#[derive(Debug)]
struct ThreeReplicas(HashSet<SocketAddr>);

impl Resolve for ThreeReplicas {
    fn resolve(&self, _address: &str) -> BoxFuture<std::io::Result<HashSet<SocketAddr>>> {
        let addrs = self.0.clone();
        Box::pin(async move { Ok(addrs) })
    }
}

const CLIENTS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_replicas_during_a_connect_storm_loses_no_client() {
    let dir = workdir();
    let conf = fixtures().join("nanomq-file-auth.conf");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(AuthProcess::spawn(&conf, dir.path(), any).await);
    }
    let addrs: HashSet<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let auth = GrpcAuth::with_resolver(
        grpc_config("auth-service:50051".into()),
        Arc::new(ThreeReplicas(addrs)),
    );
    let broker = TestBroker::start_with(Arc::new(auth)).await;

    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut storm = Vec::new();
    for i in 0..CLIENTS {
        let addr = broker.addr;
        let done = done_tx.clone();
        storm.push(tokio::spawn(async move {
            let id = format!("storm-{i}");
            let (client, ack) = RawClient::connect(
                addr,
                connect(ProtocolVersion::V311, &id, Some(("admin", "public"))),
            )
            .await;
            let _ = done.send(());
            (ack.reason_code, client)
        }));
    }
    // Kill one replica once a fifth of the clients are in.
    for _ in 0..CLIENTS / 5 {
        done_rx.recv().await.expect("progress");
    }
    let victim = replicas.remove(0);
    victim.kill().await;

    let mut refused = 0;
    let mut clients = Vec::new();
    for task in storm {
        let (code, client) = task.await.expect("client task");
        if code != ConnectReasonCode::Success {
            refused += 1;
        }
        clients.push(client);
    }
    assert_eq!(refused, 0, "every client connects although a replica died");
    assert_eq!(broker.broker.stats.connections.get(), CLIENTS as u64);
    for replica in replicas {
        replica.kill().await;
    }
}
