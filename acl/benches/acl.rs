//! ACL decision costs: the broker's local check of a preloaded policy (10 and 100 rules, the
//! deciding rule last), and auth-service's evaluation over 1,000 rules.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tern_acl::{
    Action, ClientPolicy, ClientRule, Identity, Permission, Rule, RuleAction, RuleTopic, Who,
    evaluate,
};

fn policy(n: usize) -> ClientPolicy {
    let mut rules: Vec<ClientRule> = (0..n - 1)
        .map(|i| ClientRule {
            permit: if i % 2 == 0 { Permission::Deny } else { Permission::Allow },
            action: RuleAction::PubSub,
            topics: vec![
                RuleTopic::filter(format!("site/{i}/+/telemetry")),
                RuleTopic::exact(format!("cmd/{i}")),
            ],
        })
        .collect();
    rules.push(ClientRule {
        permit: Permission::Allow,
        action: RuleAction::PubSub,
        topics: vec![RuleTopic::filter("devices/dev-1/#")],
    });
    ClientPolicy { rules, no_match: Permission::Deny }
}

fn server_rules(n: usize) -> Vec<Rule> {
    let mut rules: Vec<Rule> = (0..n - 1)
        .map(|i| Rule {
            permit: Permission::Allow,
            action: RuleAction::PubSub,
            topics: vec![format!("site/{i}/${{clientid}}/#")],
            who: Who::Username(format!("user-{i}")),
        })
        .collect();
    rules.push(Rule {
        permit: Permission::Allow,
        action: RuleAction::PubSub,
        topics: vec!["devices/${clientid}/#".into()],
        who: Who::Any,
    });
    rules
}

fn bench(c: &mut Criterion) {
    for n in [10, 100] {
        let policy = policy(n);
        c.bench_function(&format!("ClientPolicy::check publish, {n} rules"), |b| {
            b.iter(|| policy.check(black_box(Action::Publish), black_box("devices/dev-1/temp")))
        });
        c.bench_function(&format!("ClientPolicy::check subscribe, {n} rules"), |b| {
            b.iter(|| policy.check(black_box(Action::Subscribe), black_box("devices/dev-1/+")))
        });
    }
    let rules = server_rules(1000);
    let who = Identity { client_id: "dev-1", username: Some("someone"), ip: None };
    c.bench_function("evaluate publish, 1000 rules", |b| {
        b.iter(|| {
            evaluate(
                black_box(&rules),
                black_box(&who),
                Action::Publish,
                black_box("devices/dev-1/temp"),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
