//! The durable outbox (one redb file): the relay's log of accepted events, the deliveries each
//! target still owes, dead letters, and how far each broker incarnation has been accepted.
//!
//! Every method is synchronous (redb commits fsync); async callers use `spawn_blocking`.
//! Appends commit with `Durability::Immediate` before the broker is acknowledged; completions
//! commit without an fsync of their own (they become durable with the next append), so a crash can
//! only cause a redelivery, never a loss.
//!
//! The log is kept in **chunks**: the events one append accepted are one row, under the offset of
//! their first event, and what a target still owes of a chunk is one row too (a bitmap over the
//! chunk's events). An append therefore writes a couple of rows however many events it carries,
//! instead of two B-tree inserts per event, which is what bounded the relay's intake before.
//! Offsets stay per event: every method takes and returns event offsets as before.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use parking_lot::Mutex;
use proto::events::v1::Event;

use crate::wire::{RawBatch, RawEvent, decode_event, parse_event};
use redb::{
    Database, Durability, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition, TableHandle as _,
};

/// offset of a chunk's first event → the chunk (see [`Chunk`]).
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("chunks");
/// (node id, incarnation) → highest accepted sequence.
const ACCEPTED: TableDefinition<(&str, u64), u64> = TableDefinition::new("accepted");
/// (target, chunk) → (when the chunk entered the outbox, epoch ms — `max_age` counts from here;
/// bitmap: bit `i` set = the chunk's event `i` is still owed to the target).
const PENDING: TableDefinition<(&str, u64), (u64, &[u8])> = TableDefinition::new("owed");
/// (target, offset) → (reason, dead since epoch ms, encoded `Event`).
const DEAD: TableDefinition<(&str, u64), (&str, u64, &[u8])> = TableDefinition::new("dead");
/// Counters that must survive pruning ("next_offset", "log_events").
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The tables of outboxes written before chunks (one row per event); converted at open.
const LEGACY_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const LEGACY_PENDING: TableDefinition<(&str, u64), u64> = TableDefinition::new("pending");

/// Most events in one chunk: an append of more makes several (a delivery page reads a whole
/// chunk, so chunks stay small).
const CHUNK_EVENTS: usize = 2048;
/// Most bytes of an encoded chunk (a single larger event gets a chunk of its own). redb keeps a
/// chunk in a page of a power-of-two size and writes the whole page, so a chunk is sized to fill
/// one: 128 KiB, less room for the page's header and the key. (A chunk a little over a power of
/// two would take a page of twice that, written whole at every commit.)
const CHUNK_BYTES: usize = (128 << 10) - 256;

