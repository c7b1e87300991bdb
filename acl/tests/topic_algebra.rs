//! Containment, intersection and matching checked against a brute-force oracle: every topic of a
//! small universe is tried. Filters have at most 3 levels over the literals `a`, `b`, `$x` and
//! the wildcards; topics have up to 4 levels over the same literals plus a fresh one (`c`), which
//! is enough for any counterexample to show up.

use proptest::prelude::*;
use tern_acl::topic::{contains, intersects, matches, validate_filter};

const LITERALS: &[&str] = &["a", "b", "$x", "", "c"];

static UNIVERSE: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(build_universe);

fn universe() -> &'static [String] {
    &UNIVERSE
}

fn build_universe() -> Vec<String> {
    let mut out: Vec<String> = LITERALS.iter().map(|l| (*l).to_owned()).collect();
    let mut last = out.clone();
    for _ in 1..4 {
        let mut next = Vec::new();
        for t in &last {
            for l in LITERALS {
                next.push(format!("{t}/{l}"));
            }
        }
        out.extend(next.iter().cloned());
        last = next;
    }
    // An empty topic name is not valid MQTT.
    out.retain(|t| !t.is_empty());
    out
}

fn filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("a"), Just("b"), Just("$x"), Just("+")];
    (prop::collection::vec(level, 0..=3), any::<bool>()).prop_filter_map(
        "empty filter",
        |(levels, hash)| {
            let mut levels: Vec<&str> = levels;
            if hash {
                levels.push("#");
            }
            (!levels.is_empty()).then(|| levels.join("/"))
        },
    )
}

/// The MQTT definition, written independently: level lists, `$` rule.
fn oracle_matches(filter: &str, topic: &str) -> bool {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    if matches!(f[0], "+" | "#") && t[0].starts_with('$') {
        return false;
    }
    for (i, level) in f.iter().enumerate() {
        if *level == "#" {
            return t.len() >= i;
        }
        match t.get(i) {
            None => return false,
            Some(tl) if *level != "+" && level != tl => return false,
            Some(_) => {}
        }
    }
    f.len() == t.len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_filters_are_valid(f in filter()) {
        prop_assert_eq!(validate_filter(&f), Ok(()));
    }

    #[test]
    fn matching_agrees_with_oracle(f in filter()) {
        for t in universe() {
            prop_assert_eq!(matches(&f, t), oracle_matches(&f, t), "filter {} topic {}", f, t);
        }
    }

    #[test]
    fn containment_agrees_with_oracle(outer in filter(), inner in filter()) {
        let expected = universe()
            .iter()
            .filter(|t| oracle_matches(&inner, t))
            .all(|t| oracle_matches(&outer, t));
        prop_assert_eq!(contains(&outer, &inner), expected, "outer {} inner {}", outer, inner);
    }

    #[test]
    fn intersection_agrees_with_oracle(a in filter(), b in filter()) {
        let expected = universe().iter().any(|t| oracle_matches(&a, t) && oracle_matches(&b, t));
        prop_assert_eq!(intersects(&a, &b), expected, "a {} b {}", a, b);
        prop_assert_eq!(intersects(&b, &a), expected);
    }

    #[test]
    fn a_filter_contains_and_intersects_itself(f in filter()) {
        prop_assert!(contains(&f, &f));
        prop_assert!(intersects(&f, &f));
    }
}

/// Every pair of filters of up to two levels (plus an optional `#`), exhaustively.
#[test]
fn exhaustive_small_filters() {
    let levels = ["a", "b", "$x", "+"];
    let mut filters = Vec::new();
    let mut stems: Vec<Vec<&str>> = vec![vec![]];
    for _ in 0..2 {
        let mut next = Vec::new();
        for stem in &stems {
            for l in levels {
                let mut s = stem.clone();
                s.push(l);
                next.push(s);
            }
        }
        stems.extend(next);
    }
    for stem in &stems {
        if !stem.is_empty() {
            filters.push(stem.join("/"));
        }
        let mut with_hash = stem.clone();
        with_hash.push("#");
        filters.push(with_hash.join("/"));
    }
    for a in &filters {
        let in_a: Vec<&String> = universe().iter().filter(|t| oracle_matches(a, t)).collect();
        for b in &filters {
            let in_b = |t: &&String| oracle_matches(b, t);
            assert_eq!(contains(b, a), in_a.iter().all(in_b), "contains({b}, {a})");
            assert_eq!(intersects(a, b), in_a.iter().any(in_b), "intersects({a}, {b})");
        }
    }
}
