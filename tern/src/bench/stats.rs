//! What the load tool counts: latency histograms, the per-publisher sequence tracking that finds
//! lost, duplicated and reordered messages, and the counters every connection task adds to.
//!
//! Hot-path rule: connection tasks count locally and publish to the shared [`Counters`] once per
//! read or write batch (relaxed atomics), and merge their latency samples into the shared
//! histogram at most every [`FLUSH_EVERY_NS`], so the tool's own cost per message stays a few
//! nanoseconds.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
};

use parking_lot::Mutex;

/// How often a subscriber merges its local latency samples into the shared histogram.
pub const FLUSH_EVERY_NS: u64 = 100_000_000;

/// Sub-buckets per power of two: 2^6 = 64, so a recorded value is within 1/64 (1.6 %) of the truth.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values are clamped to 2^40 ns (about 18 minutes).
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;

fn bucket_of(value: u64) -> usize {
    let v = value.min((1 << MAX_EXP) - 1);
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let mantissa = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(exp - SUB_BITS) * SUB + mantissa) as usize
}

/// The smallest value that falls in `bucket` (what percentiles report).
fn bucket_low(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < SUB {
        return b;
    }
    let exp = (b - SUB) / SUB + u64::from(SUB_BITS);
    let mantissa = (b - SUB) % SUB;
    (1 << exp) | (mantissa << (exp - u64::from(SUB_BITS)))
}

/// A log-linear histogram of nanosecond values (the HdrHistogram idea, fixed precision of 1.6 %).
/// Buckets are allocated on the first sample, so idle connections pay nothing.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, value: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.max = self.max.max(value);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (0.0..=1.0), or `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_low(bucket).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Largest sample.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// Mean of the samples.
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// Empties the histogram, keeping its buckets.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.sum = 0;
        self.max = 0;
    }
}

/// The figures of a histogram in milliseconds, as reports show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile, ms.
    pub p999_ms: Option<f64>,
    /// Largest, ms.
    pub max_ms: Option<f64>,
    /// Mean, ms.
    pub mean_ms: Option<f64>,
}

impl LatencySummary {
    /// Summarises `h` (values in ns).
    pub fn of(h: &Histogram) -> Self {
        let ms = |ns: u64| ns as f64 / 1e6;
        Self {
            count: h.count(),
            p50_ms: h.quantile(0.50).map(ms),
            p90_ms: h.quantile(0.90).map(ms),
            p99_ms: h.quantile(0.99).map(ms),
            p999_ms: h.quantile(0.999).map(ms),
            max_ms: h.max().map(ms),
            mean_ms: h.mean().map(|m| m / 1e6),
        }
    }
}

/// Tracks one publisher's sequence numbers as seen by one subscriber.
#[derive(Debug, Default)]
struct Sequence {
    /// One past the highest sequence number seen.
    next: u64,
    /// Sequence numbers skipped over and not (yet) seen: a later arrival of one of them is a
    /// reordering, not a duplicate. Bounded by [`MAX_TRACKED_GAPS`].
    missing: std::collections::BTreeSet<u64>,
    /// Skipped numbers beyond what `missing` could hold (counted as lost, never resolved).
    untracked: u64,
}

/// Most skipped sequence numbers remembered per publisher and subscriber.
const MAX_TRACKED_GAPS: usize = 100_000;

/// Whether a subscriber should see every message of each publisher it hears from (normal
/// subscriptions) or only some of them (a member of a shared-subscription group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// Every message: gaps are losses, a repeated number is a duplicate.
    Full,
    /// Some messages: gaps are normal; only going backwards is reported (as reordering).
    Partial,
}

/// Result of one arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New and in order.
    InOrder,
    /// New, but after a later sequence number of the same publisher.
    Reordered,
    /// Seen before.
    Duplicate,
}

/// One subscriber's view of every publisher's sequence.
#[derive(Debug)]
pub struct Tracker {
    mode: Completeness,
    publishers: HashMap<u32, Sequence, foldhash::fast::RandomState>,
    /// Distinct messages received.
    pub unique: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Messages that arrived after a later message of their publisher.
    pub reordered: u64,
}

impl Tracker {
    /// A tracker for a subscriber of the given kind.
    pub fn new(mode: Completeness) -> Self {
        Self { mode, publishers: HashMap::default(), unique: 0, duplicates: 0, reordered: 0 }
    }

    /// Records message `seq` of publisher `publisher`. Returns what it was and the change in the
    /// number of open gaps (positive: new numbers skipped; negative: a gap filled).
    pub fn record(&mut self, publisher: u32, seq: u64) -> (Arrival, i64) {
        let seqs = self.publishers.entry(publisher).or_default();
        let mut gaps = 0i64;
        let arrival = if seq >= seqs.next {
            if seq > seqs.next && self.mode == Completeness::Full {
                let skipped = seq - seqs.next;
                if seqs.missing.len() as u64 + skipped <= MAX_TRACKED_GAPS as u64 {
                    seqs.missing.extend(seqs.next..seq);
                } else {
                    seqs.untracked += skipped;
                }
                gaps = i64::try_from(skipped).unwrap_or(i64::MAX);
            }
            seqs.next = seq + 1;
            Arrival::InOrder
        } else if self.mode == Completeness::Partial {
            Arrival::Reordered
        } else if seqs.missing.remove(&seq) {
            gaps = -1;
            Arrival::Reordered
        } else {
            Arrival::Duplicate
        };
        match arrival {
            Arrival::InOrder => self.unique += 1,
            Arrival::Reordered => {
                self.unique += 1;
                self.reordered += 1;
            }
            Arrival::Duplicate => self.duplicates += 1,
        }
        (arrival, gaps)
    }

