//! Webhook bodies. For `client_connack`, `client_disconnected` and `message_publish` they are
//! byte-compatible with NanoMQ's (`webhook_post.c`): the same keys in the same order, `ts` in
//! epoch milliseconds, `"undefined"` for a missing username, `body.encoding` for the payload.
//! The other events follow the same style (documented in the README's Webhooks section).

use base64::Engine as _;
use proto::{
    events::v1::{Event, event::Payload},
    types::v1::{ClientInfo, Message},
};
use serde::Serialize;
use tern_config::BodyEncoding;

/// The JSON body of `event`, or `None` for an event without payload.
pub fn render(event: &Event, encoding: BodyEncoding) -> Option<Vec<u8>> {
    let ts = event.timestamp_ms;
    let json = match event.payload.as_ref()? {
        Payload::ClientConnack(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&Connack {
                proto_ver: c.protocol_version,
                keepalive: c.keepalive,
                conn_ack: if e.reason_code == 0 { "success" } else { "fail" },
                username: username(c),
                clientid: &c.client_id,
                action: "client_connack",
            })
        }
        Payload::ClientDisconnected(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&Disconnected {
                reason: if e.reason_code == 0 { "normal" } else { "abnormal" },
                username: username(c),
                clientid: &c.client_id,
                action: "client_disconnected",
            })
        }
        Payload::MessagePublish(e) => {
            let m = message(e.message.as_ref());
            serde_json::to_vec(&Publish {
                ts,
                topic: &m.topic,
                retain: m.retain,
                qos: m.qos,
                action: "message_publish",
                from_username: m.from_username.as_deref().unwrap_or("undefined"),
                from_client_id: (!m.from_client_id.is_empty()).then_some(&m.from_client_id),
                payload: encode(&m.payload, encoding),
            })
        }
        Payload::ClientConnect(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&Connect {
                proto_ver: c.protocol_version,
                keepalive: c.keepalive,
                username: username(c),
                clientid: &c.client_id,
                ipaddress: &c.peer_address,
                action: "client_connect",
            })
        }
        Payload::ClientConnected(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&Connected {
                proto_ver: c.protocol_version,
                keepalive: e.keepalive,
                clean_start: c.clean_start,
                session_present: e.session_present,
                username: username(c),
                clientid: &c.client_id,
                ipaddress: &c.peer_address,
                connected_at: ts,
                action: "client_connected",
            })
        }
        Payload::ClientSubscribe(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&Subscribe {
                username: username(c),
                clientid: &c.client_id,
                topics: e
                    .subscriptions
                    .iter()
                    .map(|s| TopicQos { topic: &s.topic_filter, qos: s.qos })
                    .collect(),
                action: "client_subscribe",
            })
        }
        Payload::ClientUnsubscribe(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&Unsubscribe {
                username: username(c),
                clientid: &c.client_id,
                topics: e.topic_filters.iter().map(String::as_str).collect(),
                action: "client_unsubscribe",
            })
        }
        Payload::SessionSubscribed(e) => {
            let c = client(e.client.as_ref());
            let s = e.subscription.clone().unwrap_or_default();
            serde_json::to_vec(&SessionSubscribed {
                username: username(c),
                clientid: &c.client_id,
                topic: &s.topic_filter,
                qos: s.qos,
                action: "session_subscribed",
            })
        }
        Payload::SessionUnsubscribed(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&SessionUnsubscribed {
                username: username(c),
                clientid: &c.client_id,
                topic: &e.topic_filter,
                action: "session_unsubscribed",
            })
        }
        Payload::SessionTerminated(e) => {
            let c = client(e.client.as_ref());
            serde_json::to_vec(&SessionTerminated {
                username: username(c),
                clientid: &c.client_id,
                reason: &e.reason,
                action: "session_terminated",
            })
        }
        Payload::MessageDelivered(e) => {
            delivery(ts, "message_delivered", e.client.as_ref(), e.message.as_ref(), None, encoding)
        }
        Payload::MessageAcked(e) => {
            delivery(ts, "message_acked", e.client.as_ref(), e.message.as_ref(), None, encoding)
        }
        Payload::MessageDropped(e) => delivery(
            ts,
            "message_dropped",
            e.client.as_ref(),
            e.message.as_ref(),
            Some(&e.reason),
            encoding,
        ),
    };
    json.ok()
}

