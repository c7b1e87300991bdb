//! Sizes and durations written the NanoMQ way.
//!
//! NanoMQ's C parser treats `KB`, `MB` and `GB` as 1024-based and accepts them in any case; the
//! HOCON specification (and therefore the `hocon` crate's own getters) says `MB` = 10^6 and
//! rejects `KB`. Tern follows NanoMQ, so every size and duration is read as text and converted
//! here rather than through the HOCON library.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A size in bytes, parsed from `B`, `KB`, `MB`, `GB` (1024-based, case-insensitive) or a plain
/// integer (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// 1024 bytes.
    pub const KIB: u64 = 1024;
    /// 1024 × 1024 bytes.
    pub const MIB: u64 = 1024 * 1024;
    /// 1024 × 1024 × 1024 bytes.
    pub const GIB: u64 = 1024 * 1024 * 1024;

    /// `n` bytes.
    pub const fn b(n: u64) -> Self {
        Self(n)
    }

    /// `n` × 1024 bytes (saturating).
    pub const fn kb(n: u64) -> Self {
        Self(n.saturating_mul(Self::KIB))
    }

    /// `n` × 1024² bytes (saturating).
    pub const fn mb(n: u64) -> Self {
        Self(n.saturating_mul(Self::MIB))
    }

    /// `n` × 1024³ bytes (saturating).
    pub const fn gb(n: u64) -> Self {
        Self(n.saturating_mul(Self::GIB))
    }

    /// The size in bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The size in bytes as `usize`, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    /// Parse `"10MB"`, `"1 kb"`, `"512B"` or `"1024"` (bytes).
    ///
    /// The error is the reason only (e.g. `"10XB" is not a size (use B, KB, MB or GB)`); the
    /// caller adds the file, line and key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let not_a_size = || format!("{text:?} is not a size (use B, KB, MB or GB)");
        let trimmed = text.trim();
        let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(digits_end);
        if number.is_empty() {
            return Err(not_a_size());
        }
        let multiplier = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "KB" => Self::KIB,
            "MB" => Self::MIB,
            "GB" => Self::GIB,
            _ => return Err(not_a_size()),
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .map(Self)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ByteSize {
    /// The largest exact unit: `260MB`, `1KB`, `1000B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n != 0 && n.is_multiple_of(Self::GIB) {
            write!(f, "{}GB", n / Self::GIB)
        } else if n != 0 && n.is_multiple_of(Self::MIB) {
            write!(f, "{}MB", n / Self::MIB)
        } else if n != 0 && n.is_multiple_of(Self::KIB) {
            write!(f, "{}KB", n / Self::KIB)
        } else {
            write!(f, "{n}B")
        }
    }
}

/// The unit of a duration written as a plain integer (no unit suffix). It is fixed per key and
/// documented in the configuration reference: seconds for most keys (as NanoMQ), milliseconds
/// for `webhook.cancel_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainUnit {
    /// A plain integer is a number of milliseconds.
    Millis,
    /// A plain integer is a number of seconds.
    Seconds,
}

/// Parse a duration: `500ms`, `10s`, `1m`, `1h` (units case-insensitive, optional space), or a
/// plain integer in `plain` units.
///
/// The error is the reason only; the caller adds the file, line and key.
pub fn parse_duration(text: &str, plain: PlainUnit) -> Result<Duration, String> {
    let not_a_duration = || format!("{text:?} is not a duration (use ms, s, m or h)");
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    if number.is_empty() {
        return Err(not_a_duration());
    }
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is too large"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let millis_per_unit: u64 = match (unit.as_str(), plain) {
        ("", PlainUnit::Millis) | ("ms", _) => 1,
        ("", PlainUnit::Seconds) | ("s", _) => 1_000,
        ("m", _) => 60_000,
        ("h", _) => 3_600_000,
        _ => return Err(not_a_duration()),
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Format a duration the way it would be written in the file: the largest exact unit.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_string()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("1KB"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("1kb"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("260MB"), Ok(ByteSize(272_629_760)));
        assert_eq!(ByteSize::parse("10 MB"), Ok(ByteSize::mb(10)));
        assert_eq!(ByteSize::parse("2GB"), Ok(ByteSize(2 * 1024 * 1024 * 1024)));
        assert_eq!(ByteSize::parse("512B"), Ok(ByteSize(512)));
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
        assert_eq!(ByteSize::parse("0"), Ok(ByteSize(0)));
        for bad in ["10XB", "", "MB", "-1MB", "1.5MB", "1TB", "KB10", "ten"] {
            let err = ByteSize::parse(bad).unwrap_err();
            assert!(err.contains("is not a size (use B, KB, MB or GB)"), "{bad}: {err}");
        }
        assert!(ByteSize::parse("99999999999999999999GB").unwrap_err().contains("too large"));
        assert!(ByteSize::parse("18014398509481984GB").unwrap_err().contains("too large"));
    }

    #[test]
    fn size_display_round_trips() {
        for text in ["260MB", "1KB", "1000B", "3GB", "0B"] {
            assert_eq!(ByteSize::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn durations() {
        let s = PlainUnit::Seconds;
        assert_eq!(parse_duration("10s", s), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m", s), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms", s), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h", s), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2 H", s), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10", s), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5000", PlainUnit::Millis), Ok(Duration::from_millis(5000)));
        for bad in ["10x", "", "s", "-1s", "1.5s", "1d", "ten seconds"] {
            let err = parse_duration(bad, s).unwrap_err();
            assert!(err.contains("is not a duration (use ms, s, m or h)"), "{bad}: {err}");
        }
        assert!(parse_duration("18446744073709551615h", s).unwrap_err().contains("too large"));
    }

    #[test]
    fn duration_display() {
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(7 * 24 * 3600)), "168h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
