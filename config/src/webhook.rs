//! `webhook {}` (NanoMQ's single target) and `webhooks.<name> {}` (Tern's named targets): which
//! broker events webhook-relay posts where, and what counts as delivered. A block's presence
//! enables it.

use std::time::Duration;

use crate::http_auth::validate_http_url;
use crate::keys;
use crate::listener::{ClientTlsConfig, read_client_tls};
use crate::reader::Reader;
use crate::secret::Secret;
use crate::units::PlainUnit;

/// One webhook target: NanoMQ's `webhook {}` block or one of Tern's `webhooks.<name> {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The target's name: `webhook` for NanoMQ's block, `<name>` for `webhooks.<name>`. Pending
    /// deliveries in the relay's outbox are keyed by it.
    pub name: String,
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
    /// `delivery` (Tern): what counts as delivered. Default `sent` for NanoMQ's `webhook {}`
    /// (receivers written for NanoMQ need not answer), `response` for `webhooks.<name>`.
    pub delivery: DeliveryMode,
    /// `max_age` (Tern): how long an event is retried before it becomes a dead letter. Default
    /// 24h.
    pub max_age: Duration,
    /// `retry.initial` (Tern): first retry delay, doubled per attempt with jitter. Default 1s.
    pub retry_initial: Duration,
    /// `retry.max` (Tern): longest delay between two attempts. Default 1m.
    pub retry_max: Duration,
}

/// What counts as a delivered webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// A 2xx answer. Timeouts, 5xx, 408 and 429 are retried; other answers are dead letters.
    Response,
    /// The request was written in full (NanoMQ's behaviour). Only connection and write failures
    /// are retried; the answer, if any, is ignored.
    Sent,
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

/// NanoMQ's `webhook {}` block (delivery `sent` by default).
pub(crate) fn read(r: &mut Reader<'_>) -> Option<WebhookConfig> {
    read_target(r, "webhook", "webhook", DeliveryMode::Sent)
}

/// Tern's `webhooks.<name> {}` blocks, in file order (delivery `response` by default).
pub(crate) fn read_named(r: &mut Reader<'_>) -> Vec<WebhookConfig> {
    let Some(names) = r.block("webhooks") else { return Vec::new() };
    let mut targets = Vec::new();
    for name in names {
        let key = format!("webhooks.{name}");
        if name == "webhook" || name.contains(['/', '+', '#']) {
            r.error(&key, "target names must not be `webhook` (NanoMQ's block) or contain / + #");
        }
        if let Some(target) = read_target(r, &key, &name, DeliveryMode::Response) {
            targets.push(target);
        }
    }
    targets
}

fn read_target(
    r: &mut Reader<'_>,
    prefix: &str,
    name: &str,
    default_delivery: DeliveryMode,
) -> Option<WebhookConfig> {
    r.block(prefix)?;
    let k = |key: &str| format!("{prefix}.{key}");
    // `enable` is the NanoMQ 0.14–0.18 switch; honour an explicit `false`.
    if !r.bool(&k("enable"), true) {
        r.consume(prefix);
        return None;
    }
    let url = match r.non_empty(&k("url")) {
        Some(url) => {
            if let Err(reason) = validate_http_url(&url) {
                r.error(&k("url"), reason);
            }
            url
        }
        None => {
            if r.peek_text(&k("url")).is_none() {
                r.error(
                    &k("url"),
                    "is required (the http:// or https:// URL events are posted to)",
                );
            }
            String::new()
        }
    };
    let headers = r
        .entries(&k("headers"))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name, Secret::new(value)))
        .collect();
    if r.has(&k("body")) {
        r.block(&k("body"));
    }
    let body_encoding = r.choice(
        &k("body.encoding"),
        BodyEncoding::Plain,
        &[
            ("plain", BodyEncoding::Plain),
            ("base64", BodyEncoding::Base64),
            ("base62", BodyEncoding::Base62),
        ],
    );
    let cancel_timeout = positive(r, &k("cancel_timeout"), Duration::from_millis(5000));
    let mut events = Vec::new();
    if let Some(count) = r.list_len(&k("events")) {
        let names: Vec<&str> = WebhookEvent::ALL.iter().map(|(name, _)| *name).collect();
        for i in 0..count {
            let key = format!("{prefix}.events.{i}");
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
            let topic_key = format!("{key}.topic");
            let topic = r.non_empty(&topic_key);
            if let Some(filter) = &topic
                && let Err(reason) = validate_filter(filter)
            {
                r.error(&topic_key, format!("{filter:?} is not a valid topic filter: {reason}"));
            }
            if let Some(event) = event {
                events.push(WebhookRule { event, topic });
            }
        }
    }
    if events.is_empty() && r.peek_text(&k("url")).is_some() {
        r.warn(format!("{}: {prefix} has no events; it sends nothing", r.location(prefix)));
    }
    let delivery = r.choice(
        &k("delivery"),
        default_delivery,
        &[("response", DeliveryMode::Response), ("sent", DeliveryMode::Sent)],
    );
    let max_age = positive(r, &k("max_age"), Duration::from_secs(24 * 3600));
    if r.has(&k("retry")) {
        r.block(&k("retry"));
    }
    let retry_initial = positive(r, &k("retry.initial"), Duration::from_secs(1));
    let retry_max = positive(r, &k("retry.max"), Duration::from_secs(60));
    if retry_max < retry_initial {
        r.error(&k("retry.max"), "must not be less than retry.initial");
    }
    Some(WebhookConfig {
        name: name.to_string(),
        url,
        headers,
        body_encoding,
        pool_size: r.u32_in(&k("pool_size"), 32, 1, 4096),
        cancel_timeout,
        events,
        tls: read_client_tls(r, &k("ssl")),
        delivery,
        max_age,
        retry_initial,
        retry_max,
    })
}

/// A duration that must be greater than zero (a plain integer is milliseconds for
/// `cancel_timeout`, NanoMQ's unit, and seconds otherwise).
fn positive(r: &mut Reader<'_>, key: &str, default: Duration) -> Duration {
    let plain =
        if key.ends_with("cancel_timeout") { PlainUnit::Millis } else { PlainUnit::Seconds };
    match r.opt_duration(key, plain) {
        Some(d) if d.is_zero() => {
            r.error(key, "must be greater than 0");
            default
        }
        Some(d) => d,
        None => default,
    }
}

/// Checks an MQTT topic filter: `#` only last and alone in its level, `+` alone in its level.
fn validate_filter(filter: &str) -> Result<(), &'static str> {
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("`#` must be the last level, on its own");
        }
        if level.contains('+') && *level != "+" {
            return Err("`+` must be a whole level");
        }
    }
    Ok(())
}
