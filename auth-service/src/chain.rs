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
    /// The deciding backend could not answer (the decision is the fail-closed deny).
    pub failed: bool,
}

/// The answer for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDecision {
    /// Allowed or denied.
    pub permission: Permission,
    /// Which backend decided ("no_match" / "no_acl" when none did).
    pub decided_by: &'static str,
    /// The deciding backend could not answer (the decision is the fail-closed deny).
    pub failed: bool,
}

/// What one backend answered during a chain call (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It allowed.
    Allow,
    /// It denied.
    Deny,
    /// Not its client or topic: the next backend was asked.
    Ignore,
    /// It could not answer.
    Error,
}

impl Answer {
    /// Every answer, in the order of [`Answer::index`].
    pub const ALL: [Answer; 4] = [Answer::Allow, Answer::Deny, Answer::Ignore, Answer::Error];

    /// The answer's name in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Ignore => "ignore",
            Self::Error => "error",
        }
    }

    /// The answer's position in [`Answer::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Told every backend answer of a chain call: the backend's name and what it answered.
pub type Observe<'a> = &'a (dyn Fn(&'static str, Answer) + Sync);

/// An [`Observe`] that ignores everything.
fn unobserved(_: &'static str, _: Answer) {}

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
        self.authenticate_observed(client, &unobserved).await
    }

    /// [`Chain::authenticate`], telling `observe` what each backend asked answered.
    pub async fn authenticate_observed(
        &self,
        client: &Client,
        observe: Observe<'_>,
    ) -> ConnectDecision {
        for backend in &self.backends {
            let name = backend.name();
            match backend.authenticate(client).await {
                Ok(Authn::Ignore) => observe(name, Answer::Ignore),
                Ok(Authn::Allow { superuser }) => {
                    observe(name, Answer::Allow);
                    return self.allowed(client, superuser, name);
                }
                Ok(Authn::Deny { reason_code, reason }) => {
                    observe(name, Answer::Deny);
                    return denied(reason_code, reason, name);
                }
                Err(error) => {
                    observe(name, Answer::Error);
                    tracing::warn!(client_id = %client.client_id, %error, "authentication backend failed");
                    return ConnectDecision {
                        failed: true,
                        ..denied(SERVER_UNAVAILABLE, error.to_string(), name)
                    };
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
            failed: false,
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
        self.authorize_observed(client, action, topic, &unobserved).await
    }

    /// [`Chain::authorize`], telling `observe` what each backend asked answered.
    pub async fn authorize_observed(
        &self,
        client: &Client,
        action: Action,
        topic: &str,
        observe: Observe<'_>,
    ) -> TopicDecision {
        let mut any = false;
        for backend in self.backends.iter().filter(|b| b.authorizes()) {
            any = true;
            let decided_by = backend.name();
            let (permission, failed) = match backend.authorize(client, action, topic).await {
                Ok(Authz::Ignore) => {
                    observe(decided_by, Answer::Ignore);
                    continue;
                }
                Ok(Authz::Allow) => (Permission::Allow, false),
                Ok(Authz::Deny) => (Permission::Deny, false),
                Err(error) => {
                    tracing::warn!(client_id = %client.client_id, %error, "authorization backend failed");
                    (Permission::Deny, true)
                }
            };
            observe(
                decided_by,
                match (permission, failed) {
                    (_, true) => Answer::Error,
                    (Permission::Allow, false) => Answer::Allow,
                    (Permission::Deny, false) => Answer::Deny,
                },
            );
            return TopicDecision { permission, decided_by, failed };
        }
        if any {
            TopicDecision {
                permission: self.policy.no_match,
                decided_by: "no_match",
                failed: false,
            }
        } else {
            TopicDecision { permission: Permission::Allow, decided_by: "no_acl", failed: false }
        }
    }
}

fn denied(reason_code: u8, reason: String, decided_by: &'static str) -> ConnectDecision {
    ConnectDecision {
        allowed: false,
        reason_code,
        reason,
        superuser: false,
        acl: None,
        decided_by,
        failed: false,
    }
}
