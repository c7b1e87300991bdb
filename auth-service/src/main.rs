//! `auth-service --conf <file>`: serves `tern.auth.v1.AuthService` (with health and reflection)
//! from the `auth {}` block of a NanoMQ-format file, on `auth_service.bind`; Prometheus metrics on
//! `auth_service.metrics_bind` when set; with `redis {}`, follows the config store's `auth` and
//! `log` sections.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::Parser;

/// Tern's authentication and authorization service.
#[derive(Debug, Parser)]
#[command(name = "auth-service", version, about)]
struct Args {
    /// Configuration file (HOCON, NanoMQ's `nanomq.conf` format). Falls back to
    /// `NANOMQ_CONF_PATH`, then `TERN_CONF`; without any, built-in defaults (anonymous allowed).
    #[arg(long = "conf", value_name = "FILE")]
    conf: Option<PathBuf>,
    /// Load and check the configuration, print the problems or "ok", and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (loaded, env) = match tern_telemetry::service::load("auth-service", args.conf.as_deref()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let runtime = match tern_telemetry::service::runtime("auth-service") {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    if args.check_config {
        let built = runtime.block_on(async { auth_service::setup::build(&loaded.config) });
        return tern_telemetry::service::check(
            "auth-service",
            &loaded,
            built.err().map(|e| e.to_string()),
        );
    }
    let telemetry = match tern_telemetry::service::start_logging("auth-service", &loaded, &env) {
        Ok(telemetry) => telemetry,
        Err(code) => return code,
    };
    tern_telemetry::service::run("auth-service", &runtime, serve(loaded.config, env, telemetry))
}

async fn serve(
    config: tern_config::Config,
    env: tern_config::Env,
    telemetry: std::sync::Arc<tern_telemetry::Telemetry>,
) -> anyhow::Result<()> {
    let built = auth_service::setup::build(&config)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(config.auth_service.bind)
        .await
        .with_context(|| format!("auth_service.bind: cannot bind {}", config.auth_service.bind))?;
    tracing::info!(addr = %listener.local_addr()?, "auth-service listening");
    let metrics = match config.auth_service.metrics_bind {
        Some(bind) => {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("auth_service.metrics_bind: cannot bind {bind}"))?;
            tracing::info!(metrics_addr = %listener.local_addr()?, "Prometheus metrics at /metrics");
            Some(listener)
        }
        None => None,
    };
    let security = auth_service::server::security_of(&config.auth_service);
    if security.token.is_none() {
        tracing::warn!("auth_service.token is not set: AuthService accepts unauthenticated calls");
    }
    let store = match &config.redis {
        Some(redis) => {
            let store = tern_config_store::RedisStore::from_config(redis, shutdown.clone())?;
            let settings = auth_service::store::StoreSettings {
                file: config.source.clone(),
                base_dir: std::env::current_dir().context("cannot read the working directory")?,
                env,
                instance: config.node.id.clone(),
                set_level: Some(Box::new(move |level| {
                    telemetry.set_level(level).map_err(|e| e.to_string())
                })),
            };
            Some((
                std::sync::Arc::new(store) as std::sync::Arc<dyn tern_config_store::ConfigStore>,
                settings,
            ))
        }
        None => None,
    };
    let options = auth_service::server::RunOptions { security, store, metrics };
    auth_service::server::run_with(built, listener, options, wait_for_signal()).await?;
    shutdown.cancel();
    Ok(())
}

async fn wait_for_signal() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
