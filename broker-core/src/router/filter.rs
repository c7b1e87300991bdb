//! Subscription filters as the router stores them: the plain filter, and for shared subscriptions
//! the group (`$share/{group}/{filter}`, or NanoMQ's `$queue/{filter}` shorthand, which is one
//! group shared by every `$queue/` subscriber of the filter).

/// The group name used for `$queue/` subscriptions.
pub const QUEUE_GROUP: &str = "$queue";

/// A subscription filter split into its shared group (if any) and the topic filter it matches with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionFilter {
    /// The shared-subscription group, `None` for a normal subscription.
    pub group: Option<Box<str>>,
    /// The topic filter used for matching (without the `$share/{group}/` prefix).
    pub filter: Box<str>,
}

impl SubscriptionFilter {
    /// Splits a filter as the client sent it. The codec has already validated the syntax
    /// (wildcard placement, a non-empty group without wildcards); this only splits.
    pub fn parse(raw: &str) -> Self {
        if let Some((group, filter)) =
            raw.strip_prefix("$share/").and_then(|rest| rest.split_once('/'))
        {
            return Self { group: Some(group.into()), filter: filter.into() };
        }
        if let Some(filter) = raw.strip_prefix("$queue/") {
            return Self { group: Some(QUEUE_GROUP.into()), filter: filter.into() };
        }
        Self { group: None, filter: raw.into() }
    }

    /// Whether this is a shared subscription.
    pub fn is_shared(&self) -> bool {
        self.group.is_some()
    }
}

/// Whether `filter` (a valid topic filter) matches `topic` (a valid topic name), following MQTT
/// 4.7: `+` matches one level, `#` the parent level and everything below it, and a filter starting
/// with a wildcard does not match a topic starting with `$`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shared_and_queue_prefixes() {
        assert_eq!(
            SubscriptionFilter::parse("$share/g1/a/+"),
            SubscriptionFilter { group: Some("g1".into()), filter: "a/+".into() }
        );
        assert_eq!(
            SubscriptionFilter::parse("$queue/a/#"),
            SubscriptionFilter { group: Some(QUEUE_GROUP.into()), filter: "a/#".into() }
        );
        assert_eq!(
            SubscriptionFilter::parse("$SYS/#"),
            SubscriptionFilter { group: None, filter: "$SYS/#".into() }
        );
    }

    #[test]
    fn matching_follows_the_spec() {
        let cases = [
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
            ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
            ("sport/#", "sport", true),
            ("#", "anything/at/all", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("#", "$SYS/uptime", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("$SYS/#", "$SYS/monitor/Clients", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a//b", "a//b", true),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
        }
    }
}
