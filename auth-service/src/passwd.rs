//! Password hashing for stored credentials: what `tern passwd` writes into a password file or
//! Redis, and what the backends verify a CONNECT password against.
//!
//! A stored password is either NanoMQ's plain text or a PHC-style hash string:
//! `$argon2id$…` (also `$argon2i$` / `$argon2d$`), bcrypt's `$2b$…` (also `$2a$` / `$2y$`), or
//! `$pbkdf2-sha256$…` (also `$pbkdf2-sha512$`). A plain-text password that happens to start with
//! one of these prefixes is read as a hash; pick another password (or hash it).
//!
//! Hash verification costs real CPU time by design (tens of milliseconds at the recommended
//! costs): async callers go through a [`Verifier`], which runs it on a blocking thread with a
//! bound on concurrent checks.

use std::fmt;
use std::str::FromStr;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use sha2::{Digest as _, Sha256};

/// A password hashing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Argon2id (the recommended default): `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
    Argon2id,
    /// bcrypt: `$2b$<cost>$…`.
    Bcrypt,
    /// PBKDF2-HMAC-SHA256: `$pbkdf2-sha256$i=…,l=32$salt$hash`.
    Pbkdf2Sha256,
}

impl Algorithm {
    /// The name `tern passwd --algorithm` takes: `argon2id`, `bcrypt`, `pbkdf2-sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Argon2id => "argon2id",
            Algorithm::Bcrypt => "bcrypt",
            Algorithm::Pbkdf2Sha256 => "pbkdf2-sha256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = PasswdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "argon2id" | "argon2" => Ok(Algorithm::Argon2id),
            "bcrypt" => Ok(Algorithm::Bcrypt),
            "pbkdf2-sha256" | "pbkdf2" => Ok(Algorithm::Pbkdf2Sha256),
            _ => Err(PasswdError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// Work factors of a new hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Argon2id memory in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id passes over the memory.
    pub argon2_iterations: u32,
    /// bcrypt cost (log2 of the rounds), 4 to 31.
    pub bcrypt_cost: u32,
    /// PBKDF2-HMAC-SHA256 iterations.
    pub pbkdf2_rounds: u32,
}

impl Cost {
    /// OWASP's current recommendations: Argon2id 19 MiB × 2 passes, bcrypt 12, PBKDF2-SHA256
    /// 600,000 rounds. Each verification then takes tens of milliseconds of one core.
    pub const RECOMMENDED: Cost = Cost {
        argon2_memory_kib: 19 * 1024,
        argon2_iterations: 2,
        bcrypt_cost: 12,
        pbkdf2_rounds: 600_000,
    };

    /// The smallest costs the algorithms accept: for tests only, never for real passwords.
    pub const MINIMUM: Cost =
        Cost { argon2_memory_kib: 8, argon2_iterations: 1, bcrypt_cost: 4, pbkdf2_rounds: 1000 };
}

impl Default for Cost {
    fn default() -> Self {
        Cost::RECOMMENDED
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// Not one of `argon2id`, `bcrypt`, `pbkdf2-sha256`.
    #[error("unknown password hash algorithm {0:?} (use argon2id, bcrypt or pbkdf2-sha256)")]
    UnknownAlgorithm(String),
    /// The algorithm refused the input or the costs.
    #[error("{algorithm}: {reason}")]
    Hash {
        /// The algorithm.
        algorithm: Algorithm,
        /// Its error.
        reason: String,
    },
}

/// Hashes `password` with `algorithm` at the recommended costs and a random salt, as a PHC /
/// modular-crypt string ready for a password file or Redis.
pub fn hash_password(algorithm: Algorithm, password: &str) -> Result<String, PasswdError> {
    hash_password_with(algorithm, password, Cost::RECOMMENDED)
}

/// Hashes `password` with explicit costs (see [`Cost`]).
pub fn hash_password_with(
    algorithm: Algorithm,
    password: &str,
    cost: Cost,
) -> Result<String, PasswdError> {
    let fail = |reason: String| PasswdError::Hash { algorithm, reason };
    match algorithm {
        Algorithm::Argon2id => {
            let params =
                argon2::Params::new(cost.argon2_memory_kib, cost.argon2_iterations, 1, None)
                    .map_err(|e| fail(e.to_string()))?;
            let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            hasher
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| fail(e.to_string()))
        }
        Algorithm::Bcrypt => {
            // The truncating variant would silently ignore everything after byte 72.
            bcrypt::non_truncating_hash(password, cost.bcrypt_cost).map_err(|e| fail(e.to_string()))
        }
        Algorithm::Pbkdf2Sha256 => {
            let params =
                pbkdf2::Params::new(cost.pbkdf2_rounds).map_err(|e| fail(e.to_string()))?;
            let hasher = pbkdf2::Pbkdf2::new(pbkdf2::Algorithm::Pbkdf2Sha256, params);
            pbkdf2::PasswordHasher::hash_password(&hasher, password.as_bytes())
                .map(|h: pbkdf2::phc::PasswordHash| h.to_string())
                .map_err(|e| fail(e.to_string()))
        }
    }
}

/// The kind of a stored password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// NanoMQ plain text.
    Plain,
    /// `$argon2id$`, `$argon2i$`, `$argon2d$`.
    Argon2,
    /// `$2a$`, `$2b$`, `$2y$` (and `$2x$`).
    Bcrypt,
    /// `$pbkdf2-sha256$`, `$pbkdf2-sha512$`.
    Pbkdf2,
}

