//! admin-api: NanoMQ's `/api/v4` REST API over every broker node, with configuration coordinated
//! through Redis.
//!
//! Not built yet: arrives with the admin-api issue. There is deliberately no binary until then.
