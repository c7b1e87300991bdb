//! Builders shared by the broker-core benchmarks: messages, mailboxes and a deterministic topic
//! space of 100 tenants × devices × 10 metrics (`t<t>/d<d>/m<m>`).

// Each benchmark binary uses a part of these helpers.
#![allow(dead_code)]

use std::{sync::Arc, time::Instant};

use broker_core::{
    mailbox::{Mailbox, OverflowPolicy, QueueLimits},
    message::{Message, MessageRef, SessionId},
};
use bytes::Bytes;
use mqtt_codec::{PublishProperties, QoS};

/// Tenants in the topic space.
pub const TENANTS: usize = 100;
/// Metrics per device.
pub const METRICS: usize = 10;

/// A 64-byte QoS 1 message on `topic`.
pub fn message(topic: &str) -> MessageRef {
    Arc::new(Message {
        topic: topic.into(),
        payload: Bytes::from_static(&[0x5a; 64]),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: PublishProperties::default(),
        publisher: None,
        from_client_id: "bench-publisher".into(),
        from_username: None,
        received_at: Instant::now(),
        received_at_ms: 0,
    })
}

/// A mailbox that holds up to `max_len` deliveries.
pub fn mailbox(id: u64, max_len: usize) -> Arc<Mailbox> {
    Arc::new(Mailbox::new(
        SessionId(id),
        format!("client-{id}").into(),
        QueueLimits { max_len, overflow: OverflowPolicy::DropNewest, queue_qos0_offline: false },
    ))
}

/// Devices per tenant so that the space holds about `topics` topics.
pub fn devices_for(topics: usize) -> usize {
    (topics / (TENANTS * METRICS)).max(1)
}

/// The topic of one device metric.
pub fn topic(tenant: usize, device: usize, metric: usize) -> String {
    format!("t{tenant}/d{device}/m{metric}")
}

/// A random topic of the space with `devices` devices per tenant.
pub fn random_topic(rng: &mut fastrand::Rng, devices: usize) -> String {
    topic(rng.usize(..TENANTS), rng.usize(..devices), rng.usize(..METRICS))
}

/// `n` as 10k / 100k / 1M.
pub fn label(n: usize) -> String {
    if n >= 1_000_000 { format!("{}M", n / 1_000_000) } else { format!("{}k", n / 1000) }
}
