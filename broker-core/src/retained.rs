//! Retained messages: the last retained PUBLISH per topic, kept in a trie sharded by first level
//! (like the router) so retained publishes on different topics do not contend.
//!
//! A retained PUBLISH with an empty payload deletes the topic's message. A subscription reads the
//! messages whose topic its filter matches; expired messages (Message Expiry) are skipped and
//! removed. `max_messages` bounds the store: once full, retained messages for new topics are not
//! stored (replacing or deleting existing ones still works), and the refusal is counted.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Instant,
};

use parking_lot::RwLock;

use crate::message::MessageRef;

const SHARDS: usize = 16;

type Children = HashMap<Box<str>, RetainedNode, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct RetainedNode {
    children: Children,
    message: Option<MessageRef>,
}

impl RetainedNode {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// What storing a retained message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainOutcome {
    /// A new topic now has a retained message.
    Stored,
    /// The topic's retained message was replaced.
    Replaced,
    /// The topic's retained message was deleted (empty payload).
    Deleted,
    /// Empty payload for a topic without a retained message: nothing to do.
    Unchanged,
    /// The store is full; the message was not retained.
    Full,
}

/// The retained messages of one broker node.
#[derive(Debug)]
pub struct RetainedStore {
    shards: Box<[RwLock<RetainedNode>]>,
    hasher: foldhash::fast::RandomState,
    /// Most topics with a retained message; 0 = unlimited. Changed live with the configuration.
    max_messages: AtomicUsize,
    count: AtomicUsize,
    /// Retained messages refused because the store was full.
    refused: AtomicU64,
}

