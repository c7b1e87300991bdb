//! The router: which sessions get a published message.
//!
//! Subscriptions live in a trie sharded by the filter's first level, so publishers on different
//! topics do not contend on one lock: a topic is matched against its first level's shard plus the
//! shard holding filters that start with a wildcard. Shards are read/write locks held only for the
//! (synchronous) match-and-push; subscribe and unsubscribe take one shard's write lock. They are
//! [`ShardedLock`]s: a reader locks a part of its own (by thread), so threads routing at once,
//! which every publish on a topic not starting with `$` does through the wildcard shard, write no
//! shared cache line; a writer locks every part.
//!
//! Routing pushes straight into each matching session's [`Mailbox`]: one `Arc` clone of the message
//! per subscriber, never a payload copy. A client with several matching subscriptions gets one copy
//! at the highest granted QoS carrying every matching Subscription Identifier; each shared group
//! gets one copy, for one member.

mod filter;
mod trie;

use std::{
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use smallvec::SmallVec;

pub use filter::{QUEUE_GROUP, SubscriptionFilter, matches};
pub use trie::{RouteOptions, SharedStrategy};

use crate::{
    mailbox::{DropReason, Mailbox, Pushed},
    message::{Delivery, MessageRef},
};
use trie::{Node, SharedGroup, Subscriber};

/// Number of shards for filters with a literal first level.
const SHARDS: usize = 16;

/// The subscription table of one broker node.
#[derive(Debug)]
pub struct Router {
    /// Filters whose first level is literal, by hash of that level.
    shards: Box<[ShardedLock<Node>]>,
    /// Filters whose first level is `+` or `#`.
    wildcard: ShardedLock<Node>,
    hasher: foldhash::fast::RandomState,
    /// The [`SharedStrategy`] in force, as its index (changed live with the configuration).
    strategy: std::sync::atomic::AtomicU8,
    /// Number of subscriptions (normal and shared).
    count: AtomicUsize,
    /// Number of shared subscriptions.
    shared_count: AtomicUsize,
}

/// What routing one message did.
#[derive(Debug, Default, Clone)]
pub struct Routed {
    /// Deliveries queued.
    pub queued: usize,
    /// Deliveries dropped (queue full, offline QoS 0, session closed), including older messages
    /// pushed out by this one.
    pub dropped: usize,
    /// A subscriber's queue (not the publisher's own) that went over its limit with this
    /// message: the publisher should pause until it drains ([`Mailbox::below_limit`]).
    pub congested: Option<Arc<Mailbox>>,
}

/// A dropped delivery, reported to the caller of [`Router::route`].
#[derive(Debug)]
pub struct Dropped<'a> {
    /// The session it was meant for.
    pub mailbox: &'a Mailbox,
    /// The delivery dropped (the new one, or an older one pushed out).
    pub delivery: Delivery,
    /// Why.
    pub reason: DropReason,
}

