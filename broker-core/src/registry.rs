//! Which sessions exist on this node, and which connection (if any) owns each.
//!
//! One entry per client id. Its slot is a tokio mutex, so concurrent CONNECTs with the same client
//! id are served one after another (the later one takes over from the earlier). Taking over asks
//! the owning connection, over its control channel, to disconnect and hand its session state over;
//! the slot lock is held while waiting for that answer, and a connection that is itself closing
//! answers pending takeovers before it touches the slot, so the two never wait on each other.
//!
//! The map of entries is a `parking_lot` mutex held only to look up, insert or remove an entry —
//! never across `.await`, and never on the publish path.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytestring::ByteString;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::{auth::ClientIdentity, mailbox::Mailbox, session::SessionState, will::PendingWill};

/// How long a takeover waits for the old connection to hand its session over.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// A request to a connection task from outside it.
#[derive(Debug)]
pub enum Control {
    /// Another connection takes over this client id: send DISCONNECT 0x8E (MQTT 5), stop, and send
    /// the session state back.
    TakeOver {
        /// Where to send the session.
        reply: oneshot::Sender<Handover>,
    },
    /// An administrator disconnects the client (DISCONNECT 0x98 on MQTT 5).
    Kick {
        /// Also end the session instead of keeping it for a reconnect.
        discard_session: bool,
    },
    /// An administrator changes the session (subscribe, unsubscribe): the connection task runs
    /// the operation on the session it owns. Dropped unrun when the connection is closing.
    WithSession(SessionOp),
}

/// What a [`SessionOp`] runs.
pub type SessionFn = Box<dyn FnOnce(&crate::Broker, &mut SessionState) + Send>;

/// An operation on a connected client's session, run by its connection task.
pub struct SessionOp(pub SessionFn);

impl std::fmt::Debug for SessionOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionOp")
    }
}

/// What a connection hands over when it is taken over.
#[derive(Debug)]
pub struct Handover {
    /// The session.
    pub state: Box<SessionState>,
    /// Its will, if it had one with a delay (a will without delay was published already).
    pub will: Option<PendingWill>,
}

/// The connection currently attached to a session.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Identifies the connection (a reconnect gets a new one).
    pub conn_id: u64,
    /// Its control channel.
    pub control: mpsc::Sender<Control>,
    /// Who is connected.
    pub client: Arc<ClientIdentity>,
    /// The session's mailbox (queue length for the admin API).
    pub mailbox: Arc<Mailbox>,
    /// When the connection was accepted (epoch ms).
    pub connected_at_ms: u64,
}

/// A session without a connection.
#[derive(Debug)]
pub struct Detached {
    /// The session.
    pub state: Box<SessionState>,
    /// A will waiting for its delay to pass.
    pub will: Option<PendingWill>,
    /// Changes whenever the session is claimed or detached again: timers started for one detached
    /// period check it before acting.
    pub generation: u64,
    /// When the connection ended (epoch ms).
    pub disconnected_at_ms: u64,
}

/// The state of one client id's entry.
#[derive(Debug, Default)]
pub enum Slot {
    /// Just created; nobody has claimed it yet.
    #[default]
    Empty,
    /// A connection owns the session.
    Attached(Attached),
    /// The session waits for its client.
    Detached(Box<Detached>),
    /// The session ended and the entry left the map; look it up again.
    Removed,
}

/// One client id's entry.
#[derive(Debug)]
pub struct Entry {
    /// The client id.
    pub client_id: ByteString,
    /// Who owns the session; see the module docs for the locking protocol.
    pub slot: tokio::sync::Mutex<Slot>,
}

/// What a CONNECT found.
#[derive(Debug)]
pub struct Claimed {
    /// The entry, now attached to the claiming connection.
    pub entry: Arc<Entry>,
    /// The session that existed for this client id, if any.
    pub previous: Option<Box<SessionState>>,
    /// Its delayed will, if any (cancelled by a resume, published if the session is discarded).
    pub will: Option<PendingWill>,
    /// Whether a connected client was taken over.
    pub took_over: bool,
}

