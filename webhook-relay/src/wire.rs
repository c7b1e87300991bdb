//! A broker's `EventBatch` as it came off the wire: each event kept as its own protobuf bytes,
//! with only what the relay needs to take it read out of them (sequence, timestamp, type, topic).
//!
//! The outbox stores those bytes as they are, so an accepted event is neither decoded into
//! strings and vectors nor encoded again: that work, once per event, was most of the relay's
//! intake cost. Events are decoded when a delivery or a live subscriber needs them.
//!
//! A broker leaves each event's id, node, incarnation and sequence out: they are the batch's (the
//! sequence is numbered from `EventBatch.first_sequence`). The relay puts the batch's node and
//! incarnation and the event's sequence back in front of such an event when it stores it
//! ([`RawEvent::write_to`]), and [`decode_event`] fills in the id, so the outbox, deliveries and
//! subscribers see whole events.
//!
//! What is checked here: the batch's and each event's framing (every field's key, varint and
//! length within bounds), the payload's framing down to the message and its topic (valid UTF-8).
//! Deeper fields are checked when the event is decoded; one that fails then is dead-lettered.

use std::ops::Range;

use bytes::{Buf, Bytes};
use proto::events::v1::{Event, EventBatch};
use tern_config::WebhookEvent;

/// A batch whose events are kept encoded.
#[derive(Debug, Clone, Default)]
pub struct RawBatch {
    /// The sending node.
    pub node_id: String,
    /// The node's incarnation.
    pub incarnation: u64,
    /// The events, in the order sent.
    pub events: Vec<RawEvent>,
}

/// One encoded `Event` with the fields the relay routes on.
#[derive(Debug, Clone, Default)]
pub struct RawEvent {
    /// The event's protobuf encoding, as sent.
    pub bytes: Bytes,
    /// The batch's node and incarnation fields, for an event sent without them (written before
    /// `bytes`: protobuf reads fields in any order).
    origin: Option<Bytes>,
    /// Its per-node sequence.
    pub sequence: u64,
    /// Whether the sequence was the batch's (written as a field before `bytes`, after `origin`).
    numbered: bool,
    /// When it happened, epoch ms.
    pub timestamp_ms: u64,
    /// Its type (`None`: an event without payload).
    pub kind: Option<WebhookEvent>,
    /// Where the message topic is in `bytes`, for message events.
    topic: Option<Range<usize>>,
}

impl RawEvent {
    /// The message topic, for message events.
    pub fn topic(&self) -> Option<&str> {
        let range = self.topic.clone()?;
        // Checked as UTF-8 when parsed.
        std::str::from_utf8(self.bytes.get(range)?).ok()
    }

    /// Bytes kept as they are, read as nothing (no sequence, time, type or topic).
    pub fn unparsed(bytes: Bytes) -> Self {
        Self { bytes, ..Self::default() }
    }

    /// Bytes [`write_to`](Self::write_to) writes.
    pub fn len(&self) -> usize {
        self.origin.as_ref().map_or(0, Bytes::len) + self.sequence_field().len + self.bytes.len()
    }

    /// The `sequence` field, for an event numbered by its batch (else nothing).
    fn sequence_field(&self) -> SequenceField {
        let mut field = SequenceField { bytes: [0; 11], len: 0 };
        if self.numbered {
            let mut free = &mut field.bytes[..];
            prost::encoding::uint64::encode(4, &self.sequence, &mut free);
            field.len = 11 - free.len();
        }
        field
    }

    /// Whether the event is empty (an `Event` with every field at its default).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the whole event: the batch's node and incarnation when the event left them out,
    /// then its bytes.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(origin) = &self.origin {
            out.extend_from_slice(origin);
        }
        out.extend_from_slice(self.sequence_field().as_ref());
        out.extend_from_slice(&self.bytes);
    }

    /// Decodes the whole event.
    pub fn decode(&self) -> Result<Event, prost::DecodeError> {
        let origin = self.origin.as_deref().unwrap_or_default();
        let sequence = self.sequence_field();
        decode_event(origin.chain(sequence.as_ref()).chain(self.bytes.as_ref()))
    }

    /// Encodes a decoded event (tests and callers that hold `Event`s).
    pub fn encode(event: &Event) -> Self {
        let bytes = Bytes::from(prost::Message::encode_to_vec(event));
        // An encoding prost made parses.
        parse_event(bytes).unwrap_or_default()
    }
}

