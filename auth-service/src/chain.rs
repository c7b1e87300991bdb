//! The ordered chain of backends and the policy around it (NanoMQ's `allow_anonymous`,
//! `no_match`, `deny_action`, and the decision cache lifetime brokers are told).
//!
//! Authentication: the first backend that allows or denies decides; when every backend says "not
//! mine", `allow_anonymous` decides. A backend that cannot answer denies with 0x88 (server
//! unavailable): the chain never turns a failure into an allow.
//!
//! Authorization: when no backend authorizes at all (no ACL configured), everything is allowed,
//! as in NanoMQ. Otherwise the first backend whose rules decide wins, and `no_match` decides when
//! none does; a failing backend denies.

use std::{sync::Arc, time::Duration};

use tern_acl::{Action, ClientPolicy, Permission};

use crate::backend::{Authn, Authz, Backend, Client};

/// The MQTT 5 CONNACK reason code for bad credentials.
const BAD_CREDENTIALS: u8 = 0x86;
/// The MQTT 5 CONNACK reason code when a backend could not answer.
const SERVER_UNAVAILABLE: u8 = 0x88;

/// What to do with a denied publish or subscribe (NanoMQ's `auth.deny_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenyAction {
    /// Refuse the operation, keep the connection.
    #[default]
    Ignore,
    /// Disconnect the client.
    Disconnect,
}

/// The chain's policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Clients no backend claims may connect.
    pub allow_anonymous: bool,
    /// The decision when no ACL rule matches.
    pub no_match: Permission,
    /// What brokers do with a denied request.
    pub deny_action: DenyAction,
    /// How long brokers may cache decisions.
    pub cache_ttl: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            no_match: Permission::Allow,
            deny_action: DenyAction::Ignore,
            cache_ttl: Duration::from_secs(60),
        }
    }
}

/// The answer to a CONNECT.
#[derive(Debug, Clone)]
pub struct ConnectDecision {
    /// Whether the client may connect.
    pub allowed: bool,
    /// MQTT 5 CONNACK reason code (0 when allowed).
    pub reason_code: u8,
    /// Why, for logs (no secrets).
    pub reason: String,
    /// The client skips ACL checks.
    pub superuser: bool,
    /// The client's complete ACL, when every authorizing backend can state it.
    pub acl: Option<ClientPolicy>,
    /// Which backend decided ("anonymous" when none did).
    pub decided_by: &'static str,
}

/// The answer for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDecision {
    /// Allowed or denied.
    pub permission: Permission,
    /// Which backend decided ("no_match" / "no_acl" when none did).
    pub decided_by: &'static str,
}

/// Backends in order, and the policy.
#[derive(Debug)]
pub struct Chain {
    backends: Vec<Arc<dyn Backend>>,
    policy: Policy,
}

impl Chain {
    /// A chain asking `backends` in order.
    pub fn new(backends: Vec<Arc<dyn Backend>>, policy: Policy) -> Self {
        Self { backends, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How long brokers may cache decisions: the policy's TTL, or zero while a backend cannot
    /// report its changes (see [`Backend::cacheable`]).
    pub fn cache_ttl(&self) -> Duration {
        if self.backends.iter().all(|b| b.cacheable()) {
            self.policy.cache_ttl
        } else {
            Duration::ZERO
        }
    }

    /// The backends, in order.
    pub fn backends(&self) -> &[Arc<dyn Backend>] {
        &self.backends
    }

    /// Decides whether `client` may connect.
    pub async fn authenticate(&self, client: &Client) -> ConnectDecision {
        for backend in &self.backends {
            match backend.authenticate(client).await {
                Ok(Authn::Ignore) => continue,
                Ok(Authn::Allow { superuser }) => {
                    return self.allowed(client, superuser, backend.name());
                }
                Ok(Authn::Deny { reason_code, reason }) => {
                    return denied(reason_code, reason, backend.name());
                }
                Err(error) => {
                    tracing::warn!(client_id = %client.client_id, %error, "authentication backend failed");
                    return denied(SERVER_UNAVAILABLE, error.to_string(), backend.name());
                }
            }
        }
        if self.policy.allow_anonymous {
            self.allowed(client, false, "anonymous")
        } else {
            let reason = if client.username.is_some() {
                "unknown user"
            } else {
                "anonymous clients are not allowed"
            };
            denied(BAD_CREDENTIALS, reason.to_owned(), "anonymous")
        }
    }

    fn allowed(
        &self,
        client: &Client,
        superuser: bool,
        decided_by: &'static str,
    ) -> ConnectDecision {
        ConnectDecision {
            allowed: true,
            reason_code: 0,
            reason: String::new(),
            superuser,
            acl: self.acl_for(client),
            decided_by,
        }
    }

    /// The client's complete ACL, when every authorizing backend can state it: their rules in
    /// chain order, then `no_match`. With no authorizing backend: allow everything.
    pub fn acl_for(&self, client: &Client) -> Option<ClientPolicy> {
        let mut rules = Vec::new();
        let mut any = false;
        for backend in self.backends.iter().filter(|b| b.authorizes()) {
            any = true;
            rules.extend(backend.acl_for(client)?);
        }
        let no_match = if any { self.policy.no_match } else { Permission::Allow };
        Some(ClientPolicy { rules, no_match })
    }

    /// Decides whether `client` may do `action` on `topic`.
    pub async fn authorize(&self, client: &Client, action: Action, topic: &str) -> TopicDecision {
        let mut any = false;
        for backend in self.backends.iter().filter(|b| b.authorizes()) {
            any = true;
            match backend.authorize(client, action, topic).await {
                Ok(Authz::Ignore) => continue,
                Ok(Authz::Allow) => {
                    return TopicDecision {
                        permission: Permission::Allow,
                        decided_by: backend.name(),
                    };
                }
                Ok(Authz::Deny) => {
                    return TopicDecision {
                        permission: Permission::Deny,
                        decided_by: backend.name(),
                    };
                }
                Err(error) => {
                    tracing::warn!(client_id = %client.client_id, %error, "authorization backend failed");
                    return TopicDecision {
                        permission: Permission::Deny,
                        decided_by: backend.name(),
                    };
                }
            }
        }
        if any {
            TopicDecision { permission: self.policy.no_match, decided_by: "no_match" }
        } else {
            TopicDecision { permission: Permission::Allow, decided_by: "no_acl" }
        }
    }
}

fn denied(reason_code: u8, reason: String, decided_by: &'static str) -> ConnectDecision {
    ConnectDecision { allowed: false, reason_code, reason, superuser: false, acl: None, decided_by }
}
