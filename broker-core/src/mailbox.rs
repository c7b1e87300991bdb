//! A session's inbound side for routed messages: a bounded queue that publishers' tasks push into
//! and the session's connection task drains.
//!
//! The router pushes from whichever task handled the PUBLISH, so the queue is a tiny critical
//! section (a `parking_lot` mutex held for a `VecDeque` push or pop, never across `.await`), plus a
//! `Notify` that wakes the connection task. Overflow policy (stated, counted): when the queue holds
//! `max_len` messages, either the oldest queued message is dropped to make room (default) or the
//! new one is refused. While the session is offline, QoS 0 messages are dropped unless
//! `queue_qos0_offline` is set.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
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
    limits: QueueLimits,
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
}

impl Mailbox {
    /// A new, online, empty mailbox.
    pub fn new(session: SessionId, client_id: ByteString, limits: QueueLimits) -> Self {
        Self {
            session,
            client_id,
            limits,
            queue: Mutex::new(Queue { items: VecDeque::new(), online: true, closed: false }),
            notify: Notify::new(),
            subscriptions: AtomicU32::new(0),
            dropped: AtomicU64::new(0),
            online: AtomicBool::new(true),
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
                && !self.limits.queue_qos0_offline
            {
                Pushed::Dropped(DropReason::Offline, delivery)
            } else if q.items.len() >= self.limits.max_len {
                match self.limits.overflow {
                    OverflowPolicy::DropNewest => Pushed::Dropped(DropReason::QueueFull, delivery),
                    OverflowPolicy::DropOldest => match q.items.pop_front() {
                        Some(oldest) => {
                            q.items.push_back(delivery);
                            Pushed::QueuedDroppingOldest(oldest)
                        }
                        // max_len 0: nothing can be queued.
                        None => Pushed::Dropped(DropReason::QueueFull, delivery),
                    },
                }
            } else {
                q.items.push_back(delivery);
                Pushed::Queued
            }
        };
        match &outcome {
            Pushed::Queued => self.notify.notify_one(),
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