/// An encoded `Event.sequence` field (field 4): its key and varint, 11 bytes at most.
struct SequenceField {
    bytes: [u8; 11],
    len: usize,
}

impl AsRef<[u8]> for SequenceField {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl RawBatch {
    /// Numbers the events sent without a sequence from `first`, in the order they came.
    fn number(&mut self, first: u64) {
        let unnumbered = self.events.iter_mut().filter(|event| event.sequence == 0);
        for (event, sequence) in unnumbered.zip(first..) {
            event.sequence = sequence;
            event.numbered = true;
        }
    }
}

impl From<EventBatch> for RawBatch {
    /// As a broker's batch is read: events without their own node and incarnation get the
    /// batch's, and events without a sequence are numbered from `first_sequence`.
    fn from(batch: EventBatch) -> Self {
        let origin = origin(&batch.node_id, batch.incarnation);
        let events = batch
            .events
            .iter()
            .map(|event| {
                let mut raw = RawEvent::encode(event);
                if event.node_id.is_empty() && event.incarnation == 0 {
                    raw.origin.clone_from(&origin);
                }
                raw
            })
            .collect();
        let mut raw = Self { node_id: batch.node_id, incarnation: batch.incarnation, events };
        if batch.first_sequence > 0 {
            raw.number(batch.first_sequence);
        }
        raw
    }
}

/// A batch's node and incarnation as `Event` fields, for the events sent without them (none when
/// both are defaults, which proto3 leaves out anyway).
fn origin(node_id: &str, incarnation: u64) -> Option<Bytes> {
    let partial = Event { node_id: node_id.to_string(), incarnation, ..Event::default() };
    let bytes = prost::Message::encode_to_vec(&partial);
    (!bytes.is_empty()).then(|| Bytes::from(bytes))
}

/// Decodes a stored event, filling in its id (`<node>/<incarnation>/<sequence>`) when the broker
/// left it out.
pub fn decode_event(buf: impl Buf) -> Result<Event, prost::DecodeError> {
    let mut event: Event = prost::Message::decode(buf)?;
    if event.id.is_empty() {
        event.id = format!("{}/{}/{}", event.node_id, event.incarnation, event.sequence);
    }
    Ok(event)
}

/// A protobuf field's value as framed on the wire.
enum Value {
    Varint(u64),
    Bytes(Range<usize>),
    Fixed,
}

/// Why bytes are not a well-framed message (made into the error text only when it happens).
#[derive(Debug, Clone, Copy)]
enum Broken {
    VarintPastEnd,
    VarintTooLong,
    FieldNumberZero,
    FixedPastEnd,
    LengthTooLarge,
    LengthPastEnd,
    WireType(u64),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VarintPastEnd => f.write_str("a varint runs past the end"),
            Self::VarintTooLong => f.write_str("a varint is longer than 10 bytes"),
            Self::FieldNumberZero => f.write_str("field number 0"),
            Self::FixedPastEnd => f.write_str("a fixed field runs past the end"),
            Self::LengthTooLarge => f.write_str("a length is too large"),
            Self::LengthPastEnd => f.write_str("a field's length runs past the end"),
            Self::WireType(t) => write!(f, "wire type {t} is not used by these messages"),
        }
    }
}

impl From<Broken> for String {
    fn from(broken: Broken) -> Self {
        broken.to_string()
    }
}

#[inline]
fn varint(buf: &[u8], at: &mut usize) -> Result<u64, Broken> {
    // Keys, small numbers and short lengths take one byte.
    if let Some(&byte) = buf.get(*at)
        && byte < 0x80
    {
        *at += 1;
        return Ok(u64::from(byte));
    }
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at).ok_or(Broken::VarintPastEnd)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Broken::VarintTooLong)
}

/// The fields of a message, in order: (field number, value), with positions relative to the
/// message. After a broken field it ends.
struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

/// The fields of the message `buf`.
fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, at: 0 }
}