impl Router {
    /// An empty router.
    pub fn new(strategy: SharedStrategy) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| ShardedLock::new(Node::default())).collect(),
            wildcard: ShardedLock::new(Node::default()),
            hasher: foldhash::fast::RandomState::default(),
            strategy: std::sync::atomic::AtomicU8::new(strategy as u8),
            count: AtomicUsize::new(0),
            shared_count: AtomicUsize::new(0),
        }
    }

    /// Changes how shared-subscription groups pick members, from the next message on.
    pub fn set_strategy(&self, strategy: SharedStrategy) {
        self.strategy.store(strategy as u8, Ordering::Relaxed);
    }

    fn strategy(&self) -> SharedStrategy {
        match self.strategy.load(Ordering::Relaxed) {
            1 => SharedStrategy::Random,
            2 => SharedStrategy::Sticky,
            _ => SharedStrategy::RoundRobin,
        }
    }

    fn shard_for(&self, filter: &str) -> &ShardedLock<Node> {
        let first = filter.split('/').next().unwrap_or("");
        if first == "+" || first == "#" {
            &self.wildcard
        } else {
            &self.shards[self.shard_index(first)]
        }
    }

    fn shard_index(&self, first_level: &str) -> usize {
        (self.hasher.hash_one(first_level) as usize) % SHARDS
    }

    /// Adds or replaces a subscription. Returns true when it is new (Retain Handling 1 sends
    /// retained messages only then).
    pub fn subscribe(
        &self,
        filter: &SubscriptionFilter,
        mailbox: &Arc<Mailbox>,
        options: RouteOptions,
    ) -> bool {
        let is_new = write(self.shard_for(&filter.filter)).insert(
            &filter.filter,
            filter.group.as_deref(),
            mailbox,
            options,
        );
        if is_new {
            mailbox.add_subscriptions(1);
            self.count.fetch_add(1, Ordering::Relaxed);
            if filter.is_shared() {
                self.shared_count.fetch_add(1, Ordering::Relaxed);
            }
        }
        is_new
    }

    /// Removes a subscription. Returns whether it existed.
    pub fn unsubscribe(&self, filter: &SubscriptionFilter, mailbox: &Mailbox) -> bool {
        let removed = write(self.shard_for(&filter.filter)).remove(
            &filter.filter,
            filter.group.as_deref(),
            mailbox.session(),
        );
        if removed {
            mailbox.add_subscriptions(-1);
            self.count.fetch_sub(1, Ordering::Relaxed);
            if filter.is_shared() {
                self.shared_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
        removed
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of shared subscriptions.
    pub fn shared_len(&self) -> usize {
        self.shared_count.load(Ordering::Relaxed)
    }

    /// Routes `message` to every matching session: queues one delivery per client (and one per
    /// shared group) and reports each dropped delivery to `on_drop`.
    pub fn route(&self, message: &MessageRef, mut on_drop: impl FnMut(Dropped<'_>)) -> Routed {
        let topic: &str = &message.topic;
        let dollar = topic.starts_with('$');
        let levels: SmallVec<[&str; 8]> = topic.split('/').collect();
        let first = levels.first().copied().unwrap_or("");
        let shard = read(&self.shards[self.shard_index(first)]);
        let wildcard = if dollar { None } else { Some(read(&self.wildcard)) };

        let mut subscribers: Vec<&Subscriber> = Vec::new();
        let mut groups: Vec<&SharedGroup> = Vec::new();
        shard.collect(&levels, dollar, &mut subscribers, &mut groups);
        if let Some(wildcard) = &wildcard {
            wildcard.collect(&levels, dollar, &mut subscribers, &mut groups);
        }

        let mut routed = Routed::default();
        let publisher = message.publisher;
        let mut push = |mailbox: &Arc<Mailbox>, delivery: Delivery| match mailbox.push(delivery) {
            Pushed::Queued => routed.queued += 1,
            Pushed::QueuedOverLimit => {
                routed.queued += 1;
                if Some(mailbox.session()) != publisher {
                    routed.congested = Some(Arc::clone(mailbox));
                }
            }
            Pushed::QueuedDroppingOldest(old) => {
                routed.queued += 1;
                routed.dropped += 1;
                on_drop(Dropped { mailbox, delivery: old, reason: DropReason::QueueFull });
            }
            Pushed::Dropped(reason, delivery) => {
                routed.dropped += 1;
                on_drop(Dropped { mailbox, delivery, reason });
            }
        };

        let no_local =
            |s: &Subscriber| s.options.no_local && Some(s.mailbox.session()) == publisher;
        let needs_merge = subscribers.iter().any(|s| s.mailbox.subscription_count() > 1);
        if needs_merge {
            subscribers.retain(|s| !no_local(s));
            subscribers.sort_unstable_by_key(|s| s.mailbox.session());
            for same_client in
                subscribers.chunk_by(|a, b| a.mailbox.session() == b.mailbox.session())
            {
                let Some(first) = same_client.first() else { continue };
                let mut delivery = delivery_for(message, first);
                for other in &same_client[1..] {
                    let d = delivery_for(message, other);
                    delivery.qos = delivery.qos.max(d.qos);
                    delivery.retain |= d.retain;
                    delivery.subscription_ids.extend(d.subscription_ids);
                }
                push(&first.mailbox, delivery);
            }
        } else {
            for s in subscribers.iter().filter(|s| !no_local(s)) {
                push(&s.mailbox, delivery_for(message, s));
            }
        }
        for group in groups {
            if let Some(member) = group.pick(self.strategy()) {
                push(&member.mailbox, delivery_for(message, member));
            }
        }
        routed
    }

    /// Visits every subscription: `(filter as subscribed, session's mailbox, options)`.
    pub fn for_each(&self, mut visit: impl FnMut(&str, &Mailbox, &RouteOptions)) {
        let mut path = String::new();
        for shard in self.shards.iter().chain(std::iter::once(&self.wildcard)) {
            walk(&read(shard), 0, &mut path, &mut visit);
        }
    }
}

/// A shard locked for reading. A lock poisoned by a panic under it is taken anyway, as the
/// `parking_lot` locks the shards used to be did: such a panic is a bug either way.
fn read(shard: &ShardedLock<Node>) -> ShardedLockReadGuard<'_, Node> {
    shard.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A shard locked for writing (see [`read`]).
fn write(shard: &ShardedLock<Node>) -> ShardedLockWriteGuard<'_, Node> {
    shard.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn walk(
    node: &Node,
    depth: usize,
    path: &mut String,
    visit: &mut impl FnMut(&str, &Mailbox, &RouteOptions),
) {
    for s in &node.subscribers {
        visit(path, &s.mailbox, &s.options);
    }
    for g in &node.groups {
        let shared = if &*g.name == QUEUE_GROUP {
            format!("$queue/{path}")
        } else {
            format!("$share/{}/{path}", g.name)
        };
        for s in &g.members {
            visit(&shared, &s.mailbox, &s.options);
        }
    }
    for (level, child) in &node.children {
        let len = path.len();
        if depth > 0 {
            path.push('/');
        }
        path.push_str(level);
        walk(child, depth + 1, path, visit);
        path.truncate(len);
    }
}

fn delivery_for(message: &MessageRef, s: &Subscriber) -> Delivery {
    Delivery {
        message: Arc::clone(message),
        qos: message.qos.min(s.options.qos),
        retain: s.options.retain_as_published && message.retain,
        subscription_ids: s.options.subscription_id.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests;
