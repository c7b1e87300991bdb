//! auth-service's counters and gauges, and their Prometheus text (served at `GET /metrics` on
//! `auth_service.metrics_bind`). They belong to the service, not to a chain: a chain replaced
//! after a configuration change keeps counting into the same metrics.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use parking_lot::{Mutex, RwLock};
use tern_acl::Action;
use tern_telemetry::prometheus::{Histogram, Text};

use crate::chain::Answer;

/// Upper bounds of the call latency histograms, in seconds (local backends answer in
/// microseconds, HTTP and Redis in milliseconds).
const LATENCY_BOUNDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The result of a call, or of one topic of an Authorize call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed.
    Allow,
    /// Denied by a backend or the policy.
    Deny,
    /// Denied because a backend could not answer, or the request was invalid.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Allow, Outcome::Deny, Outcome::Error];

    fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Error => "error",
        }
    }
}

/// Which call a backend answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Authenticate.
    Authenticate,
    /// Authorize.
    Authorize,
}

impl Operation {
    const ALL: [Operation; 2] = [Operation::Authenticate, Operation::Authorize];

    fn as_str(self) -> &'static str {
        match self {
            Self::Authenticate => "authenticate",
            Self::Authorize => "authorize",
        }
    }
}

/// Answers of one backend: per operation, per [`Answer`].
type BackendCounts = [[AtomicU64; 4]; 2];

/// The service's metrics (relaxed atomics: they are statistics).
#[derive(Debug)]
pub struct Metrics {
    /// Authenticate calls by outcome.
    authenticate: [AtomicU64; 3],
    /// Authorized topics by action (publish, subscribe) and outcome.
    authorize: [[AtomicU64; 3]; 2],
    /// Backend answers, by backend name (a handful of entries, added on first answer).
    backends: RwLock<Vec<(&'static str, Arc<BackendCounts>)>>,
    /// Latency of Authenticate and Authorize calls.
    latency: [Histogram; 2],
    /// Revocations pushed to brokers.
    revocations: AtomicU64,
    /// Open WatchRevocations streams (brokers watching).
    watchers: AtomicI64,
    /// Configuration version applied, per config store section.
    applied: Mutex<BTreeMap<String, u64>>,
    /// Configuration changes that could not be applied.
    apply_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            authenticate: Default::default(),
            authorize: Default::default(),
            backends: RwLock::default(),
            latency: [Histogram::new(&LATENCY_BOUNDS), Histogram::new(&LATENCY_BOUNDS)],
            revocations: AtomicU64::new(0),
            watchers: AtomicI64::new(0),
            applied: Mutex::default(),
            apply_failures: AtomicU64::new(0),
        }
    }
}

fn action_index(action: Action) -> usize {
    match action {
        Action::Publish => 0,
        Action::Subscribe => 1,
    }
}

impl Metrics {
    /// Records one Authenticate call.
    pub fn authenticated(&self, outcome: Outcome, took: Duration) {
        self.authenticate[outcome as usize].fetch_add(1, Relaxed);
        self.latency[Operation::Authenticate as usize].observe(took);
    }

    /// Records one topic decided in an Authorize call.
    pub fn authorized_topic(&self, action: Action, outcome: Outcome) {
        self.authorize[action_index(action)][outcome as usize].fetch_add(1, Relaxed);
    }

    /// Records the latency of one Authorize call.
    pub fn authorize_took(&self, took: Duration) {
        self.latency[Operation::Authorize as usize].observe(took);
    }

    /// Records one backend answer.
    pub fn backend_answered(&self, backend: &'static str, operation: Operation, answer: Answer) {
        let counts =
            self.backends.read().iter().find(|(n, _)| *n == backend).map(|(_, c)| Arc::clone(c));
        let counts = counts.unwrap_or_else(|| {
            let mut backends = self.backends.write();
            match backends.iter().find(|(n, _)| *n == backend) {
                Some((_, c)) => Arc::clone(c),
                None => {
                    let c = Arc::new(BackendCounts::default());
                    backends.push((backend, Arc::clone(&c)));
                    c
                }
            }
        });
        counts[operation as usize][answer.index()].fetch_add(1, Relaxed);
    }

    /// Records one revocation pushed to brokers.
    pub fn revoked(&self) {
        self.revocations.fetch_add(1, Relaxed);
    }

    /// A broker started watching revocations; the returned guard counts it until dropped.
    pub fn watching(self: &Arc<Self>) -> WatcherGuard {
        self.watchers.fetch_add(1, Relaxed);
        WatcherGuard(Arc::clone(self))
    }

    /// Records the version of `section` the service applied.
    pub fn applied(&self, section: &str, version: u64) {
        self.applied.lock().insert(section.to_owned(), version);
    }

    /// Records a configuration change that could not be applied.
    pub fn apply_failed(&self) {
        self.apply_failures.fetch_add(1, Relaxed);
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = Text::new();
        let name = "tern_auth_authenticate_total";
        text.family(name, "counter", "Authenticate calls by result.");
        for outcome in Outcome::ALL {
            let value = self.authenticate[outcome as usize].load(Relaxed);
            text.sample(name, &[("result", outcome.as_str())], value);
        }
        let name = "tern_auth_authorize_total";
        text.family(name, "counter", "Topics decided by Authorize calls, by action and result.");
        for (action, counts) in ["publish", "subscribe"].iter().zip(&self.authorize) {
            for outcome in Outcome::ALL {
                let value = counts[outcome as usize].load(Relaxed);
                text.sample(name, &[("action", action), ("result", outcome.as_str())], value);
            }
        }
        let name = "tern_auth_backend_answers_total";
        text.family(name, "counter", "Backend answers, by backend, operation and answer.");
        for (backend, counts) in self.backends.read().iter() {
            for operation in Operation::ALL {
                for answer in Answer::ALL {
                    let value = counts[operation as usize][answer.index()].load(Relaxed);
                    let labels = [
                        ("backend", *backend),
                        ("operation", operation.as_str()),
                        ("answer", answer.as_str()),
                    ];
                    text.sample(name, &labels, value);
                }
            }
        }
        let name = "tern_auth_call_duration_seconds";
        text.family(name, "histogram", "Time to answer Authenticate and Authorize calls.");
        for operation in Operation::ALL {
            let labels = [("method", operation.as_str())];
            text.histogram(name, &labels, &self.latency[operation as usize]);
        }
        let name = "tern_auth_revocations_total";
        text.family(name, "counter", "Revocations pushed to brokers.").sample(
            name,
            &[],
            self.revocations.load(Relaxed),
        );
        let name = "tern_auth_revocation_watchers";
        text.family(name, "gauge", "Brokers watching revocations (open WatchRevocations streams).")
            .sample(name, &[], self.watchers.load(Relaxed));
        let name = "tern_auth_config_version";
        text.family(name, "gauge", "Configuration version applied, per config store section.");
        for (section, version) in self.applied.lock().iter() {
            text.sample(name, &[("section", section)], version);
        }
        let name = "tern_auth_config_apply_failures_total";
        text.family(name, "counter", "Configuration changes that could not be applied.").sample(
            name,
            &[],
            self.apply_failures.load(Relaxed),
        );
        text.finish()
    }
}

/// Counts one watching broker while it lives.
#[derive(Debug)]
pub struct WatcherGuard(Arc<Metrics>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Relaxed);
    }
}
