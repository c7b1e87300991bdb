//! Builders shared by the unit tests.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use mqtt_codec::{PublishProperties, QoS};

use crate::{
    mailbox::{Mailbox, OverflowPolicy, QueueLimits},
    message::{Message, MessageRef, SessionId},
};

pub(crate) fn message(topic: &str, qos: QoS, retain: bool) -> MessageRef {
    message_from(topic, qos, retain, None)
}

pub(crate) fn message_from(
    topic: &str,
    qos: QoS,
    retain: bool,
    publisher: Option<SessionId>,
) -> MessageRef {
    Arc::new(Message {
        topic: topic.into(),
        payload: Bytes::from_static(b"payload"),
        qos,
        retain,
        properties: PublishProperties::default(),
        publisher,
        from_client_id: "publisher".into(),
        from_username: None,
        received_at: Instant::now(),
        received_at_ms: 0,
    })
}

pub(crate) fn mailbox(id: u64) -> Arc<Mailbox> {
    mailbox_with(id, 100, OverflowPolicy::DropOldest)
}

pub(crate) fn mailbox_with(id: u64, max_len: usize, overflow: OverflowPolicy) -> Arc<Mailbox> {
    Arc::new(Mailbox::new(
        SessionId(id),
        format!("client-{id}").into(),
        QueueLimits { max_len, overflow, queue_qos0_offline: false },
    ))
}
