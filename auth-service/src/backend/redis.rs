//! Users and per-user ACLs held in Redis, in EMQX's default layout (configurable):
//!
//! - `HMGET mqtt_user:${username} password_hash salt is_superuser`: `password_hash` is a PHC /
//!   bcrypt string or plain text; with a `salt`, it is EMQX's legacy salted SHA-256 in hex
//!   (`sha256(salt + password)`, or `password + salt` with [`SaltPosition::Suffix`]);
//!   `is_superuser` is `1` / `true` for a superuser. A user without `password_hash` is unknown.
//! - `HGETALL mqtt_acl:${username}`: topic → `publish` | `subscribe` | `all` (EMQX: every entry
//!   allows), or a JSON object `{"action": "...", "permission": "allow"|"deny"}`. Deny entries are
//!   checked first. A topic nothing grants is not this backend's decision (`Ignore`).
//!
//! Both are read on every call, so changes apply at once in auth-service; brokers cannot preload
//! these rules (`acl_for` is `None`). Redis unreachable or slow (past `timeout`) is an error (the
//! chain's "unavailable" policy decides), never an allow.
//!
//! Brokers cache decisions, so a change in Redis must reach them too: [`RedisBackend::watch_changes`]
//! follows Redis keyspace notifications for the user and ACL keys (switching them on with
//! `CONFIG SET notify-keyspace-events` when they are off) and reports each change, which the
//! service turns into a revocation. While the notifications are not flowing (not yet subscribed,
//! connection lost, `CONFIG` refused by a managed Redis) the backend is not
//! [`cacheable`](Backend::cacheable), so brokers are told not to cache at all; when they flow again,
//! everything is revoked once, since changes may have been missed meanwhile.

use std::fmt;
use std::future::Future;
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;

use futures_util::StreamExt as _;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tern_acl::{Action, Permission, Rule, RuleAction, Who};

use super::acl_file::identity;
use super::{Authn, Authz, Backend, BackendError, BoxFuture, Client};
use crate::passwd::{self, Verifier};

const NAME: &str = "redis";

/// MQTT 5 CONNACK "Bad User Name or Password".
const BAD_CREDENTIALS: u8 = 0x86;

/// Where the salt goes in EMQX's legacy salted SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaltPosition {
    /// `sha256(salt + password)` (default).
    #[default]
    Prefix,
    /// `sha256(password + salt)`.
    Suffix,
}

/// The Redis backend's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db`, `rediss://…` or `redis+unix:///path`.
    pub url: String,
    /// Key of a user's hash; `${username}` and `${clientid}` are substituted. Default
    /// `mqtt_user:${username}`.
    pub user_key: String,
    /// Key of a user's ACL hash; `None` = no ACL in Redis. Default `mqtt_acl:${username}`.
    pub acl_key: Option<String>,
    /// Salt position of salted SHA-256 hashes. Default prefix.
    pub salt_position: SaltPosition,
    /// Bound on one Redis call (connecting included). Default 5s.
    pub timeout: Duration,
}

impl RedisSettings {
    /// Settings for `url` with EMQX's default key layout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user_key: "mqtt_user:${username}".into(),
            acl_key: Some("mqtt_acl:${username}".into()),
            salt_position: SaltPosition::Prefix,
            timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("user_key", &self.user_key)
            .field("acl_key", &self.acl_key)
            .field("salt_position", &self.salt_position)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The URL without its password.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:<redacted>@{host}{}", &rest[end..])
        }
        None => url.to_owned(),
    }
}

/// Users and ACLs in Redis.
pub struct RedisBackend {
    settings: RedisSettings,
    /// Reconnects by itself; cloned per call (it is a handle).
    conn: ConnectionManager,
    /// Bounds concurrent hash checks.
    verifier: Verifier,
    /// For the change watcher's own (pub/sub) connection.
    client: ::redis::Client,
    /// Whether keyspace notifications are flowing (see the module docs).
    watching: Arc<AtomicBool>,
}

/// What changed in Redis, as [`RedisBackend::watch_changes`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Anything may have changed (the notifications just started or restarted).
    All,
    /// The user hash or ACL hash of this username changed.
    Username(String),
    /// A key of this client id changed.
    ClientId(String),
}

