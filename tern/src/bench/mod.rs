//! `tern bench`: an MQTT load generator and meter (like emqtt_bench or `nanomq_cli bench`), with
//! latency, loss, duplicate and reordering figures per publisher, a live progress line, a summary
//! table and one JSON line for scripts.
//!
//! Flow of a run ([`run`]): resolve the broker and prepare TLS ([`client::Target`]); build the
//! scenario's plan of publishers, subscribers and idle connections ([`scenario`]); open the
//! subscribers (each waits for its SUBACK), then the publishers, at `--connect-rate`; start every
//! publisher at once; after `--duration`, stop publishing, let QoS 1/2 acknowledgements and the
//! last deliveries arrive (`--drain`), close everything and compute the [`report::Summary`].
//!
//! The tool must not be the bottleneck: one task per connection speaking MQTT through
//! `mqtt-codec` directly, output batched (many PUBLISH packets encoded into one buffer and written
//! with one call), counters published once per batch, and its own CPU use measured every second
//! (`load tool saturated` is printed when it nears what its cores can give).

pub use crate::client;
pub mod payload;
mod publisher;
pub mod report;
pub mod scenario;
pub mod stats;
mod subscriber;
pub mod system;

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use mqtt_codec::{ProtocolVersion, QoS};

pub use client::Transport;
pub use report::Summary;
pub use scenario::run;

/// Which load to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Publishers only, each on its own topic `<topic>/<i>`.
    Pub,
    /// Subscribers only, on `<topic>/#` (run `tern bench pub` elsewhere for the load).
    Sub,
    /// Idle connections opened at --connect-rate and held for --duration: connects/s and memory.
    Conn,
    /// Fan-in: -c publishers on `<topic>/<i>` -> --subs subscribers (default 1) on `<topic>/+`.
    Fanin,
    /// Fan-out: --pubs publishers (default 1) -> -c subscribers, all on `<topic>/fanout`.
    Fanout,
    /// -c publisher/subscriber pairs, pair i on `<topic>/<i>`.
    Pairs,
    /// Shared subscription: --pubs publishers (default 1) on `<topic>/<i>` -> a group of -c
    /// subscribers on `$share/<group>/<topic>/+`.
    Shared,
}

impl Scenario {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pub => "pub",
            Self::Sub => "sub",
            Self::Conn => "conn",
            Self::Fanin => "fanin",
            Self::Fanout => "fanout",
            Self::Pairs => "pairs",
            Self::Shared => "shared",
        }
    }
}

/// `tern bench` options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tern bench",
    about = "MQTT load generator: throughput, latency, loss, duplicates and reordering",
    disable_help_flag = true,
    after_help = "Output: a progress line per second and the summary table on stderr; one JSON line \
                  with every figure on stdout.\n\nExamples:\n  tern bench pairs -c 10 -q 1 --max-rate -d 10s\n  \
                  tern bench fanout -c 100 -r 1000\n  tern bench conn -c 10000 --connect-rate 2000 -d 5s"
)]
pub struct BenchArgs {
    /// Scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Broker host.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port [default: 1883 tcp, 8883 tls, 8083 ws, 8084 wss].
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// MQTT version: 3.1.1 (also 311, 4) or 5.
    #[arg(short = 'V', long = "mqtt-version", default_value = "3.1.1", value_parser = parse_version)]
    pub version: ProtocolVersion,
    /// QoS of publishes and subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// CA certificate(s), PEM, to verify the broker (tls, wss).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Do not verify the broker's certificate (tls, wss).
    #[arg(long)]
    pub insecure: bool,
    /// WebSocket path (ws, wss).
    #[arg(long, default_value = "/mqtt")]
    pub ws_path: String,

