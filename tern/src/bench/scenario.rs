//! Scenarios and the run itself: which connections a scenario opens (its [`Plan`]), the shared
//! state of a run ([`Run`]), and [`run`], which opens the connections in order (subscribers
//! first, so that no message is published before every subscription is in place), starts every
//! publisher at once, stops them after the duration, drains, and computes the summary.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::Duration,
};

use mqtt_codec::{Packet, QoS};
use parking_lot::Mutex;
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;

use super::{
    BenchArgs, BenchError, Scenario,
    client::{self, Connection, Target, TargetOptions},
    payload, publisher,
    report::{self, BrokerFigures, ConnectionFigures, Summary, ToolFigures},
    stats::{Completeness, Counters, Histogram, Latencies, LatencySummary},
    subscriber, system,
};

/// Errors kept per run (the first ones; the rest are only counted).
const MAX_ERRORS: usize = 20;
/// Without progress for this long after publishing stopped, the last deliveries are not coming.
const QUIET: Duration = Duration::from_secs(1);
/// Without a connection becoming ready for this long, the connect phase is abandoned.
const CONNECT_STALL: Duration = Duration::from_secs(60);

/// The connections of a scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Publishers: index and topic.
    pub publishers: Vec<(u32, String)>,
    /// Subscribers: index, filter, and whether each sees every message of its publishers.
    pub subscribers: Vec<(u32, String, Completeness)>,
    /// Idle connections (conn).
    pub idle: usize,
    /// Deliveries expected per message published (e.g. the number of subscribers for fan-out);
    /// `None` when the tool does not know (pub, sub).
    pub deliveries_per_message: Option<u64>,
}

impl Plan {
    /// The plan of `args.scenario`.
    pub fn of(args: &BenchArgs) -> Result<Self, BenchError> {
        let prefix = args.topic.trim_end_matches('/');
        let n = args.clients;
        if n == 0 {
            return Err(BenchError::Options("-c/--clients must be at least 1".into()));
        }
        let only = |what: &str, allowed: bool| {
            if allowed {
                Ok(())
            } else {
                Err(BenchError::Options(format!("{what} does not apply to this scenario; use -c")))
            }
        };
        let full = Completeness::Full;
        let indexed = |count: usize| (0..count).map(|i| (i as u32, format!("{prefix}/{i}")));
        let plan = match args.scenario {
            Scenario::Pub => {
                only("--pubs/--subs", args.pubs.is_none() && args.subs.is_none())?;
                Self { publishers: indexed(n).collect(), ..Self::default() }
            }
            Scenario::Sub => {
                only("--pubs/--subs", args.pubs.is_none() && args.subs.is_none())?;
                Self {
                    subscribers: (0..n as u32).map(|i| (i, format!("{prefix}/#"), full)).collect(),
                    ..Self::default()
                }
            }
            Scenario::Conn => {
                only("--pubs/--subs", args.pubs.is_none() && args.subs.is_none())?;
                Self { idle: n, ..Self::default() }
            }
            Scenario::Fanin => {
                only("--pubs", args.pubs.is_none())?;
                let subs = args.subs.unwrap_or(1);
                Self {
                    publishers: indexed(n).collect(),
                    subscribers: (0..subs as u32)
                        .map(|i| (i, format!("{prefix}/+"), full))
                        .collect(),
                    idle: 0,
                    deliveries_per_message: Some(subs as u64),
                }
            }
            Scenario::Fanout => {
                only("--subs", args.subs.is_none())?;
                let topic = format!("{prefix}/fanout");
                Self {
                    publishers: (0..args.pubs.unwrap_or(1) as u32)
                        .map(|i| (i, topic.clone()))
                        .collect(),
                    subscribers: (0..n as u32).map(|i| (i, topic.clone(), full)).collect(),
                    idle: 0,
                    deliveries_per_message: Some(n as u64),
                }
            }
            Scenario::Pairs => {
                only("--pubs/--subs", args.pubs.is_none() && args.subs.is_none())?;
                Self {
                    publishers: indexed(n).collect(),
                    subscribers: indexed(n).map(|(i, t)| (i, t, full)).collect(),
                    idle: 0,
                    deliveries_per_message: Some(1),
                }
            }
            Scenario::Shared => {
                only("--subs", args.subs.is_none())?;
                let filter = format!("$share/{}/{prefix}/+", args.group);
                Self {
                    publishers: indexed(args.pubs.unwrap_or(1)).collect(),
                    subscribers: (0..n as u32)
                        .map(|i| (i, filter.clone(), Completeness::Partial))
                        .collect(),
                    idle: 0,
                    deliveries_per_message: Some(1),
                }
            }
        };
        if plan.publishers.is_empty() && plan.subscribers.is_empty() && plan.idle == 0 {
            return Err(BenchError::Options("the scenario has no connection".into()));
        }
        Ok(plan)
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Connecting = 0,
    Running = 1,
    Draining = 2,
    Closing = 3,
}

impl Phase {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Running => "running",
            Self::Draining => "draining",
            Self::Closing => "closing",
        }
    }
}

