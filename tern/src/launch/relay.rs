//! webhook-relay inside `tern start`, when the file has webhook targets (`webhook {}`,
//! `webhooks.<name> {}`): its durable outbox at `webhook_relay.outbox`, EventIngest and
//! EventStream served on an ephemeral loopback port that the in-process broker streams its
//! events to. Without targets there is nothing to deliver and no outbox file is created.
//!
//! The broker reaches the relay through a loopback pipe that the relay's unit closes when it
//! stops: broker-core keeps its event stream open for as long as its process lives, and a
//! graceful gRPC shutdown waits for open streams, so in one process the relay would otherwise
//! wait for a stream nobody ends. By then the broker has stopped and its events are
//! acknowledged (the broker flushes first; services stop in reverse start order).

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use webhook_relay::{Relay, RelayConfig};

use super::{Endpoint, LaunchError, Running, Service, Wiring, authority};

pub(super) async fn start(run: &mut Running, wiring: &mut Wiring) -> Result<(), LaunchError> {
    if wiring.config.webhook_targets().next().is_none() {
        return Ok(());
    }
    let fail = |message: String| LaunchError::Start { service: "webhook-relay", message };
    let outbox = wiring.config.webhook_relay.outbox.display().to_string();
    let relay = Relay::open(RelayConfig::from_config(&wiring.config))
        .map_err(|e| fail(format!("webhook_relay.outbox {outbox}: {e}")))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| fail(format!("cannot bind 127.0.0.1:0: {e}")))?;
    let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let pipe = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| fail(format!("cannot bind 127.0.0.1:0: {e}")))?;
    let pipe_addr = pipe.local_addr().map_err(|e| fail(e.to_string()))?;
    run.spawn(Service::WebhookRelay, |stop| async move {
        relay.serve(listener, stop.cancelled_owned()).await.map_err(|e| e.to_string())
    });
    run.spawn(Service::WebhookRelay, |stop| async move {
        forward(pipe, addr, stop).await;
        Ok(())
    });
    run.endpoints.push(Endpoint {
        service: Service::WebhookRelay.name(),
        what: format!("gRPC EventIngest, EventStream (outbox {outbox})"),
        addr,
        url: format!("http://{}", authority(addr)),
    });
    wiring.webhook_relay = Some(pipe_addr);
    Ok(())
}

/// Forwards each connection on `pipe` to the relay at `relay` until `stop`, then closes them all.
async fn forward(pipe: TcpListener, relay: SocketAddr, stop: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = pipe.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let Ok((mut broker, _)) = accepted else { continue };
        let stop = stop.clone();
        connections.spawn(async move {
            let Ok(mut upstream) = TcpStream::connect(relay).await else { return };
            let _ = broker.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut broker, &mut upstream) => {}
                () = stop.cancelled() => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}
