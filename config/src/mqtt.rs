//! `mqtt {}`: protocol limits and session behaviour, read by broker-core. NanoMQ's keys plus
//! Tern extensions (marked). All of it is hot-reloadable.

use std::time::Duration;

use crate::reader::Reader;
use crate::units::{ByteSize, PlainUnit};

/// The largest packet NanoMQ (and Tern) accepts: 260MB, just under MQTT's 256MiB + header limit.
pub const MAX_PACKET_SIZE_LIMIT: ByteSize = ByteSize::mb(260);

/// The `mqtt {}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// `mqtt.property_size` (NanoMQ): largest user property, in bytes. Default 32.
    pub property_size: u32,
    /// `mqtt.max_packet_size` (NanoMQ): largest packet accepted from a client, also advertised
    /// in CONNACK. Default 10MB; 1B to 260MB.
    pub max_packet_size: ByteSize,
    /// `mqtt.client_max_packet_size` (NanoMQ via `NANOMQ_CLIENT_MAX_PACKET_SIZE`; as a file key a
    /// Tern extension): largest packet sent to a client that announced no limit. `None` = same
    /// as `max_packet_size`.
    pub client_max_packet_size: Option<ByteSize>,
    /// `mqtt.max_mqueue_len` (NanoMQ): per-session outbound queue bound, in messages. Default
    /// 2048. What happens when full is `mqueue_overflow`.
    pub max_mqueue_len: u32,
    /// `mqtt.retry_interval` (NanoMQ): resend interval for unacknowledged QoS 1/2 messages.
    /// Default 10s; a plain integer is seconds.
    pub retry_interval: Duration,
    /// `mqtt.keepalive_multiplier` (NanoMQ): a client is dropped after keepalive × this of
    /// silence. Default 1.25; at least 1.
    pub keepalive_multiplier: f64,
    /// `mqtt.max_inflight_window` (NanoMQ parses it but ignores it): Tern uses it as the
    /// server's Receive Maximum — the outbound QoS 1/2 inflight window per session and the
    /// inbound Receive Maximum advertised in CONNACK. Default 32; 1 to 65535.
    pub max_inflight_window: u16,
    /// `mqtt.max_awaiting_rel` (NanoMQ writes a duration there and ignores it): Tern reads it as
    /// the maximum number of inbound QoS 2 messages awaiting PUBREL per MQTT 3.1.x client (MQTT 5
    /// clients are held to the advertised Receive Maximum); a client above it is disconnected.
    /// Default 1000. A duration value (NanoMQ's shipped `10s`) is accepted with a warning and the
    /// default used.
    pub max_awaiting_rel: u32,
    /// `mqtt.await_rel_timeout` (NanoMQ, unimplemented there): how long an inbound QoS 2 message
    /// waits for PUBREL before it is dropped. Default 10s; a plain integer is seconds.
    pub await_rel_timeout: Duration,
    /// `mqtt.max_topic_alias` (NanoMQ): highest inbound topic alias accepted, advertised as
    /// Topic Alias Maximum. Default 1024; 0 disables topic aliases.
    pub max_topic_alias: u16,
    /// `mqtt.max_keepalive` (Tern): largest keepalive accepted; a larger request is answered
    /// with this as Server Keep Alive (MQTT 5). Default 65535.
    pub max_keepalive: u16,
    /// `mqtt.max_session_expiry` (Tern): cap on the session expiry interval a client may ask
    /// for. Default 7 days (`168h`); a plain integer is seconds; at most 4294967295s.
    pub max_session_expiry: Duration,
    /// `mqtt.queue_qos0` (Tern): queue QoS 0 messages for offline persistent sessions.
    /// Default false.
    pub queue_qos0: bool,
    /// `mqtt.mqueue_overflow` (Tern): what a full session queue drops (`drop_oldest` or
    /// `drop_newest`). Default `drop_oldest`; NanoMQ drops the newest.
    pub mqueue_overflow: Overflow,
    /// `mqtt.shared_subscription_strategy` (Tern): how `$share` groups pick a member
    /// (`round_robin`, `random`, `sticky`). Default `round_robin`, as NanoMQ.
    pub shared_subscription_strategy: SharedStrategy,
    /// `mqtt.retain_available` (Tern): accept retained messages. Default true.
    pub retain_available: bool,
    /// `mqtt.max_retained_messages` (Tern): bound on stored retained messages; 0 = unlimited.
    /// Default 0.
    pub max_retained_messages: u32,
    /// `mqtt.max_subscriptions_per_client` (Tern): 0 = unlimited. Default 0.
    pub max_subscriptions_per_client: u32,
    /// `mqtt.allow_empty_client_id` (Tern): accept an empty client id (one is assigned).
    /// Default true.
    pub allow_empty_client_id: bool,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            property_size: 32,
            max_packet_size: ByteSize::mb(10),
            client_max_packet_size: None,
            max_mqueue_len: 2048,
            retry_interval: Duration::from_secs(10),
            keepalive_multiplier: 1.25,
            max_inflight_window: 32,
            max_awaiting_rel: 1000,
            await_rel_timeout: Duration::from_secs(10),
            max_topic_alias: 1024,
            max_keepalive: 65535,
            max_session_expiry: Duration::from_secs(7 * 24 * 3600),
            queue_qos0: false,
            mqueue_overflow: Overflow::DropOldest,
            shared_subscription_strategy: SharedStrategy::RoundRobin,
            retain_available: true,
            max_retained_messages: 0,
            max_subscriptions_per_client: 0,
            allow_empty_client_id: true,
        }
    }
}

