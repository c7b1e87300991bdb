//! The node's own Prometheus endpoint (`node.metrics_bind`): `GET /metrics` with NanoMQ's
//! `nanomq_*` names and Tern's `tern_*` series for this node (the same text admin-api's
//! `/api/v4/prometheus` builds from every node), plus what only the node itself knows: events it
//! could not hand to webhook-relay.

use std::{fmt::Write as _, future::Future, sync::Arc};

use axum::{http::header, routing::get};
use parking_lot::Mutex;
use proto::prometheus::Peaks;
use tokio::net::TcpListener;

use crate::{Broker, admin_grpc::AdminGrpc};

/// What a scrape reads.
struct Scrape {
    node: AdminGrpc,
    broker: Arc<Broker>,
    peaks: Mutex<Peaks>,
}

impl Scrape {
    fn render(&self) -> String {
        let stats = self.node.statistics();
        let mut text =
            proto::prometheus::render(std::slice::from_ref(&stats), &mut self.peaks.lock());
        let node = stats.node_id.replace('\\', "\\\\").replace('"', "\\\"");
        let mut series = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = write!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{node}\"}} {value}\n"
            );
        };
        series(
            "tern_packets_received_total",
            "counter",
            "MQTT packets received",
            stats.packets_received,
        );
        series("tern_packets_sent_total", "counter", "MQTT packets sent", stats.packets_sent);
        series(
            "tern_events_dropped_total",
            "counter",
            "Events not handed to webhook-relay (its buffer was full)",
            self.broker.events.dropped(),
        );
        series("tern_memory_rss_bytes", "gauge", "Resident memory, bytes", stats.memory_rss_bytes);
        text
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let scrape = Arc::new(Scrape {
        node: AdminGrpc::new(Arc::clone(&broker)),
        broker,
        peaks: Mutex::new(Peaks::default()),
    });
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let scrape = Arc::clone(&scrape);
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    scrape.render(),
                )
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
