//! Tern's configuration store and node registry, shared by admin-api, auth-service, broker-core
//! and the all-in-one `tern`.
//!
//! - [`ConfigStore`]: configuration sections (JSON documents in NanoMQ's key names) with versions,
//!   and a live [`Snapshot`] of all of them that every service watches and applies. Two
//!   implementations: [`RedisStore`] (a deployment of several processes) and [`MemoryStore`]
//!   (one process, no Redis).
//! - [`nodes`]: broker nodes register their BrokerAdmin address in Redis with a TTL.
//!
//! Keys (prefix configurable, default `tern:`): `<prefix>config:<section>` (a [`Section`] as
//! JSON), `<prefix>config:sections` (the set of section names), `<prefix>config:version` (the
//! counter), `<prefix>config:epoch` (identifies the data set: a Redis that lost its data starts
//! a new epoch), channel `<prefix>config:changed` (`<section> <version>`),
//! `<prefix>config:applied` (hash: `<service>/<instance>` → [`Applied`]), `<prefix>nodes:<id>`.

pub mod follow;
pub mod memory;
pub mod nodes;
pub mod redis_store;

use std::{collections::BTreeMap, fmt::Debug, future::Future, pin::Pin, sync::Arc};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use follow::{ApplyFn, Follow};
pub use memory::MemoryStore;
pub use redis_store::RedisStore;

/// A boxed future, so [`ConfigStore`] can be used as `Arc<dyn ConfigStore>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (Redis down): writes are refused, reads serve the last
    /// snapshot.
    #[error("config store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("config store: bad data under {key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// One stored configuration section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// The section's settings, in NanoMQ's key names (e.g. the `auth {}` block as JSON).
    pub data: serde_json::Value,
    /// Version of this write (from the store's counter).
    pub version: u64,
    /// The data set it belongs to (changes when the store loses its data).
    pub epoch: String,
    /// When it was written, epoch ms.
    pub updated_at_ms: u64,
}

impl Section {
    /// A stamp identifying this write: services compare stamps, not just versions, because a
    /// store that lost its data counts versions from 1 again.
    pub fn stamp(&self) -> String {
        format!("{}:{}", self.epoch, self.version)
    }
}

/// All stored sections, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Sections by name.
    pub sections: BTreeMap<String, Section>,
    /// Whether the store was reachable at the last read (false: this is the last good copy).
    pub connected: bool,
}

/// What one service instance applied (`GET /configuration` shows these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The service: `broker-core`, `auth-service`, `admin-api`, `webhook-relay`.
    pub service: String,
    /// The instance: the node id for brokers, a host/process id for the others.
    pub instance: String,
    /// Version applied per section.
    pub versions: BTreeMap<String, u64>,
    /// Sections it could not apply, with the reason (it keeps its previous settings).
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
    /// When it reported, epoch ms.
    pub at_ms: u64,
}

/// The configuration store.
pub trait ConfigStore: Send + Sync + Debug {
    /// The live snapshot: updated on every change, and re-read in full after a reconnect.
    fn watch(&self) -> watch::Receiver<Arc<Snapshot>>;

    /// Writes `data` as the new contents of `section`, with a new version, and tells every
    /// service. Fails with [`StoreError::Unavailable`] when the store cannot be reached.
    fn put<'a>(
        &'a self,
        section: &'a str,
        data: serde_json::Value,
    ) -> BoxFuture<'a, Result<Section, StoreError>>;

    /// Records what a service instance applied (best effort: a failure is logged by the caller).
    fn report_applied<'a>(&'a self, applied: Applied) -> BoxFuture<'a, Result<(), StoreError>>;

    /// What every service instance reported.
    fn applied(&self) -> BoxFuture<'_, Result<Vec<Applied>, StoreError>>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a service keeps between snapshots to apply only what changed: the stamp it applied per
/// section.
#[derive(Debug, Default, Clone)]
pub struct AppliedStamps(BTreeMap<String, String>);