/// What a full per-session queue drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the oldest queued message to make room (`drop_oldest`).
    DropOldest,
    /// Drop the message that does not fit (`drop_newest`, NanoMQ's behaviour).
    DropNewest,
}

/// How a shared subscription group picks the member that receives a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedStrategy {
    /// Members in turn (`round_robin`).
    RoundRobin,
    /// A random member (`random`).
    Random,
    /// The same member while it stays connected (`sticky`).
    Sticky,
}

pub(crate) fn read(r: &mut Reader<'_>) -> MqttConfig {
    let d = MqttConfig::default();
    if r.has("mqtt") && r.block("mqtt").is_none() {
        return d;
    }
    let one = ByteSize::b(1);
    let awaiting_rel_is_duration = r.peek_text("mqtt.max_awaiting_rel").is_some_and(|v| {
        v.trim().ends_with(|c: char| c.is_ascii_alphabetic())
            && crate::units::parse_duration(&v, PlainUnit::Seconds).is_ok()
    });
    let max_awaiting_rel = if awaiting_rel_is_duration {
        r.consume("mqtt.max_awaiting_rel");
        r.warn(format!(
            "{}: mqtt.max_awaiting_rel is a duration as NanoMQ writes it; Tern reads it as the number \
             of QoS 2 messages awaiting PUBREL per client and uses the default {}",
            r.location("mqtt.max_awaiting_rel"),
            d.max_awaiting_rel
        ));
        d.max_awaiting_rel
    } else {
        r.u32_in("mqtt.max_awaiting_rel", d.max_awaiting_rel, 1, 65535)
    };
    let retry_interval = positive(r, "mqtt.retry_interval", d.retry_interval);
    let max_session_expiry =
        r.duration("mqtt.max_session_expiry", d.max_session_expiry, PlainUnit::Seconds);
    let max_session_expiry = if max_session_expiry.as_secs() > u64::from(u32::MAX) {
        r.error("mqtt.max_session_expiry", "is longer than MQTT allows (at most 4294967295s)");
        d.max_session_expiry
    } else {
        max_session_expiry
    };
    MqttConfig {
        property_size: r.u32_in("mqtt.property_size", d.property_size, 1, u32::MAX),
        max_packet_size: r.size_in(
            "mqtt.max_packet_size",
            d.max_packet_size,
            one,
            MAX_PACKET_SIZE_LIMIT,
        ),
        client_max_packet_size: r.opt_size_in(
            "mqtt.client_max_packet_size",
            one,
            MAX_PACKET_SIZE_LIMIT,
        ),
        max_mqueue_len: r.u32_in("mqtt.max_mqueue_len", d.max_mqueue_len, 1, u32::MAX),
        retry_interval,
        keepalive_multiplier: r.f64_in(
            "mqtt.keepalive_multiplier",
            d.keepalive_multiplier,
            1.0,
            100.0,
        ),
        max_inflight_window: r.u16_in(
            "mqtt.max_inflight_window",
            d.max_inflight_window,
            1,
            u16::MAX,
        ),
        max_awaiting_rel,
        await_rel_timeout: positive(r, "mqtt.await_rel_timeout", d.await_rel_timeout),
        max_topic_alias: r.u16_in("mqtt.max_topic_alias", d.max_topic_alias, 0, u16::MAX),
        max_keepalive: r.u16_in("mqtt.max_keepalive", d.max_keepalive, 1, u16::MAX),
        max_session_expiry,
        queue_qos0: r.bool("mqtt.queue_qos0", d.queue_qos0),
        mqueue_overflow: r.choice(
            "mqtt.mqueue_overflow",
            d.mqueue_overflow,
            &[("drop_oldest", Overflow::DropOldest), ("drop_newest", Overflow::DropNewest)],
        ),
        shared_subscription_strategy: r.choice(
            "mqtt.shared_subscription_strategy",
            d.shared_subscription_strategy,
            &[
                ("round_robin", SharedStrategy::RoundRobin),
                ("random", SharedStrategy::Random),
                ("sticky", SharedStrategy::Sticky),
            ],
        ),
        retain_available: r.bool("mqtt.retain_available", d.retain_available),
        max_retained_messages: r.u32_in(
            "mqtt.max_retained_messages",
            d.max_retained_messages,
            0,
            u32::MAX,
        ),
        max_subscriptions_per_client: r.u32_in(
            "mqtt.max_subscriptions_per_client",
            d.max_subscriptions_per_client,
            0,
            u32::MAX,
        ),
        allow_empty_client_id: r.bool("mqtt.allow_empty_client_id", d.allow_empty_client_id),
    }
}

/// A duration that must be greater than zero (seconds when plain).
pub(crate) fn positive(r: &mut Reader<'_>, key: &str, default: Duration) -> Duration {
    match r.opt_duration(key, PlainUnit::Seconds) {
        Some(d) if d.is_zero() => {
            r.error(key, "must be greater than 0");
            default
        }
        Some(d) => d,
        None => default,
    }
}
