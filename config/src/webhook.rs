//! `webhook {}`: which broker events webhook-relay posts where. The block's presence enables it;
//! its rules are hot-reloadable.

use std::time::Duration;

use crate::http_auth::validate_http_url;
use crate::keys;
use crate::listener::{ClientTlsConfig, read_client_tls};
use crate::reader::Reader;
use crate::secret::Secret;
use crate::units::PlainUnit;

/// The `webhook {}` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `webhook.url` (NanoMQ, required): where events are POSTed.
    pub url: String,
    /// `webhook.headers.<name> = value` (NanoMQ) in file order; values are secrets (they often
    /// carry tokens). NanoMQ does not add `content-type` by itself, and neither does Tern.
    pub headers: Vec<(String, Secret)>,
    /// `webhook.body.encoding` (NanoMQ): encoding of the `payload` field (`plain`, `base64`,
    /// `base62`). Default `plain`.
    pub body_encoding: BodyEncoding,
    /// `webhook.pool_size` (NanoMQ): concurrent deliveries. Default 32.
    pub pool_size: u32,
    /// `webhook.cancel_timeout` (NanoMQ): bound on one delivery's connect and write. Default
    /// 5000ms; a plain integer is **milliseconds** (NanoMQ's unit for this key).
    pub cancel_timeout: Duration,
    /// `webhook.events` (NanoMQ): the rules, in file order.
    pub events: Vec<WebhookRule>,
    /// `webhook.ssl {}`: TLS for an `https://` URL (NanoMQ parses but ignores it; Tern applies
    /// it).
    pub tls: Option<ClientTlsConfig>,
}

/// How the `payload` field of a webhook body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyEncoding {
    /// As text (`plain`).
    #[default]
    Plain,
    /// Standard padded base64 (`base64`).
    Base64,
    /// NanoMQ's base62 (`base62`).
    Base62,
}

/// One `{ event = "...", topic = "..." }` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRule {
    /// `event` (required).
    pub event: WebhookEvent,
    /// `topic`: an MQTT topic filter; `None` = any topic. NanoMQ applies it to
    /// `on_message_publish` only.
    pub topic: Option<String>,
}

/// The events a webhook rule can name (NanoMQ's twelve, case-insensitive, plus Tern's
/// `on_message_dropped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    /// `on_client_connect`.
    ClientConnect,
    /// `on_client_connack`.
    ClientConnack,
    /// `on_client_connected`.
    ClientConnected,
    /// `on_client_disconnected`.
    ClientDisconnected,
    /// `on_client_subscribe`.
    ClientSubscribe,
    /// `on_client_unsubscribe`.
    ClientUnsubscribe,
    /// `on_session_subscribed`.
    SessionSubscribed,
    /// `on_session_unsubscribed`.
    SessionUnsubscribed,
    /// `on_session_terminated`.
    SessionTerminated,
    /// `on_message_publish`.
    MessagePublish,
    /// `on_message_delivered`.
    MessageDelivered,
    /// `on_message_acked`.
    MessageAcked,
    /// `on_message_dropped` (Tern).
    MessageDropped,
}

impl WebhookEvent {
    /// Every event with its configuration name.
    pub const ALL: &'static [(&'static str, WebhookEvent)] = &[
        ("on_client_connect", Self::ClientConnect),
        ("on_client_connack", Self::ClientConnack),
        ("on_client_connected", Self::ClientConnected),
        ("on_client_disconnected", Self::ClientDisconnected),
        ("on_client_subscribe", Self::ClientSubscribe),
        ("on_client_unsubscribe", Self::ClientUnsubscribe),
        ("on_session_subscribed", Self::SessionSubscribed),
        ("on_session_unsubscribed", Self::SessionUnsubscribed),
        ("on_session_terminated", Self::SessionTerminated),
        ("on_message_publish", Self::MessagePublish),
        ("on_message_delivered", Self::MessageDelivered),
        ("on_message_acked", Self::MessageAcked),
        ("on_message_dropped", Self::MessageDropped),
    ];

    /// The configuration name, e.g. `on_message_publish`.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, e)| *e == self).map_or("", |(name, _)| name)
    }
}

pub(crate) fn read(r: &mut Reader<'_>) -> Option<WebhookConfig> {
    r.block("webhook")?;
    // `enable` is the NanoMQ 0.14–0.18 switch; honour an explicit `false`.
    if !r.bool("webhook.enable", true) {
        r.consume("webhook");
        return None;
    }
    let url = match r.non_empty("webhook.url") {
        Some(url) => {
            if let Err(reason) = validate_http_url(&url) {
                r.error("webhook.url", reason);
            }
            url
        }
        None => {
            if r.peek_text("webhook.url").is_none() {
                r.error(
                    "webhook.url",
                    "is required (the http:// or https:// URL events are posted to)",
                );
            }
            String::new()
        }
    };
    let headers = r
        .entries("webhook.headers")
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, Secret::new(value)))
        .collect();
    if r.has("webhook.body") {
        r.block("webhook.body");
    }
    let body_encoding = r.choice(
        "webhook.body.encoding",
        BodyEncoding::Plain,
        &[
            ("plain", BodyEncoding::Plain),
            ("base64", BodyEncoding::Base64),
            ("base62", BodyEncoding::Base62),
        ],
    );
    let cancel_timeout = match r.opt_duration("webhook.cancel_timeout", PlainUnit::Millis) {
        Some(d) if d.is_zero() => {
            r.error("webhook.cancel_timeout", "must be greater than 0");
            Duration::from_millis(5000)
        }
        Some(d) => d,
        None => Duration::from_millis(5000),
    };
    let mut events = Vec::new();
    if let Some(count) = r.list_len("webhook.events") {
        let names: Vec<&str> = WebhookEvent::ALL.iter().map(|(name, _)| *name).collect();
        for i in 0..count {
            let key = format!("webhook.events.{i}");
            if r.block(&key).is_none() {
                continue;
            }
            let event_key = format!("{key}.event");
            let event = match r.string(&event_key) {
                Some(name) => {
                    let wanted = name.trim().to_ascii_lowercase();
                    let found =
                        WebhookEvent::ALL.iter().find(|(n, _)| *n == wanted).map(|(_, e)| *e);
                    if found.is_none() {
                        let hint = keys::closest(&wanted, names.iter().copied())
                            .map(|k| format!("; did you mean {k}?"))
                            .unwrap_or_default();
                        r.error(&event_key, format!("unknown webhook event {name:?}{hint}"));
                    }
                    found
                }
                None => {
                    r.error(&event_key, "is required (e.g. on_message_publish)");
                    None
                }
            };
            let topic = r.non_empty(&format!("{key}.topic"));
            if let Some(event) = event {
                events.push(WebhookRule { event, topic });
            }
        }
    }
    if events.is_empty() && r.peek_text("webhook.url").is_some() {
        r.warn(format!("{}: webhook has no events; it sends nothing", r.location("webhook")));
    }
    Some(WebhookConfig {
        url,
        headers,
        body_encoding,
        pool_size: r.u32_in("webhook.pool_size", 32, 1, u32::MAX),
        cancel_timeout,
        events,
        tls: read_client_tls(r, "webhook.ssl"),
    })
}
