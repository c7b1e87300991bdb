//! Topic Name and Topic Filter rules (MQTT 5.0 §4.7, §4.8.2; 3.1.1 §4.7): the decoder applies them
//! to every topic it reads, and the broker can call the same functions on topics from elsewhere
//! (admin API, bridges, configuration).

/// Prefix of a shared subscription filter: `$share/{ShareName}/{filter}`.
pub const SHARED_PREFIX: &str = "$share/";

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TopicError {
    /// Zero length (names and filters must have at least one character).
    #[error("topic is empty")]
    Empty,
    /// Longer than a UTF-8 string field can be (65535 bytes).
    #[error("topic is longer than 65535 bytes")]
    TooLong,
    /// Contains U+0000.
    #[error("topic contains U+0000")]
    NullCharacter,
    /// A Topic Name contains `+` or `#`.
    #[error("topic name contains a wildcard")]
    WildcardInName,
    /// `#` is not alone in its level, or not in the last level.
    #[error("'#' must occupy a whole level and be the last level")]
    MultiLevelWildcard,
    /// `+` does not occupy a whole level.
    #[error("'+' must occupy a whole level")]
    SingleLevelWildcard,
    /// A `$share/` filter whose ShareName is empty or contains `+` or `#`.
    #[error("invalid shared subscription name")]
    InvalidShareName,
    /// A `$share/{ShareName}` filter with no `/{filter}` after it, or an empty one.
    #[error("shared subscription without a topic filter")]
    EmptySharedFilter,
}

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > usize::from(u16::MAX) {
        return Err(TopicError::TooLong);
    }
    if topic.as_bytes().contains(&0) {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// Checks a Topic Name (PUBLISH, Will Topic, Response Topic): non-empty, at most 65535 bytes, no
/// U+0000 and no wildcard characters.
///
/// MQTT 5.0 allows an empty name in a PUBLISH that carries a Topic Alias; the decoder handles that
/// case before calling this.
pub fn validate_topic_name(topic: &str) -> Result<(), TopicError> {
    check_common(topic)?;
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks a Topic Filter (SUBSCRIBE, UNSUBSCRIBE): non-empty, at most 65535 bytes, no U+0000,
/// `+` only as a whole level, `#` only as the whole last level, and for `$share/` filters a
/// non-empty ShareName without `+`/`#` followed by a non-empty valid filter.
///
/// Shared subscriptions are recognised in every protocol version, as most brokers do.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let plain = match filter.strip_prefix(SHARED_PREFIX) {
        Some(rest) => {
            let (name, inner) = rest.split_once('/').ok_or(TopicError::EmptySharedFilter)?;
            if name.is_empty() || name.contains(['+', '#']) {
                return Err(TopicError::InvalidShareName);
            }
            if inner.is_empty() {
                return Err(TopicError::EmptySharedFilter);
            }
            inner
        }
        None => filter,
    };
    let mut levels = plain.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::SingleLevelWildcard);
        }
    }
    Ok(())
}

/// Splits a shared subscription filter `$share/{ShareName}/{filter}` into its ShareName and
/// filter. Returns `None` for a filter that is not shared, or not a well-formed shared filter
/// (which [`validate_topic_filter`] rejects; decoded filters have passed it).
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let (name, inner) = filter.strip_prefix(SHARED_PREFIX)?.split_once('/')?;
    if name.is_empty() || name.contains(['+', '#']) || inner.is_empty() {
        return None;
    }
    Some((name, inner))
}

/// Whether a Topic Filter contains a wildcard (`+` or `#`), after any `$share/{ShareName}/`.
pub fn has_wildcard(filter: &str) -> bool {
    let plain = parse_shared(filter).map_or(filter, |(_, inner)| inner);
    plain.contains(['+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "/", "a/b", "$SYS/x", " ", "a//b", "sport/tennis/player1"] {
            assert_eq!(validate_topic_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("#"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(validate_topic_name(&"x".repeat(65_536)), Err(TopicError::TooLong));
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+",
            "/+",
            "a/+/b",
            "sport/tennis/#",
            "$share/g/a/#",
            "$share/g/#",
            "$share",
            "$shared/x",
            "a//b",
        ] {
            assert_eq!(validate_topic_filter(ok), Ok(()), "{ok}");
        }
        use TopicError::*;
        for (bad, err) in [
            ("", Empty),
            ("a/#/b", MultiLevelWildcard),
            ("a#", MultiLevelWildcard),
            ("#/", MultiLevelWildcard),
            ("a/b#", MultiLevelWildcard),
            ("a+", SingleLevelWildcard),
            ("a/+b/c", SingleLevelWildcard),
            ("$share/", EmptySharedFilter),
            ("$share/g", EmptySharedFilter),
            ("$share/g/", EmptySharedFilter),
            ("$share//a", InvalidShareName),
            ("$share/g+/a", InvalidShareName),
            ("$share/#/a", InvalidShareName),
            ("$share/g/a#", MultiLevelWildcard),
        ] {
            assert_eq!(validate_topic_filter(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn shared_filters() {
        assert_eq!(parse_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(parse_shared("$share/g//"), Some(("g", "/")));
        assert_eq!(parse_shared("a/b"), None);
        assert_eq!(parse_shared("$share/g"), None);
        assert_eq!(parse_shared("$share//a"), None);
        assert!(has_wildcard("$share/g/a/+"));
        assert!(!has_wildcard("$share/g/a"));
        assert!(has_wildcard("#"));
    }
}