/// State shared by every task of a run.
#[derive(Debug)]
pub(crate) struct Run {
    pub target: Target,
    pub counters: Counters,
    pub latencies: Latencies,
    /// CONNECT to CONNACK, ns.
    pub connect_latency: Mutex<Histogram>,
    errors: Mutex<(Vec<String>, u64)>,
    pub qos: QoS,
    pub size: usize,
    pub inflight: u16,
    /// Free window slots before a QoS 1/2 publisher writes again.
    pub refill: usize,
    /// Messages per second per publisher; `None`: as fast as possible.
    pub rate: Option<f64>,
    pub drain: Duration,
    pub client_id_prefix: String,
    /// Cancelled when publishers start.
    pub go: CancellationToken,
    started: OnceLock<Instant>,
    /// Wall clock (ns) when publishers started.
    started_wall_ns: AtomicU64,
    /// Cancelled when publishers must stop.
    pub stop_publishing: CancellationToken,
    /// Cancelled when every connection must close.
    pub stop_all: CancellationToken,
    phase: AtomicU8,
    /// Connections planned.
    pub planned: usize,
}

impl Run {
    /// Records an error (the first [`MAX_ERRORS`] are kept).
    pub fn error(&self, message: String) {
        let mut errors = self.errors.lock();
        errors.1 += 1;
        if errors.0.len() < MAX_ERRORS && !errors.0.contains(&message) {
            errors.0.push(message);
        }
    }

    /// A connection ended without being asked to.
    pub fn lost_connection(&self, who: &str, error: Option<std::io::Error>) {
        if self.stop_all.is_cancelled() {
            return;
        }
        Counters::add(&self.counters.dropped_connections, 1);
        match error {
            Some(e) => self.error(format!("{who}: connection lost: {e}")),
            None => self.error(format!("{who}: connection closed by the broker")),
        }
    }

    /// When publishers started.
    pub fn started(&self) -> Option<Instant> {
        self.started.get().copied()
    }

    /// Notes that messages arrived at wall-clock `now_ns`.
    pub fn received_at(&self, now_ns: u64) {
        self.counters.last_received_ns.fetch_max(now_ns, Ordering::Relaxed);
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Connecting,
            1 => Phase::Running,
            2 => Phase::Draining,
            _ => Phase::Closing,
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn errors(&self) -> (Vec<String>, u64) {
        self.errors.lock().clone()
    }
}

/// What a connection is for.
#[derive(Debug, Clone)]
enum Role {
    Publisher { index: u32, topic: String },
    Subscriber { index: u32, filter: String, mode: Completeness },
    Idle { index: u32 },
}

/// What a connection did.
#[derive(Debug)]
enum Outcome {
    Publisher(publisher::PubResult),
    Subscriber(subscriber::SubResult),
    Idle,
    Failed,
}

/// Runs the scenario of `args` and returns its figures. Prints a progress line per second on
/// stderr unless `args.quiet`. Ctrl-C ends the publishing early (the run still drains and reports).
pub async fn run(args: &BenchArgs) -> Result<Summary, BenchError> {
    let plan = Plan::of(args)?;
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(BenchError::Options("--rate must be a positive number".into()));
    }
    if args.connect_parallel == 0 {
        return Err(BenchError::Options("--connect-parallel must be at least 1".into()));
    }
    system::raise_open_files_limit();
    let target = Target::new(TargetOptions {
        host: &args.host,
        port: args.port(),
        transport: args.transport,
        cafile: args.cafile.as_deref(),
        client_cert: None,
        insecure: args.insecure,
        ws_path: &args.ws_path,
        version: args.version,
        keep_alive: args.keepalive,
        username: args.username.as_deref(),
        password: args.password.as_deref(),
    })
    .await?;
    let planned = plan.publishers.len() + plan.subscribers.len() + plan.idle;
    let run = Arc::new(Run {
        target,
        counters: Counters::default(),
        latencies: Latencies::default(),
        connect_latency: Mutex::new(Histogram::default()),
        errors: Mutex::new((Vec::new(), 0)),
        qos: args.qos(),
        size: args.size,
        inflight: args.inflight,
        refill: usize::from(args.refill),
        rate: args.publish_rate(),
        drain: args.drain,
        client_id_prefix: args.client_id_prefix(),
        go: CancellationToken::new(),
        started: OnceLock::new(),
        started_wall_ns: AtomicU64::new(0),
        stop_publishing: CancellationToken::new(),
        stop_all: CancellationToken::new(),
        phase: AtomicU8::new(Phase::Connecting as u8),
        planned,
    });

