//! NanoMQ's ACL semantics as Tern keeps or fixes them: the seed's ACL file end to end, then one
//! test per sharp edge listed in the NanoMQ notes (section 1.8).

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tern_acl::{
    Action, ClientPolicy, Identity, Permission, Rule, RuleAction, RuleTopic, Who, evaluate,
    for_client,
};
use tern_config::{AclAction, AclRule, Permit, Who as ConfWho};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nanomq")
}

fn user<'a>(username: &'a str, client_id: &'a str) -> Identity<'a> {
    Identity { client_id, username: Some(username), ip: None }
}

fn conf(permit: Permit, action: AclAction, topics: &[&str], who: Vec<ConfWho>) -> AclRule {
    AclRule { permit, action, topics: topics.iter().map(|t| (*t).to_owned()).collect(), who }
}

fn rules(conf: &[AclRule]) -> Vec<Rule> {
    Rule::from_config_all(conf).unwrap()
}

/// The decision with `no_match`, as auth-service makes it: server side, and client side through
/// a preloaded policy — both must agree.
fn decide(rules: &[Rule], who: &Identity<'_>, action: Action, topic: &str) -> Permission {
    decide_with(rules, who, action, topic, Permission::Allow)
}

fn decide_with(
    rules: &[Rule],
    who: &Identity<'_>,
    action: Action,
    topic: &str,
    no_match: Permission,
) -> Permission {
    let server = evaluate(rules, who, action, topic).unwrap_or(no_match);
    let policy = ClientPolicy { rules: for_client(rules, who), no_match };
    assert_eq!(policy.check(action, topic), server, "client/server disagree on {action:?} {topic}");
    server
}

#[test]
fn seed_acl_file_matrix() {
    let parsed = tern_config::parse_acl_file(&fixtures().join("nanomq_acl.conf")).unwrap();
    let rules = rules(&parsed);
    assert_eq!(rules.len(), 3);
    let admin = user("admin", "admin-1");
    let client = user("client", "client-1");
    let other = user("other", "other-1");
    let anonymous = Identity { client_id: "anon", username: None, ip: None };
    for action in [Action::Publish, Action::Subscribe] {
        for topic in ["client/only-one", "a/b", "client/other"] {
            assert_eq!(decide(&rules, &admin, action, topic), Permission::Allow, "{topic}");
        }
        assert_eq!(decide(&rules, &client, action, "client/only-one"), Permission::Allow);
        for topic in ["client/other", "client/only-one/x", "a"] {
            assert_eq!(decide(&rules, &client, action, topic), Permission::Deny, "{topic}");
        }
        for who in [&other, &anonymous] {
            assert_eq!(decide(&rules, who, action, "client/only-one"), Permission::Deny);
            assert_eq!(decide(&rules, who, action, "x"), Permission::Deny);
        }
    }
    assert_eq!(decide(&rules, &admin, Action::Subscribe, "#"), Permission::Allow);
    assert_eq!(decide(&rules, &client, Action::Subscribe, "#"), Permission::Deny);
    assert_eq!(decide(&rules, &client, Action::Subscribe, "client/+"), Permission::Deny);
    assert_eq!(
        decide(&rules, &client, Action::Subscribe, "$share/g/client/only-one"),
        Permission::Allow
    );
    // `#` no longer reaches `$SYS`: the admin's `#` rule does not apply, the final deny does.
    assert_eq!(decide(&rules, &admin, Action::Subscribe, "$SYS/#"), Permission::Deny);

    // The client-side policy of `client`: its own rule, then the catch-all deny.
    assert_eq!(
        for_client(&rules, &client),
        vec![
            tern_acl::ClientRule {
                permit: Permission::Allow,
                action: RuleAction::PubSub,
                topics: vec![RuleTopic::filter("client/only-one")],
            },
            tern_acl::ClientRule {
                permit: Permission::Deny,
                action: RuleAction::PubSub,
                topics: vec![]
            },
        ]
    );
}

