//! The topic-filter algebra behind ACL decisions: does a filter match a topic name (PUBLISH), does
//! one filter cover every topic of another (an allowed SUBSCRIBE), can two filters match a common
//! topic (a denied SUBSCRIBE).
//!
//! All three follow MQTT's matching rules (MQTT 3.1.1 section 4.7, MQTT 5 section 4.7): `+` matches
//! exactly one level, `#` (last level only) matches its parent level and everything below, and a
//! filter whose first level is a wildcard matches no topic whose name starts with `$`. They work on
//! the strings directly, level by level, without allocating: the broker calls them on every
//! publish.

/// A topic filter's first level is a wildcard (`+` or `#`), so it matches no `$` topic.
fn wildcard_first(filter: &str) -> bool {
    matches!(filter.split('/').next(), Some("+" | "#"))
}

/// Whether the filter `filter` matches the topic name `topic`.
///
/// `+` matches one level, `#` the parent level and any number of levels below; a filter starting
/// with a wildcard does not match a topic starting with `$` (`#` does not match `$SYS/uptime`).
pub fn matches(filter: &str, topic: &str) -> bool {
    if wildcard_first(filter) && topic.starts_with('$') {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) => {
                if fl != tl {
                    return false;
                }
            }
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

/// Whether every topic that `inner` matches is also matched by `outer` (filter containment).
///
/// This is what an allowed subscription needs: `a/+` contains `a/b` and `a/+` but not `a/#` (which
/// also matches `a` and `a/b/c`); `#` contains every filter that cannot match a `$` topic;
/// `$SYS/#` is contained only by filters starting with the literal level `$SYS`.
pub fn contains(outer: &str, inner: &str) -> bool {
    // `inner` starting with a literal `$` level matches only `$` topics; a wildcard-first `outer`
    // matches none of them.
    if wildcard_first(outer) && inner.starts_with('$') {
        return false;
    }
    // `+/#` matches every topic `#` does: a topic has at least one level, so `#`'s "parent"
    // case never happens at the first level.
    let outer = if outer == "+/#" { "#" } else { outer };
    let mut o = outer.split('/');
    let mut i = inner.split('/');
    loop {
        match (o.next(), i.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(il)) => {
                // `+` covers one level whatever it is, but not `#` (zero or several levels).
                if il == "#" {
                    return false;
                }
            }
            // A literal covers only the same literal, not a wildcard.
            (Some(ol), Some(il)) => {
                if ol != il {
                    return false;
                }
            }
            (None, None) => return true,
            // `inner` stops earlier (and `outer` does not continue with `#`), or goes deeper.
            (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

/// Whether some topic name is matched by both `a` and `b` (filter intersection).
///
/// This is what a denied subscription needs: a deny on `secret/#` stops a subscription to `#`,
/// `+/x` or `secret`, because each of them could receive a message the deny is about.
pub fn intersects(a: &str, b: &str) -> bool {
    // A common topic starting with `$` needs a literal `$` first level in both filters.
    if (wildcard_first(a) && b.starts_with('$')) || (wildcard_first(b) && a.starts_with('$')) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) => {
                if p != q {
                    return false;
                }
            }
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

/// The real filter of a shared subscription: `$share/<group>/<filter>` and `$queue/<filter>` give
/// `<filter>`; anything else (including a malformed `$share/` without a group or filter) is
/// returned unchanged.
pub fn strip_share(filter: &str) -> &str {
    if let Some(rest) = filter.strip_prefix("$share/") {
        if let Some((group, real)) = rest.split_once('/')
            && !group.is_empty()
            && !real.is_empty()
        {
            return real;
        }
        return filter;
    }
    match filter.strip_prefix("$queue/") {
        Some(real) if !real.is_empty() => real,
        _ => filter,
    }
}

/// Checks that `filter` is a valid MQTT topic filter: not empty, no NUL, `+` and `#` alone in
/// their level, `#` only as the last level.
pub fn validate_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("a topic filter must not be empty");
    }
    if filter.contains('\0') {
        return Err("a topic filter must not contain NUL");
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" if levels.peek().is_some() => return Err("`#` must be the last level"),
            "#" | "+" => {}
            _ if level.contains(['+', '#']) => {
                return Err("`+` and `#` must stand alone in their level");
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_matching() {
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/c"));
        assert!(matches("a/+", "a/b"));
        assert!(!matches("a/+", "a"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(matches("+/+", "/x"));
        assert!(matches("a/+/c", "a//c"));
        // `$` topics are not matched by wildcard-first filters (NanoMQ's `#` matched them).
        assert!(!matches("#", "$SYS/brokers"));
        assert!(!matches("+/brokers", "$SYS/brokers"));
        assert!(matches("$SYS/#", "$SYS/brokers"));
        assert!(matches("$SYS/+", "$SYS/brokers"));
    }

    #[test]
    fn containment() {
        assert!(contains("a/+", "a/b"));
        assert!(contains("a/+", "a/+"));
        // NanoMQ's `a/+` granted `a/#`.
        assert!(!contains("a/+", "a/#"));
        assert!(contains("a/#", "a"));
        assert!(contains("a/#", "a/#"));
        assert!(contains("a/#", "a/+/c"));
        assert!(!contains("a/b", "a/+"));
        assert!(contains("#", "x/#"));
        assert!(contains("#", "#"));
        assert!(contains("#", "+/x"));
        assert!(!contains("#", "$SYS/#"));
        assert!(!contains("+/#", "$SYS/x"));
        assert!(contains("$SYS/#", "$SYS/#"));
        assert!(!contains("a/+/+", "a/+"));
        assert!(!contains("a/+", "a/b/c"));
        assert!(contains("+/#", "#"));
        assert!(!contains("a/+/#", "a/#"));
    }

    #[test]
    fn intersection() {
        assert!(intersects("secret/#", "#"));
        assert!(intersects("secret/#", "+/x"));
        assert!(intersects("secret/#", "secret"));
        assert!(!intersects("secret/#", "public/#"));
        assert!(!intersects("#", "$SYS/#"));
        assert!(intersects("$SYS/#", "$SYS/+"));
        assert!(!intersects("a/+", "a"));
        assert!(intersects("a/+", "+/b"));
        assert!(!intersects("a/+/c", "a/b"));
    }

    #[test]
    fn shares_are_stripped() {
        assert_eq!(strip_share("$share/g/t/x"), "t/x");
        assert_eq!(strip_share("$share/g/#"), "#");
        assert_eq!(strip_share("$queue/t/#"), "t/#");
        assert_eq!(strip_share("$share/g"), "$share/g");
        assert_eq!(strip_share("$share//t"), "$share//t");
        assert_eq!(strip_share("$share/g/"), "$share/g/");
        assert_eq!(strip_share("t/x"), "t/x");
        assert_eq!(strip_share("$SYS/#"), "$SYS/#");
    }

    #[test]
    fn filter_validation() {
        for good in ["#", "+", "a/+/b", "a/#", "/", "a//b", "$SYS/#", "${username}/#"] {
            assert_eq!(validate_filter(good), Ok(()), "{good}");
        }
        for bad in ["", "a/#/b", "a+", "a/b#", "#/a", "a\0b"] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
    }
}
