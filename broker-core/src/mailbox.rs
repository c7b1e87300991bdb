//! A session's inbound side for routed messages: a bounded queue that publishers' tasks push into
//! and the session's connection task drains.
//!
//! The router pushes from whichever task handled the PUBLISH, so the queue is a tiny critical
//! section (a `parking_lot` mutex held for a `VecDeque` push or pop, never across `.await`), plus a
//! `Notify` that wakes the connection task.
//!
//! **Backpressure before loss.** A publisher is acknowledged once its message is queued, so
//! dropping a queued QoS 1/2 message later would lose what was promised, and routing QoS 0
//! messages only to drop them wastes the time the subscriber needs. When an online session's
//! queue holds `max_len` messages, a new delivery is still queued (up to twice `max_len`, at least
//! `max_len` + 1024) and reported as [`Pushed::QueuedOverLimit`]: the publisher's connection then
//! stops taking PUBLISH packets until the queue has drained to half of `max_len`
//! ([`Mailbox::below_limit`]), for at most a bounded pause. A QoS 0 delivery to a full queue never
//! pushes out a QoS 1/2 one.
//!
//! **Overflow policy** (stated, counted) for what backpressure does not cover — offline sessions,
//! a subscriber stuck longer than the pause: when the queue is full, either the oldest
//! queued message is dropped to make room (default) or the new one is refused. While the session
//! is offline, QoS 0 messages are dropped unless `queue_qos0_offline` is set.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
};

use bytestring::ByteString;
use mqtt_codec::QoS;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::message::{Delivery, SessionId};

/// What to do when a session's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Drop the oldest queued message to make room for the new one.
    #[default]
    DropOldest,
    /// Refuse the new message.
    DropNewest,
}

/// Limits of one session's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Most messages queued (not counting those in flight). NanoMQ's `max_mqueue_len`.
    pub max_len: usize,
    /// What happens when the queue is full.
    pub overflow: OverflowPolicy,
    /// Keep QoS 0 messages for an offline session (MQTT allows either).
    pub queue_qos0_offline: bool,
}

/// Queue limits shared by every session of a broker and changed in place when the configuration
/// changes (`mqtt.max_mqueue_len`, `mqueue_overflow`, `queue_qos0` through the config store): a
/// new limit applies to the next message pushed into every queue; messages already queued stay.
#[derive(Debug)]
pub struct LiveQueueLimits {
    max_len: AtomicUsize,
    drop_newest: AtomicBool,
    queue_qos0_offline: AtomicBool,
}

impl LiveQueueLimits {
    /// Shared limits starting at `limits`.
    pub fn new(limits: QueueLimits) -> Arc<Self> {
        let live = Self {
            max_len: AtomicUsize::new(0),
            drop_newest: AtomicBool::new(false),
            queue_qos0_offline: AtomicBool::new(false),
        };
        live.set(limits);
        Arc::new(live)
    }

    /// Replaces the limits.
    pub fn set(&self, limits: QueueLimits) {
        self.max_len.store(limits.max_len, Ordering::Relaxed);
        self.drop_newest.store(limits.overflow == OverflowPolicy::DropNewest, Ordering::Relaxed);
        self.queue_qos0_offline.store(limits.queue_qos0_offline, Ordering::Relaxed);
    }

    /// The limits in force.
    pub fn get(&self) -> QueueLimits {
        QueueLimits {
            max_len: self.max_len(),
            overflow: if self.drop_newest.load(Ordering::Relaxed) {
                OverflowPolicy::DropNewest
            } else {
                OverflowPolicy::DropOldest
            },
            queue_qos0_offline: self.queue_qos0_offline.load(Ordering::Relaxed),
        }
    }

    fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }
}

/// Why a message did not make it into a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The queue was full.
    QueueFull,
    /// QoS 0 for an offline session.
    Offline,
    /// The session has ended.
    Closed,
}

impl DropReason {
    /// The short reason used in events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Offline => "offline_qos0",
            Self::Closed => "session_closed",
        }
    }
}

/// The result of a push.
#[derive(Debug)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued above `max_len` (QoS 1/2, online session): the publisher should pause.
    QueuedOverLimit,
    /// Queued, and the oldest message was dropped to make room.
    QueuedDroppingOldest(Delivery),
    /// Not queued.
    Dropped(DropReason, Delivery),
}