/// NanoMQ used only the first selector; Tern requires all of them.
#[test]
fn every_selector_of_a_rule_applies() {
    let rules = rules(&[conf(
        Permit::Allow,
        AclAction::PubSub,
        &["t"],
        vec![ConfWho::Username("u1".into()), ConfWho::ClientId("c1".into())],
    )]);
    assert_eq!(evaluate(&rules, &user("u1", "c1"), Action::Publish, "t"), Some(Permission::Allow));
    assert_eq!(evaluate(&rules, &user("u1", "c2"), Action::Publish, "t"), None);
    assert_eq!(evaluate(&rules, &user("u2", "c1"), Action::Publish, "t"), None);
}

#[test]
fn hash_selector_means_anyone() {
    let parsed = conf(Permit::Deny, AclAction::Subscribe, &["x"], vec![ConfWho::Any]);
    let rule = Rule::from_config(&parsed).unwrap();
    assert_eq!(rule.who, Who::Any);
    let anonymous = Identity { client_id: "c", username: None, ip: None };
    assert_eq!(rule.decides(&anonymous, Action::Subscribe, "x"), Some(Permission::Deny));
}

/// NanoMQ parsed `ipaddrs` but never matched it.
#[test]
fn ipaddrs_and_cidr_work() {
    let rules = rules(&[
        conf(
            Permit::Allow,
            AclAction::PubSub,
            &["lan/#"],
            vec![ConfWho::IpAddrs(vec![
                "10.0.0.0/8".into(),
                "192.168.1.7".into(),
                "fd00::/8".into(),
            ])],
        ),
        conf(
            Permit::Allow,
            AclAction::PubSub,
            &["lo/#"],
            vec![ConfWho::IpAddr("127.0.0.1".into())],
        ),
    ]);
    let at = |ip: &str| Identity {
        client_id: "c",
        username: None,
        ip: Some(ip.parse::<IpAddr>().unwrap()),
    };
    for ip in ["10.1.2.3", "192.168.1.7", "fd00::5", "::ffff:10.9.9.9"] {
        assert_eq!(
            evaluate(&rules, &at(ip), Action::Publish, "lan/x"),
            Some(Permission::Allow),
            "{ip}"
        );
    }
    for ip in ["11.0.0.1", "192.168.1.8", "fe80::1"] {
        assert_eq!(evaluate(&rules, &at(ip), Action::Publish, "lan/x"), None, "{ip}");
    }
    assert_eq!(
        evaluate(&rules, &at("127.0.0.1"), Action::Publish, "lo/x"),
        Some(Permission::Allow)
    );
    let unknown = Identity { client_id: "c", username: None, ip: None };
    assert_eq!(evaluate(&rules, &unknown, Action::Publish, "lan/x"), None);
    let bad = conf(Permit::Allow, AclAction::PubSub, &[], vec![ConfWho::IpAddr("10.0.0".into())]);
    assert!(Rule::from_config(&bad).is_err());
}

#[test]
fn and_or_selectors() {
    let rules = rules(&[
        conf(
            Permit::Allow,
            AclAction::PubSub,
            &["t/${clientid}/#"],
            vec![ConfWho::And(vec![
                ConfWho::Username("u1".into()),
                ConfWho::ClientId("c1".into()),
            ])],
        ),
        conf(
            Permit::Deny,
            AclAction::PubSub,
            &[],
            vec![ConfWho::Or(vec![
                ConfWho::Username("bad".into()),
                ConfWho::ClientId("evil".into()),
            ])],
        ),
    ]);
    assert_eq!(
        evaluate(&rules, &user("u1", "c1"), Action::Publish, "t/c1/x"),
        Some(Permission::Allow)
    );
    assert_eq!(evaluate(&rules, &user("u1", "c2"), Action::Publish, "t/c2/x"), None);
    assert_eq!(evaluate(&rules, &user("bad", "c"), Action::Publish, "x"), Some(Permission::Deny));
    assert_eq!(evaluate(&rules, &user("ok", "evil"), Action::Publish, "x"), Some(Permission::Deny));
}

