//! Session state that outlives a connection: subscriptions, the QoS 1/2 messages sent and not yet
//! acknowledged (resent with DUP after a reconnect), QoS 2 messages received and awaiting PUBREL,
//! and the packet identifier allocator.
//!
//! While a client is connected its connection task owns the [`SessionState`]; when it disconnects
//! with a session to keep, the state moves into the registry until the client comes back or the
//! session expires.

use std::{
    collections::{HashMap, VecDeque},
    num::NonZeroU16,
    sync::Arc,
    time::Instant,
};

use bytestring::ByteString;
use mqtt_codec::RetainHandling;

use crate::{
    auth::ClientIdentity,
    mailbox::Mailbox,
    message::{Delivery, SessionId},
    router::{RouteOptions, SubscriptionFilter},
};

/// A subscription as the session remembers it (to restore, list and remove it).
#[derive(Debug, Clone)]
pub struct SubscriptionRecord {
    /// The filter split for the router.
    pub filter: SubscriptionFilter,
    /// Options for routing.
    pub options: RouteOptions,
    /// Retain Handling requested.
    pub retain_handling: RetainHandling,
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone)]
pub enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published(Delivery),
    /// PUBREL sent; waiting for PUBCOMP. The message itself is no longer needed, but it is kept
    /// for the "acked" event.
    Released(Delivery),
}

/// One outgoing message in flight.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Its packet identifier.
    pub packet_id: NonZeroU16,
    /// Where it stands.
    pub stage: Stage,
}

/// Outgoing QoS 1/2 messages in the order they were first sent, plus the packet id allocator.
#[derive(Debug, Default)]
pub struct Outbound {
    entries: VecDeque<InFlight>,
    /// The last packet id handed out (0 before the first).
    last_id: u16,
}

impl Outbound {
    /// Number of messages in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Allocates a packet id not used by any message in flight. Returns `None` only when all
    /// 65,535 are in use (the caller's inflight window prevents that).
    pub fn allocate(&mut self) -> Option<NonZeroU16> {
        for _ in 0..u16::MAX {
            self.last_id = if self.last_id == u16::MAX { 1 } else { self.last_id + 1 };
            let candidate = self.last_id;
            if !self.in_use(candidate) {
                return NonZeroU16::new(candidate);
            }
        }
        None
    }

    /// Ids are allocated in increasing order (wrapping), and entries are kept in allocation order,
    /// so a candidate outside the circular range [oldest in flight, last allocated] is free
    /// without a scan.
    fn in_use(&self, id: u16) -> bool {
        let Some(oldest) = self.entries.front().map(|e| e.packet_id.get()) else {
            return false;
        };
        let newest = self.entries.back().map_or(oldest, |e| e.packet_id.get());
        let within = if oldest <= newest {
            (oldest..=newest).contains(&id)
        } else {
            id >= oldest || id <= newest
        };
        within && self.entries.iter().any(|e| e.packet_id.get() == id)
    }

    /// Records a message just sent.
    pub fn push(&mut self, packet_id: NonZeroU16, delivery: Delivery) {
        self.entries.push_back(InFlight { packet_id, stage: Stage::Published(delivery) });
    }

    fn position(&self, packet_id: NonZeroU16) -> Option<usize> {
        // Acknowledgements usually come in order: check the front first.
        match self.entries.front() {
            Some(e) if e.packet_id == packet_id => Some(0),
            _ => self.entries.iter().position(|e| e.packet_id == packet_id),
        }
    }

    /// PUBACK: removes a QoS 1 message. Returns it, or `None` when no QoS 1 message with that id
    /// awaits a PUBACK.
    pub fn puback(&mut self, packet_id: NonZeroU16) -> Option<Delivery> {
        let i = self.position(packet_id)?;
        match &self.entries[i].stage {
            Stage::Published(d) if d.qos == mqtt_codec::QoS::AtLeastOnce => {}
            _ => return None,
        }
        match self.entries.remove(i)?.stage {
            Stage::Published(d) => Some(d),
            Stage::Released(_) => None,
        }
    }

    /// PUBREC: moves a QoS 2 message to [`Stage::Released`]. Returns true when the PUBREL is due
    /// (also for a repeated PUBREC of a message already released).
    pub fn pubrec(&mut self, packet_id: NonZeroU16) -> bool {
        let Some(i) = self.position(packet_id) else { return false };
        let entry = &mut self.entries[i];
        match &entry.stage {
            Stage::Published(d) if d.qos == mqtt_codec::QoS::ExactlyOnce => {
                entry.stage = Stage::Released(d.clone());
                true
            }
            Stage::Released(_) => true,
            Stage::Published(_) => false,
        }
    }

    /// PUBREC with an error reason code: the message is finished (not delivered).
    pub fn discard(&mut self, packet_id: NonZeroU16) -> Option<Delivery> {
        let i = self.position(packet_id)?;
        match self.entries.remove(i)?.stage {
            Stage::Published(d) | Stage::Released(d) => Some(d),
        }
    }

    /// PUBCOMP: removes a released QoS 2 message.
    pub fn pubcomp(&mut self, packet_id: NonZeroU16) -> Option<Delivery> {
        let i = self.position(packet_id)?;
        if !matches!(self.entries[i].stage, Stage::Released(_)) {
            return None;
        }
        match self.entries.remove(i)?.stage {
            Stage::Released(d) => Some(d),
            Stage::Published(_) => None,
        }
    }

    /// Everything in flight, in send order (to resend after a reconnect).
    pub fn iter(&self) -> impl Iterator<Item = &InFlight> {
        self.entries.iter()
    }

