//! Interoperability with Debian's `mosquitto_pub` / `mosquitto_sub` at MQTT 3.1, 3.1.1 and 5:
//! QoS 0/1/2 round trips, retained messages, a will with delay, a persistent session resumed with
//! queued messages, and shared-subscription distribution.

mod common;

use std::process::Stdio;

use common::{TestBroker, WAIT};
use tokio::process::{Child, Command};

const VERSIONS: [&str; 3] = ["31", "311", "5"];

fn sub_cmd(broker: &TestBroker, version: &str, id: &str, args: &[&str]) -> Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.addr.port().to_string(), "-V", version, "-i", id])
        .args(["-F", "%t|%q|%r|%p"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto_sub runs (scripts/test installs mosquitto-clients)")
}

async fn publish(broker: &TestBroker, version: &str, args: &[&str]) {
    let status = tokio::time::timeout(
        WAIT,
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.addr.port().to_string(), "-V", version])
            .args(args)
            .kill_on_drop(true)
            .status(),
    )
    .await
    .expect("mosquitto_pub finishes")
    .expect("mosquitto_pub runs");
    assert!(status.success(), "mosquitto_pub {args:?} failed");
}

/// Waits until `client_id` holds a subscription to `filter`.
async fn subscribed(broker: &TestBroker, client_id: &str, filter: &str) {
    let found = test_support::eventually(WAIT, || async {
        let mut found = false;
        broker.broker.router.for_each(|f, mailbox, _| {
            found |= f == filter && &**mailbox.client_id() == client_id;
        });
        found.then_some(())
    })
    .await;
    assert!(found.is_some(), "{client_id} subscribed to {filter}");
}

async fn lines(child: Child) -> Vec<String> {
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("mosquitto_sub exits after its messages")
        .expect("output");
    assert!(out.status.success(), "mosquitto_sub: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn qos_round_trips_at_every_version() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let id = format!("sub{version}");
        let topic = format!("interop/{version}");
        let sub =
            sub_cmd(&broker, version, &id, &["-t", &format!("{topic}/#"), "-q", "2", "-C", "3"]);
        subscribed(&broker, &id, &format!("{topic}/#")).await;
        for qos in ["0", "1", "2"] {
            publish(
                &broker,
                version,
                &["-t", &format!("{topic}/q{qos}"), "-q", qos, "-m", &format!("m{qos}")],
            )
            .await;
        }
        let got = lines(sub).await;
        assert_eq!(
            got,
            vec![
                format!("{topic}/q0|0|0|m0"),
                format!("{topic}/q1|1|0|m1"),
                format!("{topic}/q2|2|0|m2"),
            ],
            "MQTT {version}"
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let topic = format!("retained/{version}");
        publish(&broker, version, &["-t", &topic, "-q", "1", "-r", "-m", "kept"]).await;
        let sub = sub_cmd(
            &broker,
            version,
            &format!("r{version}"),
            &["-t", &topic, "-q", "1", "-C", "1"],
        );
        assert_eq!(lines(sub).await, vec![format!("{topic}|1|1|kept")], "MQTT {version}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn will_with_delay_is_published_after_an_abnormal_end() {
    let broker = TestBroker::start().await;
    let watcher = sub_cmd(&broker, "5", "watcher", &["-t", "will/#", "-q", "1", "-C", "1"]);
    subscribed(&broker, "watcher", "will/#").await;
    let mut dying = sub_cmd(
        &broker,
        "5",
        "dying",
        &[
            "-t",
            "unused",
            "-x",
            "60",
            "--will-topic",
            "will/dying",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
            "-D",
            "will",
            "will-delay-interval",
            "1",
        ],
    );
    subscribed(&broker, "dying", "unused").await;
    dying.start_kill().expect("kill");
    let _ = dying.wait().await;
    assert_eq!(lines(watcher).await, vec!["will/dying|1|0|gone".to_owned()]);
    broker.stop().await;
}

#[tokio::test]
async fn persistent_session_resumes_with_queued_messages() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let id = format!("persist{version}");
        let topic = format!("queued/{version}");
        let mut first = sub_cmd(&broker, version, &id, &["-c", "-q", "1", "-t", &topic]);
        subscribed(&broker, &id, &topic).await;
        first.start_kill().expect("kill");
        let _ = first.wait().await;
        // Wait until the broker has noticed the client is gone.
        let offline = test_support::eventually(WAIT, || async {
            let entry = broker.broker.sessions.get(&id)?;
            matches!(&*entry.slot.lock().await, broker_core::registry::Slot::Detached(_))
                .then_some(())
        })
        .await;
        assert!(offline.is_some(), "session detached");
        for i in 0..3 {
            publish(&broker, version, &["-t", &topic, "-q", "1", "-m", &format!("q{i}")]).await;
        }
        let second = sub_cmd(&broker, version, &id, &["-c", "-q", "1", "-t", &topic, "-C", "3"]);
        assert_eq!(
            lines(second).await,
            (0..3).map(|i| format!("{topic}|1|0|q{i}")).collect::<Vec<_>>(),
            "MQTT {version}"
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn shared_subscription_distributes_across_members() {
    let broker = TestBroker::start().await;
    let a = sub_cmd(&broker, "5", "member-a", &["-t", "$share/grp/work", "-q", "1", "-C", "5"]);
    let b = sub_cmd(&broker, "311", "member-b", &["-t", "$share/grp/work", "-q", "1", "-C", "5"]);
    subscribed(&broker, "member-a", "$share/grp/work").await;
    subscribed(&broker, "member-b", "$share/grp/work").await;
    for i in 0..10 {
        publish(&broker, "5", &["-t", "work", "-q", "1", "-m", &format!("job{i}")]).await;
    }
    let (mut got_a, got_b) = (lines(a).await, lines(b).await);
    assert_eq!(got_a.len(), 5, "round robin: half each");
    got_a.extend(got_b);
    got_a.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("work|1|0|job{i}")).collect();
    expected.sort();
    assert_eq!(got_a, expected, "every message delivered once");
    broker.stop().await;
}