/// NanoMQ: a rule `a/+` granted a subscription to `a/#`.
#[test]
fn plus_does_not_grant_hash() {
    let rules = rules(&[conf(Permit::Allow, AclAction::Subscribe, &["a/+"], vec![])]);
    let who = user("u", "c");
    assert_eq!(
        decide_with(&rules, &who, Action::Subscribe, "a/b", Permission::Deny),
        Permission::Allow
    );
    assert_eq!(
        decide_with(&rules, &who, Action::Subscribe, "a/+", Permission::Deny),
        Permission::Allow
    );
    assert_eq!(
        decide_with(&rules, &who, Action::Subscribe, "a/#", Permission::Deny),
        Permission::Deny
    );
    assert_eq!(
        decide_with(&rules, &who, Action::Subscribe, "#", Permission::Deny),
        Permission::Deny
    );
}

/// NanoMQ: `#` matched `$SYS/...`.
#[test]
fn hash_does_not_reach_sys() {
    let rules = rules(&[
        conf(Permit::Allow, AclAction::PubSub, &["#"], vec![]),
        conf(
            Permit::Allow,
            AclAction::Subscribe,
            &["$SYS/#"],
            vec![ConfWho::Username("dashboard".into())],
        ),
    ]);
    let who = user("u", "c");
    let deny = Permission::Deny;
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "$SYS/#", deny), Permission::Deny);
    assert_eq!(
        decide_with(&rules, &who, Action::Subscribe, "$SYS/brokers", deny),
        Permission::Deny
    );
    assert_eq!(decide_with(&rules, &who, Action::Publish, "$SYS/brokers", deny), Permission::Deny);
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "#", deny), Permission::Allow);
    let dash = user("dashboard", "d");
    assert_eq!(decide_with(&rules, &dash, Action::Subscribe, "$SYS/#", deny), Permission::Allow);
    // A deny on `#` no longer kills `$SYS` subscriptions (why NanoMQ needed `@#`).
    let rules = self::rules(&[
        conf(Permit::Deny, AclAction::Subscribe, &["#"], vec![]),
        conf(Permit::Allow, AclAction::Subscribe, &["$SYS/#"], vec![]),
    ]);
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "$SYS/#", deny), Permission::Allow);
    assert_eq!(
        decide_with(&rules, &who, Action::Subscribe, "a/b", Permission::Allow),
        Permission::Deny
    );
}

/// NanoMQ checked `$share/g/t/x` as written, so a deny on `t/#` missed it.
#[test]
fn shared_subscriptions_checked_against_real_filter() {
    let rules = rules(&[
        conf(Permit::Deny, AclAction::Subscribe, &["t/#"], vec![]),
        conf(Permit::Allow, AclAction::Subscribe, &["u/+"], vec![]),
    ]);
    let who = user("u", "c");
    let allow = Permission::Allow;
    let deny = Permission::Deny;
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "$share/g/t/x", allow), deny);
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "$queue/t/x", allow), deny);
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "$share/g/u/x", deny), allow);
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "$share/g/u/#", deny), deny);
    // Rules written with the prefix are rejected: they could never apply.
    let bad = conf(Permit::Deny, AclAction::Subscribe, &["$share/g/t/#"], vec![]);
    assert!(Rule::from_config(&bad).is_err());
}

/// A deny stops every subscription that could receive a denied topic; with `deny secret/#`
/// before `allow #`, `#` itself is refused (fail closed).
#[test]
fn deny_intersects_allow_contains() {
    let rules = rules(&[
        conf(Permit::Deny, AclAction::Subscribe, &["secret/#"], vec![]),
        conf(Permit::Allow, AclAction::Subscribe, &["#"], vec![]),
    ]);
    let who = user("u", "c");
    let deny = Permission::Deny;
    for filter in ["#", "+/x", "secret", "secret/+/y", "+"] {
        assert_eq!(decide_with(&rules, &who, Action::Subscribe, filter, deny), deny, "{filter}");
    }
    for filter in ["public/#", "a/+", "x/y"] {
        assert_eq!(
            decide_with(&rules, &who, Action::Subscribe, filter, deny),
            Permission::Allow,
            "{filter}"
        );
    }
}