    let broker = args.broker_pid.map(report::BrokerProbe::start);
    let reporter_stop = CancellationToken::new();
    let reporter = tokio::spawn(report::reporter(
        Arc::clone(&run),
        args.quiet,
        args.broker_pid,
        reporter_stop.clone(),
    ));
    let gate = Arc::new(Semaphore::new(args.connect_parallel));
    let mut handles = Vec::with_capacity(planned);
    let interrupted = CancellationToken::new();
    let ctrl_c = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.cancel();
            }
        })
    };

    // Connect: subscribers (each ready once subscribed), then publishers, then idle connections.
    let connect_started = Instant::now();
    let mut connect_cpu = system::CpuMeter::new(None);
    let mut broker_connect_cpu = args.broker_pid.map(|pid| system::CpuMeter::new(Some(pid)));
    let roles = [
        plan.subscribers
            .iter()
            .map(|(index, filter, mode)| Role::Subscriber {
                index: *index,
                filter: filter.clone(),
                mode: *mode,
            })
            .collect::<Vec<_>>(),
        plan.publishers
            .iter()
            .map(|(index, topic)| Role::Publisher { index: *index, topic: topic.clone() })
            .collect(),
        (0..plan.idle as u32).map(|index| Role::Idle { index }).collect(),
    ];
    let mut ready_total = 0u64;
    for group in roles {
        if group.is_empty() {
            continue;
        }
        let (ready, ok) =
            connect_group(&run, group, args.connect_rate, &gate, &interrupted, &mut handles).await;
        ready_total += ok;
        if ready.is_err() {
            break;
        }
    }
    let connect_elapsed = connect_started.elapsed();
    let connect_cpu_pct = connect_cpu.sample();
    let broker_connect_cpu_pct = broker_connect_cpu.as_mut().map(system::CpuMeter::sample);
    let connected = Counters::get(&run.counters.connected);
    if ready_total == 0 {
        let (errors, _) = run.errors();
        run.stop_all.cancel();
        reporter_stop.cancel();
        ctrl_c.abort();
        return Err(BenchError::NoConnection(
            errors.into_iter().next().unwrap_or_else(|| "interrupted".into()),
        ));
    }

    // Run.
    let started = Instant::now();
    let _ = run.started.set(started);
    run.started_wall_ns.store(payload::now_ns(), Ordering::Relaxed);
    let mut window_cpu = system::CpuMeter::new(None);
    let mut broker_cpu = args.broker_pid.map(|pid| system::CpuMeter::new(Some(pid)));
    run.set_phase(Phase::Running);
    run.go.cancel();
    if !interrupted.is_cancelled() {
        tokio::select! {
            () = tokio::time::sleep(args.duration) => {}
            () = interrupted.cancelled() => {}
        }
    }
    let window_cpu_pct = window_cpu.sample();
    let broker_cpu_pct = broker_cpu.as_mut().map(system::CpuMeter::sample);
    let broker_at_hold_end = args.broker_pid.and_then(|pid| system::memory(Some(pid)));
    run.set_phase(Phase::Draining);
    run.stop_publishing.cancel();

    // Publishers finish (their acknowledgements drain), then subscribers get their last messages.
    let mut outcomes = Vec::with_capacity(handles.len());
    let mut others = Vec::new();
    for (role, handle) in handles {
        if matches!(role, Role::Publisher { .. }) {
            outcomes.push(handle.await.unwrap_or(Outcome::Failed));
        } else {
            others.push(handle);
        }
    }
    let publish_window = started.elapsed().min(args.duration.max(Duration::from_millis(1)));
    let sent: u64 = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Publisher(p) => p.sent,
            _ => 0,
        })
        .sum();
    let expected = plan.deliveries_per_message.map(|per| sent * per);
    if !plan.subscribers.is_empty() && !plan.publishers.is_empty() {
        drain_deliveries(&run, expected, args.drain, &interrupted).await;
    }
    run.set_phase(Phase::Closing);
    run.stop_all.cancel();
    for handle in others {
        outcomes.push(handle.await.unwrap_or(Outcome::Failed));
    }
    ctrl_c.abort();
    reporter_stop.cancel();
    let reported = reporter.await.unwrap_or_default();
    let mut latency = reported.latency;
    latency.merge(&run.latencies.take_interval());
    let broker = match broker {
        Some(probe) => Some(
            probe
                .finish(broker_at_hold_end, connected, broker_cpu_pct, broker_connect_cpu_pct)
                .await,
        ),
        None => None,
    };

    Ok(summarize(SummaryInputs {
        args,
        plan: &plan,
        run: &run,
        outcomes: &outcomes,
        expected,
        publish_window,
        connect_elapsed,
        latency: &latency,
        window_cpu_pct,
        connect_cpu_pct,
        cpu_peak_pct: reported.cpu_peak_pct,
        broker,
    }))
}