    /// Sequence numbers skipped and never seen (only meaningful for [`Completeness::Full`]).
    pub fn open_gaps(&self) -> u64 {
        self.publishers.values().map(|s| s.missing.len() as u64 + s.untracked).sum()
    }
}

/// Counters shared by every connection task of a run, read by the progress reporter.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections with a CONNACK (currently open).
    pub connected: AtomicU64,
    /// Connections that failed to open (TCP, TLS, WebSocket or CONNACK).
    pub connect_failures: AtomicU64,
    /// Connections the broker closed before the end of the run.
    pub dropped_connections: AtomicU64,
    /// Subscribers with a SUBACK.
    pub subscribed: AtomicU64,
    /// PUBLISH packets sent.
    pub sent: AtomicU64,
    /// PUBLISH packets acknowledged (PUBACK at QoS 1, PUBCOMP at QoS 2).
    pub acked: AtomicU64,
    /// PUBLISH packets received by subscribers.
    pub received: AtomicU64,
    /// Sequence numbers currently skipped (possibly lost) across subscribers.
    pub open_gaps: AtomicU64,
    /// Duplicates so far.
    pub duplicates: AtomicU64,
    /// Reorderings so far.
    pub reordered: AtomicU64,
    /// Received payloads without the load tool's header (no latency or sequence).
    pub untracked: AtomicU64,
    /// Time of the last message received, ns since the run's epoch.
    pub last_received_ns: AtomicU64,
}

impl Counters {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Applies a change in the number of open gaps.
    pub fn add_gaps(&self, delta: i64) {
        if delta > 0 {
            self.open_gaps.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else if delta < 0 {
            self.open_gaps.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }
}

/// Latency samples merged from every subscriber: the current second's (for the progress line) and
/// everything so far (for the summary).
#[derive(Debug, Default)]
pub struct Latencies {
    /// Samples since the last progress line.
    pub interval: Mutex<Histogram>,
}

impl Latencies {
    /// Merges a subscriber's local samples and clears them.
    pub fn flush(&self, local: &mut Histogram) {
        if local.is_empty() {
            return;
        }
        self.interval.lock().merge(local);
        local.clear();
    }

    /// Takes the samples since the last call.
    pub fn take_interval(&self) -> Histogram {
        std::mem::take(&mut *self.interval.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_precise() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7).chain([1 << 30, 1 << 39, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket order at {v}");
            assert!(b < BUCKETS);
            last = b;
            let low = bucket_low(b);
            if v < (1 << MAX_EXP) {
                assert!(low <= v, "{low} <= {v}");
                assert!((v - low) as f64 <= v as f64 / 64.0 + 1.0, "precision at {v}");
            }
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5).expect("samples");
        assert!((490_000..=500_000).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).expect("samples");
        assert!((975_000..=990_000).contains(&p99), "{p99}");
        assert_eq!(h.max(), Some(1_000_000));
        let mut other = Histogram::default();
        other.merge(&h);
        assert_eq!(other.count(), 1000);
    }

    #[test]
    fn tracker_tells_loss_duplicates_and_reordering_apart() {
        let mut t = Tracker::new(Completeness::Full);
        assert_eq!(t.record(1, 0), (Arrival::InOrder, 0));
        assert_eq!(t.record(1, 1), (Arrival::InOrder, 0));
        assert_eq!(t.record(2, 0), (Arrival::InOrder, 0));
        assert_eq!(t.record(1, 4), (Arrival::InOrder, 2));
        assert_eq!(t.record(1, 2), (Arrival::Reordered, -1));
        assert_eq!(t.record(1, 2), (Arrival::Duplicate, 0));
        assert_eq!(t.record(2, 1), (Arrival::InOrder, 0));
        assert_eq!(t.record(1, 4), (Arrival::Duplicate, 0));
        assert_eq!(t.open_gaps(), 1, "3 never came");
        assert_eq!((t.unique, t.duplicates, t.reordered), (6, 2, 1));
    }

    #[test]
    fn partial_tracking_accepts_gaps() {
        let mut t = Tracker::new(Completeness::Partial);
        assert_eq!(t.record(0, 3), (Arrival::InOrder, 0));
        assert_eq!(t.record(0, 7), (Arrival::InOrder, 0));
        assert_eq!(t.record(0, 5), (Arrival::Reordered, 0));
        assert_eq!(t.open_gaps(), 0);
    }
}