/// `@` compares literally: `@#` is a subscription to exactly `#` (NanoMQ #1900).
#[test]
fn exact_topics() {
    let rules = rules(&[
        conf(Permit::Deny, AclAction::Subscribe, &["@#"], vec![]),
        conf(Permit::Allow, AclAction::PubSub, &["@dev/${clientid}/+"], vec![]),
    ]);
    let who = user("u", "c1");
    let deny = Permission::Deny;
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "#", Permission::Allow), deny);
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "$share/g/#", Permission::Allow), deny);
    assert_eq!(
        decide_with(&rules, &who, Action::Subscribe, "a/#", Permission::Allow),
        Permission::Allow
    );
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "dev/c1/+", deny), Permission::Allow);
    assert_eq!(decide_with(&rules, &who, Action::Subscribe, "dev/c1/x", deny), deny);
    assert_eq!(decide_with(&rules, &who, Action::Publish, "dev/c1/x", deny), deny);
}

/// NanoMQ #2344: a client id or username carrying `+`, `#` or `/` must not widen a rule.
#[test]
fn placeholder_injection_fails_closed() {
    let rules = rules(&[
        conf(Permit::Deny, AclAction::Publish, &["block/${username}/#"], vec![]),
        conf(Permit::Allow, AclAction::PubSub, &["dev/${clientid}/#", "all/${username}"], vec![]),
    ]);
    let deny = Permission::Deny;
    let good = user("u1", "c1");
    assert_eq!(decide_with(&rules, &good, Action::Publish, "dev/c1/x", deny), Permission::Allow);
    assert_eq!(decide_with(&rules, &good, Action::Publish, "all/u1", deny), Permission::Allow);
    assert_eq!(decide_with(&rules, &good, Action::Publish, "block/u1/x", Permission::Allow), deny);
    // A wildcard client id: the allow's first topic matches nothing, the second still works.
    let evil = user("u1", "#");
    assert_eq!(decide_with(&rules, &evil, Action::Subscribe, "dev/#", deny), deny);
    assert_eq!(decide_with(&rules, &evil, Action::Publish, "dev/x/y", deny), deny);
    assert_eq!(decide_with(&rules, &evil, Action::Publish, "all/u1", deny), Permission::Allow);
    // A username with `/`: the deny matches every publish, subscriptions are not concerned.
    let slash = user("a/b", "c2");
    assert_eq!(decide_with(&rules, &slash, Action::Publish, "dev/c2/x", Permission::Allow), deny);
    assert_eq!(decide_with(&rules, &slash, Action::Subscribe, "dev/c2/x", deny), Permission::Allow);
    // No username at all: same as a refused substitution.
    let anonymous = Identity { client_id: "c3", username: None, ip: None };
    assert_eq!(decide_with(&rules, &anonymous, Action::Publish, "x", Permission::Allow), deny);
    // A client id starting with `$` cannot reach `$` topics through a leading placeholder.
    let rules = self::rules(&[conf(Permit::Allow, AclAction::PubSub, &["${clientid}/#"], vec![])]);
    let sys = user("u", "$SYS");
    assert_eq!(decide_with(&rules, &sys, Action::Subscribe, "$SYS/#", deny), deny);
    assert!(for_client(&rules, &sys).is_empty());
}

#[test]
fn first_match_wins_and_actions() {
    let rules = rules(&[
        conf(Permit::Allow, AclAction::Publish, &["t/#"], vec![]),
        conf(Permit::Deny, AclAction::PubSub, &["t/#"], vec![]),
    ]);
    let who = user("u", "c");
    assert_eq!(evaluate(&rules, &who, Action::Publish, "t/1"), Some(Permission::Allow));
    assert_eq!(evaluate(&rules, &who, Action::Subscribe, "t/1"), Some(Permission::Deny));
    assert_eq!(evaluate(&rules, &who, Action::Subscribe, "x"), None);
}

#[test]
fn malformed_rules_are_errors() {
    for topic in ["a/#/b", "a+", ""] {
        let bad = conf(Permit::Allow, AclAction::PubSub, &[topic], vec![]);
        assert!(Rule::from_config(&bad).is_err(), "{topic:?}");
    }
    let list = [
        conf(Permit::Allow, AclAction::PubSub, &["ok"], vec![]),
        conf(Permit::Allow, AclAction::PubSub, &["a/#/b"], vec![]),
    ];
    let err = Rule::from_config_all(&list).unwrap_err();
    assert!(err.to_string().starts_with("ACL rule 1"), "{err}");
}
