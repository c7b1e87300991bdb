//! Hot reload of the password and ACL files: their modification times are checked periodically
//! and a changed file is parsed again and swapped in whole. A file that no longer parses keeps
//! the previous rules (and is logged); a successful reload revokes every cached decision, so
//! brokers ask again.

use std::{
    path::PathBuf,
    time::{Duration, SystemTime},
};

use crate::server::Revocations;

/// Parses a changed file and swaps it in; an error leaves the previous contents in force.
pub type Reload = Box<dyn Fn(&std::path::Path) -> Result<(), String> + Send + Sync>;

/// One watched file and what to do with its new contents.
pub struct Watched {
    /// The file.
    pub path: PathBuf,
    /// What to do when it changed.
    pub reload: Reload,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").field("path", &self.path).finish_non_exhaustive()
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Checks `files` every `interval` until the task is dropped.
pub async fn watch_files(files: Vec<Watched>, interval: Duration, revocations: Revocations) {
    let mut stamps: Vec<Option<SystemTime>> = files.iter().map(|w| modified(&w.path)).collect();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (watched, stamp) in files.iter().zip(stamps.iter_mut()) {
            let now = modified(&watched.path);
            if now == *stamp {
                continue;
            }
            *stamp = now;
            match (watched.reload)(&watched.path) {
                Ok(()) => {
                    tracing::info!(file = %watched.path.display(), "reloaded");
                    revocations.revoke_all(&format!("{} changed", watched.path.display()));
                }
                Err(error) => {
                    tracing::warn!(file = %watched.path.display(), %error, "reload failed; keeping the previous contents");
                }
            }
        }
    }
}