impl Fields<'_> {
    #[inline]
    fn field(&mut self) -> Result<(u64, Value), Broken> {
        let (buf, at) = (self.buf, &mut self.at);
        let key = varint(buf, at)?;
        let number = key >> 3;
        if number == 0 {
            return Err(Broken::FieldNumberZero);
        }
        let value = match key & 7 {
            0 => Value::Varint(varint(buf, at)?),
            wire @ (1 | 5) => {
                let width = if wire == 1 { 8 } else { 4 };
                *at = at
                    .checked_add(width)
                    .filter(|end| *end <= buf.len())
                    .ok_or(Broken::FixedPastEnd)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, at)?).map_err(|_| Broken::LengthTooLarge)?;
                let end = at
                    .checked_add(len)
                    .filter(|end| *end <= buf.len())
                    .ok_or(Broken::LengthPastEnd)?;
                let range = *at..end;
                *at = end;
                Value::Bytes(range)
            }
            other => return Err(Broken::WireType(other)),
        };
        Ok((number, value))
    }
}

impl Iterator for Fields<'_> {
    type Item = Result<(u64, Value), Broken>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.at = self.buf.len();
        }
        Some(field)
    }
}

/// The last occurrence of length-delimited field `number` in `buf` (protobuf: the last one wins).
fn bytes_field(buf: &[u8], number: u64) -> Result<Option<Range<usize>>, Broken> {
    let mut found = None;
    for field in fields(buf) {
        if let (n, Value::Bytes(range)) = field?
            && n == number
        {
            found = Some(range);
        }
    }
    Ok(found)
}

/// The event type of a payload field number of `Event`, and the field number of the message in
/// that payload (message events).
fn payload_kind(number: u64) -> Option<(WebhookEvent, Option<u64>)> {
    Some(match number {
        10 => (WebhookEvent::ClientConnect, None),
        11 => (WebhookEvent::ClientConnack, None),
        12 => (WebhookEvent::ClientConnected, None),
        13 => (WebhookEvent::ClientDisconnected, None),
        14 => (WebhookEvent::ClientSubscribe, None),
        15 => (WebhookEvent::ClientUnsubscribe, None),
        16 => (WebhookEvent::SessionSubscribed, None),
        17 => (WebhookEvent::SessionUnsubscribed, None),
        18 => (WebhookEvent::SessionTerminated, None),
        19 => (WebhookEvent::MessagePublish, Some(1)),
        20 => (WebhookEvent::MessageDelivered, Some(2)),
        21 => (WebhookEvent::MessageAcked, Some(2)),
        22 => (WebhookEvent::MessageDropped, Some(2)),
        _ => return None,
    })
}

/// Reads one encoded `Event`.
pub fn parse_event(bytes: Bytes) -> Result<RawEvent, String> {
    parse_event_from(bytes, None)
}

/// Reads one encoded `Event` of a batch whose node and incarnation fields are `origin`.
fn parse_event_from(bytes: Bytes, origin: Option<&Bytes>) -> Result<RawEvent, String> {
    let mut event = RawEvent::default();
    let mut payload = None;
    let mut has_origin = false;
    for field in fields(&bytes) {
        match field? {
            (2, Value::Bytes(_)) | (3, Value::Varint(_)) => has_origin = true,
            (4, Value::Varint(v)) => event.sequence = v,
            (5, Value::Varint(v)) => event.timestamp_ms = v,
            (number, Value::Bytes(range)) => {
                if let Some(kind) = payload_kind(number) {
                    payload = Some((kind, range));
                }
            }
            _ => {}
        }
    }
    if let Some(((kind, message_field), range)) = payload {
        event.kind = Some(kind);
        // As `route::message_topic` reads the decoded event: no message, no topic; a message
        // without a topic field has the topic "".
        if let Some(field) = message_field {
            let body = &bytes[range.clone()];
            if let Some(message) = bytes_field(body, field)? {
                let inner = &body[message.clone()];
                let start = range.start + message.start;
                event.topic = Some(match bytes_field(inner, 1)? {
                    Some(topic) => {
                        std::str::from_utf8(&inner[topic.clone()])
                            .map_err(|_| "a message topic is not UTF-8")?;
                        start + topic.start..start + topic.end
                    }
                    None => start..start,
                });
            }
        }
    }
    event.bytes = bytes;
    if !has_origin {
        event.origin = origin.cloned();
    }
    Ok(event)
}

