//! What a run tells: the progress line every second (stderr), the [`Summary`] with its table and
//! its JSON line, and the broker memory probe (`--broker-pid`).

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    Scenario, Transport,
    scenario::Run,
    stats::{Counters, Histogram, LatencySummary},
    system,
};

/// Connection figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ConnectionFigures {
    /// Connections the scenario opens.
    pub planned: u64,
    /// Connections that got a CONNACK.
    pub connected: u64,
    /// Connections that could not be opened.
    pub failed: u64,
    /// Connections the broker closed during the run.
    pub dropped: u64,
    /// Connections ready per second during the connect phase (for subscribers, SUBACK included).
    pub connects_per_s: f64,
    /// TCP connect to CONNACK.
    pub connect_latency: LatencySummary,
}

/// The load tool's own resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ToolFigures {
    /// Cores it may run on.
    pub cores: usize,
    /// Runtime worker threads.
    pub threads: usize,
    /// CPU over the publishing window, % of one core.
    pub cpu_avg_pct: f64,
    /// Highest one-second CPU reading, % of one core.
    pub cpu_peak_pct: f64,
    /// CPU during the connect phase, % of one core.
    pub connect_cpu_pct: f64,
    /// Whether it used more than 90 % of what its cores give: then the figures measure the tool,
    /// not the broker.
    pub saturated: bool,
    /// Its peak resident memory, bytes.
    pub rss_bytes: u64,
}

/// The broker's memory (`--broker-pid`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct BrokerFigures {
    /// Its process id.
    pub pid: u32,
    /// RSS before the first connection, bytes.
    pub rss_start: u64,
    /// Highest RSS sampled every 100 ms, bytes.
    pub rss_peak: u64,
    /// RSS when publishing (or holding connections) ended, bytes.
    pub rss_end: u64,
    /// `VmHWM` at the end (reset at the start when allowed), bytes.
    pub hwm: u64,
    /// (RSS at the end of the hold - RSS at start) / connections, bytes.
    pub rss_per_connection: Option<f64>,
    /// Its CPU use over the publishing (or holding) window, % of one core.
    pub cpu_avg_pct: Option<f64>,
    /// Its CPU use during the connect phase, % of one core.
    pub connect_cpu_pct: Option<f64>,
}

/// Every figure of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Scenario.
    pub scenario: Scenario,
    /// Transport.
    pub transport: Transport,
    /// MQTT version.
    pub mqtt_version: &'static str,
    /// QoS.
    pub qos: u8,
    /// Payload size, bytes.
    pub payload_bytes: usize,
    /// Messages per second per publisher; `None` for --max-rate.
    pub rate_per_publisher: Option<f64>,
    /// Publishers.
    pub publishers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Idle connections (conn).
    pub idle_connections: usize,
    /// Publishing (or holding) time, seconds.
    pub duration_s: f64,
    /// Connections.
    pub connections: ConnectionFigures,
    /// PUBLISH packets sent.
    pub sent: u64,
    /// Sent per second over the publishing window.
    pub sent_per_s: f64,
    /// Acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP).
    pub acked: u64,
    /// Not acknowledged by the end of the drain.
    pub unacked: u64,
    /// PUBLISH packets received by subscribers.
    pub received: u64,
    /// Received per second, from the start of publishing to the last message received.
    pub received_per_s: f64,
    /// Deliveries expected (sent × deliveries per message), when the scenario knows.
    pub expected: Option<u64>,
    /// Messages never received (expected - distinct received; without an expectation, sequence
    /// numbers skipped).
    pub lost: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Messages received after a later message of the same publisher.
    pub reordered: u64,
    /// Payloads without the tool's header (not in latency or sequence figures).
    pub untracked: u64,
    /// Publish-to-receive latency.
    pub latency: LatencySummary,
    /// The load tool.
    pub tool: ToolFigures,
    /// The broker, with --broker-pid.
    pub broker: Option<BrokerFigures>,
    /// Errors seen (connections refused or lost...).
    pub error_count: u64,
    /// The first distinct error messages.
    pub errors: Vec<String>,
}

