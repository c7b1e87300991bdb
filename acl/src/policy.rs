//! The client side of the ACL: the rules that concern one client, placeholders already
//! substituted ([`ClientRule`]), and the decision over them ([`ClientPolicy`]). This is what a
//! broker preloads at CONNECT and evaluates on every PUBLISH and SUBSCRIBE without a call, so it is
//! kept small: no who-selectors, no placeholders, no allocation per check.

use crate::topic;

/// What a client wants to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Publish to a topic name.
    Publish,
    /// Subscribe to a topic filter (possibly `$share/<group>/…`).
    Subscribe,
}

impl Action {
    /// `publish` or `subscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }
}

/// A rule's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
}

impl From<tern_config::Permit> for Permission {
    fn from(permit: tern_config::Permit) -> Self {
        match permit {
            tern_config::Permit::Allow => Permission::Allow,
            tern_config::Permit::Deny => Permission::Deny,
        }
    }
}

/// Which actions a rule covers (NanoMQ's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RuleAction {
    /// `publish`.
    Publish,
    /// `subscribe`.
    Subscribe,
    /// `pubsub` (the default): both.
    #[default]
    PubSub,
}

impl RuleAction {
    /// Whether a rule with this action applies to `action`.
    pub fn covers(self, action: Action) -> bool {
        matches!(
            (self, action),
            (RuleAction::PubSub, _)
                | (RuleAction::Publish, Action::Publish)
                | (RuleAction::Subscribe, Action::Subscribe)
        )
    }
}

impl From<tern_config::AclAction> for RuleAction {
    fn from(action: tern_config::AclAction) -> Self {
        match action {
            tern_config::AclAction::Publish => RuleAction::Publish,
            tern_config::AclAction::Subscribe => RuleAction::Subscribe,
            tern_config::AclAction::PubSub => RuleAction::PubSub,
        }
    }
}

/// One topic of a client rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleTopic {
    /// The topic filter (placeholders substituted), without NanoMQ's `@` prefix.
    pub filter: String,
    /// NanoMQ's `@` prefix: compare the requested topic or (share-stripped) filter literally
    /// instead of as a filter.
    pub exact: bool,
}

impl RuleTopic {
    /// A filter compared by MQTT matching rules.
    pub fn filter(filter: impl Into<String>) -> Self {
        Self { filter: filter.into(), exact: false }
    }

    /// A topic compared literally (NanoMQ's `@`).
    pub fn exact(topic: impl Into<String>) -> Self {
        Self { filter: topic.into(), exact: true }
    }

    /// Whether this topic makes a rule with `permit` apply to `action` on `requested` (a topic
    /// name for PUBLISH; for SUBSCRIBE, the filter with any `$share/<group>/` already stripped).
    pub(crate) fn hits(&self, permit: Permission, action: Action, requested: &str) -> bool {
        hits(&self.filter, self.exact, permit, action, requested)
    }
}

/// The topic test of one rule topic (already substituted) against a request.
pub(crate) fn hits(
    filter: &str,
    exact: bool,
    permit: Permission,
    action: Action,
    requested: &str,
) -> bool {
    if exact {
        return filter == requested;
    }
    match (action, permit) {
        (Action::Publish, _) => topic::matches(filter, requested),
        // An allow must cover every topic the subscription can receive...
        (Action::Subscribe, Permission::Allow) => topic::contains(filter, requested),
        // ...and a deny stops it as soon as it could receive one denied topic.
        (Action::Subscribe, Permission::Deny) => topic::intersects(filter, requested),
    }
}

/// The topic a request is checked with: a SUBSCRIBE's `$share/<group>/` or `$queue/` prefix is
/// removed.
pub(crate) fn requested(action: Action, topic: &str) -> &str {
    match action {
        Action::Publish => topic,
        Action::Subscribe => topic::strip_share(topic),
    }
}

