//! The broker's typed settings, with defaults. The binary builds them from the HOCON file
//! (`tern-config`); tests build them directly.

use std::{sync::Arc, time::Duration};

use crate::{mailbox::OverflowPolicy, router::SharedStrategy};

/// Everything the broker core needs to know, as values (no globals: two brokers with different
/// settings can run in one process).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This node's id (events, `$SYS`, the admin API).
    pub node_id: Arc<str>,
    /// Largest packet accepted from a client, and advertised to MQTT 5 clients
    /// (`mqtt.max_packet_size`).
    pub max_packet_size: u32,
    /// Largest packet sent to a client that announced no Maximum Packet Size
    /// (`mqtt.client_max_packet_size`); larger messages are dropped for that client.
    pub client_max_packet_size: u32,
    /// Most messages queued per session (`mqtt.max_mqueue_len`).
    pub max_mqueue_len: usize,
    /// What happens when a session's queue is full.
    pub mqueue_overflow: OverflowPolicy,
    /// Queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0_offline: bool,
    /// Keep alive × this = how long a silent client is kept (`mqtt.keepalive_multiplier`).
    pub keepalive_multiplier: f64,
    /// Largest keep alive allowed; larger (or 0 when a limit is set) is answered with Server Keep
    /// Alive on MQTT 5 (`mqtt.max_keepalive`).
    pub max_keepalive: u16,
    /// Outgoing QoS 1/2 messages in flight per client, and the Receive Maximum advertised to MQTT 5
    /// clients (`mqtt.max_inflight_window`).
    pub receive_maximum: u16,
    /// Incoming QoS 2 messages awaiting PUBREL per MQTT 3.1.x client (`mqtt.max_awaiting_rel`);
    /// MQTT 5 clients are held to `receive_maximum`. A client above it is disconnected.
    pub max_awaiting_rel: usize,
    /// How long an incoming QoS 2 message may await PUBREL (`mqtt.await_rel_timeout`).
    pub await_rel_timeout: Duration,
    /// Highest inbound topic alias, advertised as Topic Alias Maximum (`mqtt.max_topic_alias`).
    pub max_topic_alias: u16,
    /// Cap on a client's Session Expiry Interval, seconds (`u32::MAX` = none).
    pub max_session_expiry: u32,
    /// Whether retained messages are supported (`Retain Available`).
    pub retain_available: bool,
    /// Most retained messages (0 = unlimited).
    pub max_retained_messages: usize,
    /// Shared subscription member selection.
    pub shared_strategy: SharedStrategy,
    /// Most subscriptions per client (0 = unlimited).
    pub max_subscriptions_per_client: usize,
    /// Accept an empty client id (assigning one) when the client asks for a clean session.
    pub allow_empty_client_id: bool,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// Deadline for an authentication call.
    pub auth_timeout: Duration,
    /// Most concurrent connections on this node (0 = unlimited).
    pub max_connections: usize,
    /// Period of `$SYS` statistics messages (`None` = off).
    pub sys_interval: Option<Duration>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: Arc::from("tern-node"),
            max_packet_size: 10 * 1024 * 1024,
            client_max_packet_size: mqtt_codec::MAX_PACKET_SIZE,
            max_mqueue_len: 2048,
            mqueue_overflow: OverflowPolicy::DropOldest,
            queue_qos0_offline: false,
            keepalive_multiplier: 1.25,
            max_keepalive: u16::MAX,
            receive_maximum: 32,
            max_awaiting_rel: 1000,
            await_rel_timeout: Duration::from_secs(10),
            max_topic_alias: 1024,
            max_session_expiry: 7 * 24 * 3600,
            retain_available: true,
            max_retained_messages: 0,
            shared_strategy: SharedStrategy::RoundRobin,
            max_subscriptions_per_client: 0,
            allow_empty_client_id: true,
            connect_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(5),
            max_connections: 0,
            sys_interval: Some(Duration::from_secs(10)),
        }
    }
}

impl BrokerConfig {
    /// The broker settings of a loaded Tern/NanoMQ configuration (`mqtt {}`, `node {}`,
    /// `sys {}`, and the node-wide connection limit).
    pub fn from_config(config: &tern_config::Config) -> Self {
        let m = &config.mqtt;
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        Self {
            node_id: Arc::from(config.node.id.as_str()),
            max_packet_size: u32::try_from(m.max_packet_size.as_u64()).unwrap_or(u32::MAX),
            client_max_packet_size: m
                .client_max_packet_size
                .map_or(mqtt_codec::MAX_PACKET_SIZE, |s| {
                    u32::try_from(s.as_u64()).unwrap_or(u32::MAX)
                }),
            max_mqueue_len: m.max_mqueue_len as usize,
            mqueue_overflow: match m.mqueue_overflow {
                tern_config::Overflow::DropOldest => OverflowPolicy::DropOldest,
                tern_config::Overflow::DropNewest => OverflowPolicy::DropNewest,
            },
            queue_qos0_offline: m.queue_qos0,
            keepalive_multiplier: m.keepalive_multiplier,
            max_keepalive: m.max_keepalive,
            receive_maximum: m.max_inflight_window.max(1),
            max_awaiting_rel: m.max_awaiting_rel as usize,
            await_rel_timeout: m.await_rel_timeout,
            max_topic_alias: m.max_topic_alias,
            max_session_expiry: secs(m.max_session_expiry),
            retain_available: m.retain_available,
            max_retained_messages: m.max_retained_messages as usize,
            shared_strategy: match m.shared_subscription_strategy {
                tern_config::SharedStrategy::RoundRobin => SharedStrategy::RoundRobin,
                tern_config::SharedStrategy::Random => SharedStrategy::Random,
                tern_config::SharedStrategy::Sticky => SharedStrategy::Sticky,
            },
            max_subscriptions_per_client: m.max_subscriptions_per_client as usize,
            allow_empty_client_id: m.allow_empty_client_id,
            sys_interval: (!config.sys.interval.is_zero()).then_some(config.sys.interval),
            ..Self::default()
        }
    }
}
