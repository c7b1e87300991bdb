//! [`MemoryStore`]: the configuration store of the single-process `tern` (no Redis). Writes go
//! straight into the snapshot every service of the process watches.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{Applied, BoxFuture, ConfigStore, Section, Snapshot, StoreError, now_ms};

/// An in-process configuration store.
#[derive(Debug)]
pub struct MemoryStore {
    snapshot: watch::Sender<Arc<Snapshot>>,
    /// Last version handed out; taken with the `applied` lock never held across `.await`.
    version: Mutex<u64>,
    applied: Mutex<BTreeMap<String, Applied>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store (always "connected").
    pub fn new() -> Self {
        let snapshot = Snapshot { sections: BTreeMap::new(), connected: true };
        Self {
            snapshot: watch::channel(Arc::new(snapshot)).0,
            version: Mutex::new(0),
            applied: Mutex::new(BTreeMap::new()),
        }
    }
}

impl ConfigStore for MemoryStore {
    fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    fn put<'a>(
        &'a self,
        section: &'a str,
        data: serde_json::Value,
    ) -> BoxFuture<'a, Result<Section, StoreError>> {
        let version = {
            let mut v = self.version.lock();
            *v += 1;
            *v
        };
        let doc = Section { data, version, epoch: "memory".into(), updated_at_ms: now_ms() };
        self.snapshot.send_modify(|current| {
            let mut next = (**current).clone();
            next.sections.insert(section.to_owned(), doc.clone());
            *current = Arc::new(next);
        });
        Box::pin(async move { Ok(doc) })
    }

    fn report_applied<'a>(&'a self, applied: Applied) -> BoxFuture<'a, Result<(), StoreError>> {
        self.applied.lock().insert(format!("{}/{}", applied.service, applied.instance), applied);
        Box::pin(async { Ok(()) })
    }

    fn applied(&self) -> BoxFuture<'_, Result<Vec<Applied>, StoreError>> {
        let all = self.applied.lock().values().cloned().collect();
        Box::pin(async move { Ok(all) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_versioned_and_seen_by_watchers() {
        let store = MemoryStore::new();
        let mut rx = store.watch();
        assert!(rx.borrow_and_update().connected);
        let first = store.put("log", serde_json::json!({"level": "info"})).await.expect("put");
        let second = store.put("auth", serde_json::json!({})).await.expect("put");
        assert_eq!((first.version, second.version), (1, 2));
        assert!(rx.has_changed().expect("open"));
        let snapshot = rx.borrow_and_update().clone();
        assert_eq!(snapshot.sections["log"].data["level"], "info");
        store
            .report_applied(Applied {
                service: "s".into(),
                instance: "i".into(),
                versions: [("log".to_string(), 1)].into(),
                errors: Default::default(),
                at_ms: 0,
            })
            .await
            .expect("report");
        assert_eq!(store.applied().await.expect("applied").len(), 1);
    }
}
