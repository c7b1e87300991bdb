//! `auth {}`: anonymous access, the password list, ACL rules, the decision cache and HTTP auth,
//! read by auth-service (rules, users, HTTP auth) and broker-core (cache, deny action). Users,
//! rules and the cache settings are hot-reloadable; the password and ACL files can be reloaded
//! alone with [`crate::parse_password_file`] and [`crate::parse_acl_file`].

use std::path::PathBuf;
use std::time::Duration;

use crate::http_auth::{self, HttpAuthConfig};
use crate::keys;
use crate::reader::{Reader, join};
use crate::secret::Secret;
use crate::units::PlainUnit;

/// The `auth {}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// `auth.allow_anonymous` (NanoMQ): let clients connect without credentials. Default true.
    pub allow_anonymous: bool,
    /// `auth.no_match` (NanoMQ): decision when no ACL rule matches (`allow`/`deny`). Default
    /// `allow`.
    pub no_match: Permit,
    /// `auth.deny_action` (NanoMQ): what a denied publish does (`ignore`/`disconnect`). Default
    /// `ignore`.
    pub deny_action: DenyAction,
    /// `auth.cache {}` (in NanoMQ's docs, unused by NanoMQ): Tern's per-client authorization
    /// decision cache in broker-core.
    pub cache: AuthCacheConfig,
    /// `auth.password` (NanoMQ): users, usually `{include "nanomq_pwd.conf"}`. `None` = no
    /// password list.
    pub password: Option<PasswordSource>,
    /// `auth.acl` (NanoMQ): ACL rules, usually `{include "nanomq_acl.conf"}`. `None` = no ACL
    /// (everything allowed, whatever `no_match` says — NanoMQ's behaviour).
    pub acl: Option<AclSource>,
    /// `auth.http_auth {}` (NanoMQ): HTTP auth requests. `None` = no HTTP auth.
    pub http_auth: Option<HttpAuthConfig>,
    /// `auth.jwt {}` (Tern): JWTs in the password field. `None` = off.
    pub jwt: Option<JwtAuthConfig>,
    /// `auth.redis {}` (Tern): users and ACLs in Redis. `None` = off.
    pub redis: Option<RedisAuthConfig>,
}

/// `auth.jwt {}` (Tern, EMQX's key names): verify a JWT sent as the MQTT password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthConfig {
    /// `secret`: HMAC key (HS256/384/512). Exactly one of `secret` and `public_key`.
    pub secret: Option<Secret>,
    /// `secret_base64_encoded`: the secret is written in base64. Default false.
    pub secret_base64_encoded: bool,
    /// `public_key`: PEM file of an RSA or EC public key (RS*/PS*/ES*).
    pub public_key: Option<PathBuf>,
    /// `issuer`: required `iss`.
    pub issuer: Option<String>,
    /// `audience`: required `aud`.
    pub audience: Option<String>,
    /// `require_exp`: refuse tokens without `exp`. Default false (`exp` is honoured when present).
    pub require_exp: bool,
    /// `leeway`: clock skew tolerated on `exp`/`nbf`. Default 0s.
    pub leeway: Duration,
    /// `username_claim`: a claim that must equal the username.
    pub username_claim: Option<String>,
    /// `clientid_claim`: a claim that must equal the client id.
    pub clientid_claim: Option<String>,
    /// `superuser_claim`: boolean claim making a superuser. Default `is_superuser`.
    pub superuser_claim: String,
    /// `acl_claim`: claim holding the client's ACL (EMQX 4 or 5 shape). Default `acl`.
    pub acl_claim: String,
}

/// Where the salt goes in legacy salted SHA-256 password hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltPosition {
    /// `sha256(salt + password)`.
    Prefix,
    /// `sha256(password + salt)`.
    Suffix,
}

/// `auth.redis {}` (Tern, EMQX's default layout): users and per-user ACLs in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAuthConfig {
    /// `url`: `redis://[user:password@]host:port/db` (secret: may hold a password).
    pub url: Secret,
    /// `user_key`: hash of a user (`password_hash`, `salt`, `is_superuser`). Default
    /// `mqtt_user:${username}`.
    pub user_key: String,
    /// `acl_key`: hash topic -> publish|subscribe|all. Default `mqtt_acl:${username}`; `""` = none.
    pub acl_key: Option<String>,
    /// `salt_position`: `prefix` (default) or `suffix`.
    pub salt_position: SaltPosition,
    /// `timeout`: bound on one Redis call. Default 5s.
    pub timeout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            no_match: Permit::Allow,
            deny_action: DenyAction::Ignore,
            cache: AuthCacheConfig::default(),
            password: None,
            acl: None,
            http_auth: None,
            jwt: None,
            redis: None,
        }
    }
}

