//! Helpers shared by Tern's tests (a dev-dependency only; nothing here ships).
//!
//! - [`RedisServer`]: a private `redis-server` per test, on a unix socket in a temporary directory,
//!   without persistence, killed when dropped.
//! - [`bind_tcp`] / [`bind_tokio`]: listeners on `127.0.0.1:0`, so services under test never fight
//!   over fixed ports.
//! - [`eventually`]: poll a condition until it holds or a deadline passes, instead of sleeping.
//! - [`mqtt`]: a raw MQTT client on Tern's codec, and packet builders.
//! - [`cli`]: the `tern` command-line clients as processes (`pub`, a subscribed `sub`).
//! - [`nanomq`]: the NanoMQ fixture files laid out in a working directory, on free ports.
//! - [`pki`]: a test CA issuing server and client certificates as PEM files.
//! - [`install_crypto_provider`]: the process-wide rustls provider (aws-lc-rs), as every `main` does.

pub mod cli;
pub mod mqtt;
pub mod nanomq;
pub mod pki;
mod redis_server;

use std::{future::Future, net::SocketAddr, time::Duration};

pub use redis_server::{RedisServer, RedisServerError};

/// Binds a std TCP listener on `127.0.0.1:0` and returns it with its address.
///
/// # Panics
/// When the loopback interface cannot be bound (the test cannot run at all then).
pub fn bind_tcp() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr of a bound listener");
    (listener, addr)
}

/// Binds a tokio TCP listener on `127.0.0.1:0` and returns it with its address.
///
/// # Panics
/// When the loopback interface cannot be bound.
pub async fn bind_tokio() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr of a bound listener");
    (listener, addr)
}

/// Installs aws-lc-rs as the process-wide rustls crypto provider. Safe to call many times.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Polls `check` every 10 ms until it returns `Some`, or until `timeout` passes.
///
/// Returns the value, or `None` on timeout. Tests assert on the result, so a condition that never
/// holds fails the test with the test's own message.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
