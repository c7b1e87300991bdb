//! `admin-api --conf <file>`: serves NanoMQ's `/api/v4` (the `http_server {}` block) over every
//! broker node registered in Redis (`redis {}`), calling them with `broker_admin {}`'s token and
//! TLS.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Tern's admin REST API.
#[derive(Debug, Parser)]
#[command(name = "admin-api", version, about)]
struct Args {
    /// Configuration file (HOCON, NanoMQ's `nanomq.conf` format). Falls back to
    /// `NANOMQ_CONF_PATH`, then `TERN_CONF`; without any, built-in defaults (port 8081,
    /// admin/public).
    #[arg(long = "conf", value_name = "FILE")]
    conf: Option<PathBuf>,
    /// Load and check the configuration, print the problems or "ok", and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (loaded, env) = match tern_telemetry::service::load("admin-api", args.conf.as_deref()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let http = loaded.config.http_server.clone().unwrap_or_default();
    if let Err(error) = admin_api::AuthMode::from_config(&http) {
        eprintln!("admin-api: invalid configuration: {error}");
        return ExitCode::from(2);
    }
    if args.check_config {
        return tern_telemetry::service::check("admin-api", &loaded, []);
    }
    let telemetry = match tern_telemetry::service::start_logging("admin-api", &loaded, &env) {
        Ok(telemetry) => telemetry,
        Err(code) => return code,
    };
    let runtime = match tern_telemetry::service::runtime("admin-api") {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    tern_telemetry::service::run("admin-api", &runtime, serve(loaded.config, http, env, telemetry))
}

async fn serve(
    config: tern_config::Config,
    http: tern_config::HttpServerConfig,
    env: tern_config::Env,
    telemetry: std::sync::Arc<tern_telemetry::Telemetry>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let state = admin_api::state_from_config(&config, shutdown.clone())?;
    // admin-api applies the log level from the store like every service.
    let file = config.source.clone();
    let base_dir = std::env::current_dir().context("cannot read the working directory")?;
    let follow = tern_config_store::Follow {
        service: "admin-api".into(),
        instance: config.node.id.clone(),
        sections: vec!["log"],
        apply: Box::new(move |section, snapshot| {
            let effective = tern_config_store::effective_config(
                file.as_deref(),
                &base_dir,
                &env,
                snapshot,
                &[section],
            )?;
            telemetry.set_level(effective.log.level).map_err(|e| e.to_string())
        }),
    };
    tokio::spawn(follow.run(std::sync::Arc::clone(state.store()), shutdown.clone()));
    if config.redis.is_none() {
        tracing::warn!(
            "no redis {{}} block: no broker node can be found and configuration changes stay in this process"
        );
    }
    let addr = SocketAddr::new(http.ip_addr, http.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("http_server.port: cannot bind {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "admin-api listening");
    let stop = shutdown.clone();
    admin_api::serve(state, listener, async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    })
    .await
    .context("HTTP server")?;
    Ok(())
}

async fn wait_for_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