/// An ACL rule as it applies to one client: who-selector already matched, placeholders already
/// substituted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientRule {
    /// Allow or deny.
    pub permit: Permission,
    /// Which actions it covers.
    pub action: RuleAction,
    /// The topics it is about; empty = every topic (including `$` topics).
    pub topics: Vec<RuleTopic>,
}

impl ClientRule {
    /// This rule's decision for `action` on `topic`, or `None` when it does not apply.
    pub fn decides(&self, action: Action, topic: &str) -> Option<Permission> {
        if !self.action.covers(action) {
            return None;
        }
        if self.topics.is_empty() {
            return Some(self.permit);
        }
        let requested = requested(action, topic);
        self.topics.iter().any(|t| t.hits(self.permit, action, requested)).then_some(self.permit)
    }
}

/// The whole ACL of one client: its rules in order and the decision when none applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientPolicy {
    /// The rules, first match wins.
    pub rules: Vec<ClientRule>,
    /// The decision when no rule applies (NanoMQ's `no_match`).
    pub no_match: Permission,
}

impl ClientPolicy {
    /// The decision for `action` on `topic`: the first rule that applies, else `no_match`.
    pub fn check(&self, action: Action, topic: &str) -> Permission {
        self.rules.iter().find_map(|r| r.decides(action, topic)).unwrap_or(self.no_match)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(permit: Permission, action: RuleAction, topics: &[&str]) -> ClientRule {
        ClientRule {
            permit,
            action,
            topics: topics
                .iter()
                .map(|t| match t.strip_prefix('@') {
                    Some(exact) => RuleTopic::exact(exact),
                    None => RuleTopic::filter(*t),
                })
                .collect(),
        }
    }

    #[test]
    fn first_match_wins_then_no_match() {
        let policy = ClientPolicy {
            rules: vec![
                rule(Permission::Deny, RuleAction::PubSub, &["secret/#"]),
                rule(Permission::Allow, RuleAction::Publish, &["a/+"]),
                rule(Permission::Allow, RuleAction::Subscribe, &["#"]),
            ],
            no_match: Permission::Deny,
        };
        assert_eq!(policy.check(Action::Publish, "a/b"), Permission::Allow);
        assert_eq!(policy.check(Action::Publish, "a/b/c"), Permission::Deny);
        assert_eq!(policy.check(Action::Publish, "secret/x"), Permission::Deny);
        assert_eq!(policy.check(Action::Subscribe, "x/y"), Permission::Allow);
        assert_eq!(policy.check(Action::Subscribe, "secret/x"), Permission::Deny);
        // `#` could receive secret/..., so the deny applies first (fail closed).
        assert_eq!(policy.check(Action::Subscribe, "#"), Permission::Deny);
        assert_eq!(policy.check(Action::Subscribe, "$share/g/secret/x"), Permission::Deny);
        assert_eq!(policy.check(Action::Subscribe, "$share/g/public/x"), Permission::Allow);
        assert_eq!(policy.check(Action::Subscribe, "$SYS/#"), Permission::Deny);
    }

    #[test]
    fn empty_topics_match_everything() {
        let r = rule(Permission::Deny, RuleAction::Subscribe, &[]);
        assert_eq!(r.decides(Action::Subscribe, "$SYS/#"), Some(Permission::Deny));
        assert_eq!(r.decides(Action::Publish, "x"), None);
    }

    #[test]
    fn exact_topics() {
        let r = rule(Permission::Deny, RuleAction::Subscribe, &["@#"]);
        assert_eq!(r.decides(Action::Subscribe, "#"), Some(Permission::Deny));
        assert_eq!(r.decides(Action::Subscribe, "$share/g/#"), Some(Permission::Deny));
        assert_eq!(r.decides(Action::Subscribe, "a/#"), None);
        let r = rule(Permission::Allow, RuleAction::PubSub, &["@a/+"]);
        assert_eq!(r.decides(Action::Subscribe, "a/+"), Some(Permission::Allow));
        assert_eq!(r.decides(Action::Subscribe, "a/b"), None);
        assert_eq!(r.decides(Action::Publish, "a/b"), None);
    }
}
