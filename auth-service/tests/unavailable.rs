//! auth-service down: new connects are refused within the deadline with the unavailable code;
//! connected clients keep working on their preloaded ACL; when the service is back, brokers
//! recover without a restart.

mod common;

use std::time::{Duration, Instant};

use common::{
    AuthProcess, RawClient, TestBroker, connect, fixtures, grpc_config, packets, workdir,
};
use mqtt_codec::{ConnectReasonCode, Packet, ProtocolVersion, QoS};

#[tokio::test]
async fn refuses_while_down_keeps_connected_clients_and_recovers() {
    let dir = workdir();
    let conf = fixtures().join("nanomq-file-auth.conf");
    let auth = AuthProcess::spawn(&conf, dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let auth_addr = auth.addr;
    let broker = TestBroker::start(grpc_config(auth_addr.to_string())).await;
    let v5 = ProtocolVersion::V5;

    let (mut client, _) =
        RawClient::connect(broker.addr, connect(v5, "steady", Some(("client", "public")))).await;
    client.send(&packets::subscribe(1, "client/only-one", QoS::AtLeastOnce)).await;
    assert!(matches!(client.recv().await, Some(Packet::SubAck(_))));

    auth.kill().await;

    // New connects: refused with 0x88 (3 on 3.1.1), within the 1 s deadline plus margin.
    for (version, expected) in [
        (ProtocolVersion::V5, ConnectReasonCode::ServerUnavailable),
        (ProtocolVersion::V311, ConnectReasonCode::ServerUnavailable),
    ] {
        let started = Instant::now();
        let mut c = RawClient::open(broker.addr, version).await;
        c.send(&Packet::Connect(Box::new(connect(version, "newcomer", Some(("admin", "public"))))))
            .await;
        let got = c.until_closed().await;
        assert!(
            matches!(got.as_slice(), [Packet::ConnAck(a)] if a.reason_code == expected),
            "{version}: got {got:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "answered within the deadline");
    }

    // The connected client keeps publishing on its preloaded ACL.
    client
        .send(&Packet::Publish(packets::publish(
            "client/only-one",
            b"still here",
            QoS::AtLeastOnce,
            Some(5),
        )))
        .await;
    assert_eq!(&client.next_publish().await.payload[..], b"still here");

    // The service comes back on the same address: new clients get in again, no broker restart.
    let back = AuthProcess::spawn(&conf, dir.path(), auth_addr).await;
    let recovered = test_support::eventually(Duration::from_secs(15), || async {
        let (_, ack) =
            RawClient::connect(broker.addr, connect(v5, "late", Some(("admin", "public")))).await;
        (ack.reason_code == ConnectReasonCode::Success).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "connects succeed again once auth-service is back");
    back.kill().await;
}