impl Summary {
    /// The JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let rate = match self.rate_per_publisher {
            Some(r) => format!("{} msg/s per publisher", si(r)),
            None => "max rate".into(),
        };
        let _ = writeln!(
            t,
            "tern bench {}: MQTT {} QoS {} over {}, {}-byte payloads, {}, {:.1} s",
            self.scenario.as_str(),
            self.mqtt_version,
            self.qos,
            self.transport.as_str(),
            self.payload_bytes,
            rate,
            self.duration_s
        );
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<14} {v}");
        };
        let c = &self.connections;
        row(
            &mut t,
            "connections",
            format!(
                "{} publishers, {} subscribers, {} idle: {}/{} connected, {} failed, {} dropped",
                self.publishers,
                self.subscribers,
                self.idle_connections,
                c.connected,
                c.planned,
                c.failed,
                c.dropped
            ),
        );
        row(
            &mut t,
            "connect",
            format!(
                "{}/s; CONNECT->CONNACK p50 {} p99 {} ms; load tool cpu {:.0}%{}",
                si(c.connects_per_s),
                ms(c.connect_latency.p50_ms),
                ms(c.connect_latency.p99_ms),
                self.tool.connect_cpu_pct,
                self.broker
                    .and_then(|b| b.connect_cpu_pct)
                    .map(|p| format!(", broker cpu {p:.0}%"))
                    .unwrap_or_default()
            ),
        );
        if self.publishers > 0 {
            let acks = if self.qos > 0 {
                format!(", acked {}, unacked {}", self.acked, self.unacked)
            } else {
                String::new()
            };
            row(&mut t, "sent", format!("{} ({}/s){acks}", self.sent, si(self.sent_per_s)));
        }
        if self.subscribers > 0 {
            let expected = self.expected.map(|e| format!(", expected {e}")).unwrap_or_default();
            row(
                &mut t,
                "received",
                format!("{} ({}/s){expected}", self.received, si(self.received_per_s)),
            );
            row(
                &mut t,
                "lost/dup/reord",
                format!("{} / {} / {}", self.lost, self.duplicates, self.reordered),
            );
            let l = &self.latency;
            row(
                &mut t,
                "latency ms",
                format!(
                    "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
                    ms(l.p50_ms),
                    ms(l.p90_ms),
                    ms(l.p99_ms),
                    ms(l.p999_ms),
                    ms(l.max_ms),
                    ms(l.mean_ms)
                ),
            );
            if self.untracked > 0 {
                row(&mut t, "untracked", format!("{} payloads without header", self.untracked));
            }
        }
        let tool = &self.tool;
        row(
            &mut t,
            "load tool",
            format!(
                "cpu {:.0}% avg, {:.0}% peak ({} threads, {} cores); rss {}{}",
                tool.cpu_avg_pct,
                tool.cpu_peak_pct,
                tool.threads,
                tool.cores,
                bytes(tool.rss_bytes as f64),
                if tool.saturated { "  -- load tool saturated" } else { "" }
            ),
        );
        if let Some(b) = &self.broker {
            let per = b
                .rss_per_connection
                .map(|p| format!("; {} per connection", bytes(p)))
                .unwrap_or_default();
            row(
                &mut t,
                "broker memory",
                format!(
                    "pid {}: cpu {}; rss {} at start, {} peak (VmHWM {}), {} at end{per}",
                    b.pid,
                    b.cpu_avg_pct.map_or("-".into(), |c| format!("{c:.0}%")),
                    bytes(b.rss_start as f64),
                    bytes(b.rss_peak as f64),
                    bytes(b.hwm as f64),
                    bytes(b.rss_end as f64)
                ),
            );
        }
        if self.error_count > 0 {
            row(&mut t, "errors", format!("{}", self.error_count));
            for e in &self.errors {
                let _ = writeln!(t, "    {e}");
            }
        }
        t
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.3}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// 1234567 -> "1.23M".
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn bytes(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

/// What the progress reporter measured over the run.
#[derive(Debug, Default)]
pub(crate) struct Reported {
    /// Every latency sample merged so far.
    pub latency: Histogram,
    /// Highest one-second CPU reading, % of one core.
    pub cpu_peak_pct: f64,
}

/// Prints a progress line every second until `stop` (unless `quiet`), and collects the latency
/// samples and the CPU readings.
pub(crate) async fn reporter(
    run: Arc<Run>,
    quiet: bool,
    broker_pid: Option<u32>,
    stop: CancellationToken,
) -> Reported {
    let begun = Instant::now();
    let mut meter = system::CpuMeter::new(None);
    let mut broker_meter = broker_pid.map(|pid| system::CpuMeter::new(Some(pid)));
    let cores = system::available_cores();
    let threads = tokio::runtime::Handle::current().metrics().num_workers();
    let capacity = 100.0 * cores.min(threads).max(1) as f64;
    let mut tick = tokio::time::interval_at(begun + Duration::from_secs(1), Duration::from_secs(1));
    let mut reported = Reported::default();
    let c = &run.counters;
    let (mut sent0, mut recv0, mut at0) = (0u64, 0u64, begun);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let secs = now.duration_since(at0).as_secs_f64().max(1e-3);
        let cpu = meter.sample();
        let broker_cpu = broker_meter
            .as_mut()
            .map(|m| format!("  broker cpu {:.0}%", m.sample()))
            .unwrap_or_default();
        reported.cpu_peak_pct = reported.cpu_peak_pct.max(cpu);
        let interval = run.latencies.take_interval();
        reported.latency.merge(&interval);
        let (sent, recv) = (Counters::get(&c.sent), Counters::get(&c.received));
        if !quiet {
            let saturated = if cpu > 0.9 * capacity { "  load tool saturated" } else { "" };
            let p =
                |q| interval.quantile(q).map_or("-".into(), |ns| format!("{:.2}", ns as f64 / 1e6));
            eprintln!(
                "[{:>4}s] {:<10} conn {}/{}  sent {}/s  recv {}/s  p50 {} p99 {} ms  lost {} dup {} reord {}  cpu {:.0}%{saturated}{broker_cpu}",
                begun.elapsed().as_secs(),
                run.phase().label(),
                Counters::get(&c.connected),
                run.planned,
                si((sent - sent0) as f64 / secs),
                si((recv - recv0) as f64 / secs),
                p(0.5),
                p(0.99),
                Counters::get(&c.open_gaps),
                Counters::get(&c.duplicates),
                Counters::get(&c.reordered),
                cpu,
            );
        }
        (sent0, recv0, at0) = (sent, recv, now);
    }
    reported
}