/// `auth.cache {}`: broker-core's cache of authorization decisions per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCacheConfig {
    /// `auth.cache.max_size`: decisions cached per client. Default 32; 0 turns the cache off.
    pub max_size: u32,
    /// `auth.cache.ttl`: how long a decision is reused. Default 1m; a plain integer is seconds.
    pub ttl: Duration,
}

impl Default for AuthCacheConfig {
    fn default() -> Self {
        Self { max_size: 32, ttl: Duration::from_secs(60) }
    }
}

/// The password list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PasswordSource {
    /// `username → password` in file order (plain text, as NanoMQ stores them).
    pub entries: Vec<(String, Secret)>,
    /// The included file the entries came from, to watch and reload; `None` when written
    /// inline.
    pub file: Option<PathBuf>,
}

/// The ACL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclSource {
    /// The rules in file order; the first match decides.
    pub rules: Vec<AclRule>,
    /// The included file the rules came from, to watch and reload; `None` when written inline.
    pub file: Option<PathBuf>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Permit {
    /// `allow`.
    #[default]
    Allow,
    /// `deny`.
    Deny,
}

/// What a denied publish does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenyAction {
    /// `ignore`: drop the message and keep the connection.
    #[default]
    Ignore,
    /// `disconnect`: disconnect the client.
    Disconnect,
}

/// Which operation an ACL rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AclAction {
    /// `publish`.
    Publish,
    /// `subscribe`.
    Subscribe,
    /// `pubsub` (the default).
    #[default]
    PubSub,
}

/// One ACL rule, as written (NanoMQ's `nanomq_acl.conf` format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// `permit` (required): `allow` or `deny`.
    pub permit: Permit,
    /// `action`: default `pubsub`.
    pub action: AclAction,
    /// `topics`: topic filters, with NanoMQ's `@` (exact) prefix and `${clientid}` /
    /// `${username}` placeholders kept as written. Empty = any topic (the key was absent).
    pub topics: Vec<String>,
    /// Every who-selector written on the rule, in NanoMQ's precedence order (`ipaddr`,
    /// `ipaddrs`, `username`, `clientid`, `and`, `or`). Empty = everyone. NanoMQ uses only the
    /// first one; the auth service decides Tern's semantics. A value of `"#"` reads as
    /// [`Who::Any`].
    pub who: Vec<Who>,
}

/// Whom an ACL rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Anyone (a selector whose value is `"#"`).
    Any,
    /// `username`.
    Username(String),
    /// `clientid`.
    ClientId(String),
    /// `ipaddr`: an exact address.
    IpAddr(String),
    /// `ipaddrs`: a list of exact addresses (NanoMQ parses but never matches these).
    IpAddrs(Vec<String>),
    /// `and`: all of these.
    And(Vec<Who>),
    /// `or`: any of these.
    Or(Vec<Who>),
}

/// The fields an ACL rule may have. Anything else is an error: a misspelt selector would
/// silently make the rule apply to everyone.
const RULE_FIELDS: &[&str] =
    &["permit", "action", "topics", "username", "clientid", "ipaddr", "ipaddrs", "and", "or"];

pub(crate) fn read(r: &mut Reader<'_>) -> AuthConfig {
    let d = AuthConfig::default();
    if r.has("auth") && r.block("auth").is_none() {
        return d;
    }
    let cache_default = AuthCacheConfig::default();
    if r.has("auth.cache") {
        r.block("auth.cache");
    }
    let password = if r.has("auth.password") {
        let entries = read_passwords(r, "auth.password");
        Some(PasswordSource { entries, file: r.include_for("auth.password") })
    } else {
        None
    };
    let acl = if r.has("auth.acl") {
        let rules = read_acl(r, "auth.acl");
        Some(AclSource { rules, file: r.include_for("auth.acl") })
    } else {
        None
    };
    AuthConfig {
        allow_anonymous: r.bool("auth.allow_anonymous", d.allow_anonymous),
        no_match: r.choice(
            "auth.no_match",
            d.no_match,
            &[("allow", Permit::Allow), ("deny", Permit::Deny)],
        ),
        deny_action: r.choice(
            "auth.deny_action",
            d.deny_action,
            &[("ignore", DenyAction::Ignore), ("disconnect", DenyAction::Disconnect)],
        ),
        cache: AuthCacheConfig {
            max_size: r.u32_in("auth.cache.max_size", cache_default.max_size, 0, u32::MAX),
            ttl: r.duration("auth.cache.ttl", cache_default.ttl, PlainUnit::Seconds),
        },
        password,
        acl,
        http_auth: http_auth::read(r),
        jwt: read_jwt(r),
        redis: read_redis(r),
    }
}

