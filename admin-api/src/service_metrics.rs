//! admin-api's own Prometheus metrics at `GET /metrics` (behind the API's authentication): requests
//! by route and status, request latency, and whether the config store is reachable. Broker metrics
//! are at `/api/v4/prometheus`.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use parking_lot::Mutex;
use tern_telemetry::prometheus::{CONTENT_TYPE, Histogram, Text};

use crate::AppState;

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Request counters.
#[derive(Debug)]
pub struct ServiceMetrics {
    /// Requests by (route template, status code).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Request latency.
    latency: Histogram,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        Self { requests: Mutex::default(), latency: Histogram::new(&BUCKETS) }
    }
}

impl ServiceMetrics {
    fn observe(&self, route: &str, status: u16, took: Duration) {
        *self.requests.lock().entry((route.to_owned(), status)).or_default() += 1;
        self.latency.observe(took);
    }

    /// The metrics as Prometheus text; `store_connected` is the store's state now.
    pub fn render(&self, store_connected: bool) -> String {
        let mut text = Text::new();
        text.family("tern_admin_requests_total", "counter", "API requests by route and status.");
        for ((route, status), n) in self.requests.lock().iter() {
            let code = status.to_string();
            text.sample("tern_admin_requests_total", &[("route", route), ("code", &code)], n);
        }
        text.family("tern_admin_request_duration_seconds", "histogram", "API request latency.")
            .histogram("tern_admin_request_duration_seconds", &[], &self.latency);
        text.family(
            "tern_admin_config_store_connected",
            "gauge",
            "Whether the config store answered at the last read.",
        )
        .sample("tern_admin_config_store_connected", &[], u8::from(store_connected));
        text.finish()
    }
}

/// Counts every routed request (after authentication, so refusals count too).
pub async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state.inner.metrics.observe(&route, response.status().as_u16(), started.elapsed());
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let connected = state.store().watch().borrow().connected;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.inner.metrics.render(connected)).into_response()
}
