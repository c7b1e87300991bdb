//! `tern pub` and `tern sub`: MQTT clients for smoke tests and scripts that take
//! `mosquitto_pub` / `mosquitto_sub`'s flags, print its messages and exit with its codes, so
//! people's muscle memory and scripts work. Both speak MQTT through [`crate::client`] (the same
//! connection code as `tern bench`).
//!
//! - [`options`]: the flags both share (broker, protocol, credentials, TLS, WebSocket, `-D`);
//! - [`session`]: one client session on top of a connection (packet ids, keep alive, `-d`);
//! - [`publish`]: `tern pub`; [`subscribe`]: `tern sub`;
//! - [`reason`]: mosquitto's wording of reason codes.

pub mod options;
pub mod publish;
pub mod reason;
pub mod session;
pub mod subscribe;

use mqtt_codec::ProtocolVersion;

pub use options::{ConnectArgs, PropertyArg};
pub use publish::PubArgs;
pub use subscribe::SubArgs;

/// How a `tern pub` / `tern sub` run ended when it did not succeed: the message for standard
/// error and the process exit code (mosquitto's: the CONNACK reason code when the broker refused,
/// 1 for other errors, 27 for `-W` timeouts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What to print on standard error (without a trailing newline).
    pub message: String,
}

impl Failure {
    /// An error with exit code 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self { code: 1, message: message.into() }
    }
}

impl Failure {
    /// The failure for a connection error, worded as mosquitto does for `version`.
    pub fn from_client(error: crate::client::ClientError, version: ProtocolVersion) -> Self {
        use crate::client::ClientError;
        match error {
            ClientError::Refused(ack) => Self {
                code: reason::connack_exit_code(ack.reason_code, version),
                message: format!("Connection error: {}", reason::connack_text(&ack, version)),
            },
            ClientError::Io(e) => Self::new(format!("Error: {}", reason::io_message(&e))),
            ClientError::Timeout => Self::new("Error: timed out waiting for the broker"),
            ClientError::Closed => Self::new("Error: the broker closed the connection"),
            other => Self::new(format!("Error: {other}")),
        }
    }
}
