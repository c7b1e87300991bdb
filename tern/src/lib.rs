//! tern: the all-in-one launcher (`tern start`) and the command-line tools (`tern pub`, `tern sub`,
//! `tern bench`, `tern passwd`). `main.rs` only parses the command line and calls into this
//! library.
//!
//! - [`launch`]: `tern start`, the services in one process;
//! - [`client`]: one MQTT client connection (TCP, TLS, WebSocket) on Tern's codec, shared by the
//!   tools;
//! - [`pubsub`]: `tern pub` and `tern sub`, mosquitto_pub / mosquitto_sub compatible;
//! - [`health`]: `tern health`, probes for container health checks;
//! - [`bench`]: the MQTT load generator behind `tern bench`.

pub mod bench;
pub mod client;
pub mod health;
pub mod launch;
pub mod pubsub;
