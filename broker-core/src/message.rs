//! Messages as the router moves them: one [`Message`] per PUBLISH received, shared by reference
//! (`Arc`) by every subscriber it is routed to, and one small [`Delivery`] per subscriber saying
//! how that subscriber gets it (QoS after downgrade, retain flag, subscription identifiers).
//!
//! Nothing here copies a payload: topic and payload are `Bytes` slices of the publisher's read
//! buffer, and a delivery is an `Arc` clone plus a few bytes.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use bytestring::ByteString;
use mqtt_codec::{PublishProperties, QoS};
use smallvec::SmallVec;

/// Identifies one session for as long as it exists (a resumed session keeps its id; a new session
/// for the same client id gets a new one). Used for No Local and for de-duplicating overlapping
/// subscriptions of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// An application message as received from a publisher (or injected by the broker).
#[derive(Debug)]
pub struct Message {
    /// Topic name (after topic-alias resolution).
    pub topic: ByteString,
    /// Payload, unchanged.
    pub payload: Bytes,
    /// QoS the publisher used.
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    /// MQTT 5 properties to forward (payload format, expiry as published, content type, response
    /// topic, correlation data, user properties). Topic Alias and Subscription Identifiers are
    /// never kept here: they are per-hop.
    pub properties: PublishProperties,
    /// The publishing session, for No Local; `None` for messages the broker publishes itself.
    pub publisher: Option<SessionId>,
    /// The publisher's client id (empty for broker messages), for events and the admin API.
    pub from_client_id: ByteString,
    /// The publisher's username, when it had one.
    pub from_username: Option<ByteString>,
    /// When the broker received it; Message Expiry counts from here.
    pub received_at: Instant,
    /// Wall-clock receive time, epoch milliseconds (events, `$SYS`).
    pub received_at_ms: u64,
}

impl Message {
    /// When the message expires, from its Message Expiry Interval.
    pub fn expires_at(&self) -> Option<Instant> {
        self.properties
            .message_expiry_interval
            .map(|secs| self.received_at + std::time::Duration::from_secs(u64::from(secs)))
    }

    /// Whether the message has expired at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// The Message Expiry Interval left at `now`, in whole seconds (rounded up so a message never
    /// reaches a subscriber with 0 while still valid), or `None` when the message does not expire.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let at = self.expires_at()?;
        let left = at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }
}

/// A shared message.
pub type MessageRef = Arc<Message>;

/// Subscription identifiers carried by one delivery (usually none or one).
pub type SubscriptionIds = SmallVec<[u32; 2]>;

/// One message on its way to one subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message, shared with every other subscriber.
    pub message: MessageRef,
    /// min(publish QoS, subscription QoS), the maximum over the client's matching subscriptions.
    pub qos: QoS,
    /// RETAIN flag to send: the published flag when Retain As Published or when sent because of a
    /// subscription (retained delivery), else false.
    pub retain: bool,
    /// Identifiers of every matching subscription that had one.
    pub subscription_ids: SubscriptionIds,
}