    /// Payload size in bytes; 24 or more carries the send time and sequence number (smaller
    /// payloads are only counted).
    #[arg(short = 's', long, default_value_t = 64)]
    pub size: usize,
    /// Messages per second per publisher [default: 100 unless --max-rate].
    #[arg(short = 'r', long, conflicts_with = "max_rate")]
    pub rate: Option<f64>,
    /// Publish as fast as the broker takes it (TCP backpressure at QoS 0, --inflight at QoS 1/2).
    #[arg(long)]
    pub max_rate: bool,
    /// Clients: publishers (pub, fanin), subscribers (sub, fanout, shared), pairs (pairs) or
    /// connections (conn).
    #[arg(short = 'c', long, default_value_t = 10)]
    pub clients: usize,
    /// Publishers, where the scenario has another count for them (fanout, shared: default 1).
    #[arg(long)]
    pub pubs: Option<usize>,
    /// Subscribers, where the scenario has another count for them (fanin: default 1).
    #[arg(long)]
    pub subs: Option<usize>,
    /// New connections per second (0: as fast as possible, at most --connect-parallel at once).
    #[arg(long, default_value_t = 0.0)]
    pub connect_rate: f64,
    /// Most connection handshakes in progress at once.
    #[arg(long, default_value_t = 64)]
    pub connect_parallel: usize,
    /// How long to publish (or hold connections, for conn): 10, 10s, 500ms, 2m.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After publishing stops, how long to wait at most for acknowledgements and deliveries.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Topic prefix.
    #[arg(short = 't', long, default_value = "tern/bench")]
    pub topic: String,
    /// Shared subscription group name (shared).
    #[arg(long, default_value = "bench")]
    pub group: String,
    /// Most unacknowledged QoS 1/2 PUBLISH per publisher (also capped by an MQTT 5 broker's
    /// Receive Maximum).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub inflight: u16,
    /// QoS 1/2 at --max-rate: write new PUBLISH packets only once this many in-flight slots are
    /// free (1: one per acknowledgement, as most clients do; larger: fewer, bigger writes).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub refill: u16,
    /// User name.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long)]
    pub password: Option<String>,
    /// Client id prefix [default: tb<pid>].
    #[arg(short = 'i', long)]
    pub client_id_prefix: Option<String>,
    /// Keep alive, seconds (0: none).
    #[arg(short = 'k', long, default_value_t = 60)]
    pub keepalive: u16,
    /// Broker process id: its CPU time and memory (VmRSS, VmHWM) are read during the run and
    /// reported (memory per connection for conn). The broker must run on this host.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
    /// Load tool worker threads [default: the cores it may run on].
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

impl BenchArgs {
    /// The QoS as the codec spells it.
    pub fn qos(&self) -> QoS {
        match self.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    /// The port, or the transport's default.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.transport.default_port())
    }

    /// Messages per second per publisher; `None` for --max-rate.
    pub fn publish_rate(&self) -> Option<f64> {
        if self.max_rate { None } else { Some(self.rate.unwrap_or(100.0)) }
    }

    /// The client id prefix.
    pub fn client_id_prefix(&self) -> String {
        self.client_id_prefix.clone().unwrap_or_else(|| format!("tb{}", std::process::id()))
    }
}

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options do not make sense together.
    #[error("{0}")]
    Options(String),
    /// The broker could not be reached at all.
    #[error("cannot reach the broker: {0}")]
    Connect(#[from] client::ClientError),
    /// No connection of the run could be opened.
    #[error("no connection could be opened; first error: {0}")]
    NoConnection(String),
}

fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "3.1.1" | "311" | "4" => Ok(ProtocolVersion::V311),
        "5" | "5.0" | "50" => Ok(ProtocolVersion::V5),
        "3.1" | "31" | "3" => Ok(ProtocolVersion::V31),
        other => Err(format!("unknown MQTT version {other:?} (3.1.1 or 5)")),
    }
}

/// Parses `10`, `10s`, `250ms`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn short_options_match_other_bench_tools() {
        let args = BenchArgs::try_parse_from([
            "bench", "pairs", "-h", "broker", "-p", "1884", "-V", "5", "-q", "2", "-s", "128",
            "-r", "50", "-c", "3", "-d", "2s", "-u", "user", "-P", "pw",
        ])
        .expect("parses");
        assert_eq!(args.scenario, Scenario::Pairs);
        assert_eq!(args.host, "broker");
        assert_eq!(args.port(), 1884);
        assert_eq!(args.version, ProtocolVersion::V5);
        assert_eq!(args.qos(), QoS::ExactlyOnce);
        assert_eq!(args.publish_rate(), Some(50.0));
        assert_eq!(args.duration, Duration::from_secs(2));
        assert!(BenchArgs::try_parse_from(["bench", "pub", "-r", "5", "--max-rate"]).is_err());
        assert!(BenchArgs::try_parse_from(["bench", "pub", "-q", "3"]).is_err());
    }
}
