//! The event seam: what happens in the broker, for webhooks and other consumers.
//!
//! The broker asks [`EventSink::wants`] before building an event, so an event nobody wants costs
//! one call. [`EventSink::emit`] must not block: the webhook issue's implementation queues into a
//! bounded buffer batched onto the relay stream. [`NoEvents`] is the default.

use std::{fmt::Debug, sync::Arc};

use bytestring::ByteString;

use crate::{
    auth::ClientIdentity,
    message::{Delivery, MessageRef},
    router::RouteOptions,
};

/// The kinds of events (DESIGN.md's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A CONNECT arrived.
    ClientConnect,
    /// A CONNACK was sent.
    ClientConnack,
    /// A client is connected with its session ready.
    ClientConnected,
    /// A connection ended.
    ClientDisconnected,
    /// A SUBSCRIBE arrived.
    ClientSubscribe,
    /// An UNSUBSCRIBE arrived.
    ClientUnsubscribe,
    /// A subscription was added to a session.
    SessionSubscribed,
    /// A subscription was removed from a session.
    SessionUnsubscribed,
    /// A session ended.
    SessionTerminated,
    /// A message was published.
    MessagePublish,
    /// A message was written to a subscriber.
    MessageDelivered,
    /// A subscriber acknowledged a message.
    MessageAcked,
    /// A message was dropped.
    MessageDropped,
}

/// One subscription in a subscribe event.
#[derive(Debug, Clone)]
pub struct SubscriptionEvent {
    /// Filter as sent (with any `$share/` prefix).
    pub filter: ByteString,
    /// Options requested or granted.
    pub options: RouteOptions,
    /// Retain Handling requested.
    pub retain_handling: u8,
}

/// An event with its wall-clock time (epoch ms).
#[derive(Debug, Clone)]
pub struct BrokerEvent {
    /// When it happened.
    pub timestamp_ms: u64,
    /// What happened.
    pub kind: Event,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A CONNECT arrived (before authentication).
    ClientConnect {
        /// The client.
        client: Arc<ClientIdentity>,
    },
    /// A CONNACK was sent.
    ClientConnack {
        /// The client.
        client: Arc<ClientIdentity>,
        /// MQTT 5 reason code (0 = success).
        reason_code: u8,
        /// Session Present.
        session_present: bool,
    },
    /// The client is connected.
    ClientConnected {
        /// The client.
        client: Arc<ClientIdentity>,
        /// Session Present.
        session_present: bool,
        /// Keep alive in force, seconds.
        keepalive: u16,
        /// Session expiry in force, seconds.
        session_expiry_interval: u32,
    },
    /// The connection ended.
    ClientDisconnected {
        /// The client.
        client: Arc<ClientIdentity>,
        /// MQTT 5 reason code of the DISCONNECT sent or received.
        reason_code: u8,
        /// Short reason ("normal", "keepalive_timeout", "takeover", ...).
        reason: &'static str,
        /// The client sent DISCONNECT.
        graceful: bool,
    },
    /// A SUBSCRIBE arrived.
    ClientSubscribe {
        /// The client.
        client: Arc<ClientIdentity>,
        /// Requested subscriptions.
        subscriptions: Vec<SubscriptionEvent>,
    },
    /// An UNSUBSCRIBE arrived.
    ClientUnsubscribe {
        /// The client.
        client: Arc<ClientIdentity>,
        /// Filters.
        filters: Vec<ByteString>,
    },
    /// A subscription was added.
    SessionSubscribed {
        /// The client.
        client: Arc<ClientIdentity>,
        /// The subscription granted.
        subscription: SubscriptionEvent,
    },
    /// A subscription was removed.
    SessionUnsubscribed {
        /// The client.
        client: Arc<ClientIdentity>,
        /// The filter removed.
        filter: ByteString,
    },
    /// A session ended.
    SessionTerminated {
        /// The client.
        client: Arc<ClientIdentity>,
        /// Why ("clean_start", "expired", "takeover", "kicked").
        reason: &'static str,
    },
    /// A message was published (after authorization, before routing).
    MessagePublish {
        /// The message.
        message: MessageRef,
    },
    /// A message was written to a subscriber.
    MessageDelivered {
        /// The subscriber.
        client: Arc<ClientIdentity>,
        /// The delivery.
        delivery: Delivery,
    },
    /// A subscriber acknowledged a message.
    MessageAcked {
        /// The subscriber.
        client: Arc<ClientIdentity>,
        /// The delivery acknowledged.
        delivery: Delivery,
    },
    /// A message was dropped.
    MessageDropped {
        /// The subscriber it was meant for; `None` when dropped before routing.
        client_id: Option<ByteString>,
        /// The message.
        message: MessageRef,
        /// Why ("no_subscribers", "queue_full", "expired", "too_large", "not_authorized", ...).
        reason: &'static str,
    },
}

impl Event {
    /// The client whose events keep their order (as webhook-relay delivers them): the client of
    /// client, session and delivery events, the publisher of a `message_publish`, and none ("")
    /// for a message dropped before it was routed.
    pub fn client_id(&self) -> &str {
        match self {
            Self::ClientConnect { client }
            | Self::ClientConnack { client, .. }
            | Self::ClientConnected { client, .. }
            | Self::ClientDisconnected { client, .. }
            | Self::ClientSubscribe { client, .. }
            | Self::ClientUnsubscribe { client, .. }
            | Self::SessionSubscribed { client, .. }
            | Self::SessionUnsubscribed { client, .. }
            | Self::SessionTerminated { client, .. }
            | Self::MessageDelivered { client, .. }
            | Self::MessageAcked { client, .. } => &client.client_id,
            Self::MessagePublish { message } => &message.from_client_id,
            Self::MessageDropped { client_id, .. } => client_id.as_deref().unwrap_or(""),
        }
    }
}

/// Receives broker events.
pub trait EventSink: Send + Sync + Debug {
    /// Whether events of this kind are wanted at all (checked before building one).
    fn wants(&self, kind: EventKind) -> bool;
    /// Takes an event. Must not block.
    fn emit(&self, event: BrokerEvent);
    /// Takes the `message_publish` event of `message`, stamped with its receive time: the one
    /// event per message, so sinks may keep just the message.
    fn emit_message_publish(&self, message: &MessageRef) {
        self.emit(BrokerEvent {
            timestamp_ms: message.received_at_ms,
            kind: Event::MessagePublish { message: Arc::clone(message) },
        });
    }
    /// Events dropped so far because the sink's buffer was full (`$SYS/brokers/<node>/events/dropped`).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Wants nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn wants(&self, _kind: EventKind) -> bool {
        false
    }

    fn emit(&self, _event: BrokerEvent) {}
}
