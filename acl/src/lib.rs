//! Tern's ACL: NanoMQ's rule model (`nanomq_acl.conf`) with its sharp edges fixed.
//!
//! Two halves:
//! - **server side** ([`Rule`], [`evaluate`], [`for_client`]): rules as written, with
//!   who-selectors (`username`, `clientid`, `ipaddr`, `ipaddrs`, `and`, `or`) and raw topics
//!   (`@` exact topics, `${username}` / `${clientid}` placeholders). auth-service evaluates these.
//! - **client side** ([`ClientRule`], [`ClientPolicy`]): the rules that concern one client,
//!   placeholders substituted, plus `no_match`. A broker preloads these at CONNECT and decides
//!   PUBLISH and SUBSCRIBE locally; [`ClientPolicy::check`] allocates nothing.
//!
//! Evaluation is NanoMQ's: rules are scanned in order, a rule applies when its action covers the
//! request, its who-selector matches the client and one of its topics hits the request (no
//! `topics` = every topic); the first rule that applies decides; when none does, `no_match` does.
//!
//! ```
//! use tern_acl::{Action, Identity, Permission, Rule, RuleAction, Who, evaluate};
//!
//! let rules = vec![
//!     Rule { permit: Permission::Deny, action: RuleAction::PubSub, topics: vec!["secret/#".into()], who: Who::Any },
//!     Rule { permit: Permission::Allow, action: RuleAction::PubSub, topics: vec!["devices/${clientid}/#".into()], who: Who::Any },
//! ];
//! let who = Identity { client_id: "d1", username: None, ip: None };
//! assert_eq!(evaluate(&rules, &who, Action::Publish, "devices/d1/temp"), Some(Permission::Allow));
//! assert_eq!(evaluate(&rules, &who, Action::Subscribe, "devices/d2/#"), None);
//! assert_eq!(evaluate(&rules, &who, Action::Subscribe, "$share/g/secret/x"), Some(Permission::Deny));
//! ```
//!
//! # Differences from NanoMQ
//!
//! Deliberate fixes (NanoMQ 0.25 behaviour in parentheses):
//!
//! 1. **Every who-selector of a rule applies** (AND): a rule with `username` and `clientid`
//!    needs both. (NanoMQ uses only the first selector in the order `ipaddr` > `ipaddrs` >
//!    `username` > `clientid` > `and` / `or`, silently ignoring the others.)
//! 2. **`ipaddrs` works**: any of the listed addresses. (Parsed but never matched.)
//! 3. **`ipaddr` takes CIDR networks** (`10.0.0.0/8`, `fd00::/8`) and IPv6 addresses;
//!    IPv4-mapped IPv6 addresses compare as IPv4. (Exact dotted-IPv4 string comparison; IPv6
//!    clients have an empty address.)
//! 4. **Wildcards do not match `$` topics**: a rule `#` or `+/…` matches no topic starting with
//!    `$` (MQTT 4.7.2), so `$SYS/#` must be granted or denied by a rule starting with `$SYS`.
//!    A rule with no `topics` still means every topic, `$` ones included. (`#` matched `$SYS/…`.)
//! 5. **SUBSCRIBE is checked as a filter, not as a topic name.** An allow rule applies only when
//!    it covers every topic the requested filter can match (containment): `a/+` grants `a/b` and
//!    `a/+` but not `a/#`. A deny rule applies as soon as the requested filter could match one
//!    of its topics (intersection): a deny on `secret/#` stops `#`, `+/x` and `secret`. (NanoMQ
//!    matched the requested filter as if it were a topic name, so `a/+` granted `a/#`.)
//!    Consequence, intended and fail-closed: with `deny secret/#` then `allow #`, a subscription
//!    to `#` is denied, because it would receive `secret/…` messages; subscribe to narrower
//!    filters instead.
//! 6. **Shared subscriptions are checked against their real filter**: `$share/<group>/` and
//!    `$queue/` are stripped before the check, so a deny on `t/#` catches `$share/g/t/x`. A rule
//!    topic starting with `$share/` or `$queue/` is therefore an error when the rules are loaded
//!    (it could never apply). (NanoMQ checked the prefixed string.)
//! 7. **Refused placeholder substitutions fail closed per rule**: when `${username}` /
//!    `${clientid}` is missing, empty, contains `+`, `#` or `/`, or starts with `$` at the start
//!    of the filter, that topic matches nothing in an allow rule and every topic (for the rule's
//!    action) in a deny rule; evaluation goes on with the next rules. (NanoMQ denied the whole
//!    check; it did not refuse empty values or a leading `$`.)
//! 8. **Malformed rule topics are errors** at load (`a/#/b`, `a+`, an empty topic), instead of
//!    filters that match unpredictably.
//!
//! Kept from NanoMQ: `@` topics compare literally (`@#` is only a subscription to exactly `#`);
//! a `"#"` selector value means anyone; placeholders may be combined with `@`.

mod policy;
mod rule;
pub mod topic;
mod who;

pub use policy::{Action, ClientPolicy, ClientRule, Permission, RuleAction, RuleTopic};
pub use rule::{Rule, evaluate, for_client};
pub use who::{Identity, IpMatch, Who};

/// Why ACL rules could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// An `ipaddr` / `ipaddrs` value is not an address or CIDR network.
    #[error("invalid IP address or network {value:?}: {reason}")]
    InvalidIp {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A rule topic is not a valid topic filter.
    #[error("invalid rule topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic as written.
        topic: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An error in one rule of a list.
    #[error("ACL rule {index} (counting from 0): {source}")]
    InRule {
        /// The rule's position in the list.
        index: usize,
        /// The error.
        #[source]
        source: Box<AclError>,
    },
}
