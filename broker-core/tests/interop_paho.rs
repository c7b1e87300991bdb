//! Interoperability with the Eclipse Paho Python client (paho-mqtt 2.x, installed by
//! scripts/test): round trips at QoS 0/1/2, retained, will (with delay on 5.0), persistent
//! session resume, shared subscriptions — at MQTT 3.1.1 and 5.

mod common;

use common::{TestBroker, WAIT};

async fn run_paho(broker: &TestBroker, version: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/paho_interop.py");
    let out = tokio::time::timeout(
        WAIT * 6,
        tokio::process::Command::new("python3")
            .arg(script)
            .args(["127.0.0.1", &broker.addr.port().to_string(), version])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("paho scenarios finish")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for scenario in ["roundtrip", "retained", "will", "persistent_session", "shared"] {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {scenario}")),
            "paho MQTT {version} {scenario}:\n{stdout}\n{stderr}"
        );
    }
    assert!(out.status.success(), "paho MQTT {version}:\n{stdout}\n{stderr}");
}

#[tokio::test]
async fn paho_mqtt_311() {
    let broker = TestBroker::start().await;
    run_paho(&broker, "311").await;
    broker.stop().await;
}

#[tokio::test]
async fn paho_mqtt_5() {
    let broker = TestBroker::start().await;
    run_paho(&broker, "5").await;
    broker.stop().await;
}
