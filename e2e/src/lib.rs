//! The harness of Tern's end-to-end tests (the tests are in `tests/`):
//!
//! - [`binaries`]: builds the workspace's binaries once per test process and finds them;
//! - [`process`]: a service binary as a child process, its log captured and searchable;
//! - [`balancer`]: a round-robin TCP balancer in front of service replicas;
//! - [`seed_server`]: the seed article's HTTP server (HTTP auth, superuser, ACL, webhook
//!   receiver), in Rust.

pub mod balancer;
pub mod binaries;
pub mod process;
pub mod seed_server;