fn read_jwt(r: &mut Reader<'_>) -> Option<JwtAuthConfig> {
    if !r.has("auth.jwt") || r.block("auth.jwt").is_none() {
        return None;
    }
    let secret = r.non_empty("auth.jwt.secret").map(Secret::new);
    let has_public_key = r.has("auth.jwt.public_key");
    let public_key = r.existing_file("auth.jwt.public_key", "public key");
    if secret.is_some() == has_public_key {
        r.error("auth.jwt", "needs exactly one of secret and public_key");
    }
    Some(JwtAuthConfig {
        secret,
        secret_base64_encoded: r.bool("auth.jwt.secret_base64_encoded", false),
        public_key,
        issuer: r.non_empty("auth.jwt.issuer"),
        audience: r.non_empty("auth.jwt.audience"),
        require_exp: r.bool("auth.jwt.require_exp", false),
        leeway: r.duration("auth.jwt.leeway", Duration::ZERO, PlainUnit::Seconds),
        username_claim: r.non_empty("auth.jwt.username_claim"),
        clientid_claim: r.non_empty("auth.jwt.clientid_claim"),
        superuser_claim: r
            .non_empty("auth.jwt.superuser_claim")
            .unwrap_or_else(|| "is_superuser".into()),
        acl_claim: r.non_empty("auth.jwt.acl_claim").unwrap_or_else(|| "acl".into()),
    })
}

fn read_redis(r: &mut Reader<'_>) -> Option<RedisAuthConfig> {
    if !r.has("auth.redis") || r.block("auth.redis").is_none() {
        return None;
    }
    let url = match r.non_empty("auth.redis.url") {
        Some(url)
            if url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://") =>
        {
            url
        }
        Some(_) => {
            r.error("auth.redis.url", "must start with redis://, rediss:// or redis+unix://");
            String::new()
        }
        None => {
            r.error("auth.redis.url", "is required");
            String::new()
        }
    };
    let acl_key = match r.string("auth.redis.acl_key") {
        Some(key) if key.is_empty() => None,
        Some(key) => Some(key),
        None => Some("mqtt_acl:${username}".into()),
    };
    Some(RedisAuthConfig {
        url: Secret::new(url),
        user_key: r
            .non_empty("auth.redis.user_key")
            .unwrap_or_else(|| "mqtt_user:${username}".into()),
        acl_key,
        salt_position: r.choice(
            "auth.redis.salt_position",
            SaltPosition::Prefix,
            &[("prefix", SaltPosition::Prefix), ("suffix", SaltPosition::Suffix)],
        ),
        timeout: r.duration("auth.redis.timeout", Duration::from_secs(5), PlainUnit::Seconds),
    })
}

/// The `username = password` entries of the block at `key`.
pub(crate) fn read_passwords(r: &mut Reader<'_>, key: &str) -> Vec<(String, Secret)> {
    let entries = r.entries(key).unwrap_or_default();
    let mut out: Vec<(String, Secret)> = Vec::with_capacity(entries.len());
    for (user, password) in entries {
        if user.is_empty() {
            r.error(key, "a user name must not be empty");
            continue;
        }
        out.push((user, Secret::new(password)));
    }
    out
}

/// The ACL block at `key` (`auth.acl`, or `""` for a standalone file): `rules = [ ... ]` and
/// nothing else. Another key is an error, not a warning: `rulez = [...]` would otherwise leave
/// an ACL with no rules, where `no_match` decides everything.
pub(crate) fn read_acl(r: &mut Reader<'_>, key: &str) -> Vec<AclRule> {
    let Some(fields) = r.block(key) else { return Vec::new() };
    for field in fields {
        if field != "rules" {
            let field_key = join(key, &field);
            r.consume(&field_key);
            r.error(&field_key, "unknown key in an ACL (it holds `rules = [ ... ]` only)");
        }
    }
    read_rules(r, &join(key, "rules"))
}

