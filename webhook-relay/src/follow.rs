//! Following the config store: when the `webhook` or `webhooks` section changes (a target added or
//! changed through admin-api), the relay re-reads its file with the stored sections over it,
//! validates the result with the same parser as at start, and swaps the targets into the running
//! relay ([`Relay::set_targets`]: pending deliveries of a target that still exists go out under its
//! new settings, those of a removed target are dropped and counted, brokers are asked for the
//! event types the new rules name). With a telemetry handle it also applies `log.level`. It
//! reports the version it applied; a change that does not validate is reported as an error and the
//! previous targets stay.
//!
//! Before the store has been read once (Redis down at start) the relay delivers its file's
//! targets and keeps the pending deliveries of every other target; the first read applies the
//! stored targets, or the file's alone, so what was removed while the relay was down is dropped
//! then.

use std::{path::PathBuf, sync::Arc};

use tern_config_store::{ConfigStore, Follow, Snapshot, effective_config};
use tokio_util::sync::CancellationToken;

use crate::Relay;

/// The sections holding webhook targets.
pub const TARGET_SECTIONS: &[&str] = &["webhook", "webhooks"];

/// Sets the log level (the binary's telemetry handle).
pub type SetLevel = Box<dyn Fn(tern_config::LogLevel) -> Result<(), String> + Send>;

/// Where the follower re-reads the configuration from, and its name.
pub struct Follower {
    /// The running relay.
    pub relay: Relay,
    /// The configuration file the relay started from (`None`: defaults).
    pub file: Option<PathBuf>,
    /// The directory relative paths resolve against.
    pub base_dir: PathBuf,
    /// Environment overrides, applied as at start.
    pub env: tern_config::Env,
    /// This instance's name in `GET /configuration`.
    pub instance: String,
    /// Applies `log.level` when set (the standalone binary); `None`: the `log` section is not
    /// followed (inside `tern start` the process's logging is not the relay's).
    pub set_level: Option<SetLevel>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("file", &self.file)
            .field("instance", &self.instance)
            .field("set_level", &self.set_level.is_some())
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Applies the store's webhook sections (and `log` with a telemetry handle) until `shutdown`.
    pub async fn run(self, store: Arc<dyn ConfigStore>, shutdown: CancellationToken) {
        // The first read of the store settles which targets exist (see the module docs).
        let mut rx = store.watch();
        loop {
            let snapshot = rx.borrow_and_update().clone();
            if snapshot.connected {
                if let Err(error) = self.apply_targets(&snapshot) {
                    tracing::warn!(%error, "stored webhook targets not applied; keeping the file's");
                }
                break;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
        let mut sections = TARGET_SECTIONS.to_vec();
        if self.set_level.is_some() {
            sections.push("log");
        }
        let follow = Follow {
            service: "webhook-relay".into(),
            instance: self.instance.clone(),
            sections,
            apply: Box::new(move |section, snapshot| match section {
                "log" => self.apply_level(snapshot),
                _ => self.apply_targets(snapshot),
            }),
        };
        follow.run(store, shutdown).await;
    }

    fn apply_targets(&self, snapshot: &Snapshot) -> Result<(), String> {
        let config = effective_config(
            self.file.as_deref(),
            &self.base_dir,
            &self.env,
            snapshot,
            TARGET_SECTIONS,
        )?;
        // Changed and new targets are built as at start (header values, certificate files);
        // one that cannot be built changes nothing.
        let targets = config.webhook_targets().cloned().collect();
        self.relay.set_targets(targets).map(|_| ()).map_err(|e| e.to_string())
    }

    fn apply_level(&self, snapshot: &Snapshot) -> Result<(), String> {
        let config =
            effective_config(self.file.as_deref(), &self.base_dir, &self.env, snapshot, &["log"])?;
        match &self.set_level {
            Some(set) => set(config.log.level),
            None => Ok(()),
        }
    }
}
