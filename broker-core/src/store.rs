//! Where sessions go to survive a broker restart.
//!
//! The registry keeps live sessions in memory; a [`SessionStore`] receives a [`SessionSnapshot`]
//! whenever a session is kept for a disconnected client and at shutdown, is told when a session
//! ends, and hands the snapshots back at start. The protocol code never sees the store: a durable
//! implementation (files, an embedded database) can be added without touching it.
//!
//! [`MemoryStore`] keeps snapshots in memory, so a broker restarted in the same process (or a test)
//! gets its clients' sessions back.

use std::{collections::HashMap, fmt::Debug};

use bytestring::ByteString;
use parking_lot::Mutex;

use std::sync::Arc;

use crate::{
    auth::ClientIdentity,
    message::Delivery,
    session::{InFlight, SubscriptionRecord},
};

/// Everything needed to rebuild a detached session.
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    /// The client id.
    pub client_id: ByteString,
    /// The identity of the client's last connection (admin listings).
    pub client: Arc<ClientIdentity>,
    /// Session Expiry Interval, seconds (`u32::MAX` = never).
    pub expiry_interval: u32,
    /// When the client disconnected (epoch ms); the expiry counts from here.
    pub disconnected_at_ms: u64,
    /// Subscriptions, by filter as sent.
    pub subscriptions: Vec<(ByteString, SubscriptionRecord)>,
    /// QoS 1/2 messages sent and not yet acknowledged, in send order.
    pub inflight: Vec<InFlight>,
    /// Messages queued for the client, oldest first.
    pub queued: Vec<Delivery>,
}

/// Persistence for detached sessions.
pub trait SessionStore: Send + Sync + Debug {
    /// Saves (or replaces) a detached session.
    fn save(&self, snapshot: SessionSnapshot);
    /// Forgets a session that ended.
    fn remove(&self, client_id: &str);
    /// The sessions saved before this start.
    fn load(&self) -> Vec<SessionSnapshot>;
}

/// Keeps snapshots in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<ByteString, SessionSnapshot>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SessionStore for MemoryStore {
    fn save(&self, snapshot: SessionSnapshot) {
        self.sessions.lock().insert(snapshot.client_id.clone(), snapshot);
    }

    fn remove(&self, client_id: &str) {
        self.sessions.lock().remove(client_id);
    }

    fn load(&self) -> Vec<SessionSnapshot> {
        self.sessions.lock().values().cloned().collect()
    }
}