/// Opens one group of connections at `connect_rate` and waits until each is ready (subscribed,
/// connected) or failed. Returns `Err` when the run should not go on (interrupted or stalled),
/// and the number of connections ready.
async fn connect_group(
    run: &Arc<Run>,
    group: Vec<Role>,
    connect_rate: f64,
    gate: &Arc<Semaphore>,
    interrupted: &CancellationToken,
    handles: &mut Vec<(Role, JoinHandle<Outcome>)>,
) -> (Result<(), ()>, u64) {
    let count = group.len();
    let (ready_tx, mut ready_rx) = mpsc::channel(count.max(1));
    let pacer = {
        let run = Arc::clone(run);
        let gate = Arc::clone(gate);
        tokio::spawn(async move {
            let t0 = Instant::now();
            let mut spawned = Vec::with_capacity(group.len());
            for (i, role) in group.into_iter().enumerate() {
                if connect_rate > 0.0 {
                    let at = t0 + Duration::from_secs_f64(i as f64 / connect_rate);
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = run.stop_all.cancelled() => break,
                    }
                }
                let task = tokio::spawn(client_task(
                    Arc::clone(&run),
                    role.clone(),
                    Arc::clone(&gate),
                    ready_tx.clone(),
                ));
                spawned.push((role, task));
            }
            spawned
        })
    };
    let mut answered = 0;
    let mut ok = 0u64;
    let mut outcome = Ok(());
    while answered < count {
        tokio::select! {
            r = ready_rx.recv() => match r {
                Some(ready) => {
                    answered += 1;
                    ok += u64::from(ready);
                }
                None => break,
            },
            () = interrupted.cancelled() => {
                outcome = Err(());
                break;
            }
            () = tokio::time::sleep(CONNECT_STALL) => {
                run.error(format!("connect phase stalled: {answered} of {count} answered"));
                outcome = Err(());
                break;
            }
        }
    }
    if outcome.is_err() {
        run.stop_all.cancel();
    }
    match pacer.await {
        Ok(spawned) => handles.extend(spawned),
        Err(error) => run.error(format!("connect pacer failed: {error}")),
    }
    (outcome, ok)
}

/// Opens one connection and plays its role.
async fn client_task(
    run: Arc<Run>,
    role: Role,
    gate: Arc<Semaphore>,
    ready: mpsc::Sender<bool>,
) -> Outcome {
    let client_id = match &role {
        Role::Publisher { index, .. } => format!("{}-p{index}", run.client_id_prefix),
        Role::Subscriber { index, .. } => format!("{}-s{index}", run.client_id_prefix),
        Role::Idle { index } => format!("{}-c{index}", run.client_id_prefix),
    };
    let opened = {
        let Ok(_permit) = gate.acquire().await else {
            let _ = ready.send(false).await;
            return Outcome::Failed;
        };
        let t0 = Instant::now();
        let opened = tokio::select! {
            () = run.stop_all.cancelled() => {
                let _ = ready.send(false).await;
                return Outcome::Failed;
            }
            opened = run.target.open(&client_id) => opened,
        };
        if opened.is_ok() {
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            run.connect_latency.lock().record(ns);
        }
        opened
    };
    let conn = match opened {
        Ok(conn) => conn,
        Err(error) => {
            Counters::add(&run.counters.connect_failures, 1);
            run.error(format!("{client_id}: {error}"));
            let _ = ready.send(false).await;
            return Outcome::Failed;
        }
    };
    Counters::add(&run.counters.connected, 1);
    let outcome = match role {
        Role::Publisher { index, topic } => {
            let _ = ready.send(true).await;
            Outcome::Publisher(publisher::run(&run, index, &topic, conn).await)
        }
        Role::Subscriber { index, filter, mode } => {
            Outcome::Subscriber(subscriber::run(&run, index, &filter, mode, conn, ready).await)
        }
        Role::Idle { index } => {
            let _ = ready.send(true).await;
            hold(&run, index, conn).await;
            Outcome::Idle
        }
    };
    run.counters.connected.fetch_sub(1, Ordering::Relaxed);
    outcome
}

