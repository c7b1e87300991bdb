//! broker-core: the MQTT front end of Tern.
//!
//! Layers, from the wire inwards (each in its own module):
//! - `mqtt-codec` (a separate crate): bytes <-> packets;
//! - [`connection`]: one task per client: socket, buffers, CONNECT, packets in and out;
//! - [`session`] and [`registry`]: state that outlives a connection, and who owns it;
//! - [`mailbox`]: a session's bounded queue of routed messages;
//! - [`router`]: the subscription trie and fan-out; [`retained`]: retained messages;
//! - [`broker`]: the node's shared parts and cross-connection operations (publish, wills);
//! - [`server`]: accept loops, limits and shutdown.
//!
//! Authentication and events plug in through [`auth::Authenticator`] and [`events::EventSink`].

pub mod admin_grpc;
pub mod auth;
pub mod auth_grpc;
pub mod broker;
pub mod clock;
pub mod config;
pub mod config_follow;
pub mod connection;
pub mod events;
pub mod events_grpc;
mod events_wire;
pub mod mailbox;
pub mod message;
pub mod metrics;
pub mod registry;
pub mod retained;
pub mod router;
pub mod server;
pub mod session;
pub mod stats;
pub mod store;
pub mod sys;
pub mod transport;
pub mod will;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use server::{BoundListener, run};

#[cfg(test)]
mod test_util;
