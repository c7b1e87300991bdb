//! `broker-core --conf <file>`: runs one broker node from a NanoMQ-compatible HOCON file.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use broker_core::{
    Broker, BrokerConfig,
    auth::{AllowAll, Authenticator},
    auth_grpc::{GrpcAuth, GrpcAuthConfig},
    events::{EventSink, NoEvents},
    events_grpc::{GrpcEvents, GrpcEventsConfig},
};
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Tern's MQTT broker node.
#[derive(Debug, Parser)]
#[command(name = "broker-core", version, about)]
struct Args {
    /// Configuration file (HOCON, NanoMQ's `nanomq.conf` format). Falls back to
    /// `NANOMQ_CONF_PATH`, then `TERN_CONF`; without any, built-in defaults (TCP on 0.0.0.0:1883).
    #[arg(long = "conf", value_name = "FILE")]
    conf: Option<PathBuf>,
    /// Load and check the configuration, print the problems or "ok", and exit.
    #[arg(long)]
    check_config: bool,
}

/// How long connections get to close after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long webhook-relay gets to acknowledge the last events after the connections closed.
const EVENT_FLUSH_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = Args::parse();
    // One crypto provider for the whole process (TLS listeners, gRPC clients).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (loaded, env) = match tern_telemetry::service::load("broker-core", args.conf.as_deref()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if args.check_config {
        return tern_telemetry::service::check("broker-core", &loaded, []);
    }
    let telemetry = match tern_telemetry::service::start_logging("broker-core", &loaded, &env) {
        Ok(telemetry) => telemetry,
        Err(code) => return code,
    };
    let runtime = match tern_telemetry::service::runtime("broker-core") {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    tern_telemetry::service::run("broker-core", &runtime, serve(loaded.config, env, telemetry))
}

/// Whether the configuration asks for authentication or ACLs (which only auth-service enforces).
fn auth_required(auth: &tern_config::AuthConfig) -> bool {
    !auth.allow_anonymous
        || auth.password.is_some()
        || auth.acl.is_some()
        || auth.http_auth.is_some()
}

async fn serve(
    config: tern_config::Config,
    env: tern_config::Env,
    telemetry: Arc<tern_telemetry::Telemetry>,
) -> anyhow::Result<()> {
    let auth: Arc<dyn Authenticator> = match GrpcAuthConfig::from_config(&config) {
        Some(grpc) => {
            tracing::info!(address = %grpc.address, "authenticating through auth-service");
            Arc::new(GrpcAuth::start(grpc))
        }
        None if auth_required(&config.auth) => {
            // Fail closed: running with every client allowed would silently drop what the file asks.
            anyhow::bail!(
                "auth: the configuration asks for authentication or ACLs (allow_anonymous = false, \
                 password, acl or http_auth) but names no auth-service to enforce them \
                 (auth_service.address); refusing to start rather than letting every client in"
            );
        }
        None => Arc::new(AllowAll),
    };
    let settings = BrokerConfig::from_config(&config);
    let listeners =
        broker_core::server::bind_listeners(&config).await.context("cannot start listeners")?;
    let listener_names: Vec<String> = listeners
        .iter()
        .filter_map(|l| Some(format!("{}@{}", l.info.name, l.socket.local_addr().ok()?)))
        .collect();
    let emitter = GrpcEventsConfig::from_config(&config).map(|relay| {
        tracing::info!(address = %relay.address, "sending events to webhook-relay");
        GrpcEvents::start(relay)
    });
    let events: Arc<dyn EventSink> = match &emitter {
        Some(emitter) => Arc::new(emitter.clone()),
        None => Arc::new(NoEvents),
    };
    let broker = Broker::new(settings, auth, events);
    let shutdown = CancellationToken::new();
    let admin = match &config.broker_admin {
        Some(admin) => {
            let listener = tokio::net::TcpListener::bind(admin.bind)
                .await
                .with_context(|| format!("broker_admin.bind: cannot bind {}", admin.bind))?;
            let port = listener.local_addr().map_or(admin.bind.port(), |a| a.port());
            let (security, registration) =
                broker_core::admin_grpc::settings_from(&config, admin, port, listener_names);
            // Refuse to start on TLS files that do not load, rather than serve MQTT without admin.
            if let Some(tls) = &security.tls {
                tls.server().context("broker_admin.tls")?;
            }
            if security.token.is_none() {
                tracing::warn!(
                    "broker_admin.token is not set: BrokerAdmin accepts unauthenticated calls"
                );
            }
            if registration.is_none() {
                tracing::warn!("no redis {{}} block: this node is not registered for admin-api");
            }
            tracing::info!(addr = %admin.bind, "BrokerAdmin listening");
            Some(tokio::spawn(broker_core::admin_grpc::run(
                Arc::clone(&broker),
                listener,
                security,
                registration,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    if let Some(redis) = &config.redis {
        let store = tern_config_store::RedisStore::from_config(redis, shutdown.clone())?;
        let set_level: broker_core::config_follow::SetLevel =
            Box::new(move |level| telemetry.set_level(level).map_err(|e| e.to_string()));
        let follower = broker_core::config_follow::follower(
            Arc::clone(&broker),
            config.source.clone(),
            std::env::current_dir().context("cannot read the working directory")?,
            env,
            Some(set_level),
        );
        tokio::spawn(follower.run(Arc::new(store), shutdown.clone()));
    }
    if let Some(bind) = config.node.metrics_bind {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("node.metrics_bind: cannot bind {bind}"))?;
        let addr = listener.local_addr().context("node.metrics_bind")?;
        tracing::info!(metrics = %addr, "Prometheus metrics served at /metrics");
        let stop = shutdown.clone();
        let node = Arc::clone(&broker);
        tokio::spawn(async move {
            if let Err(error) =
                broker_core::metrics::serve(node, listener, stop.cancelled_owned()).await
            {
                tracing::error!(%error, "metrics endpoint failed");
            }
        });
    }
    let server = tokio::spawn(broker_core::run(broker, listeners, shutdown.clone()));
    wait_for_signal().await?;
    tracing::info!("shutting down");
    shutdown.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::warn!("connections did not close within {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    if let Some(admin) = admin {
        match tokio::time::timeout(SHUTDOWN_GRACE, admin).await {
            Ok(Ok(Err(error))) => tracing::error!(%error, "BrokerAdmin failed"),
            Err(_) => tracing::warn!("BrokerAdmin did not stop within {SHUTDOWN_GRACE:?}"),
            _ => {}
        }
    }
    if let Some(emitter) = emitter {
        if !emitter.flush(EVENT_FLUSH_GRACE).await {
            let stats = emitter.stats();
            tracing::warn!(
                unacknowledged = stats.buffered,
                "webhook-relay did not acknowledge every event within {EVENT_FLUSH_GRACE:?}; they are lost"
            );
        }
        emitter.close();
    }
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