/// Keeps an idle connection open (answering keep alive) until the run ends.
async fn hold(run: &Run, index: u32, mut conn: Connection) {
    let keep_alive = conn.keep_alive;
    let mut ping = tokio::time::interval(if keep_alive.is_zero() {
        Duration::from_secs(3600)
    } else {
        keep_alive / 2
    });
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.reset();
    let mut unflushed = false;
    let mut stop_all = std::pin::pin!(run.stop_all.cancelled());
    loop {
        if conn.rbuf.capacity() - conn.rbuf.len() < 64 {
            conn.rbuf.reserve(256);
        }
        tokio::select! {
            biased;
            () = &mut stop_all => break,
            read = tokio::io::AsyncReadExt::read_buf(&mut conn.reader, &mut conn.rbuf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    run.lost_connection(&format!("connection {index}"), read.err());
                    return;
                }
                // PINGRESP, or whatever else: nothing to do.
                while let Ok(Some(_)) = conn.decode() {}
            }
            written = client::write_or_flush(&mut conn.writer, &mut conn.wbuf),
                if !conn.wbuf.is_empty() || unflushed =>
            {
                match written {
                    Ok(Some(0)) | Err(_) => {
                        run.lost_connection(&format!("connection {index}"), written.err());
                        return;
                    }
                    Ok(Some(_)) => {
                        unflushed = true;
                    }
                    Ok(None) => unflushed = false,
                }
            }
            _ = ping.tick(), if !keep_alive.is_zero() => {
                if conn.queue(&Packet::PingReq).is_err() {
                    break;
                }
            }
        }
    }
    conn.close().await;
}

/// After publishing: waits until every expected delivery arrived, nothing arrived for
/// [`QUIET`], or `drain` passed.
async fn drain_deliveries(
    run: &Run,
    expected: Option<u64>,
    drain: Duration,
    interrupted: &CancellationToken,
) {
    let deadline = Instant::now() + drain;
    let mut last = Counters::get(&run.counters.received);
    let mut last_change = Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    loop {
        let received = Counters::get(&run.counters.received);
        if expected.is_some_and(|e| received >= e) {
            return;
        }
        let now = Instant::now();
        if received != last {
            last = received;
            last_change = now;
        }
        if now >= deadline || now.duration_since(last_change) >= QUIET {
            return;
        }
        tokio::select! {
            _ = poll.tick() => {}
            () = interrupted.cancelled() => return,
        }
    }
}

/// Everything the summary is computed from.
struct SummaryInputs<'a> {
    args: &'a BenchArgs,
    plan: &'a Plan,
    run: &'a Run,
    outcomes: &'a [Outcome],
    expected: Option<u64>,
    publish_window: Duration,
    connect_elapsed: Duration,
    latency: &'a Histogram,
    window_cpu_pct: f64,
    connect_cpu_pct: f64,
    cpu_peak_pct: f64,
    broker: Option<BrokerFigures>,
}