/// Samples a broker's memory every 100 ms during the run.
#[derive(Debug)]
pub(crate) struct BrokerProbe {
    pid: u32,
    start: u64,
    peak: Arc<AtomicU64>,
    /// The sampling task; aborted by [`BrokerProbe::finish`].
    sampler: JoinHandle<()>,
}

impl BrokerProbe {
    /// Resets the broker's VmHWM (when allowed), reads its RSS and starts sampling.
    pub(crate) fn start(pid: u32) -> Self {
        system::reset_peak(pid);
        let start = system::memory(Some(pid)).map_or(0, |m| m.rss);
        let peak = Arc::new(AtomicU64::new(start));
        let sampler = {
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(100));
                loop {
                    every.tick().await;
                    match system::memory(Some(pid)) {
                        Some(m) => {
                            peak.fetch_max(m.rss, Ordering::Relaxed);
                        }
                        None => return,
                    }
                }
            })
        };
        Self { pid, start, peak, sampler }
    }

    /// Stops sampling and returns the figures. `hold_end` is the memory read when publishing (or
    /// holding) ended; `connections` divides the growth for the per-connection figure.
    pub(crate) async fn finish(
        self,
        hold_end: Option<system::Memory>,
        connections: u64,
        cpu_avg_pct: Option<f64>,
        connect_cpu_pct: Option<f64>,
    ) -> BrokerFigures {
        self.sampler.abort();
        let now = system::memory(Some(self.pid)).unwrap_or_default();
        let end = hold_end.unwrap_or(now);
        let peak = self.peak.load(Ordering::Relaxed).max(end.rss);
        BrokerFigures {
            pid: self.pid,
            rss_start: self.start,
            rss_peak: peak,
            rss_end: end.rss,
            hwm: now.hwm.max(end.hwm),
            rss_per_connection: (connections > 0)
                .then(|| (end.rss as f64 - self.start as f64) / connections as f64),
            cpu_avg_pct,
            connect_cpu_pct,
        }
    }
}