fn delivery(
    ts: u64,
    action: &'static str,
    subscriber: Option<&ClientInfo>,
    m: Option<&Message>,
    reason: Option<&str>,
    encoding: BodyEncoding,
) -> serde_json::Result<Vec<u8>> {
    let m = message(m);
    serde_json::to_vec(&Delivery {
        ts,
        topic: &m.topic,
        retain: m.retain,
        qos: m.qos,
        action,
        from_username: m.from_username.as_deref().unwrap_or("undefined"),
        from_client_id: (!m.from_client_id.is_empty()).then_some(&m.from_client_id),
        username: subscriber.map(username),
        clientid: subscriber.map(|c| c.client_id.as_str()),
        reason,
        payload: encode(&m.payload, encoding),
    })
}

static EMPTY_CLIENT: std::sync::LazyLock<ClientInfo> =
    std::sync::LazyLock::new(ClientInfo::default);
static EMPTY_MESSAGE: std::sync::LazyLock<Message> = std::sync::LazyLock::new(Message::default);

fn client(c: Option<&ClientInfo>) -> &ClientInfo {
    c.unwrap_or(&EMPTY_CLIENT)
}

fn message(m: Option<&Message>) -> &Message {
    m.unwrap_or(&EMPTY_MESSAGE)
}

fn username(c: &ClientInfo) -> &str {
    c.username.as_deref().unwrap_or("undefined")
}

/// The `payload` field: NanoMQ inserts `plain` payloads as C strings (cut at the first NUL;
/// Tern also replaces invalid UTF-8 so the body stays JSON).
pub fn encode(payload: &[u8], encoding: BodyEncoding) -> Option<String> {
    match encoding {
        BodyEncoding::Plain => {
            let end = payload.iter().position(|b| *b == 0).unwrap_or(payload.len());
            Some(String::from_utf8_lossy(&payload[..end]).into_owned())
        }
        BodyEncoding::Base64 if payload.is_empty() => None,
        BodyEncoding::Base64 => Some(base64::engine::general_purpose::STANDARD.encode(payload)),
        BodyEncoding::Base62 if payload.is_empty() => None,
        BodyEncoding::Base62 => Some(base62(payload)),
    }
}

/// NanoMQ's "base62": unpadded base64 over the alphabet `A–Z a–z 0–9 + /`, with `+` written as
/// `A` and `/` as `B` (so it is not reversible; kept for compatibility).
pub fn base62(payload: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(payload)
        .chars()
        .map(|c| match c {
            '+' => 'A',
            '/' => 'B',
            c => c,
        })
        .collect()
}

#[derive(Serialize)]
struct Connack<'a> {
    proto_ver: i32,
    keepalive: u32,
    conn_ack: &'static str,
    username: &'a str,
    clientid: &'a str,
    action: &'static str,
}

#[derive(Serialize)]
struct Disconnected<'a> {
    reason: &'static str,
    username: &'a str,
    clientid: &'a str,
    action: &'static str,
}

#[derive(Serialize)]
struct Publish<'a> {
    ts: u64,
    topic: &'a str,
    retain: bool,
    qos: i32,
    action: &'static str,
    from_username: &'a str,
    from_client_id: Option<&'a String>,
    payload: Option<String>,
}

#[derive(Serialize)]
struct Connect<'a> {
    proto_ver: i32,
    keepalive: u32,
    username: &'a str,
    clientid: &'a str,
    ipaddress: &'a str,
    action: &'static str,
}

#[derive(Serialize)]
struct Connected<'a> {
    proto_ver: i32,
    keepalive: u32,
    clean_start: bool,
    session_present: bool,
    username: &'a str,
    clientid: &'a str,
    ipaddress: &'a str,
    connected_at: u64,
    action: &'static str,
}

#[derive(Serialize)]
struct TopicQos<'a> {
    topic: &'a str,
    qos: i32,
}

#[derive(Serialize)]
struct Subscribe<'a> {
    username: &'a str,
    clientid: &'a str,
    topics: Vec<TopicQos<'a>>,
    action: &'static str,
}

#[derive(Serialize)]
struct Unsubscribe<'a> {
    username: &'a str,
    clientid: &'a str,
    topics: Vec<&'a str>,
    action: &'static str,
}

#[derive(Serialize)]
struct SessionSubscribed<'a> {
    username: &'a str,
    clientid: &'a str,
    topic: &'a str,
    qos: i32,
    action: &'static str,
}

