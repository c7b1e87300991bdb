//! The chain being served, replaced whole when the configuration changes.
//!
//! Every call loads the current chain once and answers from it, so a call in flight during a
//! replacement finishes on the chain it started with. A replacement starts the new chain's
//! watchers (its password and ACL files, its Redis change notifications) before the chain is
//! swapped in, then stops the old chain's; the old backends are dropped with the last call that
//! uses them.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::{
    chain::Chain,
    server::Revocations,
    setup::{Built, Watchers},
};

/// The current chain and the watchers that keep it current.
#[derive(Debug)]
pub struct LiveChain {
    chain: ArcSwap<Chain>,
    /// The current chain's watchers; `None` once stopped (a replacement then starts none).
    watchers: Mutex<Option<Watchers>>,
    /// Where watchers report changes.
    revocations: Revocations,
    /// How often watched files are checked.
    file_interval: Duration,
}

impl LiveChain {
    /// Serves `chain` as it is: nothing watched (until a replacement brings watchers).
    pub fn fixed(chain: Arc<Chain>, revocations: Revocations) -> Self {
        Self {
            chain: ArcSwap::new(chain),
            watchers: Mutex::new(Some(Watchers::default())),
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

    /// Serves `built` from now on: starts its watchers, swaps its chain in, stops the previous
    /// chain's watchers. After [`LiveChain::stop`], the chain is swapped but no watcher starts.
    pub fn replace(&self, built: Built) {
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
