//! `log {}`: where and how much every service logs. Only `level` is hot-reloadable.

use std::path::PathBuf;

use crate::reader::Reader;
use crate::units::ByteSize;

/// The `log {}` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `log.to` (NanoMQ): any of `file`, `console`, `syslog`. Default `[console]`. NanoMQ's
    /// `uds` is accepted with a warning and left out.
    pub to: Vec<LogTarget>,
    /// `log.level` (NanoMQ): `trace`, `debug`, `info`, `warn`, `error` (`fatal` reads as
    /// `error`). Default `warn`. Hot-reloadable.
    pub level: LogLevel,
    /// `log.dir` (NanoMQ): directory of the log file, resolved against the working directory.
    /// Default `.`.
    pub dir: PathBuf,
    /// `log.file` (NanoMQ): log file name. Default `nanomq.log`.
    pub file: String,
    /// `log.rotation.size` (NanoMQ): size at which the file is rotated. Default 10MB.
    pub rotation_size: ByteSize,
    /// `log.rotation.count` (NanoMQ): rotated files kept. Default 5.
    pub rotation_count: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            to: vec![LogTarget::Console],
            level: LogLevel::Warn,
            dir: PathBuf::from("."),
            file: "nanomq.log".to_string(),
            rotation_size: ByteSize::mb(10),
            rotation_count: 5,
        }
    }
}

/// A log destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// `dir`/`file`, rotated.
    File,
    /// Standard error.
    Console,
    /// The system log.
    Syslog,
}

/// A log level, most verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error` (also NanoMQ's `fatal`).
    Error,
}

impl LogLevel {
    /// The level as a `tracing` filter directive (`trace` … `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

pub(crate) fn read(r: &mut Reader<'_>) -> LogConfig {
    let d = LogConfig::default();
    if r.has("log") && r.block("log").is_none() {
        return d;
    }
    let to = match r.string_list("log.to") {
        Some(names) => {
            let mut targets = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let target = match name.trim().to_ascii_lowercase().as_str() {
                    "file" => LogTarget::File,
                    "console" => LogTarget::Console,
                    "syslog" => LogTarget::Syslog,
                    "uds" => {
                        r.warn(format!(
                            "{}: log.to: `uds` (NanoMQ's Unix-socket log) is not supported by Tern; \
                             it is left out",
                            r.location("log.to")
                        ));
                        continue;
                    }
                    _ => {
                        r.error(
                            &format!("log.to.{i}"),
                            format!("unknown log target {name:?} (use file, console or syslog)"),
                        );
                        continue;
                    }
                };
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
            targets
        }
        None => d.to,
    };
    let level = r.choice(
        "log.level",
        d.level,
        &[
            ("trace", LogLevel::Trace),
            ("debug", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("fatal", LogLevel::Error),
        ],
    );
    if r.has("log.rotation") {
        r.block("log.rotation");
    }
    LogConfig {
        to,
        level,
        dir: r.path("log.dir").unwrap_or_else(|| r.resolve(".")),
        file: r.non_empty("log.file").unwrap_or(d.file),
        rotation_size: r.size_in(
            "log.rotation.size",
            d.rotation_size,
            ByteSize::kb(1),
            ByteSize::gb(1024),
        ),
        rotation_count: r.u32_in("log.rotation.count", d.rotation_count, 0, u32::MAX),
    }
}
