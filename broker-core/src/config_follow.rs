//! Following the config store on a broker node: `log`, `mqtt` and `sys` changes are applied
//! without a restart, and the version applied is reported (`GET /configuration` shows which node
//! runs what).
//!
//! - `log.level`: at once.
//! - `mqtt` and `sys`: the node's settings are replaced ([`Broker::reconfigure`]). Queue limits
//!   (`max_mqueue_len`, `mqueue_overflow`, `queue_qos0`), `max_retained_messages`,
//!   `shared_subscription_strategy` and `sys.interval` apply at once to every client; the rest —
//!   the limits a client was told in CONNACK (packet size, receive maximum, topic alias maximum,
//!   server keep alive, session expiry cap, retain available) and the per-connection ones
//!   (subscriptions per client, awaiting PUBREL) — apply to clients connecting from then on,
//!   since a connection keeps the settings of its CONNECT. A listener's own `max_packet_size`
//!   stays the listener's.
//!
//! A change that does not parse is reported as an error and the node keeps its settings.

use std::{path::PathBuf, sync::Arc};

use tern_config_store::{Follow, effective_config};

use crate::{Broker, BrokerConfig};

/// Sets the log level (the binary's telemetry handle).
pub type SetLevel = Box<dyn Fn(tern_config::LogLevel) -> Result<(), String> + Send>;

/// The sections a broker node applies.
pub const SECTIONS: &[&str] = &["log", "mqtt", "sys"];

/// The follower of `broker`, re-reading `file` with the stored sections over it.
pub fn follower(
    broker: Arc<Broker>,
    file: Option<PathBuf>,
    base_dir: PathBuf,
    env: tern_config::Env,
    set_level: Option<SetLevel>,
) -> Follow {
    Follow {
        service: "broker-core".into(),
        instance: broker.config().node_id.to_string(),
        sections: SECTIONS.to_vec(),
        apply: Box::new(move |section, snapshot| {
            let config = effective_config(file.as_deref(), &base_dir, &env, snapshot, SECTIONS)?;
            match section {
                "log" => match &set_level {
                    Some(set) => set(config.log.level),
                    None => Ok(()),
                },
                _ => {
                    let old = broker.config();
                    let new = BrokerConfig {
                        // Settings that do not come from the file keep their values.
                        connect_timeout: old.connect_timeout,
                        auth_timeout: old.auth_timeout,
                        max_connections: old.max_connections,
                        ..BrokerConfig::from_config(&config)
                    };
                    broker.reconfigure(new);
                    Ok(())
                }
            }
        }),
    }
}
