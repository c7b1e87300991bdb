//! The loop every service runs to follow the store: wait for a new snapshot, apply the sections it
//! cares about whose stamp changed, and report what it applied (again after every change and
//! reconnect, since a report made while Redis was down is lost).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{Applied, AppliedStamps, ConfigStore, Snapshot, now_ms};

/// Applies one changed section; an error keeps the previous settings and is reported.
pub type ApplyFn = Box<dyn FnMut(&str, &Snapshot) -> Result<(), String> + Send>;

/// Who follows, and what it applies.
pub struct Follow {
    /// The service (`auth-service`, `broker-core`…).
    pub service: String,
    /// This instance (node id, host name).
    pub instance: String,
    /// The sections it applies.
    pub sections: Vec<&'static str>,
    /// How it applies one section.
    pub apply: ApplyFn,
}

impl std::fmt::Debug for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follow")
            .field("service", &self.service)
            .field("instance", &self.instance)
            .field("sections", &self.sections)
            .finish_non_exhaustive()
    }
}

impl Follow {
    /// Follows `store` until `shutdown`.
    pub async fn run(mut self, store: Arc<dyn ConfigStore>, shutdown: CancellationToken) {
        let mut rx = store.watch();
        let mut stamps = AppliedStamps::default();
        let mut report = Applied {
            service: self.service.clone(),
            instance: self.instance.clone(),
            versions: Default::default(),
            errors: Default::default(),
            at_ms: 0,
        };
        loop {
            let snapshot = rx.borrow_and_update().clone();
            let changed: Vec<(String, u64)> = stamps
                .changed(&snapshot, &self.sections)
                .into_iter()
                .map(|(name, section)| (name.to_owned(), section.version))
                .collect();
            for (name, version) in changed {
                match (self.apply)(&name, &snapshot) {
                    Ok(()) => {
                        tracing::info!(section = name, version, "configuration applied");
                        report.errors.remove(&name);
                        report.versions.insert(name, version);
                    }
                    Err(error) => {
                        tracing::warn!(section = name, version, %error, "configuration not applied; keeping the previous settings");
                        report.errors.insert(name, format!("version {version}: {error}"));
                    }
                }
            }
            if snapshot.connected {
                report.at_ms = now_ms();
                if let Err(error) = store.report_applied(report.clone()).await {
                    tracing::debug!(%error, "cannot report the applied configuration");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    }
}
