//! webhook-relay inside `tern start`: the durable outbox and webhook delivery of the file's
//! `webhook {}` / `webhooks.<name> {}` targets, receiving the in-process broker's events over its
//! real gRPC interface (`EventIngest`) on an ephemeral loopback port. It runs only when the file
//! has a webhook target or asks for events to be streamed (`webhook_relay.stream_events`).

use std::net::{Ipv4Addr, SocketAddr};

use webhook_relay::{Relay, RelayConfig};

use super::{Endpoint, LaunchError, Running, Service, Wiring, authority};

/// Whether the configuration needs a relay.
pub(super) fn wanted(config: &tern_config::Config) -> bool {
    config.webhook_targets().next().is_some() || !config.webhook_relay.stream_events.is_empty()
}

pub(super) async fn start(run: &mut Running, wiring: &mut Wiring) -> Result<(), LaunchError> {
    if !wanted(&wiring.config) {
        return Ok(());
    }
    let fail = |message: String| LaunchError::Start { service: "webhook-relay", message };
    let config = &wiring.config;
    let relay = Relay::open(RelayConfig::from_config(config)).map_err(|e| {
        fail(format!("webhook_relay.outbox {}: {e}", config.webhook_relay.outbox.display()))
    })?;
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
