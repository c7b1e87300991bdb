//! Logging for every Tern service, from NanoMQ's `log {}` block.
//!
//! - `to = [console]`: human-readable lines on standard error (colours only on a terminal);
//! - `to = [file]`: the same lines in `dir/file`, rotated when a file reaches `rotation.size`
//!   (`file` → `file.1` → … → `file.<count>`, the oldest dropped), written by a background thread
//!   so a slow disk never blocks a connection task (lines are dropped, and counted, if it falls
//!   far behind);
//! - `level` applies to Tern's own crates and to everything else; `TERN_LOG` (tracing's filter
//!   syntax, e.g. `broker_core=debug,info`) replaces it when set;
//! - the level can be changed at runtime through [`Telemetry::set_level`] (the admin API uses it).
//!
//! `syslog` is not supported: a `to` list with only `syslog` falls back to the console, and says so.
//!
//! [`prometheus`]: the text format and `GET /metrics` endpoint services serve their counters on.

pub mod prometheus;
mod rotate;
pub mod service;

use tern_config::{LogConfig, LogLevel, LogTarget};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt as _, reload};

pub use rotate::RotatingFile;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log file could not be opened.
    #[error("log.file: cannot open {path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `TERN_LOG` is not a valid filter.
    #[error("TERN_LOG: {0}")]
    Filter(String),
    /// A global subscriber was installed already.
    #[error("logging was already initialised")]
    AlreadyInitialised,
}

/// Keeps logging running: the file writer's thread lives as long as this value.
#[derive(Debug)]
pub struct Telemetry {
    handle: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    _file_guard: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl Telemetry {
    /// Changes the level of every log line from now on.
    pub fn set_level(&self, level: LogLevel) -> Result<(), TelemetryError> {
        self.handle
            .reload(EnvFilter::new(level.as_str()))
            .map_err(|e| TelemetryError::Filter(e.to_string()))
    }
}

/// The filter for `level`, unless `tern_log` (the `TERN_LOG` variable) gives one.
pub fn filter(level: LogLevel, tern_log: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    match tern_log.filter(|s| !s.trim().is_empty()) {
        Some(directives) => {
            EnvFilter::try_new(directives).map_err(|e| TelemetryError::Filter(e.to_string()))
        }
        None => Ok(EnvFilter::new(level.as_str())),
    }
}

/// Installs the process-wide subscriber described by `config`. Call once, from `main`.
pub fn init(config: &LogConfig, tern_log: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let (filter, handle) = reload::Layer::new(filter(config.level, tern_log)?);
    let wants_file = config.to.contains(&LogTarget::File);
    let wants_console = config.to.contains(&LogTarget::Console) || !wants_file;
    let syslog_only = config.to.iter().all(|t| *t == LogTarget::Syslog);

    let console = wants_console.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed()
    });
    let (file, guard) = if wants_file {
        let path = config.dir.join(&config.file);
        let writer =
            RotatingFile::open(&path, config.rotation_size.as_u64(), config.rotation_count)
                .map_err(|source| TelemetryError::File { path, source })?;
        let (non_blocking, guard) = tracing_appender::non_blocking(writer);
        let layer =
            tracing_subscriber::fmt::layer().with_writer(non_blocking).with_ansi(false).boxed();
        (Some(layer), Some(guard))
    } else {
        (None, None)
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(console).with(file);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    if syslog_only {
        tracing::warn!("log.to: syslog is not supported; logging to the console instead");
    } else if config.to.contains(&LogTarget::Syslog) {
        tracing::warn!("log.to: syslog is not supported and is left out");
    }
    Ok(Telemetry { handle, _file_guard: guard })
}