/// Longest pause between attempts to (re)start the change watcher.
const WATCH_MAX_BACKOFF: Duration = Duration::from_secs(5);

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Prepares the connection; it is made on the first call (Redis may be down at start: calls
    /// then fail with `Unavailable` until it is back). Must run inside a tokio runtime. Fails on
    /// an invalid URL.
    pub fn new(settings: RedisSettings) -> Result<Self, BackendError> {
        let invalid = |reason: String| BackendError::Invalid { backend: NAME, reason };
        let client = ::redis::Client::open(settings.url.as_str())
            .map_err(|e| invalid(format!("invalid url {}: {e}", redact_url(&settings.url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| invalid(format!("cannot set up the connection: {e}")))?;
        Ok(Self {
            settings,
            conn,
            verifier: Verifier::default(),
            client,
            watching: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Follows changes to the user and ACL keys until the task is dropped, calling `on_change`
    /// with each one (and a reason for logs). Restarts after any failure with a capped backoff.
    pub async fn watch_changes(&self, on_change: impl Fn(Change, &str) + Send + Sync) {
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        loop {
            let result = self.watch_once(&on_change).await;
            let was_watching = self.watching.swap(false, Ordering::SeqCst);
            if was_watching {
                backoff = Duration::from_millis(100);
            }
            if let Err(error) = result {
                if was_watching || !warned {
                    tracing::warn!(%error, "Redis change notifications stopped; brokers will not cache Redis-backed decisions until they are back");
                    warned = true;
                } else {
                    tracing::debug!(%error, "Redis change notifications still unavailable");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(WATCH_MAX_BACKOFF);
        }
    }

    /// One subscription, from connecting to the connection breaking.
    async fn watch_once(&self, on_change: &impl Fn(Change, &str)) -> Result<(), BackendError> {
        self.enable_notifications().await?;
        let mut pubsub = self
            .call("opening the notification connection", self.client.get_async_pubsub())
            .await?;
        let templates = self.templates();
        for template in &templates {
            let pattern = format!("__keyspace@*__:{}*", glob_escape(template.prefix));
            self.call("subscribing to keyspace notifications", pubsub.psubscribe(pattern)).await?;
        }
        let (mut sink, mut stream) = pubsub.split();
        self.watching.store(true, Ordering::SeqCst);
        on_change(Change::All, "Redis change notifications (re)started");
        let mut ping = tokio::time::interval(self.settings.timeout.max(Duration::from_secs(1)));
        ping.reset();
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        return Err(BackendError::Unavailable {
                            backend: NAME,
                            reason: "the notification connection closed".into(),
                        });
                    };
                    let channel = message.get_channel_name();
                    let Some((_, key)) = channel.split_once("__:") else { continue };
                    let change = change_of(&templates, key);
                    on_change(change, &format!("Redis key {key} changed"));
                }
                _ = ping.tick() => {
                    let _: ::redis::Value = self
                        .call("pinging the notification connection", sink.ping())
                        .await?;
                }
            }
        }
    }

    /// Turns on keyspace notifications for every key class (`K` + `A`) unless they already are.
    async fn enable_notifications(&self) -> Result<(), BackendError> {
        let mut conn = self.conn.clone();
        // A map in RESP3, pairs in RESP2: both read as a map.
        let current: std::collections::HashMap<String, String> = self
            .call(
                "reading notify-keyspace-events",
                ::redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("notify-keyspace-events")
                    .query_async(&mut conn),
            )
            .await?;
        let flags = current.get("notify-keyspace-events").map(String::as_str).unwrap_or_default();
        let has = |c: char| flags.contains(c);
        let covered = has('K') && (has('A') || "g$hxe".chars().all(has));
        if covered {
            return Ok(());
        }
        let wanted = format!("{flags}KA");
        let set: ::redis::RedisResult<()> = tokio::time::timeout(
            self.settings.timeout,
            ::redis::cmd("CONFIG")
                .arg("SET")
                .arg("notify-keyspace-events")
                .arg(&wanted)
                .query_async(&mut conn),
        )
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("no answer").into()));
        set.map_err(|e| BackendError::Unavailable {
            backend: NAME,
            reason: format!(
                "keyspace notifications are off (notify-keyspace-events = {flags:?}) and \
                 CONFIG SET failed: {e}; set notify-keyspace-events to \"KA\" in Redis's configuration"
            ),
        })
    }

    /// The key templates whose changes matter.
    fn templates(&self) -> Vec<KeyTemplate<'_>> {
        std::iter::once(self.settings.user_key.as_str())
            .chain(self.settings.acl_key.as_deref())
            .map(KeyTemplate::parse)
            .collect()
    }

    /// Runs one Redis call under the timeout.
    async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(self.settings.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                Err(BackendError::Unavailable { backend: NAME, reason: format!("{what}: {e}") })
            }
            Err(_) => Err(BackendError::Unavailable {
                backend: NAME,
                reason: format!("{what}: no answer within {:?}", self.settings.timeout),
            }),
        }
    }
}

