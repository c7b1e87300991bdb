//! webhook-relay: `tern.events.v1.EventIngest` from brokers, a durable outbox, HTTP webhooks and
//! `tern.events.v1.EventStream` for other services.
//!
//! Not built yet: arrives with the webhook-relay issue. There is deliberately no binary until then.
