//! Broker counters and gauges.
//!
//! Counters are bumped from every connection task on every core, so each is split into
//! cache-line-padded shards indexed per thread; reading sums the shards. No lock, no shared
//! cache line on the publish path.

use std::{
    cell::Cell,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
};

const SHARDS: usize = 16;

#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// A monotonic counter, sharded per thread.
#[derive(Debug, Default)]
pub struct Counter {
    shards: [Padded; SHARDS],
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn shard_index() -> usize {
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.shards[shard_index()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.shards.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// A gauge with its peak since start.
#[derive(Debug, Default)]
pub struct Gauge {
    value: AtomicU64,
    max: AtomicU64,
}

impl Gauge {
    /// Adds one and updates the peak.
    pub fn inc(&self) {
        let now = self.value.fetch_add(1, Ordering::Relaxed) + 1;
        self.max.fetch_max(now, Ordering::Relaxed);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.value.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// The peak since start.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

/// The broker's statistics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connected clients.
    pub connections: Gauge,
    /// PUBLISH packets received from clients (and messages published by the broker).
    pub messages_received: Counter,
    /// PUBLISH packets sent to subscribers.
    pub messages_sent: Counter,
    /// Messages dropped (no subscriber is not a drop; full queues, expiry, size, denial are).
    pub messages_dropped: Counter,
    /// Bytes read from clients.
    pub bytes_received: Counter,
    /// Bytes written to clients.
    pub bytes_sent: Counter,
    /// Packets read.
    pub packets_received: Counter,
    /// Packets written.
    pub packets_sent: Counter,
    /// CONNECTs accepted.
    pub connects_accepted: Counter,
    /// CONNECTs refused (authentication, protocol, limits).
    pub connects_refused: Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_sums_across_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = std::sync::Arc::clone(&c);
                std::thread::spawn(move || (0..1000).for_each(|_| c.inc()))
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(c.get(), 8000);
    }

    #[test]
    fn gauge_tracks_peak() {
        let g = Gauge::default();
        g.inc();
        g.inc();
        g.dec();
        assert_eq!((g.get(), g.max()), (1, 2));
    }
}