/// `template` with `${username}` and `${clientid}` substituted; `None` when it needs a username
/// the client does not have.
fn key(template: &str, client: &Client) -> Option<String> {
    let key = template.replace("${clientid}", &client.client_id);
    if key.contains("${username}") {
        Some(key.replace("${username}", client.username.as_deref()?))
    } else {
        Some(key)
    }
}

/// The ACL rules of one user's hash (deny entries first).
fn acl_rules(entries: Vec<(String, String)>) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::with_capacity(entries.len());
    for (topic, value) in entries {
        match acl_entry(&topic, &value) {
            Ok(rule) => rules.push(rule),
            // An entry we cannot read grants nothing; a deny we cannot read denies everything.
            Err(e) => {
                tracing::warn!(topic = %topic, reason = %e, "ignoring a malformed Redis ACL entry");
                if value.contains("deny") {
                    rules.push(Rule {
                        permit: Permission::Deny,
                        action: RuleAction::PubSub,
                        topics: vec![],
                        who: Who::Any,
                    });
                }
            }
        }
    }
    rules.sort_by_key(|r| r.permit == Permission::Allow);
    rules
}

fn acl_entry(topic: &str, value: &str) -> Result<Rule, String> {
    let action = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "publish" | "pub" => Ok(RuleAction::Publish),
        "subscribe" | "sub" => Ok(RuleAction::Subscribe),
        "all" | "pubsub" => Ok(RuleAction::PubSub),
        other => Err(format!("unknown action {other:?}")),
    };
    let (permit, action) = if value.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(value).map_err(|e| e.to_string())?;
        let permit = match v.get("permission").and_then(serde_json::Value::as_str) {
            None | Some("allow") => Permission::Allow,
            Some("deny") => Permission::Deny,
            Some(other) => return Err(format!("unknown permission {other:?}")),
        };
        (permit, action(v.get("action").and_then(serde_json::Value::as_str).unwrap_or("all"))?)
    } else {
        (Permission::Allow, action(value)?)
    };
    let conf = tern_config::AclRule {
        permit: tern_config::Permit::Allow,
        action: tern_config::AclAction::PubSub,
        topics: vec![topic.to_owned()],
        who: vec![],
    };
    Rule::from_config(&conf).map_err(|e| e.to_string())?;
    Ok(Rule { permit, action, topics: vec![topic.to_owned()], who: Who::Any })
}

fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn authenticate<'a>(
        &'a self,
        client: &'a Client,
    ) -> BoxFuture<'a, Result<Authn, BackendError>> {
        Box::pin(async move {
            if client.username.is_none() {
                return Ok(Authn::Ignore);
            }
            let Some(key) = key(&self.settings.user_key, client) else { return Ok(Authn::Ignore) };
            let mut conn = self.conn.clone();
            let fields: Vec<Option<String>> = self
                .call(
                    "reading the user",
                    ::redis::cmd("HMGET")
                        .arg(&key)
                        .arg(&["password_hash", "salt", "is_superuser"])
                        .query_async(&mut conn),
                )
                .await?;
            let mut fields = fields.into_iter();
            let (Some(stored), salt, superuser) =
                (fields.next().flatten(), fields.next().flatten(), fields.next().flatten())
            else {
                return Ok(Authn::Ignore);
            };
            let Some(password) = client.password.as_deref() else {
                return Ok(deny("no password"));
            };
            let suffix = self.settings.salt_position == SaltPosition::Suffix;
            let ok = match salt.filter(|s| !s.is_empty()) {
                Some(salt) => passwd::verify_salted_sha256(&stored, &salt, password, suffix),
                None => self.verifier.verify(&stored, password).await,
            };
            Ok(if ok {
                Authn::Allow { superuser: is_true(superuser.as_deref()) }
            } else {
                deny("wrong password")
            })
        })
    }

    fn authorize<'a>(
        &'a self,
        client: &'a Client,
        action: Action,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Authz, BackendError>> {
        Box::pin(async move {
            let Some(template) = &self.settings.acl_key else { return Ok(Authz::Ignore) };
            let Some(key) = key(template, client) else { return Ok(Authz::Ignore) };
            let mut conn = self.conn.clone();
            let entries: Vec<(String, String)> = self
                .call("reading the ACL", ::redis::cmd("HGETALL").arg(&key).query_async(&mut conn))
                .await?;
            let rules = acl_rules(entries);
            Ok(match tern_acl::evaluate(&rules, &identity(client), action, topic) {
                Some(Permission::Allow) => Authz::Allow,
                Some(Permission::Deny) => Authz::Deny,
                None => Authz::Ignore,
            })
        })
    }

    fn authorizes(&self) -> bool {
        self.settings.acl_key.is_some()
    }

    fn cacheable(&self) -> bool {
        self.watching.load(Ordering::SeqCst)
    }
}

