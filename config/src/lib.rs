//! Tern's configuration: one NanoMQ-compatible HOCON file (`nanomq.conf`, with its `include`d
//! password and ACL files) parsed into typed, validated structs that every Tern service reads
//! its own sections from.
//!
//! ```no_run
//! use std::path::Path;
//! use tern_config::{Env, load, resolve_conf_path};
//!
//! let env = Env::from_process();
//! let path = resolve_conf_path(None, &env).unwrap_or_else(|| "nanomq.conf".into());
//! match load(Path::new(&path), &env) {
//!     Ok(loaded) => {
//!         for warning in &loaded.warnings {
//!             eprintln!("warning: {warning}");
//!         }
//!         println!("max packet size: {}", loaded.config.mqtt.max_packet_size);
//!     }
//!     Err(e) => {
//!         eprintln!("{e}");
//!         std::process::exit(2);
//!     }
//! }
//! ```
//!
//! How a load works: the HOCON library parses and resolves the text (includes relative to the
//! working directory, as NanoMQ does); `source` records the line of every key and fails on a
//! missing include; environment overrides (`env`) are written into the tree; the typed
//! `reader` reads each section, converting NanoMQ's sizes and durations itself
//! (`units`) and recording every invalid value with its file, line and key; finally the keys
//! nobody read become warnings (NanoMQ settings Tern ignores, or typos). The configuration
//! reference is `config/README.md`.

mod auth;
mod cluster;
mod env;
mod error;
mod http_auth;
mod http_server;
mod keys;
mod listener;
mod log;
mod mqtt;
mod node;
mod reader;
mod secret;
mod services;
mod source;
mod units;
mod webhook;

use std::path::{Path, PathBuf};

use hocon::HoconValue;

pub use auth::{
    AclAction, AclRule, AclSource, AuthCacheConfig, AuthConfig, DenyAction, JwtAuthConfig,
    PasswordSource, Permit, RedisAuthConfig, SaltPosition, Who,
};
pub use cluster::{BrokerAdminConfig, GrpcTlsConfig, RedisConfig};
pub use env::Env;
pub use error::{ConfigError, Location, Problem};
pub use http_auth::{HttpAuthConfig, HttpAuthRequest, HttpMethod, PLACEHOLDERS};
pub use http_server::{HttpAuthType, HttpServerConfig};
pub use listener::{
    ClientTlsConfig, DEFAULT_WS_PATH, ListenerConfig, ListenerKind, TlsConfig, default_tcp_listener,
};
pub use log::{LogConfig, LogLevel, LogTarget};
pub use mqtt::{MAX_PACKET_SIZE_LIMIT, MqttConfig, Overflow, SharedStrategy};
pub use node::{NodeConfig, SysConfig, default_node_id};
pub use secret::Secret;
pub use services::{AuthServiceConfig, UnavailablePolicy, WebhookRelayConfig};
pub use units::{ByteSize, PlainUnit, format_duration, parse_duration};
pub use webhook::{BodyEncoding, DeliveryMode, WebhookConfig, WebhookEvent, WebhookRule};

use crate::reader::Reader;
use crate::source::SourceIndex;

/// The whole configuration. Each service reads its own sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `mqtt {}`: protocol limits (broker-core). Hot-reloadable.
    pub mqtt: MqttConfig,
    /// `listeners.*`, in file order. Without a `listeners` block: one TCP listener on
    /// 0.0.0.0:1883. With a `listeners` block, only the listeners it names (NanoMQ: no `tcp`
    /// block means no TCP). Restart to change.
    pub listeners: Vec<ListenerConfig>,
    /// `http_server {}`: the REST API (admin-api); the block's presence enables it.
    pub http_server: Option<HttpServerConfig>,
    /// `log {}`: every service.
    pub log: LogConfig,
    /// `auth {}`: auth-service and broker-core.
    pub auth: AuthConfig,
    /// `webhook {}`: webhook-relay; the block's presence enables it.
    pub webhook: Option<WebhookConfig>,
    /// `webhooks.<name> {}` (Tern): more webhook targets, each with its own URL, headers and
    /// rules, in file order.
    pub webhooks: Vec<WebhookConfig>,
    /// `sys {}` (Tern): periodic `$SYS` statistics.
    pub sys: SysConfig,
    /// `node {}` (Tern): this node's identity.
    pub node: NodeConfig,
    /// `auth_service {}` (Tern): where auth-service listens and how brokers reach it.
    pub auth_service: AuthServiceConfig,
    /// `broker_admin {}` (Tern): the BrokerAdmin gRPC server of broker nodes; the block's presence
    /// enables it.
    pub broker_admin: Option<BrokerAdminConfig>,
    /// `redis {}` (Tern): node registry and config store.
    pub redis: Option<RedisConfig>,
    /// `webhook_relay {}` (Tern): where webhook-relay listens, its outbox, how brokers reach it.
    pub webhook_relay: WebhookRelayConfig,
    /// The file this configuration was loaded from (`None` for defaults or [`parse_str`]).
    pub source: Option<PathBuf>,
}