#[derive(Serialize)]
struct SessionUnsubscribed<'a> {
    username: &'a str,
    clientid: &'a str,
    topic: &'a str,
    action: &'static str,
}

#[derive(Serialize)]
struct SessionTerminated<'a> {
    username: &'a str,
    clientid: &'a str,
    reason: &'a str,
    action: &'static str,
}

#[derive(Serialize)]
struct Delivery<'a> {
    ts: u64,
    topic: &'a str,
    retain: bool,
    qos: i32,
    action: &'static str,
    from_username: &'a str,
    from_client_id: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    clientid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    payload: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::v1 as pb;

    #[test]
    fn publish_body_is_nanomqs() {
        let event = Event {
            timestamp_ms: 1_700_000_000_123,
            payload: Some(Payload::MessagePublish(pb::MessagePublish {
                message: Some(Message {
                    topic: "a/b".into(),
                    payload: bytes::Bytes::from_static(b"hi\0there"),
                    qos: 1,
                    from_client_id: "c1".into(),
                    ..Default::default()
                }),
            })),
            ..Default::default()
        };
        let body = render(&event, BodyEncoding::Plain).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"ts":1700000000123,"topic":"a/b","retain":false,"qos":1,"action":"message_publish","from_username":"undefined","from_client_id":"c1","payload":"hi"}"#
        );
    }

    #[test]
    fn connack_and_disconnected_bodies_are_nanomqs() {
        let c = ClientInfo {
            client_id: "c1".into(),
            username: Some("u".into()),
            protocol_version: 4,
            keepalive: 60,
            ..Default::default()
        };
        let connack = Event {
            payload: Some(Payload::ClientConnack(pb::ClientConnack {
                client: Some(c.clone()),
                reason_code: 0x86,
                session_present: false,
            })),
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8_lossy(&render(&connack, BodyEncoding::Plain).unwrap_or_default()),
            r#"{"proto_ver":4,"keepalive":60,"conn_ack":"fail","username":"u","clientid":"c1","action":"client_connack"}"#
        );
        let gone = Event {
            payload: Some(Payload::ClientDisconnected(pb::ClientDisconnected {
                client: Some(ClientInfo { username: None, ..c }),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8_lossy(&render(&gone, BodyEncoding::Plain).unwrap_or_default()),
            r#"{"reason":"normal","username":"undefined","clientid":"c1","action":"client_disconnected"}"#
        );
    }

    #[test]
    fn other_events_follow_the_same_style() {
        let c = ClientInfo {
            client_id: "c1".into(),
            peer_address: "127.0.0.1".into(),
            protocol_version: 5,
            keepalive: 30,
            clean_start: true,
            ..Default::default()
        };
        let subscribed = Event {
            payload: Some(Payload::SessionSubscribed(pb::SessionSubscribed {
                client: Some(c.clone()),
                subscription: Some(proto::types::v1::Subscription {
                    topic_filter: "a/#".into(),
                    qos: 1,
                    ..Default::default()
                }),
            })),
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8_lossy(&render(&subscribed, BodyEncoding::Plain).unwrap_or_default()),
            r#"{"username":"undefined","clientid":"c1","topic":"a/#","qos":1,"action":"session_subscribed"}"#
        );
        let connected = Event {
            timestamp_ms: 42,
            payload: Some(Payload::ClientConnected(pb::ClientConnected {
                client: Some(c),
                session_present: false,
                keepalive: 30,
                session_expiry_interval: 0,
            })),
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8_lossy(&render(&connected, BodyEncoding::Plain).unwrap_or_default()),
            r#"{"proto_ver":5,"keepalive":30,"clean_start":true,"session_present":false,"username":"undefined","clientid":"c1","ipaddress":"127.0.0.1","connected_at":42,"action":"client_connected"}"#
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(encode(b"\xfb\xff", BodyEncoding::Base64).as_deref(), Some("+/8="));
        // NanoMQ's base62: unpadded, `+` -> `A`, `/` -> `B`.
        assert_eq!(encode(b"\xfb\xff", BodyEncoding::Base62).as_deref(), Some("AB8"));
        assert_eq!(encode(b"hello", BodyEncoding::Base62).as_deref(), Some("aGVsbG8"));
        assert_eq!(encode(b"", BodyEncoding::Base64), None);
    }
}
