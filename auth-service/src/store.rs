//! Following the config store: when the `auth` section changes (through admin-api's
//! `POST /api/v4/configuration/auth`), the service re-reads its file with the stored sections over
//! it, validates the result with the same parser as at start, builds a whole new chain from it with
//! the same code as at start ([`crate::setup::build`]) and swaps it in ([`LiveChain::rebuild_with`]):
//! calls in flight finish on the previous chain, the previous chain's file and Redis watchers stop
//! and the new chain's start. Then every cached decision is revoked (brokers ask again) and the
//! version applied is reported. A change that does not parse or does not build (a key file that
//! does not load, a bad backend URL…) is reported as the section's error and the previous chain
//! keeps answering.
//!
//! So everything in `auth {}` is hot: `allow_anonymous`, `no_match`, `deny_action`, `cache.ttl`,
//! users and ACL rules, and the backends themselves (`http_auth`, `jwt`, `redis`). With a
//! log level setter (the `auth-service` binary), `log.level` is applied too.

use std::{path::PathBuf, sync::Arc};

use tern_config_store::{ConfigStore, Follow, Snapshot, effective_config};
use tokio_util::sync::CancellationToken;

use crate::live::LiveChain;

/// Sets the process's log level (the binary's telemetry handle).
pub type SetLevel = Box<dyn Fn(tern_config::LogLevel) -> Result<(), String> + Send + Sync>;

/// Where the follower re-reads the configuration from, and its name.
pub struct StoreSettings {
    /// The configuration file the service started from (`None`: defaults).
    pub file: Option<PathBuf>,
    /// The directory relative paths resolve against.
    pub base_dir: PathBuf,
    /// Environment overrides, applied as at start.
    pub env: tern_config::Env,
    /// This instance's name in `GET /configuration`.
    pub instance: String,
    /// Applies `log.level` changes; `None`: the `log` section is not followed (the process's
    /// logging belongs to someone else, as in `tern start`).
    pub set_level: Option<SetLevel>,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("file", &self.file)
            .field("base_dir", &self.base_dir)
            .field("instance", &self.instance)
            .field("set_level", &self.set_level.is_some())
            .finish_non_exhaustive()
    }
}

/// Applies the store's sections to a running service.
#[derive(Debug)]
pub struct Follower {
    /// Where to re-read the configuration from.
    pub settings: StoreSettings,
    /// The chain to replace.
    pub live: Arc<LiveChain>,
}

impl Follower {
    /// Applies the store's `auth` (and `log`) sections until `shutdown`.
    pub async fn run(self, store: Arc<dyn ConfigStore>, shutdown: CancellationToken) {
        let mut sections = vec!["auth"];
        if self.settings.set_level.is_some() {
            sections.push("log");
        }
        let follow = Follow {
            service: "auth-service".into(),
            instance: self.settings.instance.clone(),
            sections,
            apply: Box::new(move |section, snapshot| {
                let metrics = self.live.revocations().metrics();
                let applied = self.apply(section, snapshot);
                match &applied {
                    Ok(()) => {
                        let version = snapshot.sections.get(section).map_or(0, |s| s.version);
                        metrics.applied(section, version);
                    }
                    Err(_) => metrics.apply_failed(),
                }
                applied
            }),
        };
        follow.run(store, shutdown).await;
    }

    fn apply(&self, section: &str, snapshot: &Snapshot) -> Result<(), String> {
        let s = &self.settings;
        match section {
            "auth" => {
                // The same closure rebuilds the chain when a password or ACL file changes later,
                // so the file's new contents are applied together with this stored section.
                let (file, base_dir, env) = (s.file.clone(), s.base_dir.clone(), s.env.clone());
                let snapshot = snapshot.clone();
                self.live.rebuild_with(Arc::new(move || {
                    let config =
                        effective_config(file.as_deref(), &base_dir, &env, &snapshot, &["auth"])?;
                    crate::setup::build(&config).map_err(|e| e.to_string())
                }))?;
                self.live.revocations().revoke_all("configuration changed");
                Ok(())
            }
            "log" => {
                let config =
                    effective_config(s.file.as_deref(), &s.base_dir, &s.env, snapshot, &["log"])?;
                match &s.set_level {
                    Some(set) => set(config.log.level),
                    None => Ok(()),
                }
            }
            other => Err(format!("auth-service does not apply {other} settings")),
        }
    }
}
