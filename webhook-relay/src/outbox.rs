//! The durable outbox (one redb file): the relay's log of accepted events, the deliveries each
//! target still owes, dead letters, and how far each broker incarnation has been accepted.
//!
//! Every method is synchronous (redb commits fsync); async callers use `spawn_blocking`.
//! Appends commit with `Durability::Immediate` before the broker is acknowledged; completions
//! commit without an fsync of their own (they become durable with the next append), so a crash can
//! only cause a redelivery, never a loss.

use std::{path::Path, sync::Arc};

use parking_lot::Mutex;
use prost::Message as _;
use proto::events::v1::{Event, EventBatch};
use redb::{
    Database, Durability, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};

/// offset → encoded `Event`.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// (node id, incarnation) → highest accepted sequence.
const ACCEPTED: TableDefinition<(&str, u64), u64> = TableDefinition::new("accepted");
/// (target, offset) → when the event entered the outbox (epoch ms; `max_age` counts from here).
const PENDING: TableDefinition<(&str, u64), u64> = TableDefinition::new("pending");
/// (target, offset) → (reason, dead since epoch ms, encoded `Event`).
const DEAD: TableDefinition<(&str, u64), (&str, u64, &[u8])> = TableDefinition::new("dead");
/// Counters that must survive pruning ("next_offset").
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// redb failed (disk full, I/O error, corrupt file).
    #[error("outbox: {0}")]
    Db(#[from] redb::Error),
}

fn db<E: Into<redb::Error>>(e: E) -> OutboxError {
    OutboxError::Db(e.into())
}

/// A delivery a target still owes.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Position in the log.
    pub offset: u64,
    /// When the event entered the outbox, epoch ms.
    pub enqueued_ms: u64,
    /// The event.
    pub event: Arc<Event>,
}

/// A delivery given up on.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The target it was for.
    pub target: String,
    /// Its position in the log.
    pub offset: u64,
    /// Why it was given up (the last answer or error).
    pub reason: String,
    /// When, epoch ms.
    pub dead_at_ms: u64,
    /// The event.
    pub event: Event,
}

/// What an append accepted.
#[derive(Debug, Default)]
pub struct Appended {
    /// Every event of the batch's node and incarnation up to this sequence is durable.
    pub durable_sequence: u64,
    /// The new events with their offsets (events already held are left out).
    pub accepted: Vec<(u64, Arc<Event>)>,
    /// How many deliveries were queued, over all targets.
    pub queued: u64,
}

/// Sizes, for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct OutboxStats {
    /// Events in the log.
    pub log_events: u64,
    /// Deliveries pending, over all targets.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
}

/// The outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Arc<Database>,
    /// The next log offset; held while an append's write transaction runs (redb runs one write
    /// transaction at a time anyway).
    next_offset: Arc<Mutex<u64>>,
}

