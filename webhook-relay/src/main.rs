//! `webhook-relay --conf <file>`: serves `tern.events.v1.EventIngest` and `EventStream` (with
//! health and reflection) on `webhook_relay.bind`, and delivers the `webhook {}` and
//! `webhooks.<name> {}` targets of a NanoMQ-format file from its durable outbox. With `redis {}`
//! it follows the config store: targets and the log level changed through admin-api apply live.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use clap::Parser;
use webhook_relay::{Relay, RelayConfig};

/// Tern's webhook relay.
#[derive(Debug, Parser)]
#[command(name = "webhook-relay", version, about)]
struct Args {
    /// Configuration file (HOCON, NanoMQ's `nanomq.conf` format). Falls back to
    /// `NANOMQ_CONF_PATH`, then `TERN_CONF`; without any, built-in defaults (no targets).
    #[arg(long = "conf", value_name = "FILE")]
    conf: Option<PathBuf>,
    /// Load and check the configuration, print the problems or "ok", and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (loaded, env) = match tern_telemetry::service::load("webhook-relay", args.conf.as_deref()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if args.check_config {
        let problems: Vec<String> = loaded
            .config
            .webhook_targets()
            .filter_map(|t| webhook_relay::delivery::Target::new(t.clone()).err())
            .map(|e| format!("webhook target {e}"))
            .collect();
        return tern_telemetry::service::check("webhook-relay", &loaded, problems);
    }
    let telemetry = match tern_telemetry::service::start_logging("webhook-relay", &loaded, &env) {
        Ok(telemetry) => telemetry,
        Err(code) => return code,
    };
    let runtime = match tern_telemetry::service::runtime("webhook-relay") {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    tern_telemetry::service::run("webhook-relay", &runtime, serve(loaded.config, env, telemetry))
}

async fn serve(
    config: tern_config::Config,
    env: tern_config::Env,
    telemetry: Arc<tern_telemetry::Telemetry>,
) -> anyhow::Result<()> {
    let relay_config = RelayConfig {
        forget_unconfigured: config.redis.is_none(),
        ..RelayConfig::from_config(&config)
    };
    let relay = Relay::open(relay_config).with_context(|| {
        format!("webhook_relay.outbox {}", config.webhook_relay.outbox.display())
    })?;
    let bind = config.webhook_relay.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("webhook_relay.bind: cannot bind {bind}"))?;
    tracing::info!(addr = %listener.local_addr()?, "webhook-relay listening");
    let shutdown = tokio_util::sync::CancellationToken::new();
    if let Some(redis) = &config.redis {
        let store = tern_config_store::RedisStore::from_config(redis, shutdown.clone())?;
        let follower = webhook_relay::follow::Follower {
            relay: relay.clone(),
            file: config.source.clone(),
            base_dir: std::env::current_dir().context("cannot read the working directory")?,
            env,
            instance: config.node.id.clone(),
            set_level: Some(Box::new(move |level| {
                telemetry.set_level(level).map_err(|e| e.to_string())
            })),
        };
        tokio::spawn(follower.run(Arc::new(store), shutdown.clone()));
    }
    if let Some(metrics_bind) = config.webhook_relay.metrics_bind {
        let listener = tokio::net::TcpListener::bind(metrics_bind)
            .await
            .with_context(|| format!("webhook_relay.metrics_bind: cannot bind {metrics_bind}"))?;
        let stop = shutdown.clone();
        tokio::spawn(webhook_relay::serve_metrics(listener, relay.metrics(), async move {
            stop.cancelled().await;
        }));
    }
    let relay_conf = &config.webhook_relay;
    let security =
        proto::grpc::Security::from_config(relay_conf.token.as_ref(), relay_conf.tls.as_ref());
    // Refuse to start on TLS files that do not load.
    if let Some(tls) = &security.tls {
        tls.server().context("webhook_relay.tls")?;
    }
    if security.token.is_none() {
        tracing::warn!(
            "webhook_relay.token is not set: EventIngest and EventStream accept unauthenticated calls"
        );
    }
    let stop = shutdown.clone();
    let server = relay.serve_secured(listener, security, async move { stop.cancelled().await });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        signal = wait_for_signal() => signal?,
    }
    tracing::info!("shutting down");
    shutdown.cancel();
    server.await?;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