/// The sessions of one broker node.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    entries: Mutex<HashMap<ByteString, Arc<Entry>, foldhash::fast::RandomState>>,
    generation: AtomicU64,
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&self, client_id: &ByteString) -> Arc<Entry> {
        let mut entries = self.entries.lock();
        Arc::clone(entries.entry(client_id.clone()).or_insert_with(|| {
            Arc::new(Entry {
                client_id: client_id.clone(),
                slot: tokio::sync::Mutex::new(Slot::Empty),
            })
        }))
    }

    /// Looks up an entry without creating one.
    pub fn get(&self, client_id: &str) -> Option<Arc<Entry>> {
        self.entries.lock().get(client_id).cloned()
    }

    /// All entries (for the admin API and statistics).
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.entries.lock().values().cloned().collect()
    }

    /// Number of entries (sessions, attached or not).
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A fresh generation number.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Attaches `attached` to the client id's entry, taking over a connected client if there is
    /// one, and returns any session that existed.
    pub async fn claim(&self, client_id: &ByteString, attached: Attached) -> Claimed {
        loop {
            let entry = self.entry(client_id);
            let mut slot = entry.slot.lock().await;
            match std::mem::take(&mut *slot) {
                Slot::Removed => {
                    *slot = Slot::Removed;
                    drop(slot);
                    continue;
                }
                Slot::Empty => {
                    *slot = Slot::Attached(attached);
                    drop(slot);
                    return Claimed { entry, previous: None, will: None, took_over: false };
                }
                Slot::Detached(detached) => {
                    *slot = Slot::Attached(attached);
                    drop(slot);
                    return Claimed {
                        entry,
                        previous: Some(detached.state),
                        will: detached.will,
                        took_over: false,
                    };
                }
                Slot::Attached(old) => {
                    let (reply, answer) = oneshot::channel();
                    let asked = tokio::time::timeout(
                        TAKEOVER_TIMEOUT,
                        old.control.send(Control::TakeOver { reply }),
                    )
                    .await;
                    if !matches!(asked, Ok(Ok(()))) {
                        // The old connection is closing (its control channel is shut) and will
                        // detach the session itself: let it take the slot, then look again.
                        *slot = Slot::Attached(old);
                        drop(slot);
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let handover = tokio::time::timeout(TAKEOVER_TIMEOUT, answer).await;
                    *slot = Slot::Attached(attached);
                    drop(slot);
                    return match handover {
                        Ok(Ok(Handover { state, will })) => {
                            Claimed { entry, previous: Some(state), will, took_over: true }
                        }
                        // The old connection did not answer in time: its session is lost.
                        _ => {
                            tracing::warn!(client_id = %client_id, "takeover: the previous connection did not hand its session over");
                            Claimed { entry, previous: None, will: None, took_over: true }
                        }
                    };
                }
            }
        }
    }

    /// Records the mailbox of a resumed session in connection `conn_id`'s attachment.
    pub async fn update_mailbox(&self, entry: &Arc<Entry>, conn_id: u64, mailbox: Arc<Mailbox>) {
        if let Slot::Attached(a) = &mut *entry.slot.lock().await
            && a.conn_id == conn_id
        {
            a.mailbox = mailbox;
        }
    }

    /// Detaches connection `conn_id`'s session, keeping it for a reconnect. Returns the generation
    /// of this detached period, or gives the state back when the connection no longer owns the
    /// entry (it was taken over meanwhile).
    pub async fn detach(
        &self,
        entry: &Arc<Entry>,
        conn_id: u64,
        state: Box<SessionState>,
        will: Option<PendingWill>,
    ) -> Result<u64, (Box<SessionState>, Option<PendingWill>)> {
        let mut slot = entry.slot.lock().await;
        match &*slot {
            Slot::Attached(a) if a.conn_id == conn_id => {
                let generation = self.next_generation();
                *slot = Slot::Detached(Box::new(Detached {
                    state,
                    will,
                    generation,
                    disconnected_at_ms: crate::clock::now_ms(),
                }));
                Ok(generation)
            }
            _ => Err((state, will)),
        }
    }

    /// Adds a session restored from a store, detached. Returns its entry and detached period, or
    /// `None` when the client id already has an entry.
    pub fn insert_detached(
        &self,
        client_id: &ByteString,
        state: Box<SessionState>,
        disconnected_at_ms: u64,
    ) -> Option<(Arc<Entry>, u64)> {
        let generation = self.next_generation();
        let entry = Arc::new(Entry {
            client_id: client_id.clone(),
            slot: tokio::sync::Mutex::new(Slot::Detached(Box::new(Detached {
                state,
                will: None,
                generation,
                disconnected_at_ms,
            }))),
        });
        let mut entries = self.entries.lock();
        if entries.contains_key(client_id) {
            return None;
        }
        entries.insert(client_id.clone(), Arc::clone(&entry));
        Some((entry, generation))
    }

    /// Removes connection `conn_id`'s entry (its session ends). Returns false when the connection
    /// no longer owns the entry.
    pub async fn remove_attached(&self, entry: &Arc<Entry>, conn_id: u64) -> bool {
        let mut slot = entry.slot.lock().await;
        match &*slot {
            Slot::Attached(a) if a.conn_id == conn_id => {
                *slot = Slot::Removed;
                self.unlink(entry);
                true
            }
            _ => false,
        }
    }

    /// Removes a detached session if it is still in detached period `generation`; returns it.
    pub async fn take_detached(
        &self,
        entry: &Arc<Entry>,
        generation: u64,
    ) -> Option<(Box<SessionState>, Option<PendingWill>)> {
        let mut slot = entry.slot.lock().await;
        match &*slot {
            Slot::Detached(d) if d.generation == generation => {}
            _ => return None,
        }
        match std::mem::replace(&mut *slot, Slot::Removed) {
            Slot::Detached(d) => {
                self.unlink(entry);
                Some((d.state, d.will))
            }
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Takes the delayed will of a detached session still in period `generation`.
    pub async fn take_will(&self, entry: &Arc<Entry>, generation: u64) -> Option<PendingWill> {
        let mut slot = entry.slot.lock().await;
        match &mut *slot {
            Slot::Detached(d) if d.generation == generation => d.will.take(),
            _ => None,
        }
    }

    fn unlink(&self, entry: &Arc<Entry>) {
        let mut entries = self.entries.lock();
        if entries.get(&entry.client_id).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            entries.remove(&entry.client_id);
        }
    }
}
