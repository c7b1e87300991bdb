//! The emitter's wire format: `tern.events.v1.EventBatch` written straight from the broker's own
//! events, without building the prost structs first.
//!
//! The emitter encodes each event as it is emitted, into the batch being filled; a batch is the
//! header ([`BatchWriter::header`]: node and incarnation), the events, then the sequence of the
//! first ([`BatchWriter::finish`]), written when the batch is sealed and numbered. An event
//! carries its time and payload; its id, node, incarnation and sequence are the batch's
//! (webhook-relay fills them in), which leaves out about a third of a small message's event.
//! A `message_publish` event is the bulk of the stream (one per message), so it is encoded by
//! hand from the shared [`Message`]: no `String` per topic or client id, no second pass to size
//! nested messages. Every other kind goes through the generated prost types
//! ([`payload`]); they are rare or small. The output decodes to exactly what the prost types
//! would have encoded (the tests compare the bytes).

use bytes::{BufMut, BytesMut};
use proto::{
    events::v1::{self as pb, event::Payload},
    types::v1 as types,
};

use crate::{
    auth_grpc::client_info,
    events::{Event, SubscriptionEvent},
    message::{Delivery, Message},
};

/// `EventBatch` field numbers.
const BATCH_NODE_ID: u32 = 1;
const BATCH_INCARNATION: u32 = 2;
const BATCH_EVENTS: u32 = 3;
const BATCH_FIRST_SEQUENCE: u32 = 4;
/// `Event` field numbers (1–4, id, node, incarnation and sequence, are the batch's).
const EVENT_TIMESTAMP: u32 = 5;
const EVENT_MESSAGE_PUBLISH: u32 = 19;
/// `MessagePublish.message`.
const PUBLISH_MESSAGE: u32 = 1;

/// An event's body, sized before the emitter's lock is taken so that only the writing happens
/// under it.
pub(crate) enum Body<'a> {
    /// A `message_publish`, written by hand.
    Publish(&'a Message, MessageLens),
    /// Any other kind, written by prost.
    Other(Box<Payload>),
}

impl<'a> Body<'a> {
    /// The body of an event.
    pub(crate) fn of(event: &'a Event) -> Self {
        match event {
            Event::MessagePublish { message } => Self::publish(message),
            other => Self::Other(Box::new(payload(other))),
        }
    }

    /// The body of a `message_publish` event.
    pub(crate) fn publish(message: &'a Message) -> Self {
        Self::Publish(message, MessageLens::of(message))
    }

    /// Bytes of the payload field (key and length included).
    fn len(&self) -> usize {
        match self {
            Self::Publish(_, lens) => nested_len(EVENT_MESSAGE_PUBLISH, lens.publish()),
            Self::Other(payload) => payload.encoded_len(),
        }
    }

    fn put(&self, buf: &mut BytesMut) {
        match self {
            Self::Publish(m, lens) => {
                put_header(buf, EVENT_MESSAGE_PUBLISH, lens.publish());
                put_header(buf, PUBLISH_MESSAGE, lens.message);
                put_message(buf, m, lens);
            }
            Self::Other(payload) => payload.encode(buf),
        }
    }
}

/// Writes batches of one node incarnation.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    node_id: Box<str>,
    incarnation: u64,
}

impl BatchWriter {
    pub(crate) fn new(node_id: &str, incarnation: u64) -> Self {
        Self { node_id: node_id.into(), incarnation }
    }

    /// Starts a batch: the node and incarnation fields.
    pub(crate) fn header(&self, buf: &mut BytesMut) {
        put_str(buf, BATCH_NODE_ID, &self.node_id);
        put_u64(buf, BATCH_INCARNATION, self.incarnation);
    }

    /// Bytes [`header`](Self::header) writes.
    pub(crate) fn header_len(&self) -> usize {
        str_len(BATCH_NODE_ID, &self.node_id) + u64_len(BATCH_INCARNATION, self.incarnation)
    }

    /// Appends one `Event` (a length-delimited field of the batch): its time and body. Its id,
    /// node, incarnation and sequence are left out: they are the batch's, and webhook-relay fills
    /// them in (`tern.events.v1.Event`, `EventBatch.first_sequence`).
    pub(crate) fn put_event(buf: &mut BytesMut, timestamp_ms: u64, body: &Body) {
        let len = u64_len(EVENT_TIMESTAMP, timestamp_ms) + body.len();
        buf.reserve(nested_len(BATCH_EVENTS, len));
        put_header(buf, BATCH_EVENTS, len);
        put_u64(buf, EVENT_TIMESTAMP, timestamp_ms);
        body.put(buf);
    }

