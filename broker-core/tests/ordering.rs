//! Ordering and loss under load (not timed): 200 publishers × 500 messages at QoS 1 and 2 into
//! subscribers on overlapping wildcard filters and a shared group. Every message arrives, none
//! twice, and each subscriber sees each publisher's messages in publish order.

mod common;

use std::collections::HashMap;

use broker_core::BrokerConfig;
use common::{TestBroker, v4};
use v4::QoS;

const PUBLISHERS: u32 = 200;
const PER_PUBLISHER: u32 = 500;
const TOTAL: usize = (PUBLISHERS * PER_PUBLISHER) as usize;

/// Checks one subscriber's stream: per publisher, sequence numbers 0, 1, 2, … without gaps.
fn check_stream(name: &str, received: &[(u32, u32)], expect_all: bool) -> usize {
    let mut next: HashMap<u32, u32> = HashMap::new();
    for &(publisher, seq) in received {
        let expected = next.entry(publisher).or_insert(0);
        if expect_all {
            assert_eq!(seq, *expected, "{name}: publisher {publisher} out of order or lost");
        } else {
            assert!(seq >= *expected, "{name}: publisher {publisher} reordered or duplicated");
        }
        *expected = seq + 1;
    }
    received.len()
}

/// Collects `count` messages; returns them with the client (which may still have messages of its
/// own to send).
async fn collect(mut client: v4::Client, count: usize) -> (Vec<(u32, u32)>, v4::Client) {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let p = client.publish().await;
        let publisher = u32::from_be_bytes(p.payload[0..4].try_into().expect("4 bytes"));
        let seq = u32::from_be_bytes(p.payload[4..8].try_into().expect("4 bytes"));
        out.push((publisher, seq));
    }
    (out, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_loss_no_duplicates_per_publisher_order() {
    let broker = TestBroker::start_with(BrokerConfig {
        max_mqueue_len: 1_000_000,
        sys_interval: None,
        ..BrokerConfig::default()
    })
    .await;

    let mut subscribers = Vec::new();
    for (name, filter) in [("all", "load/#"), ("plus", "load/+/data"), ("exact-ish", "load/+/+")] {
        let (mut c, _) = v4::connect(v4::options(broker.addr, name)).await;
        c.subscribe(filter, QoS::ExactlyOnce).await;
        subscribers.push((name, c));
    }
    let mut group = Vec::new();
    for name in ["g1", "g2"] {
        let (mut c, _) = v4::connect(v4::options(broker.addr, name)).await;
        c.subscribe("$share/g/load/+/data", QoS::ExactlyOnce).await;
        group.push((name, c));
    }

    let collectors: Vec<_> =
        subscribers.into_iter().map(|(name, c)| (name, tokio::spawn(collect(c, TOTAL)))).collect();
    // The two group members share TOTAL messages between them; each collects until the counter
    // of delivered messages says all were routed, so collect what arrives per member.
    let (group_tx, mut group_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut member_tasks = Vec::new();
    for (name, mut c) in group {
        let tx = group_tx.clone();
        member_tasks.push(tokio::spawn(async move {
            loop {
                let p = c.publish().await;
                let publisher = u32::from_be_bytes(p.payload[0..4].try_into().expect("4 bytes"));
                let seq = u32::from_be_bytes(p.payload[4..8].try_into().expect("4 bytes"));
                if tx.send((name, publisher, seq)).is_err() {
                    return;
                }
            }
        }));
    }
    drop(group_tx);

    let mut publishers = Vec::new();
    for i in 0..PUBLISHERS {
        let addr = broker.addr;
        publishers.push(tokio::spawn(async move {
            let (c, _) = v4::connect(v4::options(addr, &format!("p{i}"))).await;
            let qos = if i % 2 == 0 { QoS::AtLeastOnce } else { QoS::ExactlyOnce };
            for seq in 0..PER_PUBLISHER {
                let mut payload = Vec::with_capacity(8);
                payload.extend_from_slice(&i.to_be_bytes());
                payload.extend_from_slice(&seq.to_be_bytes());
                c.client
                    .publish(format!("load/{i}/data"), qos, false, payload)
                    .await
                    .expect("queued");
            }
            c
        }));
    }
    let mut keep_alive = Vec::new();
    for p in publishers {
        keep_alive.push(p.await.expect("publisher"));
    }

    for (name, handle) in collectors {
        let (received, _client) = handle.await.expect("collector");
        assert_eq!(check_stream(name, &received, true), TOTAL, "{name} lost messages");
        let mut seen = std::collections::HashSet::new();
        assert!(received.iter().all(|m| seen.insert(*m)), "{name} got duplicates");
    }
    let mut per_member: HashMap<&str, Vec<(u32, u32)>> = HashMap::new();
    let mut all = std::collections::HashSet::new();
    while all.len() < TOTAL {
        let (name, publisher, seq) = tokio::time::timeout(common::WAIT, group_rx.recv())
            .await
            .expect("group messages keep arriving")
            .expect("group members alive");
        assert!(all.insert((publisher, seq)), "a group message was delivered twice");
        per_member.entry(name).or_default().push((publisher, seq));
    }
    assert_eq!(per_member.len(), 2, "both members got messages");
    for (name, received) in &per_member {
        check_stream(name, received, false);
    }
    assert_eq!(broker.broker.stats.messages_dropped.get(), 0);
    for task in member_tasks {
        task.abort();
    }
    drop(keep_alive);
    broker.stop().await;
}

/// Queues far smaller than the bursts: publishers are paced by their subscribers instead of
/// having acknowledged QoS 1/2 messages dropped. Twenty publishers push 300 messages each into
/// one subscriber, and two clients that each subscribe to the other's topic push 300 messages
/// at each other (pausing one must not stall the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_queues_pace_publishers_instead_of_dropping() {
    const SMALL_PUBLISHERS: u32 = 20;
    const SMALL_PER: u32 = 300;
    let broker = TestBroker::start_with(BrokerConfig {
        max_mqueue_len: 8,
        sys_interval: None,
        ..BrokerConfig::default()
    })
    .await;

    let (mut sink, _) = v4::connect(v4::options(broker.addr, "sink")).await;
    sink.subscribe("fan-in/#", QoS::AtLeastOnce).await;
    let total = (SMALL_PUBLISHERS * SMALL_PER) as usize;
    let sink = tokio::spawn(collect(sink, total));

    let (mut left, _) = v4::connect(v4::options(broker.addr, "left")).await;
    left.subscribe("to/left", QoS::AtLeastOnce).await;
    let (mut right, _) = v4::connect(v4::options(broker.addr, "right")).await;
    right.subscribe("to/right", QoS::ExactlyOnce).await;
    let payload = |publisher: u32, seq: u32| {
        let mut p = Vec::with_capacity(8);
        p.extend_from_slice(&publisher.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p
    };
    for seq in 0..SMALL_PER {
        left.client
            .publish("to/right", QoS::ExactlyOnce, false, payload(1, seq))
            .await
            .expect("queued");
        right
            .client
            .publish("to/left", QoS::AtLeastOnce, false, payload(2, seq))
            .await
            .expect("queued");
    }
    let left = tokio::spawn(collect(left, SMALL_PER as usize));
    let right = tokio::spawn(collect(right, SMALL_PER as usize));

    let mut publishers = Vec::new();
    for i in 0..SMALL_PUBLISHERS {
        let addr = broker.addr;
        publishers.push(tokio::spawn(async move {
            let (c, _) = v4::connect(v4::options(addr, &format!("fp{i}"))).await;
            let qos = if i % 2 == 0 { QoS::AtLeastOnce } else { QoS::ExactlyOnce };
            for seq in 0..SMALL_PER {
                c.client
                    .publish(format!("fan-in/{i}"), qos, false, payload(i, seq))
                    .await
                    .expect("queued");
            }
            c
        }));
    }
    let mut keep_alive = Vec::new();
    for p in publishers {
        keep_alive.push(p.await.expect("publisher"));
    }
    let (received, _sink) = sink.await.expect("sink");
    assert_eq!(check_stream("sink", &received, true), total, "the sink lost messages");
    let mut done = Vec::new();
    for (name, handle) in [("left", left), ("right", right)] {
        let (received, client) = handle.await.expect(name);
        done.push(client);
        assert_eq!(check_stream(name, &received, true), SMALL_PER as usize, "{name} lost messages");
    }
    assert_eq!(broker.broker.stats.messages_dropped.get(), 0, "nothing was dropped");
    drop(keep_alive);
    broker.stop().await;
}
