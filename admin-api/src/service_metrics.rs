//! admin-api's own Prometheus metrics at `GET /metrics` (behind the API's authentication): requests
//! by route and status, request latency, and whether the config store is reachable. Broker metrics
//! are at `/api/v4/prometheus`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use parking_lot::Mutex;

use crate::AppState;

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Request counters.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    /// Requests by (route template, status code).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Latency counts per bucket, then +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of latencies, microseconds.
    sum_us: AtomicU64,
}

impl ServiceMetrics {
    fn observe(&self, route: &str, status: u16, took: Duration) {
        *self.requests.lock().entry((route.to_owned(), status)).or_default() += 1;
        let secs = took.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// The metrics as Prometheus text; `store_connected` is the store's state now.
    pub fn render(&self, store_connected: bool) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP tern_admin_requests_total API requests by route and status.\n\
             # TYPE tern_admin_requests_total counter\n",
        );
        for ((route, status), n) in self.requests.lock().iter() {
            let route = route.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "tern_admin_requests_total{{route=\"{route}\",code=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP tern_admin_request_duration_seconds API request latency.\n\
             # TYPE tern_admin_request_duration_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "tern_admin_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.buckets[BUCKETS.len()].load(Relaxed);
        let _ =
            writeln!(out, "tern_admin_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "tern_admin_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "tern_admin_request_duration_seconds_count {cumulative}");
        let _ = write!(
            out,
            "# HELP tern_admin_config_store_connected Whether the config store answered at the last read.\n\
             # TYPE tern_admin_config_store_connected gauge\n\
             tern_admin_config_store_connected {}\n",
            u8::from(store_connected)
        );
        out
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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.inner.metrics.render(connected),
    )
        .into_response()
}