    /// Ends a batch whose first event is number `first`: its events are numbered from it.
    pub(crate) fn finish(buf: &mut BytesMut, first: u64) {
        put_u64(buf, BATCH_FIRST_SEQUENCE, first);
    }
}

/// Encoded sizes of a `tern.types.v1.Message` (as a `message_publish` carries it: the published
/// QoS and RETAIN, no subscription identifiers) and of its properties.
pub(crate) struct MessageLens {
    properties: usize,
    message: usize,
}

/// `Message` field numbers.
const MSG_TOPIC: u32 = 1;
const MSG_PAYLOAD: u32 = 2;
const MSG_QOS: u32 = 3;
const MSG_RETAIN: u32 = 4;
const MSG_PROPERTIES: u32 = 6;
const MSG_FROM_CLIENT_ID: u32 = 7;
const MSG_FROM_USERNAME: u32 = 8;
const MSG_RECEIVED_AT: u32 = 9;
/// `MessageProperties` field numbers.
const PROP_PAYLOAD_FORMAT: u32 = 1;
const PROP_EXPIRY: u32 = 2;
const PROP_CONTENT_TYPE: u32 = 3;
const PROP_RESPONSE_TOPIC: u32 = 4;
const PROP_CORRELATION: u32 = 5;
const PROP_USER: u32 = 6;
/// `UserProperty` field numbers.
const USER_KEY: u32 = 1;
const USER_VALUE: u32 = 2;

impl MessageLens {
    fn of(m: &Message) -> Self {
        let p = &m.properties;
        let properties =
            opt_u64_len(PROP_PAYLOAD_FORMAT, p.payload_format_indicator.map(u64::from))
                + opt_u64_len(PROP_EXPIRY, p.message_expiry_interval.map(u64::from))
                + opt_bytes_len(PROP_CONTENT_TYPE, p.content_type.as_deref().map(str::as_bytes))
                + opt_bytes_len(
                    PROP_RESPONSE_TOPIC,
                    p.response_topic.as_deref().map(str::as_bytes),
                )
                + opt_bytes_len(PROP_CORRELATION, p.correlation_data.as_deref())
                + p.user_properties
                    .iter()
                    .map(|(k, v)| nested_len(PROP_USER, user_property_len(k, v)))
                    .sum::<usize>();
        let message = str_len(MSG_TOPIC, &m.topic)
            + bytes_len(MSG_PAYLOAD, &m.payload)
            + u64_len(MSG_QOS, u64::from(u8::from(m.qos)))
            + bool_len(MSG_RETAIN, m.retain)
            + nested_len(MSG_PROPERTIES, properties)
            + str_len(MSG_FROM_CLIENT_ID, &m.from_client_id)
            + opt_bytes_len(MSG_FROM_USERNAME, m.from_username.as_deref().map(str::as_bytes))
            + u64_len(MSG_RECEIVED_AT, m.received_at_ms);
        Self { properties, message }
    }

    /// The `MessagePublish` around the message.
    fn publish(&self) -> usize {
        nested_len(PUBLISH_MESSAGE, self.message)
    }
}

fn user_property_len(key: &str, value: &str) -> usize {
    str_len(USER_KEY, key) + str_len(USER_VALUE, value)
}

fn put_message(buf: &mut BytesMut, m: &Message, lens: &MessageLens) {
    let p = &m.properties;
    put_str(buf, MSG_TOPIC, &m.topic);
    put_bytes(buf, MSG_PAYLOAD, &m.payload);
    put_u64(buf, MSG_QOS, u64::from(u8::from(m.qos)));
    put_bool(buf, MSG_RETAIN, m.retain);
    put_header(buf, MSG_PROPERTIES, lens.properties);
    put_opt_u64(buf, PROP_PAYLOAD_FORMAT, p.payload_format_indicator.map(u64::from));
    put_opt_u64(buf, PROP_EXPIRY, p.message_expiry_interval.map(u64::from));
    put_opt_bytes(buf, PROP_CONTENT_TYPE, p.content_type.as_deref().map(str::as_bytes));
    put_opt_bytes(buf, PROP_RESPONSE_TOPIC, p.response_topic.as_deref().map(str::as_bytes));
    put_opt_bytes(buf, PROP_CORRELATION, p.correlation_data.as_deref());
    for (k, v) in &p.user_properties {
        put_header(buf, PROP_USER, user_property_len(k, v));
        put_str(buf, USER_KEY, k);
        put_str(buf, USER_VALUE, v);
    }
    put_str(buf, MSG_FROM_CLIENT_ID, &m.from_client_id);
    put_opt_bytes(buf, MSG_FROM_USERNAME, m.from_username.as_deref().map(str::as_bytes));
    put_u64(buf, MSG_RECEIVED_AT, m.received_at_ms);
}

