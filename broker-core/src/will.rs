//! Will messages waiting to be published.
//!
//! A will is published when a connection ends without a normal DISCONNECT: at once when its Will
//! Delay Interval is 0, otherwise when the delay passes — or when the session ends, if sooner —
//! unless the client reconnects to the session first.

use std::sync::Arc;

use mqtt_codec::LastWill;

use crate::{
    auth::{ClientAuthorizer, ClientIdentity},
    message::SessionId,
};

/// A will kept until its connection ends abnormally (and its delay passes).
#[derive(Debug, Clone)]
pub struct PendingWill {
    /// The will from CONNECT.
    pub will: LastWill,
    /// Who set it (the publisher of the will message).
    pub client: Arc<ClientIdentity>,
    /// The session that set it.
    pub session: SessionId,
    /// Decides whether the client may publish the will (checked when it is published).
    pub authorizer: Arc<dyn ClientAuthorizer>,
}

impl PendingWill {
    /// The Will Delay Interval, seconds (0 for MQTT 3.1.x).
    pub fn delay_secs(&self) -> u32 {
        self.will.properties.will_delay_interval.unwrap_or(0)
    }
}
