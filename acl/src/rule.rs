//! Server-side rules: NanoMQ's ACL rules with their who-selectors and raw topics (`@` prefixes and
//! `${username}` / `${clientid}` placeholders kept), evaluated for any client ([`evaluate`]) or
//! narrowed to one client's [`ClientRule`]s ([`for_client`]).

use std::borrow::Cow;

use crate::AclError;
use crate::policy::{self, Action, ClientRule, Permission, RuleAction, RuleTopic};
use crate::topic;
use crate::who::{Identity, Who};

/// One ACL rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Allow or deny.
    pub permit: Permission,
    /// Which actions it covers.
    pub action: RuleAction,
    /// Topics as written: NanoMQ's `@` prefix for exact topics, `${username}` and `${clientid}`
    /// placeholders. Empty = every topic.
    pub topics: Vec<String>,
    /// Whom it applies to.
    pub who: Who,
}

impl Rule {
    /// Converts a rule parsed from a NanoMQ ACL file.
    ///
    /// Every who-selector written on the rule applies (they are AND-ed): a rule with `username`
    /// and `clientid` needs both, where NanoMQ silently used only the first one. Topics are
    /// checked: a malformed filter (`a/#/b`, `a+`) or one starting with `$share/` or `$queue/`
    /// (Tern checks a shared subscription against its real filter, so such a rule would never
    /// apply) is an error.
    pub fn from_config(rule: &tern_config::AclRule) -> Result<Self, AclError> {
        let who = match rule.who.as_slice() {
            [] => Who::Any,
            [one] => Who::from_config(one)?,
            all => Who::And(all.iter().map(Who::from_config).collect::<Result<_, _>>()?),
        };
        for raw in &rule.topics {
            validate_topic(raw)?;
        }
        Ok(Rule {
            permit: rule.permit.into(),
            action: rule.action.into(),
            topics: rule.topics.clone(),
            who,
        })
    }

    /// Converts a whole parsed ACL; an error names the rule (counted from 0).
    pub fn from_config_all(rules: &[tern_config::AclRule]) -> Result<Vec<Self>, AclError> {
        rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                Rule::from_config(rule).map_err(|e| AclError::InRule { index, source: Box::new(e) })
            })
            .collect()
    }

    /// This rule's decision for client `who` doing `action` on `topic`, or `None` when it does
    /// not apply (other action, other client, no topic hit).
    pub fn decides(&self, who: &Identity<'_>, action: Action, topic: &str) -> Option<Permission> {
        if !self.action.covers(action) || !self.who.matches(who) {
            return None;
        }
        if self.topics.is_empty() {
            return Some(self.permit);
        }
        let requested = policy::requested(action, topic);
        let hit = self.topics.iter().any(|raw| {
            let (exact, pattern) = split_exact(raw);
            match substitute(pattern, who) {
                Some(filter) => policy::hits(&filter, exact, self.permit, action, requested),
                // A refused substitution matches nothing in an allow, everything in a deny.
                None => self.permit == Permission::Deny,
            }
        });
        hit.then_some(self.permit)
    }

    /// This rule as it applies to client `who`, or `None` when it does not (other client, or an
    /// allow whose every topic had a refused substitution).
    pub fn for_client(&self, who: &Identity<'_>) -> Option<ClientRule> {
        if !self.who.matches(who) {
            return None;
        }
        let mut topics = Vec::with_capacity(self.topics.len());
        for raw in &self.topics {
            let (exact, pattern) = split_exact(raw);
            match substitute(pattern, who) {
                Some(filter) => topics.push(RuleTopic { filter: filter.into_owned(), exact }),
                None if self.permit == Permission::Deny => {
                    // Matches every topic for its action: an empty topic list says exactly that.
                    topics.clear();
                    break;
                }
                None => {}
            }
        }
        if topics.is_empty() && !self.topics.is_empty() && self.permit == Permission::Allow {
            return None;
        }
        Some(ClientRule { permit: self.permit, action: self.action, topics })
    }
}

/// The rules of `rules` that apply to client `who`, in order, placeholders substituted.
pub fn for_client(rules: &[Rule], who: &Identity<'_>) -> Vec<ClientRule> {
    rules.iter().filter_map(|rule| rule.for_client(who)).collect()
}