impl AppliedStamps {
    /// The sections of `snapshot` among `wanted` whose stamp differs from what was applied, and
    /// marks them applied (a section missing from the snapshot keeps its last applied settings).
    pub fn changed<'s>(
        &mut self,
        snapshot: &'s Snapshot,
        wanted: &[&str],
    ) -> Vec<(&'s str, &'s Section)> {
        let mut out = Vec::new();
        for (name, section) in &snapshot.sections {
            if !wanted.contains(&name.as_str()) {
                continue;
            }
            let stamp = section.stamp();
            if self.0.get(name) != Some(&stamp) {
                self.0.insert(name.clone(), stamp);
                out.push((name.as_str(), section));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(version: u64, epoch: &str) -> Section {
        Section { data: serde_json::json!({}), version, epoch: epoch.into(), updated_at_ms: 0 }
    }

    #[test]
    fn changed_sections_are_reported_once_and_across_epochs() {
        let mut stamps = AppliedStamps::default();
        let mut snapshot = Snapshot::default();
        snapshot.sections.insert("auth".into(), section(3, "a"));
        snapshot.sections.insert("other".into(), section(1, "a"));
        assert_eq!(stamps.changed(&snapshot, &["auth"]).len(), 1);
        assert!(stamps.changed(&snapshot, &["auth"]).is_empty(), "already applied");
        // The store lost its data and counted again from 1: a new epoch is still a change.
        snapshot.sections.insert("auth".into(), section(3, "b"));
        assert_eq!(stamps.changed(&snapshot, &["auth"]).len(), 1);
    }
}

/// The sections services apply without a restart, in the order they are overlaid.
pub const HOT_SECTIONS: &[&str] = &["mqtt", "log", "auth", "webhook", "webhooks", "sys"];

/// `base` (the text of a service's configuration file) followed by every stored section of
/// `snapshot` among `sections`, as `name = <json>`. HOCON merges a later object into an earlier one
/// key by key (arrays are replaced), so stored settings override the file's and the file's other
/// settings stay. JSON is valid HOCON, so the result parses with the same validating parser.
pub fn overlay_text(base: &str, snapshot: &Snapshot, sections: &[&str]) -> String {
    let mut text = base.to_owned();
    for name in sections {
        if let Some(section) = snapshot.sections.get(*name)
            && section.data.is_object()
        {
            text.push_str(&format!("\n{name} = {}\n", section.data));
        }
    }
    text
}

/// `update` merged into `base`: objects key by key, everything else replaced.
pub fn merge_json(base: &mut serde_json::Value, update: serde_json::Value) {
    match (base, update) {
        (serde_json::Value::Object(base), serde_json::Value::Object(update)) => {
            for (key, value) in update {
                match base.get_mut(&key) {
                    Some(existing) => merge_json(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, update) => *base = update,
    }
}

#[cfg(test)]
mod overlay_tests {
    use super::*;

    #[test]
    fn stored_sections_follow_the_file_and_merge_objects() {
        let mut snapshot = Snapshot::default();
        snapshot.sections.insert(
            "auth".into(),
            Section {
                data: serde_json::json!({"acl": {"rules": []}}),
                version: 1,
                epoch: "e".into(),
                updated_at_ms: 0,
            },
        );
        let text = overlay_text("auth { no_match = deny }", &snapshot, HOT_SECTIONS);
        assert_eq!(text, "auth { no_match = deny }\nauth = {\"acl\":{\"rules\":[]}}\n");
        let mut base = serde_json::json!({"a": {"x": 1, "y": [1]}, "b": 2});
        merge_json(&mut base, serde_json::json!({"a": {"y": [], "z": 3}}));
        assert_eq!(base, serde_json::json!({"a": {"x": 1, "y": [], "z": 3}, "b": 2}));
    }
}

/// The configuration a service runs on: its file (`None`: the defaults) with the stored
/// `sections` of `snapshot` over it, parsed and validated as at start.
pub fn effective_config(
    file: Option<&std::path::Path>,
    base_dir: &std::path::Path,
    env: &tern_config::Env,
    snapshot: &Snapshot,
    sections: &[&str],
) -> Result<tern_config::Config, String> {
    let base = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => String::new(),
    };
    let text = overlay_text(&base, snapshot, sections);
    let origin = file.map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
    tern_config::parse_str(&text, &origin, base_dir, env)
        .map(|loaded| {
            let mut config = loaded.config;
            config.source = file.map(std::path::Path::to_path_buf);
            config
        })
        .map_err(|e| e.to_string())
}
