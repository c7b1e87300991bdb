//! The chain being served, replaced whole when the configuration changes.
//!
//! Every call loads the current chain once and answers from it, so a call in flight during a
//! replacement finishes on the chain it started with. A replacement starts the new chain's
//! watchers (its password and ACL files, its Redis change notifications) before the chain is
//! swapped in, then stops the old chain's; the old backends are dropped with the last call that
//! uses them.
//!
//! Once the configuration comes from the file *and* the config store
//! ([`LiveChain::rebuild_with`]), a changed password or ACL file rebuilds the whole chain from
//! both, as at start — so users and rules written through the store survive an edit of the file.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::{
    chain::Chain,
    server::Revocations,
    setup::{Built, Watchers},
};

/// Builds the chain again from the current configuration.
pub type Rebuild = Arc<dyn Fn() -> Result<Built, String> + Send + Sync>;

/// The current chain and the watchers that keep it current.
pub struct LiveChain {
    chain: ArcSwap<Chain>,
    /// The current chain's watchers; `None` once stopped (a replacement then starts none).
    watchers: Mutex<Option<Watchers>>,
    /// How a changed watched file is applied: `None`, by reloading that file into its backend;
    /// `Some`, by rebuilding the whole chain.
    rebuild: Mutex<Option<Rebuild>>,
    /// Where watchers report changes.
    revocations: Revocations,
    /// How often watched files are checked.
    file_interval: Duration,
}

impl std::fmt::Debug for LiveChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChain")
            .field("chain", &self.chain)
            .field("rebuilds", &self.rebuild.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl LiveChain {
    /// Serves `chain` as it is: nothing watched (until a replacement brings watchers).
    pub fn fixed(chain: Arc<Chain>, revocations: Revocations) -> Self {
        Self {
            chain: ArcSwap::new(chain),
            watchers: Mutex::new(Some(Watchers::default())),
            rebuild: Mutex::new(None),
            revocations,
            file_interval: crate::server::RELOAD_INTERVAL,
        }
    }

    /// Serves `built`'s chain and starts its watchers — files checked every `file_interval`,
    /// changes reported through `revocations`.
    pub fn start(built: Built, revocations: Revocations, file_interval: Duration) -> Self {
        let (chain, watchers) = built.start_watchers(&revocations, file_interval);
        Self {
            chain: ArcSwap::new(chain),
            watchers: Mutex::new(Some(watchers)),
            rebuild: Mutex::new(None),
            revocations,
            file_interval,
        }
    }

    /// The chain to answer one call from.
    pub fn current(&self) -> Arc<Chain> {
        self.chain.load_full()
    }

    /// Where this chain's changes are reported.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Builds a chain with `rebuild` and serves it: starts its watchers, swaps it in, stops the
    /// previous chain's watchers. From now on a changed watched file is applied by rebuilding the
    /// whole chain with it too (the configuration is no longer the file alone). When it does not build, the current chain and
    /// the current way of applying file changes stay, and the error is returned.
    pub fn rebuild_with(self: &Arc<Self>, rebuild: Rebuild) -> Result<(), String> {
        // Held while building and swapping, so a file change being applied at the same time
        // cannot swap in a chain built from older settings after this one.
        let mut current = self.rebuild.lock();
        let built = rebuild()?;
        *current = Some(rebuild);
        self.swap(built);
        Ok(())
    }

    /// Rebuilds the chain and serves it (a watched file changed). Called from a watcher of the
    /// current chain, which this stops: it ends at its next wait.
    fn rebuild(self: &Arc<Self>) -> Result<(), String> {
        let current = self.rebuild.lock();
        if let Some(rebuild) = current.as_ref() {
            self.swap(rebuild()?);
        }
        Ok(())
    }

    /// Serves `built` from now on: starts its watchers (whose file changes rebuild the chain),
    /// swaps its chain in, stops the previous chain's watchers. After [`LiveChain::stop`], the
    /// chain is swapped but no watcher starts.
    fn swap(self: &Arc<Self>, mut built: Built) {
        for watched in &mut built.watched {
            let live = Arc::downgrade(self);
            watched.reload = Box::new(move |_| match live.upgrade() {
                Some(live) => live.rebuild(),
                None => Ok(()),
            });
        }
        let mut watchers = self.watchers.lock();
        match watchers.as_mut() {
            Some(current) => {
                let (chain, started) = built.start_watchers(&self.revocations, self.file_interval);
                self.chain.store(chain);
                // Dropping the previous watchers aborts their tasks.
                *current = started;
            }
            None => self.chain.store(built.chain),
        }
    }

    /// Stops the current watchers (the service is shutting down).
    pub fn stop(&self) {
        self.watchers.lock().take();
    }
}