impl Default for Config {
    /// The configuration of a file with no blocks.
    fn default() -> Self {
        Self {
            mqtt: MqttConfig::default(),
            listeners: vec![default_tcp_listener()],
            http_server: None,
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            webhook: None,
            webhooks: Vec::new(),
            sys: SysConfig::default(),
            node: NodeConfig::default(),
            auth_service: AuthServiceConfig::default(),
            broker_admin: None,
            redis: None,
            webhook_relay: WebhookRelayConfig::default(),
            source: None,
        }
    }
}

/// A loaded configuration and the warnings to print once (unknown keys, ignored NanoMQ
/// settings, values accepted with a caveat).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Human-readable warnings, each naming where it comes from.
    pub warnings: Vec<String>,
}

impl Config {
    /// Every webhook target: NanoMQ's `webhook {}` first, then `webhooks.<name> {}` in file
    /// order.
    pub fn webhook_targets(&self) -> impl Iterator<Item = &WebhookConfig> {
        self.webhook.iter().chain(&self.webhooks)
    }
}

/// Load `path`, resolving includes and relative paths (certificates, the log directory)
/// against the process's working directory, as NanoMQ does, and apply `env` overrides.
pub fn load(path: &Path, env: &Env) -> Result<Loaded, ConfigError> {
    let base_dir = std::env::current_dir()
        .map_err(|source| ConfigError::Read { path: PathBuf::from("."), source })?;
    load_in(path, &base_dir, env)
}

/// [`load`] with an explicit working directory for includes and relative paths (tests, and
/// launchers that run from elsewhere).
pub fn load_in(path: &Path, base_dir: &Path, env: &Env) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let mut loaded = parse_str(&text, &path.display().to_string(), base_dir, env)?;
    loaded.config.source = Some(path.to_path_buf());
    Ok(loaded)
}

/// Parse configuration text. `origin` names it in messages (usually the file name); includes and
/// relative paths are resolved against `base_dir`; `env` supplies the overrides (and `${VAR}`
/// substitutions).
pub fn parse_str(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: &Env,
) -> Result<Loaded, ConfigError> {
    let (mut root, mut index) = parse_tree(text, origin, base_dir, env)?;
    let applied = env::apply(&mut root, env, &mut index);
    let mut reader = Reader::new(&root, &index, base_dir);
    let config = Config {
        mqtt: mqtt::read(&mut reader),
        listeners: listener::read(&mut reader),
        http_server: http_server::read(&mut reader),
        log: log::read(&mut reader),
        auth: auth::read(&mut reader),
        webhook: webhook::read(&mut reader),
        webhooks: webhook::read_named(&mut reader),
        sys: node::read_sys(&mut reader),
        node: node::read_node(&mut reader),
        auth_service: services::read_auth_service(&mut reader),
        broker_admin: cluster::read_broker_admin(&mut reader),
        redis: cluster::read_redis(&mut reader),
        webhook_relay: services::read_webhook_relay(&mut reader),
        source: None,
    };
    let (problems, warnings) = reader.finish(applied.ignored);
    let mut problems: Vec<Problem> = applied.problems.into_iter().chain(problems).collect();
    sort_problems(&mut problems, origin);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(Loaded { config, warnings: applied.warnings.into_iter().chain(warnings).collect() })
}