#[derive(Debug)]
struct Queue {
    items: VecDeque<Delivery>,
    online: bool,
    closed: bool,
}

/// One session's queue of routed messages.
#[derive(Debug)]
pub struct Mailbox {
    session: SessionId,
    client_id: ByteString,
    limits: Arc<LiveQueueLimits>,
    /// The queue; held only for a push or a pop.
    queue: Mutex<Queue>,
    /// Wakes the connection task when a message arrives.
    notify: Notify,
    /// Number of this session's subscriptions in the router. When every matched subscriber has
    /// exactly one, routing skips the per-client de-duplication step.
    subscriptions: AtomicU32,
    /// Messages dropped for this session (overflow, offline QoS 0).
    dropped: AtomicU64,
    /// Mirror of the queue's online flag, readable without the lock (shared-subscription picks
    /// prefer online members).
    online: AtomicBool,
    /// Wakes publishers paused on this queue once it is below `max_len`.
    drained: Notify,
    /// Whether a publisher is paused on this queue (pops only notify then).
    paused_publishers: AtomicBool,
}

impl Mailbox {
    /// A new, online, empty mailbox with its own fixed limits.
    pub fn new(session: SessionId, client_id: ByteString, limits: QueueLimits) -> Self {
        Self::with_limits(session, client_id, LiveQueueLimits::new(limits))
    }

    /// A new, online, empty mailbox following `limits` (shared, changed in place).
    pub fn with_limits(
        session: SessionId,
        client_id: ByteString,
        limits: Arc<LiveQueueLimits>,
    ) -> Self {
        Self {
            session,
            client_id,
            limits,
            queue: Mutex::new(Queue { items: VecDeque::new(), online: true, closed: false }),
            notify: Notify::new(),
            subscriptions: AtomicU32::new(0),
            dropped: AtomicU64::new(0),
            online: AtomicBool::new(true),
            drained: Notify::new(),
            paused_publishers: AtomicBool::new(false),
        }
    }

    /// The session this mailbox belongs to.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The client id of the session.
    pub fn client_id(&self) -> &ByteString {
        &self.client_id
    }

    /// Queues a delivery, applying the overflow policy. Wakes the connection task.
    pub fn push(&self, delivery: Delivery) -> Pushed {
        let outcome = {
            let mut q = self.queue.lock();
            if q.closed {
                Pushed::Dropped(DropReason::Closed, delivery)
            } else if !q.online
                && delivery.qos == QoS::AtMostOnce
                && !self.limits.queue_qos0_offline.load(Ordering::Relaxed)
            {
                Pushed::Dropped(DropReason::Offline, delivery)
            } else if q.items.len() >= self.limits.max_len() {
                let len = q.items.len();
                if q.online && len < self.hard_limit() {
                    q.items.push_back(delivery);
                    Pushed::QueuedOverLimit
                } else {
                    self.overflow(&mut q, delivery)
                }
            } else {
                q.items.push_back(delivery);
                Pushed::Queued
            }
        };
        match &outcome {
            Pushed::Queued | Pushed::QueuedOverLimit => self.notify.notify_one(),
            Pushed::QueuedDroppingOldest(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.notify.notify_one();
            }
            Pushed::Dropped(..) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        outcome
    }

    /// Most messages queued while publishers are being paused: twice `max_len`, and at least
    /// `max_len` + 1024, since every publisher may add a message before it sees the pause.
    fn hard_limit(&self) -> usize {
        let max_len = self.limits.max_len();
        max_len.saturating_mul(2).max(max_len.saturating_add(1024))
    }

    /// Applies the overflow policy to `delivery` arriving at a full queue. A QoS 0 delivery never
    /// pushes out a QoS 1/2 message of an online session (it is dropped instead).
    fn overflow(&self, q: &mut Queue, delivery: Delivery) -> Pushed {
        match self.limits.get().overflow {
            OverflowPolicy::DropNewest => Pushed::Dropped(DropReason::QueueFull, delivery),
            OverflowPolicy::DropOldest => {
                let protect = q.online
                    && delivery.qos == QoS::AtMostOnce
                    && q.items.front().is_some_and(|d| d.qos != QoS::AtMostOnce);
                match q.items.pop_front() {
                    Some(oldest) if protect => {
                        q.items.push_front(oldest);
                        Pushed::Dropped(DropReason::QueueFull, delivery)
                    }
                    Some(oldest) => {
                        q.items.push_back(delivery);
                        Pushed::QueuedDroppingOldest(oldest)
                    }
                    // max_len 0: nothing can be queued.
                    None => Pushed::Dropped(DropReason::QueueFull, delivery),
                }
            }
        }
    }

    /// Whether the queue holds `max_len` messages or more.
    pub fn over_limit(&self) -> bool {
        let q = self.queue.lock();
        q.online && q.items.len() >= self.limits.max_len()
    }

    /// The length below which paused publishers go on: half of `max_len`, so that they run in
    /// bursts rather than being woken for every message taken.
    fn low_water(&self) -> usize {
        self.limits.max_len() / 2
    }

    /// Whether paused publishers must still wait (online, at or above the low-water mark).
    fn congested(&self) -> bool {
        let q = self.queue.lock();
        q.online && q.items.len() > self.low_water()
    }

    /// Waits until the queue has drained to half of `max_len` (or the session is offline or
    /// closed): what a publisher paused by [`Pushed::QueuedOverLimit`] waits for.
    pub async fn below_limit(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.paused_publishers.store(true, Ordering::SeqCst);
            if !self.congested() {
                return;
            }
            notified.await;
        }
    }