impl Outbox {
    /// Opens (or creates) the outbox file.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| OutboxError::Db(redb::Error::Io(e)))?;
        }
        let database = Database::create(path).map_err(db)?;
        let tx = database.begin_write().map_err(db)?;
        let next = {
            tx.open_table(LOG).map_err(db)?;
            tx.open_table(ACCEPTED).map_err(db)?;
            tx.open_table(PENDING).map_err(db)?;
            tx.open_table(DEAD).map_err(db)?;
            let meta = tx.open_table(META).map_err(db)?;
            meta.get("next_offset").map_err(db)?.map_or(1, |v| v.value())
        };
        tx.commit().map_err(db)?;
        Ok(Self { db: Arc::new(database), next_offset: Arc::new(Mutex::new(next)) })
    }

    /// Appends a broker's batch (taken, so accepted events move into their `Arc`s without a
    /// copy): skips events of this node and incarnation already accepted,
    /// logs the rest, queues a delivery for every target (index into `targets`) that `route`
    /// names, and commits durably.
    pub fn append(
        &self,
        batch: EventBatch,
        now_ms: u64,
        targets: &[Arc<str>],
        route: impl Fn(&Event) -> Vec<usize>,
    ) -> Result<Appended, OutboxError> {
        let mut next = self.next_offset.lock();
        let mut out = Appended::default();
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::Immediate).map_err(db)?;
        let mut offset = *next;
        {
            let mut accepted = tx.open_table(ACCEPTED).map_err(db)?;
            let EventBatch { node_id, incarnation, events } = batch;
            let key = (node_id.as_str(), incarnation);
            let mut last = accepted.get(key).map_err(db)?.map_or(0, |v| v.value());
            let mut log = tx.open_table(LOG).map_err(db)?;
            let mut pending = tx.open_table(PENDING).map_err(db)?;
            for event in events {
                if event.sequence <= last {
                    continue;
                }
                last = event.sequence;
                log.insert(offset, event.encode_to_vec().as_slice()).map_err(db)?;
                for target in route(&event).into_iter().filter_map(|i| targets.get(i)) {
                    pending.insert((&**target, offset), now_ms).map_err(db)?;
                    out.queued += 1;
                }
                out.accepted.push((offset, Arc::new(event)));
                offset += 1;
            }
            accepted.insert(key, last).map_err(db)?;
            out.durable_sequence = last;
            tx.open_table(META).map_err(db)?.insert("next_offset", offset).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        *next = offset;
        Ok(out)
    }

    /// Up to `limit` pending deliveries of `target` after `after`, in offset order.
    pub fn pending(
        &self,
        target: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Pending>, OutboxError> {
        let tx = self.db.begin_read().map_err(db)?;
        let pending = tx.open_table(PENDING).map_err(db)?;
        let log = tx.open_table(LOG).map_err(db)?;
        let mut out = Vec::new();
        for entry in
            pending.range((target, after.saturating_add(1))..=(target, u64::MAX)).map_err(db)?
        {
            let (key, enqueued) = entry.map_err(db)?;
            let offset = key.value().1;
            let Some(bytes) = log.get(offset).map_err(db)? else { continue };
            let Ok(event) = Event::decode(bytes.value()) else { continue };
            out.push(Pending { offset, enqueued_ms: enqueued.value(), event: Arc::new(event) });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Removes delivered entries (no fsync of its own; see the module docs).
    pub fn complete(&self, done: &[(&str, u64)]) -> Result<(), OutboxError> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::None).map_err(db)?;
        {
            let mut pending = tx.open_table(PENDING).map_err(db)?;
            for key in done {
                pending.remove(*key).map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    /// Moves a pending delivery to the dead letters.
    pub fn kill(
        &self,
        target: &str,
        offset: u64,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), OutboxError> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::Immediate).map_err(db)?;
        {
            let mut pending = tx.open_table(PENDING).map_err(db)?;
            pending.remove((target, offset)).map_err(db)?;
            let log = tx.open_table(LOG).map_err(db)?;
            let bytes =
                log.get(offset).map_err(db)?.map(|v| v.value().to_vec()).unwrap_or_default();
            let mut dead = tx.open_table(DEAD).map_err(db)?;
            dead.insert((target, offset), (reason, now_ms, bytes.as_slice())).map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Dead letters, oldest first, of one target or all (`None`), at most `limit`.
    pub fn dead_letters(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        let tx = self.db.begin_read().map_err(db)?;
        let dead = tx.open_table(DEAD).map_err(db)?;
        let mut out = Vec::new();
        for entry in dead.iter().map_err(db)? {
            let (key, value) = entry.map_err(db)?;
            let (name, offset) = key.value();
            if target.is_some_and(|t| t != name) {
                continue;
            }
            let (reason, dead_at_ms, bytes) = value.value();
            out.push(DeadLetter {
                target: name.to_string(),
                offset,
                reason: reason.to_string(),
                dead_at_ms,
                event: Event::decode(bytes).unwrap_or_default(),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Puts dead letters of `target` back to pending (all of them when `offsets` is empty);
    /// returns how many. The log entry is restored when it was pruned meanwhile.
    pub fn redrive(&self, target: &str, offsets: &[u64], now_ms: u64) -> Result<u64, OutboxError> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::Immediate).map_err(db)?;
        let mut count = 0;
        {
            let mut dead = tx.open_table(DEAD).map_err(db)?;
            let mut log = tx.open_table(LOG).map_err(db)?;
            let mut pending = tx.open_table(PENDING).map_err(db)?;
            let chosen: Vec<u64> = if offsets.is_empty() {
                let mut all = Vec::new();
                for entry in dead.range((target, 0)..=(target, u64::MAX)).map_err(db)? {
                    all.push(entry.map_err(db)?.0.value().1);
                }
                all
            } else {
                offsets.to_vec()
            };
            for offset in chosen {
                let Some(bytes) =
                    dead.remove((target, offset)).map_err(db)?.map(|v| v.value().2.to_vec())
                else {
                    continue;
                };
                if log.get(offset).map_err(db)?.is_none() {
                    log.insert(offset, bytes.as_slice()).map_err(db)?;
                }
                pending.insert((target, offset), now_ms).map_err(db)?;
                count += 1;
            }
        }
        tx.commit().map_err(db)?;
        Ok(count)
    }

    /// Drops pending deliveries of targets no longer configured; returns how many.
    pub fn forget_targets(&self, keep: &[&str]) -> Result<u64, OutboxError> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::Immediate).map_err(db)?;
        let mut removed = 0;
        {
            let mut pending = tx.open_table(PENDING).map_err(db)?;
            pending
                .retain(|(target, _), _| {
                    let k = keep.contains(&target);
                    if !k {
                        removed += 1;
                    }
                    k
                })
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(removed)
    }

    /// Up to `limit` log entries from `from` (inclusive), in order.
    pub fn read_log(&self, from: u64, limit: usize) -> Result<Vec<(u64, Event)>, OutboxError> {
        let tx = self.db.begin_read().map_err(db)?;
        let log = tx.open_table(LOG).map_err(db)?;
        let mut out = Vec::new();
        for entry in log.range(from..).map_err(db)? {
            let (key, value) = entry.map_err(db)?;
            if let Ok(event) = Event::decode(value.value()) {
                out.push((key.value(), event));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The oldest offset still in the log, and the next offset to be assigned.
    pub fn bounds(&self) -> Result<(u64, u64), OutboxError> {
        let next = *self.next_offset.lock();
        let tx = self.db.begin_read().map_err(db)?;
        let log = tx.open_table(LOG).map_err(db)?;
        let first = log.first().map_err(db)?.map_or(next, |(k, _)| k.value());
        Ok((first, next))
    }

    /// Removes log entries older than `cutoff_ms` that no pending delivery needs; returns how many.
    pub fn prune(&self, cutoff_ms: u64) -> Result<u64, OutboxError> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::None).map_err(db)?;
        let mut removed = 0;
        {
            let pending = tx.open_table(PENDING).map_err(db)?;
            let mut oldest_needed = u64::MAX;
            for entry in pending.iter().map_err(db)? {
                oldest_needed = oldest_needed.min(entry.map_err(db)?.0.value().1);
            }
            let mut log = tx.open_table(LOG).map_err(db)?;
            loop {
                let Some((offset, ts)) = log.first().map_err(db)?.map(|(k, v)| {
                    (k.value(), Event::decode(v.value()).map_or(0, |e| e.timestamp_ms))
                }) else {
                    break;
                };
                if offset >= oldest_needed || ts >= cutoff_ms {
                    break;
                }
                log.remove(offset).map_err(db)?;
                removed += 1;
            }
        }
        tx.commit().map_err(db)?;
        Ok(removed)
    }

    /// Sizes of the tables.
    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let tx = self.db.begin_read().map_err(db)?;
        Ok(OutboxStats {
            log_events: tx.open_table(LOG).map_err(db)?.len().map_err(db)?,
            pending: tx.open_table(PENDING).map_err(db)?.len().map_err(db)?,
            dead: tx.open_table(DEAD).map_err(db)?.len().map_err(db)?,
        })
    }
}