/// Splits `events` into chunks of at most [`CHUNK_EVENTS`] events and [`CHUNK_BYTES`] bytes
/// encoded (but at least one event each).
fn chunked(events: &[RawEvent]) -> impl Iterator<Item = &[RawEvent]> {
    let mut rest = events;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = Chunk::HEADER;
        let mut len = 0;
        while len < rest.len().min(CHUNK_EVENTS) {
            bytes += 4 + rest[len].len();
            if len > 0 && bytes > CHUNK_BYTES {
                break;
            }
            len += 1;
        }
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

/// A chunk's bytes: `count` (u32 LE), the newest event's `timestamp_ms` (u64 LE), `count` end
/// positions (u32 LE, relative to the data), then the events' protobuf encodings back to back.
struct Chunk;

impl Chunk {
    const HEADER: usize = 12;

    fn encode(events: &[RawEvent]) -> Vec<u8> {
        let data: usize = events.iter().map(RawEvent::len).sum();
        let mut out = Vec::with_capacity(Self::HEADER + 4 * events.len() + data);
        out.extend_from_slice(&u32::try_from(events.len()).unwrap_or(u32::MAX).to_le_bytes());
        let newest = events.iter().map(|e| e.timestamp_ms).max().unwrap_or(0);
        out.extend_from_slice(&newest.to_le_bytes());
        let mut end = 0usize;
        for event in events {
            end += event.len();
            out.extend_from_slice(&u32::try_from(end).unwrap_or(u32::MAX).to_le_bytes());
        }
        for event in events {
            event.write_to(&mut out);
        }
        out
    }

    /// How many events, and the newest timestamp (zeros for bytes too short to be a chunk).
    fn header(bytes: &[u8]) -> (u64, u64) {
        let count =
            bytes.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
        let newest =
            bytes.get(4..12).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        (u64::from(count), newest)
    }

    /// The encoding of event `index`, if the chunk has it.
    fn event(bytes: &[u8], index: u64) -> Option<&[u8]> {
        let (count, _) = Self::header(bytes);
        if index >= count {
            return None;
        }
        let index = usize::try_from(index).ok()?;
        let count = usize::try_from(count).ok()?;
        let position = |i: usize| -> Option<usize> {
            let at = Self::HEADER + 4 * i;
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
        };
        let start = if index == 0 { 0 } else { position(index - 1)? };
        let data = Self::HEADER + 4 * count;
        bytes.get(data + start..data + position(index)?)
    }
}

fn bit(bits: &[u8], i: u64) -> bool {
    usize::try_from(i / 8)
        .ok()
        .and_then(|byte| bits.get(byte))
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Sets bit `i`; returns whether it was clear.
fn set_bit(bits: &mut Vec<u8>, i: u64) -> bool {
    let byte = usize::try_from(i / 8).unwrap_or(usize::MAX);
    if bits.len() <= byte {
        bits.resize(byte + 1, 0);
    }
    let was = bits[byte] & (1 << (i % 8)) != 0;
    bits[byte] |= 1 << (i % 8);
    !was
}

/// Clears bit `i`; returns whether it was set.
fn clear_bit(bits: &mut [u8], i: u64) -> bool {
    let Some(b) = usize::try_from(i / 8).ok().and_then(|byte| bits.get_mut(byte)) else {
        return false;
    };
    let was = *b & (1 << (i % 8)) != 0;
    *b &= !(1 << (i % 8));
    was
}

fn ones(bits: &[u8]) -> u64 {
    bits.iter().map(|b| u64::from(b.count_ones())).sum()
}

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
    /// The event (empty when it does not decode).
    pub event: Arc<Event>,
    /// Why the stored event does not decode, if it does not (delivery dead-letters it).
    pub decode_error: Option<String>,
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
    /// The offset of the first new event.
    pub first_offset: u64,
    /// The new events, at offsets from `first_offset` on (events already held are left out).
    pub accepted: Vec<RawEvent>,
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

/// The chunk holding `offset`: its key and bytes, if the log has it.
fn chunk_of(
    log: &impl redb::ReadableTable<u64, &'static [u8]>,
    offset: u64,
) -> Result<Option<(u64, Vec<u8>)>, OutboxError> {
    let Some(entry) = log.range(..=offset).map_err(db)?.next_back() else { return Ok(None) };
    let (key, value) = entry.map_err(db)?;
    let (first, bytes) = (key.value(), value.value());
    Ok((offset - first < Chunk::header(bytes).0).then(|| (first, bytes.to_vec())))
}

/// The pending row of `target` that would hold `offset` (the last at or before it), if any.
fn owed_row(
    pending: &impl redb::ReadableTable<(&'static str, u64), (u64, &'static [u8])>,
    target: &str,
    offset: u64,
) -> Result<Option<(u64, u64, Vec<u8>)>, OutboxError> {
    let Some(entry) = pending.range((target, 0)..=(target, offset)).map_err(db)?.next_back() else {
        return Ok(None);
    };
    let (key, value) = entry.map_err(db)?;
    let (enqueued, bits) = value.value();
    Ok(Some((key.value().1, enqueued, bits.to_vec())))
}

fn add_meta(
    meta: &mut redb::Table<'_, &'static str, u64>,
    key: &str,
    delta: i64,
) -> Result<(), OutboxError> {
    let now = meta.get(key).map_err(db)?.map_or(0, |v| v.value());
    meta.insert(key, now.saturating_add_signed(delta)).map_err(db)?;
    Ok(())
}

impl Outbox {
    /// Opens (or creates) the outbox file; an outbox written before chunks is converted.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| OutboxError::Db(redb::Error::Io(e)))?;
        }
        let database = Database::create(path).map_err(db)?;
        let mut tx = database.begin_write().map_err(db)?;
        tx.set_durability(Durability::Immediate).map_err(db)?;
        let next = {
            tx.open_table(LOG).map_err(db)?;
            tx.open_table(ACCEPTED).map_err(db)?;
            tx.open_table(PENDING).map_err(db)?;
            tx.open_table(DEAD).map_err(db)?;
            let meta = tx.open_table(META).map_err(db)?;
            meta.get("next_offset").map_err(db)?.map_or(1, |v| v.value())
        };
        Self::convert_legacy(&tx)?;
        tx.commit().map_err(db)?;
        Ok(Self { db: Arc::new(database), next_offset: Arc::new(Mutex::new(next)) })
    }

    /// Moves an outbox of one row per event into chunks of one event each (offsets kept).
    fn convert_legacy(tx: &redb::WriteTransaction) -> Result<(), OutboxError> {
        let names: Vec<String> =
            tx.list_tables().map_err(db)?.map(|t| t.name().to_string()).collect();
        if !names.iter().any(|n| n == LEGACY_LOG.name()) {
            return Ok(());
        }
        let mut converted = 0i64;
        {
            let old_log = tx.open_table(LEGACY_LOG).map_err(db)?;
            let mut log = tx.open_table(LOG).map_err(db)?;
            for entry in old_log.iter().map_err(db)? {
                let (key, value) = entry.map_err(db)?;
                // One that does not read is kept as it is; its delivery dead-letters it.
                let bytes = bytes::Bytes::copy_from_slice(value.value());
                let event =
                    parse_event(bytes.clone()).unwrap_or_else(|_| RawEvent::unparsed(bytes));
                log.insert(key.value(), Chunk::encode(&[event]).as_slice()).map_err(db)?;
                converted += 1;
            }
            if names.iter().any(|n| n == LEGACY_PENDING.name()) {
                let old = tx.open_table(LEGACY_PENDING).map_err(db)?;
                let mut pending = tx.open_table(PENDING).map_err(db)?;
                for entry in old.iter().map_err(db)? {
                    let (key, value) = entry.map_err(db)?;
                    let (target, offset) = key.value();
                    pending
                        .insert((target, offset), (value.value(), [1u8].as_slice()))
                        .map_err(db)?;
                }
            }
            add_meta(&mut tx.open_table(META).map_err(db)?, "log_events", converted)?;
        }
        tx.delete_table(LEGACY_LOG).map_err(db)?;
        tx.delete_table(LEGACY_PENDING).map_err(db)?;
        tracing::info!(events = converted, "outbox converted to chunks");
        Ok(())
    }

    /// Appends a broker's batch (its events stored as they came, not encoded again): skips events
    /// of this node and incarnation already accepted, logs the rest in chunks, queues a delivery
    /// for every target (index into `targets`) that `route` adds to the list it is given, and
    /// commits durably.
    pub fn append(
        &self,
        batch: impl Into<RawBatch>,
        now_ms: u64,
        targets: &[Arc<str>],
        route: impl Fn(&RawEvent, &mut Vec<usize>),
    ) -> Result<Appended, OutboxError> {
        let batch = batch.into();
        let mut next = self.next_offset.lock();
        let mut out = Appended::default();
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::Immediate).map_err(db)?;
        let first = *next;
        {
            let mut accepted = tx.open_table(ACCEPTED).map_err(db)?;
            let RawBatch { node_id, incarnation, mut events } = batch;
            let key = (node_id.as_str(), incarnation);
            let mut last = accepted.get(key).map_err(db)?.map_or(0, |v| v.value());
            events.retain(|event| {
                let new = event.sequence > last;
                last = last.max(event.sequence);
                new
            });
            let mut log = tx.open_table(LOG).map_err(db)?;
            let mut pending = tx.open_table(PENDING).map_err(db)?;
            let mut offset = first;
            let mut routed = Vec::with_capacity(targets.len());
            for chunk in chunked(&events) {
                let mut owed: Vec<Vec<u8>> = vec![Vec::new(); targets.len()];
                for (i, event) in (0u64..).zip(chunk) {
                    routed.clear();
                    route(event, &mut routed);
                    for &t in &routed {
                        if let Some(bits) = owed.get_mut(t)
                            && set_bit(bits, i)
                        {
                            out.queued += 1;
                        }
                    }
                }
                log.insert(offset, Chunk::encode(chunk).as_slice()).map_err(db)?;
                for (target, bits) in targets.iter().zip(&owed).filter(|(_, b)| !b.is_empty()) {
                    pending.insert((&**target, offset), (now_ms, bits.as_slice())).map_err(db)?;
                }
                offset += chunk.len() as u64;
            }
            let count = events.len() as u64;
            out.first_offset = first;
            out.accepted = events;
            accepted.insert(key, last).map_err(db)?;
            out.durable_sequence = last;
            let mut meta = tx.open_table(META).map_err(db)?;
            meta.insert("next_offset", first + count).map_err(db)?;
            add_meta(&mut meta, "log_events", i64::try_from(count).unwrap_or(i64::MAX))?;
        }
        tx.commit().map_err(db)?;
        *next = first + out.accepted.len() as u64;
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
        let from = after.saturating_add(1);
        let start = owed_row(&pending, target, from)?.map_or(from, |(first, _, _)| first);
        let mut out = Vec::new();
        for entry in pending.range((target, start)..=(target, u64::MAX)).map_err(db)? {
            let (key, value) = entry.map_err(db)?;
            let first = key.value().1;
            let (enqueued_ms, bits) = value.value();
            let Some(chunk) = log.get(first).map_err(db)? else { continue };
            let chunk = chunk.value();
            for i in 0..(bits.len() as u64 * 8) {
                let offset = first + i;
                if offset < from || !bit(bits, i) {
                    continue;
                }
                let (event, decode_error) = match Chunk::event(chunk, i).map(decode_event) {
                    Some(Ok(event)) => (event, None),
                    Some(Err(e)) => (Event::default(), Some(e.to_string())),
                    None => (Event::default(), Some("missing from its chunk".to_string())),
                };
                out.push(Pending { offset, enqueued_ms, event: Arc::new(event), decode_error });
                if out.len() >= limit {
                    return Ok(out);
                }
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
            // Rows changed, written once each at the end.
            let mut rows: BTreeMap<(&str, u64), (u64, Vec<u8>)> = BTreeMap::new();
            for &(target, offset) in done {
                let Some((first, enqueued, bits)) = owed_row(&pending, target, offset)? else {
                    continue;
                };
                let row = rows.entry((target, first)).or_insert((enqueued, bits));
                clear_bit(&mut row.1, offset - first);
            }
            for ((target, first), (enqueued, bits)) in rows {
                if ones(&bits) == 0 {
                    pending.remove((target, first)).map_err(db)?;
                } else {
                    pending.insert((target, first), (enqueued, bits.as_slice())).map_err(db)?;
                }
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
            if let Some((first, enqueued, mut bits)) = owed_row(&pending, target, offset)?
                && clear_bit(&mut bits, offset - first)
            {
                if ones(&bits) == 0 {
                    pending.remove((target, first)).map_err(db)?;
                } else {
                    pending.insert((target, first), (enqueued, bits.as_slice())).map_err(db)?;
                }
            }
            let log = tx.open_table(LOG).map_err(db)?;
            let bytes = chunk_of(&log, offset)?
                .and_then(|(first, chunk)| Chunk::event(&chunk, offset - first).map(<[u8]>::to_vec))
                .unwrap_or_default();
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
                event: decode_event(bytes).unwrap_or_default(),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Puts dead letters of `target` back to pending (all of them when `offsets` is empty);
    /// returns how many. The log entry is restored when it was pruned meanwhile. A redriven
    /// delivery's `max_age` counts from now; other deliveries owed from the same chunk then count
    /// from now too (the enqueue time is kept per chunk).
    pub fn redrive(&self, target: &str, offsets: &[u64], now_ms: u64) -> Result<u64, OutboxError> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(Durability::Immediate).map_err(db)?;
        let mut count = 0;
        {
            let mut dead = tx.open_table(DEAD).map_err(db)?;
            let mut log = tx.open_table(LOG).map_err(db)?;
            let mut pending = tx.open_table(PENDING).map_err(db)?;
            let mut meta = tx.open_table(META).map_err(db)?;
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
                let first = match chunk_of(&log, offset)? {
                    Some((first, _)) => first,
                    None => {
                        let bytes = bytes::Bytes::from(bytes);
                        let event = parse_event(bytes.clone())
                            .unwrap_or_else(|_| RawEvent::unparsed(bytes));
                        log.insert(offset, Chunk::encode(&[event]).as_slice()).map_err(db)?;
                        add_meta(&mut meta, "log_events", 1)?;
                        offset
                    }
                };
                let mut bits = pending
                    .get((target, first))
                    .map_err(db)?
                    .map(|v| v.value().1.to_vec())
                    .unwrap_or_default();
                set_bit(&mut bits, offset - first);
                pending.insert((target, first), (now_ms, bits.as_slice())).map_err(db)?;
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
                .retain(|(target, _), (_, bits)| {
                    let k = keep.contains(&target);
                    if !k {
                        removed += ones(bits);
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
        let start = chunk_of(&log, from)?.map_or(from, |(first, _)| first);
        let mut out = Vec::new();
        for entry in log.range(start..).map_err(db)? {
            let (key, value) = entry.map_err(db)?;
            let (first, chunk) = (key.value(), value.value());
            for i in 0..Chunk::header(chunk).0 {
                if first + i < from {
                    continue;
                }
                if let Some(Ok(event)) = Chunk::event(chunk, i).map(decode_event) {
                    out.push((first + i, event));
                }
                if out.len() >= limit {
                    return Ok(out);
                }
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

    /// Removes log chunks whose events are all older than `cutoff_ms` and that no pending delivery
    /// needs; returns how many events went.
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
                let Some((first, (count, newest))) =
                    log.first().map_err(db)?.map(|(k, v)| (k.value(), Chunk::header(v.value())))
                else {
                    break;
                };
                if first >= oldest_needed || newest >= cutoff_ms {
                    break;
                }
                log.remove(first).map_err(db)?;
                removed += count;
            }
            let mut meta = tx.open_table(META).map_err(db)?;
            add_meta(&mut meta, "log_events", -i64::try_from(removed).unwrap_or(i64::MAX))?;
        }
        tx.commit().map_err(db)?;
        Ok(removed)
    }

    /// Sizes of the tables.
    pub fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let tx = self.db.begin_read().map_err(db)?;
        let mut pending = 0;
        for entry in tx.open_table(PENDING).map_err(db)?.iter().map_err(db)? {
            pending += ones(entry.map_err(db)?.1.value().1);
        }
        let meta = tx.open_table(META).map_err(db)?;
        Ok(OutboxStats {
            log_events: meta.get("log_events").map_err(db)?.map_or(0, |v| v.value()),
            pending,
            dead: tx.open_table(DEAD).map_err(db)?.len().map_err(db)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn event(sequence: u64, client: &str) -> Event {
        Event {
            sequence,
            timestamp_ms: 1_000 + sequence,
            id: client.to_string(),
            ..Default::default()
        }
    }

    fn batch(
        incarnation: u64,
        sequences: std::ops::RangeInclusive<u64>,
    ) -> proto::events::v1::EventBatch {
        proto::events::v1::EventBatch {
            node_id: "n1".into(),
            incarnation,
            events: sequences.map(|s| event(s, &format!("c{s}"))).collect(),
            first_sequence: 0,
        }
    }

    fn offsets(items: &[Pending]) -> Vec<u64> {
        items.iter().map(|p| p.offset).collect()
    }

    fn open() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(&dir.path().join("outbox.redb")).expect("outbox");
        (dir, outbox)
    }

    #[test]
    fn a_chunk_gives_back_each_event_and_nothing_past_its_end() {
        let events: Vec<Event> = (1..=5).map(|s| event(s, "c")).collect();
        let raw: Vec<RawEvent> = events.iter().map(RawEvent::encode).collect();
        let bytes = Chunk::encode(&raw);
        assert_eq!(Chunk::header(&bytes), (5, 1_005));
        for (i, e) in (0u64..).zip(&events) {
            let decoded =
                Event::decode(Chunk::event(&bytes, i).expect("present")).expect("decodes");
            assert_eq!(&decoded, e);
        }
        assert!(Chunk::event(&bytes, 5).is_none());
        assert!(Chunk::event(&bytes[..3], 0).is_none(), "too short to be a chunk");
        assert!(Chunk::event(&bytes[..bytes.len() - 1], 4).is_none(), "cut short");
    }

    #[test]
    fn chunks_are_bounded_by_events_and_by_bytes() {
        let sized = |n: usize| RawEvent::unparsed(bytes::Bytes::from(vec![0u8; n]));
        let lens = |events: &[RawEvent]| chunked(events).map(<[RawEvent]>::len).collect::<Vec<_>>();
        assert_eq!(lens(&vec![sized(10); CHUNK_EVENTS * 2 + 1]), [CHUNK_EVENTS, CHUNK_EVENTS, 1]);
        let big = CHUNK_BYTES / 2 + 1;
        assert_eq!(lens(&[sized(big), sized(big), sized(big)]), [1, 1, 1]);
        // Encoded (header, a 4-byte end position per event, events), a chunk fills its page and
        // no more: 2043 events of 60 bytes, where counting the events' bytes alone would take
        // 2048 (over the page).
        let events = vec![sized(60); 5000];
        let chunks: Vec<&[RawEvent]> = chunked(&events).collect();
        let per_chunk = (CHUNK_BYTES - Chunk::HEADER) / (4 + 60);
        assert_eq!((chunks[0].len(), per_chunk), (2043, 2043));
        assert!(chunks.iter().all(|c| Chunk::encode(c).len() <= CHUNK_BYTES));
        assert!(Chunk::encode(chunks[0]).len() > CHUNK_BYTES - 64, "full");
        assert_eq!(
            lens(&[sized(CHUNK_BYTES * 3), sized(1), sized(1)]),
            [1, 2],
            "a large event alone"
        );
        assert!(lens(&[]).is_empty());
    }

    #[test]
    fn one_large_append_becomes_several_chunks_read_back_in_order() {
        let (_dir, outbox) = open();
        let targets: Vec<Arc<str>> = vec!["a".into()];
        let n = CHUNK_EVENTS as u64 * 2 + 5;
        let appended =
            outbox.append(batch(1, 1..=n), 7, &targets, |_, to| to.push(0)).expect("append");
        assert_eq!((appended.queued, appended.durable_sequence), (n, n));
        assert_eq!(outbox.bounds().expect("bounds"), (1, n + 1));
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = outbox.pending("a", after, 700).expect("pending");
            let Some(last) = page.last() else { break };
            after = last.offset;
            seen.extend(page.iter().map(|p| (p.offset, p.event.sequence)));
        }
        assert_eq!(seen, (1..=n).map(|o| (o, o)).collect::<Vec<_>>());
        let log = outbox.read_log(CHUNK_EVENTS as u64 - 1, 4).expect("read");
        let offsets: Vec<u64> = log.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (CHUNK_EVENTS as u64 - 1..CHUNK_EVENTS as u64 + 3).collect::<Vec<_>>());
    }

    #[test]
    fn deliveries_are_owed_per_target_across_chunks_until_completed() {
        let (_dir, outbox) = open();
        let targets: Vec<Arc<str>> = vec!["a".into(), "b".into()];
        // `a` wants every event, `b` only odd sequences.
        let route = |e: &RawEvent, to: &mut Vec<usize>| {
            to.extend(if e.sequence % 2 == 1 { &[0, 1][..] } else { &[0] });
        };
        let first = outbox.append(batch(1, 1..=4), 7, &targets, route).expect("append");
        assert_eq!(first.queued, 6);
        assert_eq!(first.durable_sequence, 4);
        let second = outbox.append(batch(1, 3..=6), 8, &targets, route).expect("append");
        assert_eq!(second.accepted.len(), 2, "3 and 4 were accepted before");
        assert_eq!((second.first_offset, second.accepted[0].sequence), (5, 5));

        let a = outbox.pending("a", 0, 100).expect("pending");
        assert_eq!(offsets(&a), [1, 2, 3, 4, 5, 6]);
        assert_eq!(a[4].enqueued_ms, 8);
        assert_eq!(a[4].event.id, "c5");
        assert_eq!(offsets(&outbox.pending("b", 0, 100).expect("pending")), [1, 3, 5]);
        assert_eq!(
            offsets(&outbox.pending("a", 2, 3).expect("pending")),
            [3, 4, 5],
            "after, limit"
        );

        outbox.complete(&[("a", 1), ("a", 2), ("a", 5), ("b", 3)]).expect("complete");
        assert_eq!(offsets(&outbox.pending("a", 0, 100).expect("pending")), [3, 4, 6]);
        assert_eq!(offsets(&outbox.pending("b", 0, 100).expect("pending")), [1, 5]);
        assert_eq!(outbox.stats().expect("stats").pending, 5);
        assert_eq!(outbox.stats().expect("stats").log_events, 6);

        // Completing what is not owed changes nothing.
        outbox.complete(&[("b", 2), ("b", 4), ("a", 99)]).expect("complete");
        assert_eq!(outbox.stats().expect("stats").pending, 5);

        assert_eq!(outbox.forget_targets(&["a"]).expect("forget"), 2);
        assert!(outbox.pending("b", 0, 100).expect("pending").is_empty());
    }

    #[test]
    fn a_killed_delivery_is_dead_until_redriven_even_after_its_chunk_was_pruned() {
        let (_dir, outbox) = open();
        let targets: Vec<Arc<str>> = vec!["a".into()];
        outbox.append(batch(1, 1..=3), 7, &targets, |_, to| to.push(0)).expect("append");
        outbox.kill("a", 2, "404 Not Found", 9).expect("kill");
        assert_eq!(offsets(&outbox.pending("a", 0, 100).expect("pending")), [1, 3]);
        let dead = outbox.dead_letters(Some("a"), 10).expect("dead letters");
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].offset, dead[0].event.id.as_str()), (2, "c2"));

        outbox.complete(&[("a", 1), ("a", 3)]).expect("complete");
        assert_eq!(outbox.prune(u64::MAX).expect("prune"), 3, "nothing owed: the chunk goes");
        assert!(outbox.read_log(1, 10).expect("read").is_empty());

        assert_eq!(outbox.redrive("a", &[], 50).expect("redrive"), 1);
        let again = outbox.pending("a", 0, 100).expect("pending");
        assert_eq!(offsets(&again), [2]);
        assert_eq!((again[0].event.id.as_str(), again[0].enqueued_ms), ("c2", 50));
        assert!(outbox.dead_letters(None, 10).expect("dead letters").is_empty());
        assert_eq!(outbox.read_log(0, 10).expect("read")[0].0, 2, "the log entry is back");
    }

    #[test]
    fn pruning_keeps_chunks_still_owed_or_recent_and_the_log_reads_across_chunks() {
        let (_dir, outbox) = open();
        let targets: Vec<Arc<str>> = vec!["a".into()];
        outbox.append(batch(1, 1..=2), 7, &targets, |_, _| {}).expect("append");
        outbox
            .append(batch(1, 3..=4), 7, &targets, |e, to| to.extend((e.sequence == 4).then_some(0)))
            .expect("append");
        outbox.append(batch(1, 5..=6), 7, &targets, |_, _| {}).expect("append");
        let log: Vec<u64> = outbox.read_log(2, 4).expect("read").iter().map(|(o, _)| *o).collect();
        assert_eq!(log, [2, 3, 4, 5]);
        assert_eq!(outbox.bounds().expect("bounds"), (1, 7));
        // Only the first chunk goes: the second is owed to `a`, and nothing after it is pruned.
        assert_eq!(outbox.prune(u64::MAX).expect("prune"), 2);
        assert_eq!(outbox.bounds().expect("bounds"), (3, 7));
        outbox.complete(&[("a", 4)]).expect("complete");
        // Events newer than the cutoff stay.
        assert_eq!(outbox.prune(1_005).expect("prune"), 2);
        assert_eq!(outbox.bounds().expect("bounds"), (5, 7));
        assert_eq!(outbox.stats().expect("stats").log_events, 2);
    }

    #[test]
    fn an_outbox_of_one_row_per_event_is_converted_with_what_it_owed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("outbox.redb");
        {
            let database = Database::create(&path).expect("create");
            let tx = database.begin_write().expect("write");
            {
                let mut log = tx.open_table(LEGACY_LOG).expect("log");
                let mut pending = tx.open_table(LEGACY_PENDING).expect("pending");
                for s in 1..=3u64 {
                    log.insert(s, event(s, &format!("c{s}")).encode_to_vec().as_slice())
                        .expect("insert");
                }
                pending.insert(("a", 2), 42).expect("insert");
                pending.insert(("a", 3), 43).expect("insert");
                tx.open_table(META).expect("meta").insert("next_offset", 4).expect("insert");
            }
            tx.commit().expect("commit");
        }
        let outbox = Outbox::open(&path).expect("converted");
        let owed = outbox.pending("a", 0, 10).expect("pending");
        assert_eq!(offsets(&owed), [2, 3]);
        assert_eq!((owed[0].enqueued_ms, owed[1].event.id.as_str()), (42, "c3"));
        assert_eq!(outbox.stats().expect("stats").log_events, 3);
        assert_eq!(outbox.read_log(1, 10).expect("read").len(), 3);
        // New events continue the offsets, and opening again converts nothing twice.
        let targets: Vec<Arc<str>> = vec!["a".into()];
        let next = outbox.append(batch(9, 1..=1), 0, &targets, |_, to| to.push(0)).expect("append");
        assert_eq!((next.first_offset, next.accepted.len()), (4, 1));
        drop(outbox);
        let outbox = Outbox::open(&path).expect("reopened");
        assert_eq!(offsets(&outbox.pending("a", 0, 10).expect("pending")), [2, 3, 4]);
        assert_eq!(outbox.stats().expect("stats").log_events, 4);
    }
}