/// Which configuration file to load: `--conf` (`cli`) first, then `NANOMQ_CONF_PATH`, then
/// `TERN_CONF`. `None` means none was given: the caller runs on [`Config::default`] (NanoMQ
/// would fall back to `/etc/nanomq.conf`; Tern does not read a file nobody named).
pub fn resolve_conf_path(cli: Option<&Path>, env: &Env) -> Option<PathBuf> {
    if let Some(path) = cli {
        return Some(path.to_path_buf());
    }
    ["NANOMQ_CONF_PATH", "TERN_CONF"]
        .iter()
        .find_map(|var| env.get(var).map(str::trim).filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// What a service binary loads: the file named by `--conf` (`cli`), `NANOMQ_CONF_PATH` or
/// `TERN_CONF` (see [`resolve_conf_path`]), or the defaults when none is named.
pub fn load_or_default(cli: Option<&Path>, env: &Env) -> Result<Loaded, ConfigError> {
    match resolve_conf_path(cli, env) {
        Some(path) => load(&path, env),
        None => Ok(Loaded { config: Config::default(), warnings: Vec::new() }),
    }
}

/// Read a NanoMQ ACL file (`rules = [ {...} ... ]`) on its own, e.g. to reload it after it
/// changed. Relative paths inside are resolved against the file's directory.
pub fn parse_acl_file(path: &Path) -> Result<Vec<AclRule>, ConfigError> {
    read_standalone(path, |r| auth::read_acl(r, ""))
}

/// Read a NanoMQ password file (`"user": "password"` lines) on its own, e.g. to reload it after
/// it changed.
pub fn parse_password_file(path: &Path) -> Result<Vec<(String, Secret)>, ConfigError> {
    read_standalone(path, |r| auth::read_passwords(r, ""))
}

fn read_standalone<T>(
    path: &Path,
    read: impl FnOnce(&mut Reader<'_>) -> T,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (root, index) = parse_tree(&text, &path.display().to_string(), &base_dir, &Env::new())?;
    let mut reader = Reader::new(&root, &index, &base_dir);
    let value = read(&mut reader);
    let (mut problems, _warnings) = reader.finish(Vec::new());
    sort_problems(&mut problems, &path.display().to_string());
    if problems.is_empty() { Ok(value) } else { Err(ConfigError::Invalid(problems)) }
}

/// Order problems as a reader of the files would meet them: the main file by line, then
/// included files, then environment variables.
fn sort_problems(problems: &mut [Problem], origin: &str) {
    problems.sort_by(|a, b| {
        let key = |p: &Problem| match &p.location {
            Location::File { file, line } => {
                (0, if file == origin { String::new() } else { file.clone() }, line.unwrap_or(0))
            }
            Location::Env { var } => (1, var.clone(), 0),
        };
        key(a).cmp(&key(b))
    });
}

/// Parse and resolve `text` into a tree, and index where its keys (and its includes' keys)
/// were written.
fn parse_tree(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: &Env,
) -> Result<(HoconValue, SourceIndex), ConfigError> {
    let options = hocon::ParseOptions::defaults()
        .with_base_dir(base_dir.to_path_buf())
        .with_env(env.to_hash_map())
        .with_origin_description(origin.to_string());
    let parsed = hocon::parse_string_with_options(text, options);
    // A syntax error in the main file comes first: the line index of broken text is useless.
    if let Err(hocon::HoconError::Parse(e)) = &parsed {
        return Err(ConfigError::Syntax {
            file: origin.to_string(),
            line: e.line,
            col: e.col,
            message: e.message.clone(),
        });
    }
    let mut index = SourceIndex::new(origin);
    index.walk_main(text, base_dir)?;
    let parsed = parsed.map_err(|e| hocon_error(e, origin, &index))?;
    let mut root = HoconValue::Object(Default::default());
    if let HoconValue::Object(map) = &mut root {
        for key in parsed.keys() {
            if let Some(value) = parsed.get(&quote_key(key)) {
                map.insert(key.to_string(), value.clone());
            }
        }
    }
    Ok((root, index))
}

/// A path expression selecting exactly the top-level key `key`.
fn quote_key(key: &str) -> String {
    format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

fn hocon_error(e: hocon::HoconError, origin: &str, index: &SourceIndex) -> ConfigError {
    match e {
        hocon::HoconError::Parse(e) => ConfigError::Syntax {
            file: origin.to_string(),
            line: e.line,
            col: e.col,
            message: e.message,
        },
        // Errors inside an included file carry that file's path.
        hocon::HoconError::Resolve(e) => match index.included_file_name(Path::new(&e.path)) {
            Some(file) => {
                ConfigError::Syntax { file, line: e.line, col: e.col, message: e.message }
            }
            None => ConfigError::Invalid(vec![Problem {
                location: Location::File { file: origin.to_string(), line: Some(e.line) },
                key: e.path,
                reason: e.message,
            }]),
        },
        other => ConfigError::Syntax {
            file: origin.to_string(),
            line: 1,
            col: 1,
            message: other.to_string(),
        },
    }
}
