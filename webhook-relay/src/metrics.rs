//! The relay's counters and gauges, and their Prometheus text.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the delivery latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// Counters shared by the relay's tasks (all relaxed atomics: they are statistics).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events accepted from brokers (new ones, not resends).
    pub ingested: AtomicU64,
    /// Events a broker resent that the outbox already held.
    pub duplicates: AtomicU64,
    /// Deliveries queued (one per event and target).
    pub queued: AtomicU64,
    /// Deliveries done.
    pub delivered: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Deliveries given up (dead letters).
    pub dead_lettered: AtomicU64,
    /// Pending deliveries dropped because their target was removed from the configuration.
    pub dropped: AtomicU64,
    /// Deliveries still owed (gauge).
    pub pending: AtomicU64,
    /// Events in the outbox's log (gauge, refreshed periodically).
    pub outbox_events: AtomicU64,
    /// Dead letters held (gauge, refreshed periodically).
    pub outbox_dead: AtomicU64,
    /// Delivery latency (outbox to delivered) histogram: counts per bucket, then +Inf.
    latency_buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of latencies, microseconds.
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Records one delivery's latency.
    pub fn observe_latency(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.latency_buckets[i].fetch_add(1, Relaxed);
        self.latency_sum_us
            .fetch_add(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, v: &AtomicU64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Relaxed)
            ));
        };
        counter(
            "tern_relay_events_ingested_total",
            "Events accepted from brokers.",
            "counter",
            &self.ingested,
        );
        counter(
            "tern_relay_events_duplicate_total",
            "Resent events the outbox already held.",
            "counter",
            &self.duplicates,
        );
        counter(
            "tern_relay_webhooks_queued_total",
            "Webhook deliveries queued.",
            "counter",
            &self.queued,
        );
        counter(
            "tern_relay_webhooks_delivered_total",
            "Webhook deliveries done.",
            "counter",
            &self.delivered,
        );
        counter(
            "tern_relay_webhooks_retried_total",
            "Failed webhook attempts that were retried.",
            "counter",
            &self.retried,
        );
        counter(
            "tern_relay_webhooks_dead_lettered_total",
            "Webhook deliveries given up.",
            "counter",
            &self.dead_lettered,
        );
        counter(
            "tern_relay_webhooks_dropped_total",
            "Pending webhook deliveries dropped because their target was removed.",
            "counter",
            &self.dropped,
        );
        counter(
            "tern_relay_webhooks_pending",
            "Webhook deliveries still owed.",
            "gauge",
            &self.pending,
        );
        counter(
            "tern_relay_outbox_events",
            "Events in the outbox log.",
            "gauge",
            &self.outbox_events,
        );
        counter(
            "tern_relay_outbox_dead_letters",
            "Dead letters in the outbox.",
            "gauge",
            &self.outbox_dead,
        );
        let name = "tern_relay_webhook_latency_seconds";
        out.push_str(&format!(
            "# HELP {name} Time from the outbox to a delivered webhook.\n# TYPE {name} histogram\n"
        ));
        let mut cumulative = 0;
        for (i, bucket) in self.latency_buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {cumulative}\n"));
        }
        let sum = self.latency_sum_us.load(Relaxed) as f64 / 1e6;
        out.push_str(&format!("{name}_sum {sum}\n{name}_count {cumulative}\n"));
        out
    }
}
