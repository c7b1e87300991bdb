//! Certificates for TLS tests: the shared test PKI.

pub use test_support::pki::*;