    /// Wakes paused publishers if the queue has drained to the low-water mark (called with the
    /// lock held).
    fn wake_publishers(&self, q: &Queue) {
        // A load first: the swap (a write) only when a publisher is actually paused.
        if (q.items.len() <= self.low_water() || !q.online)
            && self.paused_publishers.load(Ordering::SeqCst)
            && self.paused_publishers.swap(false, Ordering::SeqCst)
        {
            self.drained.notify_waiters();
        }
    }

    /// Takes deliveries from the front, oldest first, while `accept` says yes to the next one
    /// (at most `max`), into `out`. Returns how many. The first refused one stays at the front.
    pub fn pop_into_while(
        &self,
        out: &mut Vec<Delivery>,
        max: usize,
        mut accept: impl FnMut(&Delivery) -> bool,
    ) -> usize {
        let mut q = self.queue.lock();
        let mut n = 0;
        while n < max {
            match q.items.front() {
                Some(front) if accept(front) => {}
                _ => break,
            }
            if let Some(d) = q.items.pop_front() {
                out.push(d);
                n += 1;
            }
        }
        if q.items.is_empty() && q.items.capacity() > 64 {
            q.items = VecDeque::new();
        }
        if n > 0 {
            self.wake_publishers(&q);
        }
        n
    }

    /// Puts deliveries back at the front of the queue in their order (e.g. a connection ended
    /// before it could send them). Ignores the length limit: these were already accepted.
    pub fn unpop(&self, deliveries: Vec<Delivery>) {
        let mut q = self.queue.lock();
        for d in deliveries.into_iter().rev() {
            q.items.push_front(d);
        }
    }

    /// A copy of what is queued, oldest first (to save the session).
    pub fn snapshot(&self) -> Vec<Delivery> {
        self.queue.lock().items.iter().cloned().collect()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().items.len()
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until a push happened since the last wait (or returns at once if one did).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Marks the session online (a connection drains it) or offline (messages accumulate; QoS 0 is
    /// dropped unless configured otherwise).
    pub fn set_online(&self, online: bool) {
        {
            let mut q = self.queue.lock();
            q.online = online && !q.closed;
            self.online.store(q.online, Ordering::Relaxed);
            self.wake_publishers(&q);
        }
        if online {
            self.notify.notify_one();
        }
    }

    /// Ends the mailbox: later pushes are dropped; returns what was still queued.
    pub fn close(&self) -> Vec<Delivery> {
        let mut q = self.queue.lock();
        q.closed = true;
        q.online = false;
        self.online.store(false, Ordering::Relaxed);
        self.wake_publishers(&q);
        std::mem::take(&mut q.items).into()
    }

    /// Whether a connection is draining this mailbox.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// Messages dropped for this session so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Number of router subscriptions of this session.
    pub fn subscription_count(&self) -> u32 {
        self.subscriptions.load(Ordering::Relaxed)
    }

    pub(crate) fn add_subscriptions(&self, delta: i32) {
        if delta >= 0 {
            self.subscriptions.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.subscriptions.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }
}