/// The decision of the first rule of `rules` that applies to `who` doing `action` on `topic`;
/// `None` when no rule applies (the caller's `no_match` decides).
pub fn evaluate(
    rules: &[Rule],
    who: &Identity<'_>,
    action: Action,
    topic: &str,
) -> Option<Permission> {
    rules.iter().find_map(|rule| rule.decides(who, action, topic))
}

/// NanoMQ's `@` prefix: `(exact, rest)`.
fn split_exact(raw: &str) -> (bool, &str) {
    match raw.strip_prefix('@') {
        Some(rest) => (true, rest),
        None => (false, raw),
    }
}

/// Checks a rule topic as written (placeholders count as literal text).
fn validate_topic(raw: &str) -> Result<(), AclError> {
    let invalid =
        |reason: &str| AclError::InvalidTopic { topic: raw.to_owned(), reason: reason.to_owned() };
    let (exact, pattern) = split_exact(raw);
    if pattern.is_empty() {
        return Err(invalid("a topic must not be empty"));
    }
    if pattern.starts_with("$share/") || pattern.starts_with("$queue/") {
        return Err(invalid(
            "shared subscriptions are checked against their real filter: write the filter \
             without the $share/<group>/ or $queue/ prefix",
        ));
    }
    if !exact {
        topic::validate_filter(pattern).map_err(invalid)?;
    }
    Ok(())
}

/// Substitutes `${username}` and `${clientid}` in `pattern`, or `None` when a substitution is
/// refused: the value is missing or empty, contains `+`, `#` or `/` (it would widen the filter),
/// or starts with `$` at the start of the filter (it would reach `$SYS`-like topics).
fn substitute<'a>(pattern: &'a str, who: &Identity<'_>) -> Option<Cow<'a, str>> {
    if !pattern.contains("${") {
        return Some(Cow::Borrowed(pattern));
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(pos) = rest.find("${") {
        out.push_str(&rest[..pos]);
        let at = &rest[pos..];
        let (value, tail) = if let Some(tail) = at.strip_prefix("${username}") {
            (who.username, tail)
        } else if let Some(tail) = at.strip_prefix("${clientid}") {
            (Some(who.client_id), tail)
        } else {
            out.push_str("${");
            rest = &at[2..];
            continue;
        };
        let at_start = out.is_empty();
        let value = value.filter(|v| !refused(v, at_start))?;
        out.push_str(value);
        rest = tail;
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

/// A placeholder value that must not be substituted: missing in effect (empty), widening the
/// filter (`+`, `#`, `/`), or turning the filter into a `$` filter.
fn refused(value: &str, at_start: bool) -> bool {
    value.is_empty() || value.contains(['+', '#', '/']) || (at_start && value.starts_with('$'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(client_id: &'a str, username: Option<&'a str>) -> Identity<'a> {
        Identity { client_id, username, ip: None }
    }

    #[test]
    fn placeholders() {
        let who = id("c1", Some("u1"));
        assert_eq!(substitute("t/${username}/${clientid}/#", &who).as_deref(), Some("t/u1/c1/#"));
        assert_eq!(substitute("${x}/${username}", &who).as_deref(), Some("${x}/u1"));
        assert_eq!(substitute("plain/#", &who).as_deref(), Some("plain/#"));
        assert_eq!(substitute("t/${username}", &id("c1", None)), None);
        assert_eq!(substitute("t/${username}", &id("c1", Some(""))), None);
        for bad in ["a+", "#", "a/b", "+"] {
            assert_eq!(substitute("t/${clientid}", &id(bad, None)), None, "{bad}");
        }
        assert_eq!(substitute("${clientid}/#", &id("$SYS", None)), None);
        assert_eq!(substitute("t/${clientid}", &id("$x", None)).as_deref(), Some("t/$x"));
    }

    #[test]
    fn topic_validation() {
        for good in ["#", "@#", "a/${username}/#", "@a/+", "$SYS/#"] {
            assert_eq!(validate_topic(good), Ok(()), "{good}");
        }
        for bad in ["", "@", "a/#/b", "a+", "$share/g/t", "@$share/g/t", "$queue/t"] {
            assert!(validate_topic(bad).is_err(), "{bad}");
        }
    }
}
