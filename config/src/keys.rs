//! Key bookkeeping: the NanoMQ settings Tern accepts but ignores, and "did you mean" hints for
//! unknown keys.

use std::collections::BTreeSet;

/// NanoMQ settings (or whole blocks) that NanoMQ understands and Tern deliberately ignores.
/// They produce one warning listing them, not one per key. Keep `config/README.md` in step.
pub(crate) const IGNORED: &[&str] = &[
    // Process model of NanoMQ (threads, daemon, IPC sockets): Tern has its own runtime.
    "system",
    // Resend messages in batches: Tern's session layer decides resend pacing.
    "mqtt.batch_resend",
    // Unix-domain-socket logging.
    "log.uds_addr",
    // SQLite persistence, bridges, rule engine, preset sessions, MQTT Stream, plugins.
    "sqlite",
    "bridges",
    "rules",
    "preset",
    "exchange_client",
    "parquet",
    "plugin",
    // The gateway tools' own configuration.
    "vsomeip_gateway",
    "dds_gateway",
    "zmq_gateway",
    // JWT signing key of the REST API (NanoMQ only verifies tokens with the public key).
    "http_server.jwt.private",
];

/// The ignored setting `key` falls under, if any.
pub(crate) fn ignored_prefix(key: &str) -> Option<&'static str> {
    IGNORED.iter().copied().find(|prefix| {
        key == *prefix || key.strip_prefix(prefix).is_some_and(|r| r.starts_with('.'))
    })
}

/// The known key closest to `key`, when it is close enough to be an obvious typo.
pub(crate) fn suggest<'k>(key: &str, known: &'k BTreeSet<String>) -> Option<&'k str> {
    closest(key, known.iter().map(String::as_str))
}

/// The candidate closest to `word`, when it is close enough to be an obvious typo.
pub(crate) fn closest<'k>(
    word: &str,
    candidates: impl IntoIterator<Item = &'k str>,
) -> Option<&'k str> {
    let limit = match word.chars().count() {
        0..=4 => 1,
        5..=14 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|candidate| (distance(word, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb { diagonal } else { 1 + diagonal.min(above).min(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `a, b or c`.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_prefixes_match_whole_segments() {
        assert_eq!(ignored_prefix("system.daemon"), Some("system"));
        assert_eq!(ignored_prefix("bridges.mqtt.emqx1.server"), Some("bridges"));
        assert_eq!(ignored_prefix("sqlite"), Some("sqlite"));
        assert_eq!(ignored_prefix("systems.x"), None);
        assert_eq!(ignored_prefix("mqtt.max_packet_size"), None);
    }

    #[test]
    fn suggestions() {
        let known: BTreeSet<String> = ["mqtt.max_packet_size", "mqtt.max_mqueue_len", "log.level"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(suggest("mqtt.max_packet_sise", &known), Some("mqtt.max_packet_size"));
        assert_eq!(suggest("mqt.max_packet_size", &known), Some("mqtt.max_packet_size"));
        assert_eq!(suggest("log.levle", &known), Some("log.level"));
        assert_eq!(suggest("redis.url", &known), None);
    }

    #[test]
    fn distances() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn lists() {
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
        assert_eq!(one_of(&["a"]), "a");
    }
}
