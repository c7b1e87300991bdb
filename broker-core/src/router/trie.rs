//! The subscription trie: one node per topic level, subscribers stored at the node where their
//! filter ends. `+` and `#` are ordinary child keys; matching a topic visits the exact child, the
//! `+` child and the `#` child at every level (wildcards are skipped at the first level of a
//! `$` topic).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use mqtt_codec::QoS;

use crate::{mailbox::Mailbox, message::SessionId};

type Children = HashMap<Box<str>, Node, foldhash::fast::RandomState>;

/// A subscription's options as the router needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteOptions {
    /// Maximum QoS granted.
    pub qos: QoS,
    /// MQTT 5 No Local: never deliver the session's own publishes.
    pub no_local: bool,
    /// MQTT 5 Retain As Published: keep the RETAIN flag on forwarded messages.
    pub retain_as_published: bool,
    /// MQTT 5 Subscription Identifier.
    pub subscription_id: Option<u32>,
}

/// One subscriber of one filter.
#[derive(Debug)]
pub struct Subscriber {
    /// Where matching messages go.
    pub mailbox: Arc<Mailbox>,
    /// How they are delivered.
    pub options: RouteOptions,
}

/// The members of one shared-subscription group on one filter.
#[derive(Debug)]
pub struct SharedGroup {
    /// The group name.
    pub name: Box<str>,
    /// Members in join order.
    pub members: Vec<Subscriber>,
    /// Round-robin position, and the sticky member's index.
    pub cursor: AtomicUsize,
}

/// One level of the trie.
#[derive(Debug, Default)]
pub struct Node {
    pub(crate) children: Children,
    /// Normal subscriptions whose filter ends here.
    pub(crate) subscribers: Vec<Subscriber>,
    /// Shared groups whose filter ends here.
    pub(crate) groups: Vec<SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty() && self.groups.is_empty()
    }

    /// Adds or replaces `session`'s subscription to `filter` (in `group`). Returns true when it is
    /// new, false when an existing one was replaced.
    pub fn insert(
        &mut self,
        filter: &str,
        group: Option<&str>,
        mailbox: &Arc<Mailbox>,
        options: RouteOptions,
    ) -> bool {
        let mut node = self;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let list = match group {
            None => &mut node.subscribers,
            Some(name) => {
                let index = match node.groups.iter().position(|g| &*g.name == name) {
                    Some(i) => i,
                    None => {
                        node.groups.push(SharedGroup {
                            name: name.into(),
                            members: Vec::new(),
                            cursor: AtomicUsize::new(0),
                        });
                        node.groups.len() - 1
                    }
                };
                &mut node.groups[index].members
            }
        };
        let session = mailbox.session();
        match list.iter_mut().find(|s| s.mailbox.session() == session) {
            Some(existing) => {
                existing.options = options;
                existing.mailbox = Arc::clone(mailbox);
                false
            }
            None => {
                list.push(Subscriber { mailbox: Arc::clone(mailbox), options });
                true
            }
        }
    }

    /// Removes `session`'s subscription to `filter` (in `group`); prunes empty nodes. Returns
    /// whether it existed.
    pub fn remove(&mut self, filter: &str, group: Option<&str>, session: SessionId) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        remove_at(self, &levels, group, session)
    }

    /// Calls `visit` for every normal subscriber and `visit_group` for every shared group whose
    /// filter matches `levels` (a topic split at `/`).
    pub fn collect<'a>(
        &'a self,
        levels: &[&str],
        dollar: bool,
        subscribers: &mut Vec<&'a Subscriber>,
        groups: &mut Vec<&'a SharedGroup>,
    ) {
        collect_at(self, levels, 0, dollar, subscribers, groups);
    }
}

fn remove_at(node: &mut Node, levels: &[&str], group: Option<&str>, session: SessionId) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return match group {
            None => {
                let before = node.subscribers.len();
                node.subscribers.retain(|s| s.mailbox.session() != session);
                node.subscribers.len() != before
            }
            Some(name) => {
                let Some(index) = node.groups.iter().position(|g| &*g.name == name) else {
                    return false;
                };
                let members = &mut node.groups[index].members;
                let before = members.len();
                members.retain(|s| s.mailbox.session() != session);
                let removed = members.len() != before;
                if members.is_empty() {
                    node.groups.swap_remove(index);
                }
                removed
            }
        };
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove_at(child, rest, group, session);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn collect_at<'a>(
    node: &'a Node,
    levels: &[&str],
    depth: usize,
    dollar: bool,
    subscribers: &mut Vec<&'a Subscriber>,
    groups: &mut Vec<&'a SharedGroup>,
) {
    let wildcards_allowed = !(depth == 0 && dollar);
    match levels.get(depth) {
        None => {
            subscribers.extend(node.subscribers.iter());
            groups.extend(node.groups.iter());
            // "a/#" also matches "a".
            if let Some(hash) = node.children.get("#") {
                subscribers.extend(hash.subscribers.iter());
                groups.extend(hash.groups.iter());
            }
        }
        Some(level) => {
            if let Some(child) = node.children.get(*level) {
                collect_at(child, levels, depth + 1, dollar, subscribers, groups);
            }
            if wildcards_allowed {
                if let Some(plus) = node.children.get("+") {
                    collect_at(plus, levels, depth + 1, dollar, subscribers, groups);
                }
                if let Some(hash) = node.children.get("#") {
                    subscribers.extend(hash.subscribers.iter());
                    groups.extend(hash.groups.iter());
                }
            }
        }
    }
}

impl SharedGroup {
    /// Picks the member that gets the next message, preferring members whose session is online.
    pub fn pick(&self, strategy: SharedStrategy) -> Option<&Subscriber> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = match strategy {
            SharedStrategy::RoundRobin => self.cursor.fetch_add(1, Ordering::Relaxed) % n,
            SharedStrategy::Random => fastrand::usize(..n),
            SharedStrategy::Sticky => self.cursor.load(Ordering::Relaxed) % n,
        };
        let chosen = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.members[i].mailbox.is_online())
            .unwrap_or(start);
        if strategy == SharedStrategy::Sticky && chosen != start {
            self.cursor.store(chosen, Ordering::Relaxed);
        }
        self.members.get(chosen)
    }
}

/// How a shared-subscription group picks the member for each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharedStrategy {
    /// In turn (the default, as NanoMQ).
    #[default]
    RoundRobin = 0,
    /// At random.
    Random = 1,
    /// The same member while it stays online.
    Sticky = 2,
}