impl Stored {
    /// Classifies a stored password by its prefix.
    pub fn of(stored: &str) -> Stored {
        if ["$argon2id$", "$argon2i$", "$argon2d$"].iter().any(|p| stored.starts_with(p)) {
            Stored::Argon2
        } else if ["$2a$", "$2b$", "$2y$", "$2x$"].iter().any(|p| stored.starts_with(p)) {
            Stored::Bcrypt
        } else if ["$pbkdf2-sha256$", "$pbkdf2-sha512$"].iter().any(|p| stored.starts_with(p)) {
            Stored::Pbkdf2
        } else {
            Stored::Plain
        }
    }

    /// Whether verifying costs enough CPU to belong on a blocking thread.
    pub fn is_hashed(self) -> bool {
        self != Stored::Plain
    }
}

/// Whether `password` matches `stored` (plain text, compared in constant time, or a PHC /
/// bcrypt hash). A malformed hash never matches.
pub fn verify(stored: &str, password: &[u8]) -> bool {
    match Stored::of(stored) {
        Stored::Plain => constant_time_eq(stored.as_bytes(), password),
        Stored::Argon2 => Argon2::default().verify_password(password, stored).is_ok(),
        Stored::Bcrypt => bcrypt::verify(password, stored).unwrap_or(false),
        Stored::Pbkdf2 => match pbkdf2::phc::PasswordHash::new(stored) {
            Ok(hash) => pbkdf2::PasswordVerifier::verify_password(
                &pbkdf2::Pbkdf2::default(),
                password,
                &hash,
            )
            .is_ok(),
            Err(_) => false,
        },
    }
}

/// Runs hash verifications on blocking threads, a bounded number at once: each Argon2id check at
/// the recommended cost holds 19 MiB and a core for tens of milliseconds, so a burst of CONNECTs
/// with wrong passwords must queue here rather than exhaust memory or the blocking pool.
#[derive(Debug)]
pub struct Verifier {
    /// One permit per verification in progress.
    slots: tokio::sync::Semaphore,
}

impl Verifier {
    /// At most `limit` verifications at once (at least one).
    pub fn new(limit: usize) -> Self {
        Self { slots: tokio::sync::Semaphore::new(limit.max(1)) }
    }

    /// [`verify`] off the async workers. A stored plain-text password is compared inline.
    pub async fn verify(&self, stored: &str, password: &[u8]) -> bool {
        if !Stored::of(stored).is_hashed() {
            return verify(stored, password);
        }
        // The semaphore is never closed, so acquiring only fails if it were: fail closed.
        let Ok(_permit) = self.slots.acquire().await else { return false };
        let (stored, password) = (stored.to_owned(), password.to_vec());
        tokio::task::spawn_blocking(move || verify(&stored, &password)).await.unwrap_or(false)
    }
}

impl Default for Verifier {
    /// One verification per core.
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }
}

