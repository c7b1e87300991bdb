//! Prometheus' text exposition format for the services' own metrics: a writer for counter, gauge
//! and histogram families with labels, a lock-free histogram, and the `GET /metrics` endpoint a
//! service serves on its `metrics_bind` address.

use std::{
    fmt::{Display, Write as _},
    future::Future,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use tokio::net::TcpListener;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Serves `GET /metrics` on `listener`, answering with `render()`, until `shutdown` completes.
pub async fn serve<F>(
    listener: TcpListener,
    render: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], render()) }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// A histogram of durations over fixed upper bounds (seconds), updated with relaxed atomics.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Counts per bound, then the +Inf bucket (not cumulative).
    buckets: Box<[AtomicU64]>,
    /// Sum of the observations, nanoseconds (wraps after 584 years of observed time).
    sum_ns: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending, in seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let i = self.bounds.iter().position(|b| secs <= *b).unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Relaxed);
        }
        self.sum_ns.fetch_add(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }
}

/// Builds a text exposition: one [`Text::family`] header, then its samples.
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name` of `kind` (`counter`, `gauge`, `histogram`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        self
    }

    /// One sample of the current family.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Self {
        self.0.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.0, " {value}");
        self
    }

    /// The samples of `histogram` (`_bucket`, `_sum`, `_count`) under `name` with `labels`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        histogram: &Histogram,
    ) -> &mut Self {
        let mut cumulative = 0;
        for (i, bucket) in histogram.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = histogram.bounds.get(i).map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = write!(self.0, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.0, " {cumulative}");
        }
        let sum = histogram.sum_ns.load(Relaxed) as f64 / 1e9;
        for (suffix, value) in [("_sum", sum.to_string()), ("_count", cumulative.to_string())] {
            let _ = write!(self.0, "{name}{suffix}");
            self.labels(labels, None);
            let _ = writeln!(self.0, " {value}");
        }
        self
    }

    /// The text.
    pub fn finish(self) -> String {
        self.0
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.0.push('{');
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let _ = write!(self.0, "{name}=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    c => self.0.push(c),
                }
            }
            self.0.push('"');
        }
        self.0.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_histograms_in_the_text_format() {
        static BOUNDS: [f64; 2] = [0.01, 0.1];
        let histogram = Histogram::new(&BOUNDS);
        histogram.observe(Duration::from_millis(5));
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_secs(1));
        let mut text = Text::new();
        text.family("calls_total", "counter", "Calls.")
            .sample("calls_total", &[("result", "a\"b")], 3)
            .family("latency_seconds", "histogram", "Latency.")
            .histogram("latency_seconds", &[("method", "m")], &histogram);
        assert_eq!(
            text.finish(),
            "# HELP calls_total Calls.\n# TYPE calls_total counter\n\
             calls_total{result=\"a\\\"b\"} 3\n\
             # HELP latency_seconds Latency.\n# TYPE latency_seconds histogram\n\
             latency_seconds_bucket{method=\"m\",le=\"0.01\"} 1\n\
             latency_seconds_bucket{method=\"m\",le=\"0.1\"} 2\n\
             latency_seconds_bucket{method=\"m\",le=\"+Inf\"} 3\n\
             latency_seconds_sum{method=\"m\"} 1.055\n\
             latency_seconds_count{method=\"m\"} 3\n"
        );
        assert_eq!(histogram.count(), 3);
    }
}
