//! The start-up steps every service binary shares: loading its configuration (or checking it,
//! for `--check-config`), logging from `log {}` (and `TERN_LOG`) with the loader's warnings
//! logged, then a multi-threaded runtime that runs the service and turns its result into the exit
//! code.

use std::{fmt::Display, future::Future, path::Path, process::ExitCode, sync::Arc};

use crate::Telemetry;

/// Loads `service`'s configuration: the `--conf` file, else `NANOMQ_CONF_PATH`, then `TERN_CONF`
/// from the process environment, else the built-in defaults. A file that does not load is printed
/// as `<service>: invalid configuration: <file, key and reason>`, with exit code 2.
pub fn load(
    service: &str,
    conf: Option<&Path>,
) -> Result<(tern_config::Loaded, tern_config::Env), ExitCode> {
    let env = tern_config::Env::from_process();
    match tern_config::load_or_default(conf, &env) {
        Ok(loaded) => Ok((loaded, env)),
        Err(error) => {
            eprintln!("{service}: invalid configuration: {error}");
            Err(ExitCode::from(2))
        }
    }
}

/// `--check-config`: prints the loader's warnings, then "ok" when there are no `problems`
/// (exit code 0), else each of them after `<service>: ` (exit code 2).
pub fn check(
    service: &str,
    loaded: &tern_config::Loaded,
    problems: impl IntoIterator<Item = String>,
) -> ExitCode {
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let mut code = ExitCode::SUCCESS;
    for problem in problems {
        eprintln!("{service}: {problem}");
        code = ExitCode::from(2);
    }
    if code == ExitCode::SUCCESS {
        println!("ok");
    }
    code
}

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
