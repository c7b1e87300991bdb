//! Tern's gRPC contracts and their generated Rust code.
//!
//! The `.proto` files under `protos/` are the source of truth and the documentation for people who
//! call Tern from other languages; this crate only compiles them (with protox, so no system `protoc`)
//! and re-exports the generated modules:
//!
//! - [`types::v1`]: client identity, messages, subscriptions (shared by the services);
//! - [`auth::v1`]: `AuthService` (Authenticate, Authorize, WatchRevocations);
//! - [`events::v1`]: `EventIngest` (brokers to webhook-relay) and `EventStream` (to other services);
//! - [`broker::v1`]: `BrokerAdmin`, served by every broker node;
//! - [`grpc`]: reflection, the bearer-token interceptor and TLS shared by every server and client.

pub mod grpc;
pub mod prometheus;

/// Shared types (`tern.types.v1`).
pub mod types {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tern.types.v1");
    }
}

/// Authentication and authorization (`tern.auth.v1`).
pub mod auth {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tern.auth.v1");
    }
}

/// Broker events (`tern.events.v1`).
pub mod events {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tern.events.v1");
    }
}

/// Broker node administration (`tern.broker.v1`).
pub mod broker {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tern.broker.v1");
    }
}

/// The encoded `FileDescriptorSet` of every Tern proto, for gRPC server reflection
/// (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tern_descriptor.bin"));

/// Fully qualified names of the gRPC services Tern defines, as reflection lists them.
pub const SERVICE_NAMES: &[&str] = &[
    "tern.auth.v1.AuthService",
    "tern.events.v1.EventIngest",
    "tern.events.v1.EventStream",
    "tern.events.v1.DeadLetters",
    "tern.broker.v1.BrokerAdmin",
];
