//! webhook-relay inside `tern start`: the durable outbox and webhook delivery of the file's
//! `webhook {}` / `webhooks.<name> {}` targets, receiving the in-process broker's events over its
//! real gRPC interface (`EventIngest`) on an ephemeral loopback port. It runs when the file has
//! a webhook target or asks for events to be streamed (`webhook_relay.stream_events`), or when the
//! config store holds `webhook` / `webhooks` sections at start; it follows the shared store, so
//! targets written through admin-api apply live.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tern_config_store::{ConfigStore, Snapshot, effective_config};
use webhook_relay::{Relay, RelayConfig, delivery::Target, follow::TARGET_SECTIONS};

use super::{Endpoint, LaunchError, Running, Service, Wiring, authority};

/// Whether the configuration file needs a relay.
pub(super) fn wanted(config: &tern_config::Config) -> bool {
    config.webhook_targets().next().is_some() || !config.webhook_relay.stream_events.is_empty()
}

/// The store's snapshot once it has been read, waiting up to `wait` (`None`: it could not be
/// read in time).
async fn read_store(store: &Arc<dyn ConfigStore>, wait: Duration) -> Option<Arc<Snapshot>> {
    let mut rx = store.watch();
    let read = tokio::time::timeout(wait, rx.wait_for(|s| s.connected)).await;
    Some(read.ok()?.ok()?.clone())
}

pub(super) async fn start(run: &mut Running, wiring: &mut Wiring) -> Result<(), LaunchError> {
    let snapshot = if wanted(&wiring.config) {
        // Not worth a wait: the follower applies the store's targets once it is read.
        let current = wiring.store.watch().borrow().clone();
        current.connected.then_some(current)
    } else {
        // Without `redis {}` the store is this process's own, empty at start.
        let Some(redis) = &wiring.config.redis else { return Ok(()) };
        match read_store(&wiring.store, redis.timeout).await {
            Some(s) if TARGET_SECTIONS.iter().any(|name| s.sections.contains_key(*name)) => Some(s),
            Some(_) => return Ok(()),
            None => {
                run.notes.push(
                    "webhook-relay not started: the file has no webhook target and the config \
                     store (Redis) could not be read to see whether it holds some"
                        .into(),
                );
                return Ok(());
            }
        }
    };
    if let Some(snapshot) = snapshot {
        // Start on the stored targets too, and let the broker (started next) read their rules
        // as it reads the file's: it produces those events from its first connection.
        let env = tern_config::Env::from_process();
        let source = wiring.config.source.clone();
        match effective_config(
            source.as_deref(),
            &wiring.base_dir,
            &env,
            &snapshot,
            TARGET_SECTIONS,
        ) {
            Ok(effective) => {
                // What the relay checks when it builds a target (header values, certificates).
                let unusable =
                    effective.webhook_targets().find_map(|t| Target::new(t.clone()).err());
                match unusable {
                    None => {
                        wiring.config.webhook = effective.webhook;
                        wiring.config.webhooks = effective.webhooks;
                    }
                    Some(error) => run.notes.push(format!(
                        "webhook-relay: a stored webhook target cannot be used, starting on the \
                         file's targets: {error}"
                    )),
                }
            }
            Err(error) => run.notes.push(format!(
                "webhook-relay: the stored webhook sections do not validate, starting on the \
                 file's targets: {error}"
            )),
        }
    }
    let fail = |message: String| LaunchError::Start { service: "webhook-relay", message };
    let config = &wiring.config;
    // Stored targets not read yet are applied by the follower once the store is read; until
    // then the deliveries pending for them stay in the outbox.
    let relay_config =
        RelayConfig { forget_unconfigured: false, ..RelayConfig::from_config(config) };
    let relay = Relay::open(relay_config).map_err(|e| {
        fail(format!("webhook_relay.outbox {}: {e}", config.webhook_relay.outbox.display()))
    })?;
    let follower = webhook_relay::follow::Follower {
        relay: relay.clone(),
        file: config.source.clone(),
        base_dir: wiring.base_dir.clone(),
        env: tern_config::Env::from_process(),
        instance: config.node.id.clone(),
        set_level: None,
    };
    let store = Arc::clone(&wiring.store);
    run.spawn(Service::WebhookRelay, |stop| async move {
        follower.run(store, stop).await;
        Ok(())
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| fail(format!("cannot bind 127.0.0.1:0: {e}")))?;
    let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    if let Some(metrics_bind) = config.webhook_relay.metrics_bind {
        let metrics = tokio::net::TcpListener::bind(metrics_bind).await.map_err(|e| {
            fail(format!("webhook_relay.metrics_bind: cannot bind {metrics_bind}: {e}"))
        })?;
        let metrics_addr = metrics.local_addr().map_err(|e| fail(e.to_string()))?;
        let counters = relay.metrics();
        run.spawn(Service::WebhookRelay, |stop| async move {
            webhook_relay::serve_metrics(metrics, counters, stop.cancelled_owned())
                .await
                .map_err(|e| e.to_string())
        });
        run.endpoints.push(Endpoint {
            service: Service::WebhookRelay.name(),
            what: "Prometheus metrics".into(),
            addr: metrics_addr,
            url: format!("http://{}/metrics", authority(metrics_addr)),
        });
    }
    run.spawn(Service::WebhookRelay, |stop| async move {
        relay.serve(listener, stop.cancelled_owned()).await.map_err(|e| e.to_string())
    });
    run.endpoints.push(Endpoint {
        service: Service::WebhookRelay.name(),
        what: "gRPC EventIngest, EventStream, health, reflection".into(),
        addr,
        url: format!("http://{}", authority(addr)),
    });
    wiring.webhook_relay = Some(addr);
    Ok(())
}
