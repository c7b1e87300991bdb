//! webhook-relay: `tern.events.v1.EventIngest` from brokers, a durable outbox, HTTP webhooks and
//! `tern.events.v1.EventStream` for other services.
//!
//! The flow, one module per step:
//! - [`ingest`]: each broker's batch is written to the [`outbox`] (redb, fsynced) and only then
//!   acknowledged; events already held (a broker resending after a reconnect) are skipped;
//!   [`wire`] reads a batch without decoding its events (they are stored as they came);
//! - [`route`]: which targets (`webhook {}`, `webhooks.<name> {}`) want an event;
//! - [`delivery`]: per target, `pool_size` lanes POST pending events — one client id always in
//!   the same lane, so in order — with retries, backoff and dead letters;
//! - [`body`]: the JSON bodies, byte-compatible with NanoMQ's for the events it sends;
//! - [`stream`]: `EventStream.Subscribe` from the outbox's log and live;
//! - [`dead_letters`]: `DeadLetters.List` / `Redrive` over what delivery gave up;
//! - [`metrics`]: counters and the Prometheus text;
//! - [`server`]: [`Relay`] ties it together and serves gRPC with health and reflection;
//! - [`follow`]: targets (and the log level) applied live from the config store.

pub mod body;
pub mod dead_letters;
pub mod delivery;
pub mod follow;
pub mod ingest;
pub mod metrics;
pub mod outbox;
pub mod route;
pub mod server;
pub mod stream;
pub mod wire;

pub use metrics::Metrics;
pub use outbox::{DeadLetter, Outbox, OutboxError};
pub use server::{Relay, RelayConfig, RelayError, serve_metrics};

/// The HTTP header carrying an event's id (`<node>/<incarnation>/<sequence>`); the same id on
/// every retry, so receivers can de-duplicate.
pub const EVENT_ID_HEADER: &str = "x-tern-event-id";
