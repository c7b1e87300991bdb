//! Following the config store: when the `auth` section changes (an ACL rule or a user added
//! through admin-api), the service re-reads its file with the stored sections over it, validates
//! the result with the same parser as at start, swaps the ACL rules and the users into the running
//! chain, revokes every cached decision (brokers ask again), and reports the version it applied.
//! A change that does not validate is reported and the previous settings stay.
//!
//! Hot from the store: `auth.acl` rules and `auth.password` users (added to the file's). The rest
//! of `auth {}` (allow_anonymous, no_match, backends) needs a restart.

use std::{path::PathBuf, sync::Arc};

use tern_config_store::{ConfigStore, Follow, effective_config};
use tokio_util::sync::CancellationToken;

use crate::{
    backend::{acl_file::AclFile, password_file::PasswordFile},
    server::Revocations,
    setup::rules_of,
};

/// Where the follower re-reads the configuration from, and its name.
#[derive(Debug)]
pub struct StoreSettings {
    /// The configuration file the service started from (`None`: defaults).
    pub file: Option<PathBuf>,
    /// The directory relative paths resolve against.
    pub base_dir: PathBuf,
    /// Environment overrides, applied as at start.
    pub env: tern_config::Env,
    /// This instance's name in `GET /configuration`.
    pub instance: String,
}

/// What the follower changes, and how it re-reads the configuration.
#[derive(Debug)]
pub struct Follower {
    /// The configuration file the service started from (`None`: defaults).
    pub file: Option<PathBuf>,
    /// The directory relative paths resolve against.
    pub base_dir: PathBuf,
    /// Environment overrides, applied as at start.
    pub env: tern_config::Env,
    /// The password backend, if the chain has one.
    pub passwords: Option<Arc<PasswordFile>>,
    /// The ACL backend, if the chain has one.
    pub acl: Option<Arc<AclFile>>,
    /// Where to tell brokers to drop their cached decisions.
    pub revocations: Revocations,
    /// This instance's name in `GET /configuration`.
    pub instance: String,
}

impl Follower {
    /// Applies the store's `auth` section until `shutdown`.
    pub async fn run(self, store: Arc<dyn ConfigStore>, shutdown: CancellationToken) {
        let follow = Follow {
            service: "auth-service".into(),
            instance: self.instance.clone(),
            sections: vec!["auth"],
            apply: Box::new(move |_, snapshot| {
                self.apply(snapshot)?;
                self.revocations.revoke_all("configuration changed");
                Ok(())
            }),
        };
        follow.run(store, shutdown).await;
    }

    fn apply(&self, snapshot: &tern_config_store::Snapshot) -> Result<(), String> {
        let config =
            effective_config(self.file.as_deref(), &self.base_dir, &self.env, snapshot, &["auth"])?;
        let auth = &config.auth;
        match (&auth.acl, &self.acl) {
            (Some(acl), Some(backend)) => {
                backend.reload(rules_of(&acl.rules).map_err(|e| e.to_string())?);
            }
            (Some(_), None) => {
                return Err(
                    "auth.acl was added, but this service started without an ACL; restart it"
                        .into(),
                );
            }
            (None, _) => {}
        }
        match (&auth.password, &self.passwords) {
            (Some(passwords), Some(backend)) => backend.reload(passwords.entries.clone()),
            (Some(_), None) => {
                return Err(
                    "auth.password was added, but this service started without users; restart it"
                        .into(),
                );
            }
            (None, _) => {}
        }
        Ok(())
    }
}