fn summarize(i: SummaryInputs<'_>) -> Summary {
    let (mut sent, mut acked, mut unacked) = (0, 0, 0);
    let (mut received, mut unique, mut duplicates, mut reordered, mut gaps, mut untracked) =
        (0, 0, 0, 0, 0, 0);
    for outcome in i.outcomes {
        match outcome {
            Outcome::Publisher(p) => {
                sent += p.sent;
                acked += p.acked;
                unacked += p.unacked;
            }
            Outcome::Subscriber(s) => {
                received += s.received;
                unique += s.unique;
                duplicates += s.duplicates;
                reordered += s.reordered;
                gaps += s.open_gaps;
                untracked += s.untracked;
            }
            Outcome::Idle | Outcome::Failed => {}
        }
    }
    let partial = i.plan.subscribers.iter().any(|(_, _, mode)| *mode == Completeness::Partial);
    let lost = match i.expected {
        // Shared groups: a duplicate delivered to another member cannot be told from a new
        // message, so compare totals.
        Some(expected) if partial => {
            duplicates += received.saturating_sub(expected);
            expected.saturating_sub(received)
        }
        Some(expected) => expected.saturating_sub(unique + untracked),
        None => gaps,
    };
    let run = i.run;
    let started_wall = run.started_wall_ns.load(Ordering::Relaxed);
    let last_received = Counters::get(&run.counters.last_received_ns);
    let receive_secs = if last_received > started_wall {
        (last_received - started_wall) as f64 / 1e9
    } else {
        i.publish_window.as_secs_f64()
    };
    let window = i.publish_window.as_secs_f64().max(1e-3);
    let cores = system::available_cores();
    let threads = tokio::runtime::Handle::current().metrics().num_workers();
    let capacity = 100.0 * cores.min(threads).max(1) as f64;
    let connected = i.outcomes.iter().filter(|o| !matches!(o, Outcome::Failed)).count() as u64;
    let (errors, error_count) = run.errors();
    Summary {
        scenario: i.args.scenario,
        transport: i.args.transport,
        mqtt_version: match i.args.version {
            mqtt_codec::ProtocolVersion::V31 => "3.1",
            mqtt_codec::ProtocolVersion::V311 => "3.1.1",
            mqtt_codec::ProtocolVersion::V5 => "5",
        },
        qos: i.args.qos,
        payload_bytes: i.args.size,
        rate_per_publisher: run.rate,
        publishers: i.plan.publishers.len(),
        subscribers: i.plan.subscribers.len(),
        idle_connections: i.plan.idle,
        duration_s: window,
        connections: ConnectionFigures {
            planned: run.planned as u64,
            connected,
            failed: Counters::get(&run.counters.connect_failures),
            dropped: Counters::get(&run.counters.dropped_connections),
            connects_per_s: connected as f64 / i.connect_elapsed.as_secs_f64().max(1e-3),
            connect_latency: LatencySummary::of(&run.connect_latency.lock()),
        },
        sent,
        sent_per_s: sent as f64 / window,
        acked,
        unacked,
        received,
        received_per_s: if receive_secs > 0.0 { received as f64 / receive_secs } else { 0.0 },
        expected: i.expected,
        lost,
        duplicates,
        reordered,
        untracked,
        latency: LatencySummary::of(i.latency),
        tool: ToolFigures {
            cores,
            threads,
            cpu_avg_pct: i.window_cpu_pct,
            connect_cpu_pct: i.connect_cpu_pct,
            cpu_peak_pct: i.cpu_peak_pct.max(i.window_cpu_pct),
            saturated: i.window_cpu_pct > 0.9 * capacity,
            rss_bytes: system::memory(None).map_or(0, |m| m.hwm),
        },
        broker: i.broker,
        error_count,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn plan(line: &str) -> Result<Plan, BenchError> {
        let args = BenchArgs::try_parse_from(line.split_whitespace()).expect("valid options");
        Plan::of(&args)
    }

    #[test]
    fn plans_wire_topics_as_documented() {
        let p = plan("bench fanin -c 3 -t t").expect("plan");
        assert_eq!(
            p.publishers.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
            ["t/0", "t/1", "t/2"]
        );
        assert_eq!(p.subscribers.len(), 1);
        assert_eq!(p.subscribers[0].1, "t/+");
        assert_eq!(p.deliveries_per_message, Some(1));

        let p = plan("bench fanout -c 4 --pubs 2 -t t").expect("plan");
        assert_eq!(p.publishers.len(), 2);
        assert_eq!(p.subscribers.len(), 4);
        assert_eq!(p.deliveries_per_message, Some(4));

        let p = plan("bench pairs -c 2 -t t/").expect("plan");
        assert_eq!(p.subscribers[1].1, "t/1");
        assert_eq!(p.publishers[1].1, "t/1");

        let p = plan("bench shared -c 3 --group g -t t").expect("plan");
        assert_eq!(p.subscribers[0].1, "$share/g/t/+");
        assert_eq!(p.subscribers[0].2, Completeness::Partial);
        assert_eq!(p.publishers.len(), 1);

        let p = plan("bench conn -c 5").expect("plan");
        assert_eq!(p.idle, 5);
        assert!(plan("bench pairs -c 2 --pubs 3").is_err());
        assert!(plan("bench pub -c 0").is_err());
    }
}
