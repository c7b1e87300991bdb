//! NanoMQ's password list (`auth.password`, usually `{include "nanomq_pwd.conf"}`): users with a
//! plain-text password as NanoMQ writes them, or a hashed one (`tern passwd`).
//!
//! Answers only for the users it lists: a listed user with the right password is allowed, with a
//! wrong or missing password denied (0x86); any other client is not this backend's (`Ignore`).
//! The table is swapped whole on reload, so a check sees either the old or the new list.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use tern_config::Secret;

use super::{Authn, Backend, BackendError, BoxFuture, Client};
use crate::passwd::{Stored, Verifier};

/// MQTT 5 CONNACK "Bad User Name or Password".
const BAD_CREDENTIALS: u8 = 0x86;

/// The password list.
pub struct PasswordFile {
    /// The current table, replaced whole by [`PasswordFile::reload`]; the lock is held only to
    /// clone the `Arc`.
    users: RwLock<Arc<HashMap<String, Secret>>>,
    /// The file the entries came from (for logs and the chain's watcher).
    file: Option<PathBuf>,
    /// Bounds concurrent hash checks.
    verifier: Verifier,
}

impl PasswordFile {
    /// A backend over `entries` (`username → password`, as `tern_config::PasswordSource` holds
    /// them). When a user appears twice, the last entry wins (as NanoMQ's reload does).
    pub fn new(entries: Vec<(String, Secret)>, file: Option<PathBuf>) -> Self {
        Self { users: RwLock::new(Arc::new(table(entries))), file, verifier: Verifier::default() }
    }

    /// Replaces the whole table at once.
    pub fn reload(&self, entries: Vec<(String, Secret)>) {
        let table = Arc::new(table(entries));
        *self.users.write() = table;
    }

    /// The file the entries came from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// How many users the table holds.
    pub fn len(&self) -> usize {
        self.users.read().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, username: &str) -> Option<Secret> {
        self.users.read().get(username).cloned()
    }
}

fn table(entries: Vec<(String, Secret)>) -> HashMap<String, Secret> {
    entries.into_iter().collect()
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("users", &self.len())
            .field("file", &self.file)
            .finish()
    }
}

impl Backend for PasswordFile {
    fn name(&self) -> &'static str {
        "password_file"
    }

    fn authenticate<'a>(
        &'a self,
        client: &'a Client,
    ) -> BoxFuture<'a, Result<Authn, BackendError>> {
        Box::pin(async move {
            let Some(username) = client.username.as_deref() else {
                return Ok(Authn::Ignore);
            };
            let Some(stored) = self.lookup(username) else {
                return Ok(Authn::Ignore);
            };
            let Some(password) = client.password.as_deref() else {
                return Ok(deny("no password"));
            };
            let ok = if Stored::of(stored.expose()).is_hashed() {
                self.verifier.verify(stored.expose(), password).await
            } else {
                stored.constant_time_eq(password)
            };
            Ok(if ok { Authn::Allow { superuser: false } } else { deny("wrong password") })
        })
    }
}

fn deny(reason: &str) -> Authn {
    Authn::Deny { reason_code: BAD_CREDENTIALS, reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(username: Option<&str>, password: Option<&[u8]>) -> Client {
        Client {
            client_id: "c".into(),
            username: username.map(str::to_owned),
            password: password.map(<[u8]>::to_vec),
            ..Client::default()
        }
    }

    #[tokio::test]
    async fn plain_entries_and_reload() {
        let backend = PasswordFile::new(vec![("admin".into(), Secret::new("public"))], None);
        let ok = backend.authenticate(&client(Some("admin"), Some(b"public"))).await.unwrap();
        assert_eq!(ok, Authn::Allow { superuser: false });
        let bad = backend.authenticate(&client(Some("admin"), Some(b"nope"))).await.unwrap();
        assert!(matches!(bad, Authn::Deny { reason_code: 0x86, .. }));
        let none = backend.authenticate(&client(Some("admin"), None)).await.unwrap();
        assert!(matches!(none, Authn::Deny { reason_code: 0x86, .. }));
        assert_eq!(
            backend.authenticate(&client(Some("x"), Some(b"public"))).await.unwrap(),
            Authn::Ignore
        );
        assert_eq!(
            backend.authenticate(&client(None, Some(b"public"))).await.unwrap(),
            Authn::Ignore
        );

        backend.reload(vec![("admin".into(), Secret::new("changed"))]);
        let old = backend.authenticate(&client(Some("admin"), Some(b"public"))).await.unwrap();
        assert!(matches!(old, Authn::Deny { .. }));
        let new = backend.authenticate(&client(Some("admin"), Some(b"changed"))).await.unwrap();
        assert_eq!(new, Authn::Allow { superuser: false });
    }

    #[test]
    fn debug_hides_passwords() {
        let backend = PasswordFile::new(vec![("admin".into(), Secret::new("hunter2"))], None);
        let debug = format!("{backend:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("admin"), "{debug}");
    }
}
