//! `$SYS` messages.
//!
//! - NanoMQ's client events, byte for byte: `$SYS/brokers/client_status/<clientid>` with the online
//!   and offline JSON payloads NanoMQ sends (same key order and spacing; `(null)` for a missing
//!   username; codes as hex strings without `0x`; `IPv4` empty for IPv6 clients). Unlike NanoMQ,
//!   values are JSON-escaped and payloads are never truncated at 256 bytes.
//! - Periodic statistics, which NanoMQ's open-source edition lacks, under
//!   `$SYS/brokers/<node_id>/…` every `sys.interval` (retained, so a new subscriber sees the latest).

use std::{fmt::Write as _, net::IpAddr, sync::Arc};

use bytes::Bytes;
use bytestring::ByteString;
use mqtt_codec::QoS;
use tokio_util::sync::CancellationToken;

use crate::{auth::ClientIdentity, broker::Broker};

/// `$SYS/brokers/client_status/<clientid>`.
pub fn client_status_topic(client_id: &str) -> ByteString {
    format!("$SYS/brokers/client_status/{client_id}").into()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn username_json(client: &ClientIdentity) -> String {
    match &client.username {
        Some(u) => json_str(u),
        None => "\"(null)\"".to_owned(),
    }
}

fn ipv4(client: &ClientIdentity) -> String {
    match client.peer.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
    }
}

/// NanoMQ's online payload.
pub fn online_payload(client: &ClientIdentity, return_code: u8, ts_ms: u64) -> Bytes {
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "{{\"status\":\"online\", \"username\":{}, \"ts\":{},\"proto_name\":{},\"keepalive\":{},\"return_code\":\"{:x}\",\"proto_ver\":{},\"client_id\":{},\"clean_start\":{}, \"IPv4\":{}}}",
        username_json(client),
        ts_ms,
        json_str(client.protocol.protocol_name()),
        client.keepalive,
        return_code,
        client.protocol.level(),
        json_str(&client.client_id),
        u8::from(client.clean_start),
        json_str(&ipv4(client)),
    );
    Bytes::from(s)
}

/// NanoMQ's offline payload.
pub fn offline_payload(client: &ClientIdentity, reason_code: u8, ts_ms: u64) -> Bytes {
    let mut s = String::with_capacity(192);
    let _ = write!(
        s,
        "{{\"status\":\"offline\", \"username\":{},\"ts\":{},\"reason_code\":\"{:x}\",\"client_id\":{},\"IPv4\":{}}}",
        username_json(client),
        ts_ms,
        reason_code,
        json_str(&client.client_id),
        json_str(&ipv4(client)),
    );
    Bytes::from(s)
}

/// Publishes statistics every `sys.interval` until `shutdown`, following changes of the interval
/// (none: off until it is set again).
pub async fn run_stats(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut changes = broker.config_changes();
    loop {
        changes.borrow_and_update();
        let Some(interval) = broker.config().sys_interval else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            continue;
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if broker.config().sys_interval != Some(interval) {
                        break;
                    }
                }
                _ = tick.tick() => publish_stats(&broker),
            }
        }
    }
}

fn publish_stats(broker: &Broker) {
    let node = &broker.config().node_id;
    let s = &broker.stats;
    let values: [(&str, String); 12] = [
        ("uptime", broker.uptime().as_secs().to_string()),
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ("clients/connected", s.connections.get().to_string()),
        ("clients/maximum", s.connections.max().to_string()),
        ("sessions/count", broker.sessions.len().to_string()),
        ("subscriptions/count", broker.router.len().to_string()),
        ("subscriptions/shared/count", broker.router.shared_len().to_string()),
        ("retained/count", broker.retained.len().to_string()),
        ("messages/received", s.messages_received.get().to_string()),
        ("messages/sent", s.messages_sent.get().to_string()),
        ("messages/dropped", s.messages_dropped.get().to_string()),
        ("events/dropped", broker.events.dropped().to_string()),
    ];
    for (name, value) in values {
        broker.publish_internal(
            format!("$SYS/brokers/{node}/{name}").into(),
            Bytes::from(value),
            QoS::AtMostOnce,
            true,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mqtt_codec::ProtocolVersion;

    use super::*;
    use crate::auth::Transport;

    fn client(username: Option<&str>) -> ClientIdentity {
        ClientIdentity {
            client_id: "c1".into(),
            username: username.map(Into::into),
            password: None,
            peer: "192.0.2.7:5000".parse().expect("addr"),
            listener: Arc::from("tcp:default"),
            listener_port: 1883,
            transport: Transport::Tcp,
            protocol: ProtocolVersion::V311,
            cert_common_name: None,
            cert_subject: None,
            keepalive: 60,
            clean_start: true,
            auth_method: None,
            auth_data: None,
            user_properties: vec![],
            node_id: Arc::from("n1"),
        }
    }

    #[test]
    fn online_payload_matches_nanomq() {
        let p = online_payload(&client(Some("u")), 0, 1700000000123);
        assert_eq!(
            std::str::from_utf8(&p).expect("utf8"),
            r#"{"status":"online", "username":"u", "ts":1700000000123,"proto_name":"MQTT","keepalive":60,"return_code":"0","proto_ver":4,"client_id":"c1","clean_start":1, "IPv4":"192.0.2.7"}"#
        );
    }

    #[test]
    fn offline_payload_matches_nanomq() {
        let p = offline_payload(&client(None), 0x8b, 5);
        assert_eq!(
            std::str::from_utf8(&p).expect("utf8"),
            r#"{"status":"offline", "username":"(null)","ts":5,"reason_code":"8b","client_id":"c1","IPv4":"192.0.2.7"}"#
        );
    }
}