/// A key template split around its placeholder: `mqtt_user:${username}` is prefix `mqtt_user:`,
/// placeholder `username`, suffix empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyTemplate<'a> {
    prefix: &'a str,
    /// `Some("username")` or `Some("clientid")`; `None` for a fixed key or several placeholders.
    placeholder: Option<&'a str>,
    suffix: &'a str,
}

impl<'a> KeyTemplate<'a> {
    fn parse(template: &'a str) -> Self {
        let Some(start) = template.find("${") else {
            return Self { prefix: template, placeholder: None, suffix: "" };
        };
        let prefix = &template[..start];
        let rest = &template[start + 2..];
        let Some(end) = rest.find('}') else {
            return Self { prefix, placeholder: None, suffix: "" };
        };
        let suffix = &rest[end + 1..];
        let placeholder = (!suffix.contains("${")).then_some(&rest[..end]);
        Self { prefix, placeholder, suffix }
    }
}

/// What a change of `key` means for cached decisions.
fn change_of(templates: &[KeyTemplate<'_>], key: &str) -> Change {
    for template in templates {
        let value =
            key.strip_prefix(template.prefix).and_then(|rest| rest.strip_suffix(template.suffix));
        match (template.placeholder, value) {
            (Some("username"), Some(value)) => return Change::Username(value.to_owned()),
            (Some("clientid"), Some(value)) => return Change::ClientId(value.to_owned()),
            _ => {}
        }
    }
    Change::All
}

/// `text` with Redis glob metacharacters escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn deny(reason: &str) -> Authn {
    Authn::Deny { reason_code: BAD_CREDENTIALS, reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let client =
            Client { client_id: "c1".into(), username: Some("u1".into()), ..Client::default() };
        assert_eq!(key("mqtt_user:${username}", &client).as_deref(), Some("mqtt_user:u1"));
        assert_eq!(key("acl:${clientid}:${username}", &client).as_deref(), Some("acl:c1:u1"));
        let anon = Client { client_id: "c1".into(), ..Client::default() };
        assert_eq!(key("mqtt_user:${username}", &anon), None);
        assert_eq!(key("acl:${clientid}", &anon).as_deref(), Some("acl:c1"));
    }

    #[test]
    fn acl_entries() {
        let rules = acl_rules(vec![
            ("a/#".into(), "publish".into()),
            ("b".into(), "subscribe".into()),
            ("c".into(), "all".into()),
            ("secret/#".into(), r#"{"action": "all", "permission": "deny"}"#.into()),
            ("bad/#/x".into(), "all".into()),
            ("d".into(), "write".into()),
        ]);
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].permit, Permission::Deny);
        let broken_deny =
            acl_rules(vec![("x".into(), r#"{"permission": "deny", "action": 1"#.into())]);
        assert_eq!(broken_deny[0].topics, Vec::<String>::new());
    }

    #[test]
    fn changed_keys() {
        let templates = [
            KeyTemplate::parse("mqtt_user:${username}"),
            KeyTemplate::parse("acl:${clientid}:rules"),
            KeyTemplate::parse("fixed"),
        ];
        assert_eq!(change_of(&templates, "mqtt_user:alice"), Change::Username("alice".into()));
        assert_eq!(change_of(&templates, "acl:dev-1:rules"), Change::ClientId("dev-1".into()));
        assert_eq!(change_of(&templates, "fixed"), Change::All);
        let both = KeyTemplate::parse("k:${clientid}:${username}");
        assert_eq!((both.prefix, both.placeholder), ("k:", None));
        assert_eq!(change_of(&[both], "k:c:u"), Change::All);
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn url_redaction() {
        assert_eq!(redact_url("redis://u:pw@h:6379/0"), "redis://u:<redacted>@h:6379/0");
        assert_eq!(redact_url("redis://:pw@h"), "redis://:<redacted>@h");
        assert_eq!(redact_url("redis+unix:///tmp/s"), "redis+unix:///tmp/s");
    }
}