/// Reads an encoded `EventBatch`.
pub fn parse_batch(mut bytes: Bytes) -> Result<RawBatch, String> {
    let mut batch = RawBatch::default();
    let mut node_id = None;
    let mut events = Vec::new();
    let mut first_sequence = 0;
    for field in fields(&bytes) {
        match field? {
            (1, Value::Bytes(range)) => node_id = Some(range),
            (2, Value::Varint(v)) => batch.incarnation = v,
            (3, Value::Bytes(range)) => events.push(range),
            (4, Value::Varint(v)) => first_sequence = v,
            _ => {}
        }
    }
    if let Some(range) = node_id {
        batch.node_id =
            std::str::from_utf8(&bytes[range]).map_err(|_| "the node id is not UTF-8")?.to_string();
    }
    let origin = origin(&batch.node_id, batch.incarnation);
    batch.events.reserve(events.len());
    let mut consumed = 0;
    for range in events {
        bytes.advance(range.start - consumed);
        let event = bytes.split_to(range.len());
        consumed = range.end;
        batch.events.push(parse_event_from(event, origin.as_ref())?);
    }
    if first_sequence > 0 {
        batch.number(first_sequence);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{events::v1 as pb, events::v1::event::Payload, types::v1 as types};

    fn message(topic: &str) -> Option<types::Message> {
        Some(types::Message {
            topic: topic.into(),
            payload: Bytes::from_static(b"\x00\xffbody"),
            from_client_id: "c1".into(),
            ..Default::default()
        })
    }

    fn every_kind() -> Vec<Event> {
        let client = Some(types::ClientInfo { client_id: "c1".into(), ..Default::default() });
        let payloads = vec![
            Payload::ClientConnect(pb::ClientConnect { client: client.clone() }),
            Payload::ClientConnack(pb::ClientConnack {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::ClientConnected(pb::ClientConnected {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::ClientDisconnected(pb::ClientDisconnected {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::ClientSubscribe(pb::ClientSubscribe {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::ClientUnsubscribe(pb::ClientUnsubscribe {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::SessionSubscribed(pb::SessionSubscribed {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::SessionUnsubscribed(pb::SessionUnsubscribed {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::SessionTerminated(pb::SessionTerminated {
                client: client.clone(),
                ..Default::default()
            }),
            Payload::MessagePublish(pb::MessagePublish { message: message("a/ü/1") }),
            Payload::MessageDelivered(pb::MessageDelivered {
                client: client.clone(),
                message: message("d/1"),
            }),
            Payload::MessageAcked(pb::MessageAcked {
                client: client.clone(),
                message: message("a/2"),
            }),
            Payload::MessageDropped(pb::MessageDropped {
                client,
                message: message("x/3"),
                reason: "full".into(),
            }),
        ];
        (1u64..)
            .zip(payloads)
            .map(|(sequence, payload)| Event {
                id: format!("n1/7/{sequence}"),
                node_id: "n1".into(),
                incarnation: 7,
                sequence: sequence * 1000,
                timestamp_ms: 1_700_000_000_000 + sequence,
                payload: Some(payload),
            })
            .collect()
    }

    #[test]
    fn a_batch_reads_as_prost_decodes_it_for_every_event_type() {
        let batch = EventBatch {
            node_id: "node-ä".into(),
            incarnation: 7,
            events: every_kind(),
            first_sequence: 0,
        };
        let raw = parse_batch(Bytes::from(prost::Message::encode_to_vec(&batch))).expect("parses");
        assert_eq!((raw.node_id.as_str(), raw.incarnation), ("node-ä", 7));
        assert_eq!(raw.events.len(), batch.events.len());
        for (raw, event) in raw.events.iter().zip(&batch.events) {
            assert_eq!(raw.sequence, event.sequence);
            assert_eq!(raw.timestamp_ms, event.timestamp_ms);
            assert_eq!(raw.kind, crate::route::event_kind(event));
            assert_eq!(raw.topic(), crate::route::message_topic(event), "{:?}", raw.kind);
            assert_eq!(&raw.decode().expect("decodes"), event, "the bytes are the event's");
            assert_eq!(raw.bytes.as_ref(), prost::Message::encode_to_vec(event).as_slice());
        }
    }

    #[test]
    fn events_sent_without_id_node_and_incarnation_get_the_batch_s() {
        let full = every_kind();
        let compact: Vec<Event> = full
            .iter()
            .map(|e| Event {
                id: String::new(),
                node_id: String::new(),
                incarnation: 0,
                ..e.clone()
            })
            .collect();
        let batch = EventBatch {
            node_id: "n1".into(),
            incarnation: 7,
            events: compact.clone(),
            first_sequence: 0,
        };
        let raw = parse_batch(Bytes::from(prost::Message::encode_to_vec(&batch))).expect("parses");
        // A batch handed over as prost types reads the same.
        let converted = RawBatch::from(batch);
        for (a, b) in converted.events.iter().zip(&raw.events) {
            assert_eq!(a.decode().ok(), b.decode().ok());
            assert_eq!(a.len(), b.len());
        }
        for ((raw, compact), full) in raw.events.iter().zip(&compact).zip(&full) {
            assert_eq!(raw.bytes.as_ref(), prost::Message::encode_to_vec(compact).as_slice());
            let expected = Event { id: format!("n1/7/{}", full.sequence), ..full.clone() };
            assert_eq!(raw.decode().ok().as_ref(), Some(&expected));
            // What the outbox stores is the whole event but its id, filled in when read.
            let mut stored = Vec::new();
            raw.write_to(&mut stored);
            assert_eq!(stored.len(), raw.len());
            let read = prost::Message::decode(stored.as_slice()).unwrap_or_default();
            assert_eq!(Event { id: String::new(), ..expected.clone() }, read);
            assert_eq!(decode_event(stored.as_slice()).ok(), Some(expected));
            assert_eq!((raw.sequence, raw.kind), (full.sequence, crate::route::event_kind(full)));
            assert_eq!(raw.topic(), crate::route::message_topic(full));
        }
        // Events that carry their own are stored as sent.
        let batch = EventBatch {
            node_id: "other".into(),
            incarnation: 9,
            events: full.clone(),
            first_sequence: 0,
        };
        let raw = parse_batch(Bytes::from(prost::Message::encode_to_vec(&batch))).expect("parses");
        for (raw, full) in raw.events.iter().zip(&full) {
            let mut stored = Vec::new();
            raw.write_to(&mut stored);
            assert_eq!(stored, prost::Message::encode_to_vec(full));
            assert_eq!(raw.decode().ok().as_ref(), Some(full));
        }
        // A batch from a node without id or incarnation adds nothing.
        let batch = EventBatch {
            node_id: String::new(),
            incarnation: 0,
            events: compact.clone(),
            first_sequence: 0,
        };
        let raw = parse_batch(Bytes::from(prost::Message::encode_to_vec(&batch))).expect("parses");
        assert_eq!(raw.events[0].len(), raw.events[0].bytes.len());
        assert_eq!(raw.events[0].decode().map(|e| e.id).ok().as_deref(), Some("/0/1000"));
    }

    #[test]
    fn events_sent_without_a_sequence_are_numbered_from_the_batch_s_first() {
        for first in [41, 99_999_999_999] {
            let full: Vec<Event> = every_kind()
                .into_iter()
                .zip(first..)
                .map(|(event, sequence)| Event { sequence, ..event })
                .collect();
            let compact: Vec<Event> = full
                .iter()
                .map(|e| Event {
                    id: String::new(),
                    node_id: String::new(),
                    incarnation: 0,
                    sequence: 0,
                    ..e.clone()
                })
                .collect();
            // As a broker writes it: the first sequence after the events, once they are counted.
            let mut bytes = prost::Message::encode_to_vec(&EventBatch {
                node_id: "n1".into(),
                incarnation: 7,
                events: compact.clone(),
                first_sequence: 0,
            });
            prost::encoding::uint64::encode(4, &first, &mut bytes);
            let raw = parse_batch(Bytes::from(bytes)).expect("parses");
            let converted = RawBatch::from(EventBatch {
                node_id: "n1".into(),
                incarnation: 7,
                events: compact,
                first_sequence: first,
            });
            assert_eq!((raw.events.len(), converted.events.len()), (full.len(), full.len()));
            for ((raw, converted), full) in raw.events.iter().zip(&converted.events).zip(&full) {
                let expected = Event { id: format!("n1/7/{}", full.sequence), ..full.clone() };
                assert_eq!(raw.sequence, full.sequence);
                assert_eq!(raw.decode().ok().as_ref(), Some(&expected));
                assert_eq!(converted.decode().ok().as_ref(), Some(&expected));
                // The outbox stores the number with the event.
                let mut stored = Vec::new();
                raw.write_to(&mut stored);
                assert_eq!(stored.len(), raw.len());
                assert_eq!(decode_event(stored.as_slice()).ok(), Some(expected));
            }
        }
        // Events that carry a sequence keep it; only those without one are numbered.
        let events = vec![
            Event { sequence: 9, ..Event::default() },
            Event { timestamp_ms: 1, ..Event::default() },
            Event { timestamp_ms: 2, ..Event::default() },
        ];
        let batch = EventBatch { node_id: "n".into(), incarnation: 1, events, first_sequence: 20 };
        let raw = parse_batch(Bytes::from(prost::Message::encode_to_vec(&batch))).expect("parses");
        let numbers: Vec<u64> = raw.events.iter().map(|e| e.sequence).collect();
        assert_eq!(numbers, [9, 20, 21]);
        let decoded: Vec<u64> =
            raw.events.iter().filter_map(|e| e.decode().ok()).map(|e| e.sequence).collect();
        assert_eq!(decoded, [9, 20, 21]);
    }

    #[test]
    fn an_event_without_payload_or_message_still_reads() {
        let bare = Event { sequence: 3, ..Default::default() };
        let raw = RawEvent::encode(&bare);
        assert_eq!((raw.sequence, raw.kind, raw.topic()), (3, None, None));
        let empty = Event {
            payload: Some(Payload::MessagePublish(pb::MessagePublish { message: None })),
            ..Default::default()
        };
        let raw = RawEvent::encode(&empty);
        assert_eq!((raw.kind, raw.topic()), (Some(WebhookEvent::MessagePublish), None));
        assert_eq!(crate::route::message_topic(&empty), None);
        let untitled = Event {
            payload: Some(Payload::MessagePublish(pb::MessagePublish { message: message("") })),
            ..Default::default()
        };
        assert_eq!(RawEvent::encode(&untitled).topic(), Some(""));
        assert_eq!(crate::route::message_topic(&untitled), Some(""));
    }

    #[test]
    fn broken_framing_is_refused_with_a_reason() {
        let batch = EventBatch {
            node_id: "n".into(),
            incarnation: 1,
            events: every_kind(),
            first_sequence: 0,
        };
        let good = prost::Message::encode_to_vec(&batch);
        // Cut anywhere inside, the batch either parses to fewer bytes or is refused; never panics.
        for cut in 0..good.len() {
            let _ = parse_batch(Bytes::copy_from_slice(&good[..cut]));
        }
        let cut = parse_batch(Bytes::copy_from_slice(&good[..good.len() - 3]));
        assert!(cut.is_err(), "the last event's length runs past the end");
        for (bytes, reason) in [
            (vec![0x1a, 0x05, 0x20], "a field's length runs past the end"),
            (vec![0x10, 0xff], "a varint runs past the end"),
            (vec![0x0b], "wire type 3 is not used by these messages"),
            (vec![0x00, 0x01], "field number 0"),
            (
                vec![0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                "a varint is longer than 10 bytes",
            ),
        ] {
            assert_eq!(parse_batch(Bytes::from(bytes)).err().as_deref(), Some(reason));
        }
        // A topic that is not UTF-8.
        let mut event = prost::Message::encode_to_vec(&every_kind()[9]);
        let topic = "a/ü/1".as_bytes();
        let at = event.windows(topic.len()).position(|w| w == topic).expect("topic");
        event[at] = 0xff;
        assert_eq!(
            parse_event(Bytes::from(event)).err().as_deref(),
            Some("a message topic is not UTF-8")
        );
    }
}
