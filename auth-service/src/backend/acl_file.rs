//! NanoMQ's ACL (`auth.acl`, usually `{include "nanomq_acl.conf"}`) evaluated with Tern's
//! semantics (see the `tern_acl` crate docs for the differences from NanoMQ).
//!
//! The rules are swapped whole on reload. Since the rules need no outside call, this backend can
//! always state a client's complete ACL ([`Backend::acl_for`]), which brokers preload.

use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use tern_acl::{Action, Identity, Permission, Rule};

use super::{Authz, Backend, BackendError, BoxFuture, Client};

/// The ACL rules.
pub struct AclFile {
    /// The current rules, replaced whole by [`AclFile::reload`]; the lock is held only to clone
    /// the `Arc`.
    rules: RwLock<Arc<Vec<Rule>>>,
}

impl AclFile {
    /// A backend over `rules` (in order: the first that applies decides). Build them with
    /// `tern_acl::Rule::from_config_all(&acl_source.rules)`.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules: RwLock::new(Arc::new(rules)) }
    }

    /// Replaces all rules at once.
    pub fn reload(&self, rules: Vec<Rule>) {
        let rules = Arc::new(rules);
        *self.rules.write() = rules;
    }

    /// The current rules.
    pub fn rules(&self) -> Arc<Vec<Rule>> {
        self.rules.read().clone()
    }
}

/// The ACL view of a client.
pub fn identity(client: &Client) -> Identity<'_> {
    Identity { client_id: &client.client_id, username: client.username.as_deref(), ip: client.ip }
}

impl fmt::Debug for AclFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AclFile").field("rules", &self.rules.read().len()).finish()
    }
}

impl Backend for AclFile {
    fn name(&self) -> &'static str {
        "acl_file"
    }

    fn authorize<'a>(
        &'a self,
        client: &'a Client,
        action: Action,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Authz, BackendError>> {
        let rules = self.rules();
        let decision = match tern_acl::evaluate(&rules, &identity(client), action, topic) {
            Some(Permission::Allow) => Authz::Allow,
            Some(Permission::Deny) => Authz::Deny,
            None => Authz::Ignore,
        };
        Box::pin(std::future::ready(Ok(decision)))
    }

    fn acl_for(&self, client: &Client) -> Option<Vec<tern_acl::ClientRule>> {
        Some(tern_acl::for_client(&self.rules(), &identity(client)))
    }

    fn authorizes(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use tern_acl::{RuleAction, Who};

    use super::*;

    fn client(username: &str) -> Client {
        Client { client_id: "c1".into(), username: Some(username.into()), ..Client::default() }
    }

    #[tokio::test]
    async fn evaluates_and_reloads() {
        let backend = AclFile::new(vec![Rule {
            permit: Permission::Allow,
            action: RuleAction::Publish,
            topics: vec!["t/${clientid}".into()],
            who: Who::Username("u".into()),
        }]);
        assert!(backend.authorizes());
        let u = client("u");
        assert_eq!(backend.authorize(&u, Action::Publish, "t/c1").await.unwrap(), Authz::Allow);
        assert_eq!(backend.authorize(&u, Action::Publish, "t/c2").await.unwrap(), Authz::Ignore);
        assert_eq!(
            backend.authorize(&client("v"), Action::Publish, "t/c1").await.unwrap(),
            Authz::Ignore
        );
        let rules = backend.acl_for(&u).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].topics[0].filter, "t/c1");
        assert_eq!(backend.acl_for(&client("v")), Some(vec![]));

        backend.reload(vec![Rule {
            permit: Permission::Deny,
            action: RuleAction::PubSub,
            topics: vec![],
            who: Who::Any,
        }]);
        assert_eq!(backend.authorize(&u, Action::Publish, "t/c1").await.unwrap(), Authz::Deny);
        assert!(format!("{backend:?}").contains("rules: 1"));
    }
}
