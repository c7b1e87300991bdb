//! auth-service: `tern.auth.v1.AuthService` over gRPC — authentication and authorization for
//! MQTT clients from an ordered chain of backends (NanoMQ's password and ACL files, NanoMQ-style
//! HTTP auth, Redis, JWT). Stateless: any replica answers any call.
//!
//! - [`backend`]: the `Backend` trait and its implementations;
//! - [`chain`]: the order of backends and the policy around them;
//! - [`service`]: the gRPC service; [`server`]: serving it with health and reflection;
//! - [`setup`]: building the chain from `auth {}`; [`live`]: the chain being served, replaced
//!   whole when [`store`] applies a configuration change;
//! - [`metrics`]: the service's Prometheus metrics.

pub mod backend;
pub mod chain;
pub mod live;
pub mod metrics;
pub mod passwd;
pub mod server;
pub mod service;
pub mod setup;
pub mod store;
pub mod watch;

pub use chain::{Chain, DenyAction, Policy};
pub use server::{Revocations, run, serve};
