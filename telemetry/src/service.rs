//! The start-up steps every service binary shares after its configuration loaded: logging from
//! `log {}` (and `TERN_LOG`) with the loader's warnings logged, then a multi-threaded runtime that
//! runs the service and turns its result into the exit code.

use std::{fmt::Display, future::Future, process::ExitCode, sync::Arc};

use crate::Telemetry;

/// Starts logging for `service` from `loaded` (`TERN_LOG` from `env` overrides the level) and logs
/// the configuration's warnings; on failure prints why and returns exit code 2.
pub fn start_logging(
    service: &str,
    loaded: &tern_config::Loaded,
    env: &tern_config::Env,
) -> Result<Arc<Telemetry>, ExitCode> {
    let tern_log = env.get("TERN_LOG").map(str::to_owned);
    let telemetry = crate::init(&loaded.config.log, tern_log.as_deref()).map_err(|error| {
        eprintln!("{service}: {error}");
        ExitCode::from(2)
    })?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(Arc::new(telemetry))
}

/// A multi-threaded tokio runtime for `service`; on failure prints why and returns exit code 1.
pub fn runtime(service: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|error| {
        eprintln!("{service}: cannot start the runtime: {error}");
        ExitCode::FAILURE
    })
}

/// Runs `serve` on `runtime` to the end: exit code 0, or 1 with the error (and its causes) printed.
pub fn run<E: Display>(
    service: &str,
    runtime: &tokio::runtime::Runtime,
    serve: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    match runtime.block_on(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{service}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