// Sizes and writers of proto3 fields: scalars and strings at their default value are left out;
// `optional` fields are written whenever present.

/// Wire types.
const VARINT: u64 = 0;
const LENGTH_DELIMITED: u64 = 2;

fn encoded_len_varint(v: u64) -> usize {
    // 7 bits per byte; 0 takes one byte.
    (v | 1).ilog2() as usize / 7 + 1
}

fn encode_varint(mut v: u64, buf: &mut BytesMut) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn key_len(tag: u32) -> usize {
    encoded_len_varint(u64::from(tag) << 3)
}

fn encode_key(tag: u32, wire_type: u64, buf: &mut BytesMut) {
    encode_varint(u64::from(tag) << 3 | wire_type, buf);
}

fn nested_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn bytes_len(tag: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() { 0 } else { nested_len(tag, bytes.len()) }
}

fn str_len(tag: u32, s: &str) -> usize {
    bytes_len(tag, s.as_bytes())
}

fn opt_bytes_len(tag: u32, bytes: Option<&[u8]>) -> usize {
    bytes.map_or(0, |b| nested_len(tag, b.len()))
}

fn u64_len(tag: u32, v: u64) -> usize {
    if v == 0 { 0 } else { key_len(tag) + encoded_len_varint(v) }
}

fn opt_u64_len(tag: u32, v: Option<u64>) -> usize {
    v.map_or(0, |v| key_len(tag) + encoded_len_varint(v))
}

fn bool_len(tag: u32, b: bool) -> usize {
    if b { key_len(tag) + 1 } else { 0 }
}

/// The key and length of a length-delimited field.
fn put_header(buf: &mut BytesMut, tag: u32, len: usize) {
    encode_key(tag, LENGTH_DELIMITED, buf);
    encode_varint(len as u64, buf);
}

fn put_bytes(buf: &mut BytesMut, tag: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_header(buf, tag, bytes.len());
        buf.put_slice(bytes);
    }
}

fn put_str(buf: &mut BytesMut, tag: u32, s: &str) {
    put_bytes(buf, tag, s.as_bytes());
}

fn put_opt_bytes(buf: &mut BytesMut, tag: u32, bytes: Option<&[u8]>) {
    if let Some(bytes) = bytes {
        put_header(buf, tag, bytes.len());
        buf.put_slice(bytes);
    }
}

fn put_u64(buf: &mut BytesMut, tag: u32, v: u64) {
    if v != 0 {
        put_opt_u64(buf, tag, Some(v));
    }
}

fn put_opt_u64(buf: &mut BytesMut, tag: u32, v: Option<u64>) {
    if let Some(v) = v {
        encode_key(tag, VARINT, buf);
        encode_varint(v, buf);
    }
}

fn put_bool(buf: &mut BytesMut, tag: u32, b: bool) {
    if b {
        encode_key(tag, VARINT, buf);
        buf.put_u8(1);
    }
}

fn message(m: &Message, qos: mqtt_codec::QoS, retain: bool, ids: &[u32]) -> types::Message {
    let p = &m.properties;
    types::Message {
        topic: m.topic.to_string(),
        payload: m.payload.clone(),
        qos: i32::from(u8::from(qos)),
        retain,
        dup: false,
        properties: Some(types::MessageProperties {
            payload_format_indicator: p.payload_format_indicator.map(u32::from),
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.as_ref().map(ToString::to_string),
            response_topic: p.response_topic.as_ref().map(ToString::to_string),
            correlation_data: p.correlation_data.clone(),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| types::UserProperty { key: k.to_string(), value: v.to_string() })
                .collect(),
            subscription_identifiers: ids.to_vec(),
        }),
        from_client_id: m.from_client_id.to_string(),
        from_username: m.from_username.as_ref().map(ToString::to_string),
        received_at_ms: m.received_at_ms,
    }
}