/// EMQX's legacy salted SHA-256: whether `hex(sha256(salt + password))` (or `password + salt`
/// with `salt_suffix`) equals `stored_hex` (case-insensitive), compared in constant time.
pub fn verify_salted_sha256(
    stored_hex: &str,
    salt: &str,
    password: &[u8],
    salt_suffix: bool,
) -> bool {
    let mut hasher = Sha256::new();
    if salt_suffix {
        hasher.update(password);
        hasher.update(salt.as_bytes());
    } else {
        hasher.update(salt.as_bytes());
        hasher.update(password);
    }
    let digest = hasher.finalize();
    let computed = hex(&digest);
    constant_time_eq(computed.as_bytes(), stored_hex.trim().to_ascii_lowercase().as_bytes())
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Equality in time that depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_algorithms_round_trip() {
        for alg in [Algorithm::Argon2id, Algorithm::Bcrypt, Algorithm::Pbkdf2Sha256] {
            let hash = hash_password_with(alg, "s3cret pässword", Cost::MINIMUM).unwrap();
            assert!(hash.starts_with('$'), "{hash}");
            assert!(Stored::of(&hash).is_hashed(), "{hash}");
            assert!(verify(&hash, "s3cret pässword".as_bytes()), "{alg}");
            assert!(!verify(&hash, b"s3cret passwords"), "{alg}");
            assert!(!verify(&hash, b""), "{alg}");
            // A random salt: hashing twice differs.
            let again = hash_password_with(alg, "s3cret pässword", Cost::MINIMUM).unwrap();
            assert_ne!(hash, again);
        }
        let h = hash_password_with(Algorithm::Argon2id, "x", Cost::MINIMUM).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        let h = hash_password_with(Algorithm::Bcrypt, "x", Cost::MINIMUM).unwrap();
        assert!(h.starts_with("$2b$04$"), "{h}");
        let h = hash_password_with(Algorithm::Pbkdf2Sha256, "x", Cost::MINIMUM).unwrap();
        assert!(h.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{h}");
    }

    #[test]
    fn recommended_costs_are_written() {
        // Only the cheap-to-check parts: full-cost hashing is exercised by the argon2 case.
        let h = hash_password(Algorithm::Argon2id, "pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, b"pw"));
    }

    #[test]
    fn known_vectors() {
        // bcrypt variants written by other tools (`htpasswd -B`, PHP `password_hash`).
        let b2y = bcrypt::hash_with_salt("public", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        assert!(b2y.starts_with("$2y$04$"));
        assert!(verify(&b2y, b"public"));
        let b2a = b2y.replacen("$2y$", "$2a$", 1);
        assert!(verify(&b2a, b"public"));
        // The pbkdf2 crate's own test vector (i=4096, l=40).
        let pbkdf2 = "$pbkdf2-sha256$i=4096,l=40$c2FsdFNBTFRzYWx0U0FMVHNhbHRTQUxUc2FsdFNBTFRzYWx0$NIyJ28vTKy8y2BS4EW6EzysXNH68GAAYHE4qH7jdU+HGNVGMfaxH6Q";
        assert!(verify(pbkdf2, b"passwordPASSWORDpassword"));
        assert!(!verify(pbkdf2, b"passwordPASSWORDpassworD"));
    }

    #[test]
    fn plain_and_malformed() {
        assert!(verify("public", b"public"));
        assert!(!verify("public", b"publi"));
        assert!(!verify("public", b"public "));
        assert!(verify("", b""));
        assert!(!verify("$argon2id$garbage", b"$argon2id$garbage"));
        assert!(!verify("$2b$nonsense", b"$2b$nonsense"));
        assert!(!verify("$pbkdf2-sha256$x", b"$pbkdf2-sha256$x"));
    }

    #[test]
    fn salted_sha256() {
        // sha256("saltpublic")
        let stored = hex(&Sha256::digest(b"saltpublic"));
        assert!(verify_salted_sha256(&stored, "salt", b"public", false));
        assert!(verify_salted_sha256(&stored.to_uppercase(), "salt", b"public", false));
        assert!(!verify_salted_sha256(&stored, "salt", b"public", true));
        assert!(!verify_salted_sha256(&stored, "salt", b"publik", false));
        let suffix = hex(&Sha256::digest(b"publicsalt"));
        assert!(verify_salted_sha256(&suffix, "salt", b"public", true));
    }

    #[tokio::test]
    async fn verifier_bounds_and_verifies() {
        let verifier = Verifier::new(1);
        let hash = hash_password_with(Algorithm::Bcrypt, "pw", Cost::MINIMUM).unwrap();
        let (a, b) = tokio::join!(verifier.verify(&hash, b"pw"), verifier.verify(&hash, b"no"));
        assert!(a && !b);
        assert!(verifier.verify("plain", b"plain").await);
        assert!(!verifier.verify("plain", b"other").await);
    }

    #[test]
    fn algorithm_names() {
        for alg in [Algorithm::Argon2id, Algorithm::Bcrypt, Algorithm::Pbkdf2Sha256] {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
        }
        assert!("md5".parse::<Algorithm>().is_err());
    }
}
