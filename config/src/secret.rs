//! A string that must never reach a log line or `Debug` output.

use std::fmt;

/// A secret value (a password, a token in an HTTP header, a TLS key password).
///
/// `Debug` and `Display` print `<redacted>`; the value is only reachable through
/// [`Secret::expose`], so every place that uses it is easy to find.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call it only where the value is used (compared, sent), never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compare with `candidate` in time that depends only on the lengths, not on where the
    /// bytes first differ (for checking client passwords against local secrets).
    pub fn constant_time_eq(&self, candidate: &[u8]) -> bool {
        let ours = self.0.as_bytes();
        let mut diff = ours.len() ^ candidate.len();
        for (i, &b) in candidate.iter().enumerate() {
            // Compare against our own bytes cyclically so the loop always runs over the
            // candidate's length, whatever our length is.
            let o = if ours.is_empty() { 0 } else { ours[i % ours.len()] };
            diff |= usize::from(o ^ b);
        }
        diff == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn constant_time_eq() {
        let s = Secret::new("public");
        assert!(s.constant_time_eq(b"public"));
        assert!(!s.constant_time_eq(b"publiC"));
        assert!(!s.constant_time_eq(b"publicpublic"));
        assert!(!s.constant_time_eq(b"pub"));
        assert!(!s.constant_time_eq(b""));
        assert!(Secret::new("").constant_time_eq(b""));
        assert!(!Secret::new("").constant_time_eq(b"x"));
    }
}