    /// Outbound state rebuilt from saved entries (in send order).
    pub fn from_entries(entries: Vec<InFlight>) -> Self {
        let last_id = entries.last().map_or(0, |e| e.packet_id.get());
        Self { entries: entries.into(), last_id }
    }

    /// Takes everything in flight (the session ends).
    pub fn take_all(&mut self) -> Vec<InFlight> {
        std::mem::take(&mut self.entries).into()
    }
}

/// QoS 2 messages received, answered with PUBREC, and awaiting PUBREL: their ids and when they
/// arrived. A repeated PUBLISH with one of these ids is not routed again (exactly once).
#[derive(Debug, Default)]
pub struct AwaitingRelease {
    ids: HashMap<u16, Instant, foldhash::fast::RandomState>,
}

impl AwaitingRelease {
    /// Records a received QoS 2 message. Returns false when the id was already awaiting release
    /// (a retransmission: do not route it again).
    pub fn insert(&mut self, packet_id: NonZeroU16, now: Instant) -> bool {
        self.ids.insert(packet_id.get(), now).is_none()
    }

    /// PUBREL: forgets the id. Returns whether it was known.
    pub fn release(&mut self, packet_id: NonZeroU16) -> bool {
        self.ids.remove(&packet_id.get()).is_some()
    }

    /// Number of messages awaiting release.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none awaits release.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Forgets ids older than `deadline` (`await_rel_timeout`); returns how many.
    pub fn expire(&mut self, deadline: Instant) -> usize {
        let before = self.ids.len();
        self.ids.retain(|_, at| *at >= deadline);
        before - self.ids.len()
    }
}

/// Everything that survives a disconnect of a persistent session.
#[derive(Debug)]
pub struct SessionState {
    /// The session's id.
    pub id: SessionId,
    /// Routed messages waiting to be sent.
    pub mailbox: Arc<Mailbox>,
    /// Subscriptions by filter as sent.
    pub subscriptions: HashMap<ByteString, SubscriptionRecord, foldhash::fast::RandomState>,
    /// Outgoing QoS 1/2 in flight.
    pub outbound: Outbound,
    /// Incoming QoS 2 awaiting PUBREL.
    pub awaiting_release: AwaitingRelease,
    /// Session Expiry Interval in force, seconds (`u32::MAX` = never).
    pub expiry_interval: u32,
    /// The identity of the last connection (admin listing of offline sessions).
    pub client: Arc<ClientIdentity>,
    /// When the session was created (epoch ms).
    pub created_at_ms: u64,
}

impl SessionState {
    /// A new, empty session.
    pub fn new(id: SessionId, mailbox: Arc<Mailbox>, client: Arc<ClientIdentity>) -> Self {
        Self {
            id,
            mailbox,
            subscriptions: HashMap::default(),
            outbound: Outbound::default(),
            awaiting_release: AwaitingRelease::default(),
            expiry_interval: 0,
            client,
            created_at_ms: crate::clock::now_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use mqtt_codec::QoS;

    use super::*;
    use crate::test_util::message;

    fn delivery(qos: QoS) -> Delivery {
        Delivery {
            message: message("t", qos, false),
            qos,
            retain: false,
            subscription_ids: Default::default(),
        }
    }

    fn id(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).expect("non-zero")
    }

    #[test]
    fn packet_ids_skip_those_in_flight_across_wraparound() {
        let mut out = Outbound::default();
        let first = out.allocate().expect("free");
        assert_eq!(first.get(), 1);
        out.push(first, delivery(QoS::AtLeastOnce));
        // Allocate (and immediately ack) until the counter wraps; id 1 stays in flight.
        for _ in 0..(u16::MAX - 1) {
            let i = out.allocate().expect("free");
            out.push(i, delivery(QoS::AtLeastOnce));
            assert!(out.puback(i).is_some());
        }
        let next = out.allocate().expect("free");
        assert_eq!(next.get(), 2, "1 is still in flight, so it is skipped");
    }

    #[test]
    fn qos2_outbound_goes_through_pubrec_and_pubcomp() {
        let mut out = Outbound::default();
        let i = out.allocate().expect("free");
        out.push(i, delivery(QoS::ExactlyOnce));
        assert!(out.puback(i).is_none(), "PUBACK does not finish a QoS 2 message");
        assert!(out.pubcomp(i).is_none(), "PUBCOMP before PUBREC is ignored");
        assert!(out.pubrec(i));
        assert!(out.pubrec(i), "a repeated PUBREC is answered again");
        assert!(out.pubcomp(i).is_some());
        assert!(out.is_empty());
    }

    #[test]
    fn out_of_order_acks_remove_the_right_entry() {
        let mut out = Outbound::default();
        let ids: Vec<_> = (0..3).map(|_| out.allocate().expect("free")).collect();
        for &i in &ids {
            out.push(i, delivery(QoS::AtLeastOnce));
        }
        assert!(out.puback(ids[1]).is_some());
        let left: Vec<u16> = out.iter().map(|e| e.packet_id.get()).collect();
        assert_eq!(left, vec![ids[0].get(), ids[2].get()]);
        assert!(out.puback(ids[1]).is_none(), "already acknowledged");
    }

    #[test]
    fn awaiting_release_detects_retransmissions() {
        let mut rel = AwaitingRelease::default();
        let now = Instant::now();
        assert!(rel.insert(id(7), now));
        assert!(!rel.insert(id(7), now), "same id again: a retransmission");
        assert!(rel.release(id(7)));
        assert!(!rel.release(id(7)));
        assert!(rel.insert(id(7), now), "the id is free again after PUBREL");
        assert_eq!(rel.expire(now + std::time::Duration::from_secs(1)), 1);
    }
}