impl RetainedStore {
    /// An empty store holding at most `max_messages` topics (0 = unlimited).
    pub fn new(max_messages: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(RetainedNode::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            max_messages: AtomicUsize::new(max_messages),
            count: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Changes the limit: topics already retained stay, new topics are refused while the store
    /// holds `max_messages` or more (0 = unlimited).
    pub fn set_max_messages(&self, max_messages: usize) {
        self.max_messages.store(max_messages, Ordering::Relaxed);
    }

    fn shard(&self, first_level: &str) -> &RwLock<RetainedNode> {
        &self.shards[(self.hasher.hash_one(first_level) as usize) % SHARDS]
    }

    /// Stores (or, with an empty payload, deletes) the retained message of `message.topic`.
    pub fn set(&self, message: MessageRef) -> RetainOutcome {
        let topic: &str = &message.topic;
        let first = topic.split('/').next().unwrap_or("");
        let mut root = self.shard(first).write();
        if message.payload.is_empty() {
            let levels: Vec<&str> = topic.split('/').collect();
            return if remove(&mut root, &levels) {
                self.count.fetch_sub(1, Ordering::Relaxed);
                RetainOutcome::Deleted
            } else {
                RetainOutcome::Unchanged
            };
        }
        let mut node = &mut *root;
        for level in topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        if node.message.is_some() {
            node.message = Some(message);
            return RetainOutcome::Replaced;
        }
        let max_messages = self.max_messages.load(Ordering::Relaxed);
        if max_messages > 0 && self.count.load(Ordering::Relaxed) >= max_messages {
            self.refused.fetch_add(1, Ordering::Relaxed);
            // The path may have been created just now; prune it again.
            let levels: Vec<&str> = topic.split('/').collect();
            prune(&mut root, &levels);
            return RetainOutcome::Full;
        }
        node.message = Some(message);
        self.count.fetch_add(1, Ordering::Relaxed);
        RetainOutcome::Stored
    }

    /// The retained messages whose topic `filter` matches, skipping (and removing) expired ones.
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<MessageRef> {
        let levels: Vec<&str> = filter.split('/').collect();
        let mut found = Vec::new();
        let first = levels.first().copied().unwrap_or("");
        if first == "+" || first == "#" {
            for shard in self.shards.iter() {
                collect(&shard.read(), &levels, 0, &mut found);
            }
        } else {
            collect(&self.shard(first).read(), &levels, 0, &mut found);
        }
        let (live, expired): (Vec<_>, Vec<_>) = found.into_iter().partition(|m| !m.is_expired(now));
        for message in expired {
            self.remove_if_same(&message);
        }
        live
    }

    /// Removes `message` if it is still the topic's retained message.
    fn remove_if_same(&self, message: &MessageRef) {
        let topic: &str = &message.topic;
        let levels: Vec<&str> = topic.split('/').collect();
        let mut root = self.shard(levels.first().copied().unwrap_or("")).write();
        let mut node = &*root;
        for level in &levels {
            match node.children.get(*level) {
                Some(child) => node = child,
                None => return,
            }
        }
        if node.message.as_ref().is_some_and(|m| std::sync::Arc::ptr_eq(m, message))
            && remove(&mut root, &levels)
        {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Number of topics with a retained message.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether no message is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Retained messages refused because the store was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Removes the message at `levels`, pruning empty nodes. Returns whether there was one.
fn remove(node: &mut RetainedNode, levels: &[&str]) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return node.message.take().is_some();
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove(child, rest);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

/// Removes empty nodes along `levels`.
fn prune(node: &mut RetainedNode, levels: &[&str]) {
    let Some((first, rest)) = levels.split_first() else { return };
    if let Some(child) = node.children.get_mut(*first) {
        prune(child, rest);
        if child.is_empty() {
            node.children.remove(*first);
        }
    }
}

fn collect(node: &RetainedNode, filter: &[&str], depth: usize, out: &mut Vec<MessageRef>) {
    let Some(level) = filter.get(depth) else {
        out.extend(node.message.iter().cloned());
        return;
    };
    match *level {
        "#" => {
            // The parent level too ("a/#" matches "a"), except at the root.
            if depth > 0 {
                out.extend(node.message.iter().cloned());
            }
            for (name, child) in &node.children {
                if depth == 0 && name.starts_with('$') {
                    continue;
                }
                collect_all(child, out);
            }
        }
        "+" => {
            for (name, child) in &node.children {
                if depth == 0 && name.starts_with('$') {
                    continue;
                }
                collect(child, filter, depth + 1, out);
            }
        }
        literal => {
            if let Some(child) = node.children.get(literal) {
                collect(child, filter, depth + 1, out);
            }
        }
    }
}

fn collect_all(node: &RetainedNode, out: &mut Vec<MessageRef>) {
    out.extend(node.message.iter().cloned());
    for child in node.children.values() {
        collect_all(child, out);
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use bytes::Bytes;
    use mqtt_codec::QoS;

    use super::*;
    use crate::test_util::message;

    fn topics(store: &RetainedStore, filter: &str) -> Vec<String> {
        let mut t: Vec<String> =
            store.matching(filter, Instant::now()).iter().map(|m| m.topic.to_string()).collect();
        t.sort();
        t
    }

    #[test]
    fn stores_replaces_and_deletes() {
        let store = RetainedStore::new(0);
        assert_eq!(store.set(message("a/b", QoS::AtMostOnce, true)), RetainOutcome::Stored);
        assert_eq!(store.set(message("a/b", QoS::AtLeastOnce, true)), RetainOutcome::Replaced);
        assert_eq!(store.len(), 1);
        assert_eq!(store.matching("a/b", Instant::now())[0].qos, QoS::AtLeastOnce);
        let mut empty = message("a/b", QoS::AtMostOnce, true);
        Arc::get_mut(&mut empty).expect("unique").payload = Bytes::new();
        assert_eq!(store.set(empty.clone()), RetainOutcome::Deleted);
        assert_eq!(store.set(empty), RetainOutcome::Unchanged);
        assert!(store.is_empty());
        assert!(topics(&store, "#").is_empty());
    }

    #[test]
    fn wildcard_lookup_follows_matching_rules() {
        let store = RetainedStore::new(0);
        for t in ["a", "a/b", "a/b/c", "a/x/c", "b/b", "$SYS/uptime", "/lead"] {
            store.set(message(t, QoS::AtMostOnce, true));
        }
        assert_eq!(topics(&store, "a/#"), vec!["a", "a/b", "a/b/c", "a/x/c"]);
        assert_eq!(topics(&store, "a/+/c"), vec!["a/b/c", "a/x/c"]);
        assert_eq!(topics(&store, "+/b"), vec!["a/b", "b/b"]);
        assert_eq!(topics(&store, "#"), vec!["/lead", "a", "a/b", "a/b/c", "a/x/c", "b/b"]);
        assert_eq!(topics(&store, "+"), vec!["a"]);
        assert_eq!(topics(&store, "$SYS/#"), vec!["$SYS/uptime"]);
        assert_eq!(topics(&store, "+/lead"), vec!["/lead"]);
    }

    #[test]
    fn expired_messages_are_skipped_and_removed() {
        let store = RetainedStore::new(0);
        let mut m = message("t", QoS::AtMostOnce, true);
        Arc::get_mut(&mut m).expect("unique").properties.message_expiry_interval = Some(1);
        store.set(m);
        assert_eq!(store.matching("t", Instant::now()).len(), 1);
        let later = Instant::now() + Duration::from_secs(2);
        assert!(store.matching("t", later).is_empty());
        assert!(store.is_empty(), "removed once seen expired");
    }

    #[test]
    fn a_full_store_refuses_new_topics_only() {
        let store = RetainedStore::new(2);
        store.set(message("a", QoS::AtMostOnce, true));
        store.set(message("b", QoS::AtMostOnce, true));
        assert_eq!(store.set(message("c/d", QoS::AtMostOnce, true)), RetainOutcome::Full);
        assert_eq!(store.set(message("a", QoS::AtMostOnce, true)), RetainOutcome::Replaced);
        assert_eq!(store.refused(), 1);
        assert_eq!(topics(&store, "#"), vec!["a", "b"]);
    }
}
