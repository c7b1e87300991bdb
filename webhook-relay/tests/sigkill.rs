//! The relay binary killed with SIGKILL mid-stream and restarted: no event it acknowledged is lost
//! (the outbox survives), the broker resends what was not acknowledged, and duplicates carry the
//! same event id.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Receiver, RunningBroker, WAIT, client, publish, spawn_relay, wait_listening};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_stream_loses_no_acknowledged_event() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let text = format!(
        "listeners.tcp {{\n  bind = \"127.0.0.1:0\"\n}}\nsys.interval = 0\nnode.id = n1\nlog.level = error\n\
         webhooks.main {{\n  url = \"{}\"\n  retry {{ initial = 20ms, max = 200ms }}\n  events = [{{event = on_message_publish, topic = \"k/#\"}}]\n}}\n\
         webhook_relay {{\n  bind = \"127.0.0.1:{port}\"\n  address = \"127.0.0.1:{port}\"\n  outbox = \"{}\"\n  reconnect_delay = 50ms\n}}\n",
        receiver.url("main"),
        dir.path().join("outbox.redb").display()
    );
    let conf = dir.path().join("nanomq.conf");
    std::fs::write(&conf, &text).expect("write the config");
    let config = common::config(&text, dir.path());

    let mut relay = spawn_relay(&conf);
    wait_listening(port).await;
    let broker = RunningBroker::start(&config).await;
    let total: u16 = 400;
    let mqtt = broker.mqtt;
    let publisher = tokio::spawn(async move {
        let mut c = client(mqtt, "killer", None).await;
        for i in 1..=total {
            publish(&mut c, &format!("k/{i}"), i.to_string(), i).await;
        }
    });

    receiver.wait_for(50).await;
    relay.start_kill().expect("SIGKILL the relay");
    let status = relay.wait().await.expect("reap the relay");
    assert!(!status.success(), "killed, not exited: {status:?}");
    let at_kill = receiver.received().len();

    let _relay = spawn_relay(&conf);
    wait_listening(port).await;
    publisher.await.expect("the publisher finishes");

    let got = test_support::eventually(WAIT, || async {
        let r = receiver.received();
        let payloads: BTreeSet<String> = r.iter().map(|r| r.field("payload")).collect();
        (payloads.len() >= usize::from(total)).then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("not every event arrived: {} requests", receiver.received().len()));
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &got {
        ids.entry(r.field("payload")).or_default().insert(r.event_id.clone());
    }
    assert_eq!(ids.len(), usize::from(total), "every published message arrived");
    for (payload, event_ids) in &ids {
        assert_eq!(event_ids.len(), 1, "payload {payload}: duplicates carry the same event id");
    }
    let duplicates = got.len() - usize::from(total);
    println!(
        "{at_kill} delivered before the kill, {} requests, {duplicates} duplicates",
        got.len()
    );
    assert!(at_kill < usize::from(total), "the kill happened mid-stream");
}

#[tokio::test]
async fn a_bad_configuration_stops_the_relay_naming_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("nanomq.conf");
    std::fs::write(&conf, "webhooks.audit {\n  url = \"http://h/\"\n  delivery = maybe\n}\n")
        .expect("write the config");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_webhook-relay"))
        .arg("--conf")
        .arg(&conf)
        .output()
        .await
        .expect("run webhook-relay");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nanomq.conf:3: webhooks.audit.delivery: unknown value \"maybe\""),
        "{stderr}"
    );
}