/// The ACL rules of the list at `key`.
fn read_rules(r: &mut Reader<'_>, key: &str) -> Vec<AclRule> {
    let Some(count) = r.list_len(key) else { return Vec::new() };
    let mut rules = Vec::with_capacity(count);
    for i in 0..count {
        if let Some(rule) = read_rule(r, &format!("{key}.{i}")) {
            rules.push(rule);
        }
    }
    rules
}

fn read_rule(r: &mut Reader<'_>, key: &str) -> Option<AclRule> {
    let fields = r.block(key)?;
    for field in &fields {
        if !RULE_FIELDS.contains(&field.as_str()) {
            let hint = keys::closest(field, RULE_FIELDS.iter().copied())
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            let field_key = format!("{key}.{field}");
            r.consume(&field_key);
            let quoted: Vec<String> = RULE_FIELDS.iter().map(|f| format!("{f:?}")).collect();
            let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
            r.error(
                &field_key,
                format!("unknown ACL rule field {field:?} (use {}){hint}", keys::one_of(&quoted)),
            );
        }
    }
    let permit_key = format!("{key}.permit");
    let permit = if r.has(&permit_key) {
        r.opt_choice(&permit_key, &[("allow", Permit::Allow), ("deny", Permit::Deny)])
    } else {
        r.error(&permit_key, "is required (allow or deny)");
        None
    };
    let action = r.choice(
        &format!("{key}.action"),
        AclAction::PubSub,
        &[
            ("publish", AclAction::Publish),
            ("subscribe", AclAction::Subscribe),
            ("pubsub", AclAction::PubSub),
        ],
    );
    let topics_key = format!("{key}.topics");
    let topics = match r.strings(&topics_key) {
        Some(topics) if topics.is_empty() => {
            r.error(&topics_key, "must not be empty (leave `topics` out to match any topic)");
            Vec::new()
        }
        Some(topics) => topics,
        None => Vec::new(),
    };
    let mut who = Vec::new();
    if let Some(ip) = r.string(&format!("{key}.ipaddr")) {
        who.push(selector(ip, Who::IpAddr));
    }
    if let Some(ips) = r.strings(&format!("{key}.ipaddrs")) {
        who.push(Who::IpAddrs(ips));
    }
    if let Some(user) = r.string(&format!("{key}.username")) {
        who.push(selector(user, Who::Username));
    }
    if let Some(client) = r.string(&format!("{key}.clientid")) {
        who.push(selector(client, Who::ClientId));
    }
    if let Some(all) = read_combination(r, &format!("{key}.and")) {
        who.push(Who::And(all));
    }
    if let Some(any) = read_combination(r, &format!("{key}.or")) {
        who.push(Who::Or(any));
    }
    Some(AclRule { permit: permit?, action, topics, who })
}

/// `"#"` means anyone.
fn selector(value: String, make: fn(String) -> Who) -> Who {
    if value == "#" { Who::Any } else { make(value) }
}

/// The list of `{username|clientid|ipaddr = …}` objects of an `and` / `or` selector.
fn read_combination(r: &mut Reader<'_>, key: &str) -> Option<Vec<Who>> {
    let count = r.list_len(key)?;
    if count == 0 {
        r.error(key, "must list at least one {username|clientid|ipaddr = ...} selector");
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let item = format!("{key}.{i}");
        let Some(fields) = r.block(&item) else { continue };
        let before = out.len();
        for field in fields {
            let field_key = format!("{item}.{field}");
            match field.as_str() {
                "username" => out.extend(r.string(&field_key).map(|v| selector(v, Who::Username))),
                "clientid" => out.extend(r.string(&field_key).map(|v| selector(v, Who::ClientId))),
                "ipaddr" => out.extend(r.string(&field_key).map(|v| selector(v, Who::IpAddr))),
                _ => {
                    r.consume(&field_key);
                    r.error(
                        &field_key,
                        format!("unknown selector {field:?} (use username, clientid or ipaddr)"),
                    );
                }
            }
        }
        if out.len() == before {
            r.error(&item, "needs one of username, clientid or ipaddr");
        }
    }
    Some(out)
}