fn delivered(d: &Delivery) -> types::Message {
    message(&d.message, d.qos, d.retain, &d.subscription_ids)
}

fn subscription(s: &SubscriptionEvent) -> types::Subscription {
    let share_group = match s.filter.strip_prefix("$share/").and_then(|r| r.split_once('/')) {
        Some((group, _)) => group.to_string(),
        None if s.filter.starts_with("$queue/") => "$queue".to_string(),
        None => String::new(),
    };
    types::Subscription {
        topic_filter: s.filter.to_string(),
        qos: i32::from(u8::from(s.options.qos)),
        no_local: s.options.no_local,
        retain_as_published: s.options.retain_as_published,
        retain_handling: u32::from(s.retain_handling),
        subscription_identifier: s.options.subscription_id.unwrap_or(0),
        share_group,
    }
}

/// An event's payload as the generated prost type.
pub(crate) fn payload(event: &Event) -> Payload {
    let info = |c: &crate::auth::ClientIdentity| Some(client_info(c, false));
    match event {
        Event::ClientConnect { client } => {
            Payload::ClientConnect(pb::ClientConnect { client: info(client) })
        }
        Event::ClientConnack { client, reason_code, session_present } => {
            Payload::ClientConnack(pb::ClientConnack {
                client: info(client),
                reason_code: u32::from(*reason_code),
                session_present: *session_present,
            })
        }
        Event::ClientConnected { client, session_present, keepalive, session_expiry_interval } => {
            Payload::ClientConnected(pb::ClientConnected {
                client: info(client),
                session_present: *session_present,
                keepalive: u32::from(*keepalive),
                session_expiry_interval: *session_expiry_interval,
            })
        }
        Event::ClientDisconnected { client, reason_code, reason, graceful } => {
            Payload::ClientDisconnected(pb::ClientDisconnected {
                client: info(client),
                reason_code: u32::from(*reason_code),
                reason: reason.to_string(),
                graceful: *graceful,
            })
        }
        Event::ClientSubscribe { client, subscriptions } => {
            Payload::ClientSubscribe(pb::ClientSubscribe {
                client: info(client),
                subscriptions: subscriptions.iter().map(subscription).collect(),
            })
        }
        Event::ClientUnsubscribe { client, filters } => {
            Payload::ClientUnsubscribe(pb::ClientUnsubscribe {
                client: info(client),
                topic_filters: filters.iter().map(ToString::to_string).collect(),
            })
        }
        Event::SessionSubscribed { client, subscription: s } => {
            Payload::SessionSubscribed(pb::SessionSubscribed {
                client: info(client),
                subscription: Some(subscription(s)),
            })
        }
        Event::SessionUnsubscribed { client, filter } => {
            Payload::SessionUnsubscribed(pb::SessionUnsubscribed {
                client: info(client),
                topic_filter: filter.to_string(),
            })
        }
        Event::SessionTerminated { client, reason } => {
            Payload::SessionTerminated(pb::SessionTerminated {
                client: info(client),
                reason: reason.to_string(),
            })
        }
        Event::MessagePublish { message: m } => Payload::MessagePublish(pb::MessagePublish {
            message: Some(message(m, m.qos, m.retain, &[])),
        }),
        Event::MessageDelivered { client, delivery } => {
            Payload::MessageDelivered(pb::MessageDelivered {
                client: info(client),
                message: Some(delivered(delivery)),
            })
        }
        Event::MessageAcked { client, delivery } => Payload::MessageAcked(pb::MessageAcked {
            client: info(client),
            message: Some(delivered(delivery)),
        }),
        Event::MessageDropped { client_id, message: m, reason } => {
            Payload::MessageDropped(pb::MessageDropped {
                client: client_id.as_ref().map(|id| types::ClientInfo {
                    client_id: id.to_string(),
                    ..Default::default()
                }),
                message: Some(message(m, m.qos, m.retain, &[])),
                reason: reason.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Instant};

    use bytes::Bytes;
    use bytestring::ByteString;
    use mqtt_codec::{PublishProperties, QoS};
    use prost::Message as _;

    use super::*;
    use crate::{events::BrokerEvent, message::MessageRef};

    /// A batch of `events` numbered from `first_seq`, as the emitter writes it.
    fn batch(writer: &BatchWriter, first_seq: u64, events: &[BrokerEvent]) -> Bytes {
        let mut buf = BytesMut::new();
        writer.header(&mut buf);
        assert_eq!(buf.len(), writer.header_len());
        for event in events {
            BatchWriter::put_event(&mut buf, event.timestamp_ms, &Body::of(&event.kind));
        }
        BatchWriter::finish(&mut buf, first_seq);
        buf.freeze()
    }

    /// What the prost types encode for the same events: the reference (events without id, node,
    /// incarnation and sequence: the batch's).
    fn reference(writer: &BatchWriter, first_seq: u64, events: &[BrokerEvent]) -> pb::EventBatch {
        let node = &*writer.node_id;
        pb::EventBatch {
            node_id: node.to_string(),
            incarnation: writer.incarnation,
            events: events
                .iter()
                .map(|event| pb::Event {
                    timestamp_ms: event.timestamp_ms,
                    payload: Some(payload(&event.kind)),
                    ..pb::Event::default()
                })
                .collect(),
            first_sequence: first_seq,
        }
    }

    fn published(message: MessageRef) -> BrokerEvent {
        BrokerEvent {
            timestamp_ms: message.received_at_ms,
            kind: Event::MessagePublish { message },
        }
    }

    fn message(topic: &str, payload: &'static [u8], properties: PublishProperties) -> MessageRef {
        Arc::new(Message {
            topic: topic.into(),
            payload: Bytes::from_static(payload),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties,
            publisher: None,
            from_client_id: "c1".into(),
            from_username: Some("alice".into()),
            received_at: Instant::now(),
            received_at_ms: 1_764_000_000_123,
        })
    }

    #[test]
    fn hand_encoded_batches_are_what_prost_encodes() {
        let rich = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(300),
            response_topic: Some("reply/to".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
            user_properties: vec![
                ("k".into(), "v".into()),
                (ByteString::new(), ByteString::new()),
                ("long".into(), "x".repeat(300).into()),
            ],
            content_type: Some(String::new().into()),
            ..PublishProperties::default()
        };
        let bare = Arc::new(Message {
            topic: "t".into(),
            payload: Bytes::new(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: PublishProperties::default(),
            publisher: None,
            from_client_id: ByteString::new(),
            from_username: None,
            received_at: Instant::now(),
            received_at_ms: 0,
        });
        let big: &'static [u8] = Box::leak(vec![7u8; 70_000].into_boxed_slice());
        let events = vec![
            published(message("a/b", b"hello", PublishProperties::default())),
            published(message("sensors/1/temp", b"21.5", rich)),
            published(bare),
            published(message("big", big, PublishProperties::default())),
            BrokerEvent {
                timestamp_ms: 5,
                kind: Event::MessageDropped {
                    client_id: Some("sub".into()),
                    message: crate::test_util::message("x/y", QoS::ExactlyOnce, false),
                    reason: "queue_full",
                },
            },
            // A publish event with a time of its own keeps it.
            BrokerEvent {
                timestamp_ms: 9,
                kind: Event::MessagePublish {
                    message: crate::test_util::message("z", QoS::AtMostOnce, false),
                },
            },
        ];
        for (node, incarnation, first_seq) in
            [("n1", 1_764_000_000_000, 1), ("", 0, 0), ("node-β", 7, 99_999_999_999)]
        {
            let writer = BatchWriter::new(node, incarnation);
            let bytes = batch(&writer, first_seq, &events);
            let expected = reference(&writer, first_seq, &events);
            assert_eq!(pb::EventBatch::decode(bytes.clone()).ok().as_ref(), Some(&expected));
            assert_eq!(&bytes[..], &expected.encode_to_vec()[..], "byte for byte");
        }
    }

    #[test]
    fn varints_are_what_prost_writes() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut buf = BytesMut::new();
            encode_varint(v, &mut buf);
            let mut reference = Vec::new();
            prost::encoding::encode_varint(v, &mut reference);
            assert_eq!(&buf[..], &reference[..], "{v}");
            assert_eq!(encoded_len_varint(v), reference.len(), "{v}");
        }
    }
}
