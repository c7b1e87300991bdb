//! Environment variables: an explicit map (config is a value, never read from the process
//! behind the caller's back) and the overrides they apply on top of the file.
//!
//! Overrides are written into the parsed tree as text before the typed reader runs, so they go
//! through exactly the same validators as the file, and an invalid value is reported with the
//! variable's name instead of a file and line. NanoMQ's variables are applied first, then the
//! generic `TERN_<SECTION>__<KEY>` ones, so a `TERN_` variable wins.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use hocon::{HoconValue, ScalarValue};

use crate::error::{Location, Problem};
use crate::source::SourceIndex;

/// The environment variables a configuration is loaded with.
///
/// Build it with [`Env::from_process`] in `main`, or from pairs in tests:
/// `Env::from_iter([("NANOMQ_LOG_LEVEL", "debug")])`. `Debug` prints the names only, since
/// values may hold secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current process's environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Set `name` (builder style, for tests and launchers).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Set `name`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// All variables, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The map handed to the HOCON library for `${VAR}` substitutions.
    pub(crate) fn to_hash_map(&self) -> HashMap<String, String> {
        self.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self { vars: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

/// What a NanoMQ variable does.
#[derive(Clone, Copy)]
enum Action {
    /// Set this dotted key to the value.
    Set(&'static str),
    /// Set this dotted key to the value with a URL scheme (`nmq-tcp://`) stripped.
    SetAddress(&'static str),
    /// `SetAddress`, but only when the block exists (as `SetInBlock`).
    SetAddressInBlock(&'static str),
    /// Set the key only when its block (everything before the last dot) already exists or was
    /// enabled by an `…_ENABLE` variable; otherwise warn (NanoMQ does not enable a block
    /// because one of its settings is in the environment).
    SetInBlock(&'static str),
    /// `true` creates the block (enabling it), `false` removes it.
    Toggle(&'static str),
    /// `true` ensures the listener block exists; `false` sets its `enable = false`.
    ToggleListener(&'static str),
    /// A NanoMQ variable Tern does not use.
    Ignore,
}

/// NanoMQ's variables (NanoNNG `env.c`) and the keys they override. See the configuration
/// reference (`config/README.md`) for the table with units.
const NANOMQ_VARS: &[(&str, Action)] = &[
    ("NANOMQ_BROKER_URL", Action::SetAddress("listeners.tcp.bind")),
    ("NANOMQ_TCP_ENABLE", Action::ToggleListener("listeners.tcp")),
    ("NANOMQ_PROPERTY_SIZE", Action::Set("mqtt.property_size")),
    ("NANOMQ_MAX_PACKET_SIZE", Action::Set("mqtt.max_packet_size")),
    ("NANOMQ_CLIENT_MAX_PACKET_SIZE", Action::Set("mqtt.client_max_packet_size")),
    ("NANOMQ_MSQ_LEN", Action::Set("mqtt.max_mqueue_len")),
    ("NANOMQ_QOS_DURATION", Action::Set("mqtt.retry_interval")),
    ("NANOMQ_ALLOW_ANONYMOUS", Action::Set("auth.allow_anonymous")),
    ("NANOMQ_WEBSOCKET_ENABLE", Action::ToggleListener("listeners.ws")),
    ("NANOMQ_WEBSOCKET_URL", Action::SetAddressInBlock("listeners.ws.bind")),
    ("NANOMQ_WEBSOCKET_TLS_ENABLE", Action::ToggleListener("listeners.wss")),
    ("NANOMQ_WEBSOCKET_TLS_URL", Action::SetAddressInBlock("listeners.wss.bind")),
    ("NANOMQ_HTTP_SERVER_ENABLE", Action::Toggle("http_server")),
    ("NANOMQ_HTTP_SERVER_URL", Action::SetInBlock("http_server.ip_addr")),
    ("NANOMQ_HTTP_SERVER_PORT", Action::SetInBlock("http_server.port")),
    ("NANOMQ_HTTP_SERVER_PARALLEL", Action::SetInBlock("http_server.limit_conn")),
    ("NANOMQ_HTTP_SERVER_USERNAME", Action::SetInBlock("http_server.username")),
    ("NANOMQ_HTTP_SERVER_PASSWORD", Action::SetInBlock("http_server.password")),
    ("NANOMQ_HTTP_SERVER_AUTH_TYPE", Action::SetInBlock("http_server.auth_type")),
    ("NANOMQ_HTTP_SERVER_JWT_PUBLIC_KEYFILE", Action::SetInBlock("http_server.jwt.public.keyfile")),
    ("NANOMQ_HTTP_SERVER_JWT_PRIVATE_KEYFILE", Action::Ignore),
    ("NANOMQ_TLS_ENABLE", Action::ToggleListener("listeners.ssl")),
    ("NANOMQ_TLS_URL", Action::SetAddressInBlock("listeners.ssl.bind")),
    ("NANOMQ_TLS_CA_CERT_PATH", Action::SetInBlock("listeners.ssl.cacertfile")),
    ("NANOMQ_TLS_CERT_PATH", Action::SetInBlock("listeners.ssl.certfile")),
    ("NANOMQ_TLS_KEY_PATH", Action::SetInBlock("listeners.ssl.keyfile")),
    ("NANOMQ_TLS_KEY_PASSWORD", Action::SetInBlock("listeners.ssl.key_password")),
    ("NANOMQ_TLS_VERIFY_PEER", Action::SetInBlock("listeners.ssl.verify_peer")),
    ("NANOMQ_TLS_FAIL_IF_NO_PEER_CERT", Action::SetInBlock("listeners.ssl.fail_if_no_peer_cert")),
    ("NANOMQ_LOG_LEVEL", Action::Set("log.level")),
    ("NANOMQ_LOG_TO", Action::Set("log.to")),
    ("NANOMQ_LOG_DIR", Action::Set("log.dir")),
    ("NANOMQ_LOG_FILE", Action::Set("log.file")),
    ("NANOMQ_LOG_ROTATION_SIZE", Action::Set("log.rotation.size")),
    ("NANOMQ_LOG_ROTATION_COUNT", Action::Set("log.rotation.count")),
    ("NANOMQ_LOG_UDS_ADDR", Action::Ignore),
    ("NANOMQ_DAEMON", Action::Ignore),
    ("NANOMQ_NUM_TASKQ_THREAD", Action::Ignore),
    ("NANOMQ_MAX_TASKQ_THREAD", Action::Ignore),
    ("NANOMQ_PARALLEL", Action::Ignore),
    ("NANOMQ_MSG_PERSISTENCE", Action::Ignore),
    ("NANOMQ_VIN", Action::Ignore),
    ("NANOMQ_PID_FILE", Action::Ignore),
    ("NANOMQ_EXCHANGER_URL", Action::Ignore),
    // Read by `resolve_conf_path`, not an override.
    ("NANOMQ_CONF_PATH", Action::Ignore),
];

/// What applying the environment produced besides the modified tree.
#[derive(Debug, Default)]
pub(crate) struct EnvOutcome {
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    /// NanoMQ variables Tern ignores (for the single "ignored" warning).
    pub ignored: Vec<String>,
}

/// Apply `NANOMQ_*` and then `TERN_<SECTION>__<KEY>` overrides to `root`, recording in `index`
/// which keys each variable set.
pub(crate) fn apply(root: &mut HoconValue, env: &Env, index: &mut SourceIndex) -> EnvOutcome {
    let mut out = EnvOutcome::default();
    let had_listeners = lookup(root, "listeners").is_some();
    // Enable toggles first so `SetInBlock` sees blocks they create, whatever the names' order.
    let mut ordered: Vec<(&str, Action)> = NANOMQ_VARS.to_vec();
    ordered.sort_by_key(|(_, action)| {
        !matches!(action, Action::Toggle(_) | Action::ToggleListener(_))
    });
    for (var, action) in ordered {
        let Some(value) = env.get(var) else { continue };
        apply_nanomq(root, var, value, action, index, &mut out);
    }
    for (var, _) in env.iter() {
        if var.starts_with("NANOMQ_") && !NANOMQ_VARS.iter().any(|(known, _)| *known == var) {
            out.warnings.push(format!(
                "environment variable {var} is not a NanoMQ setting Tern knows; it is ignored"
            ));
        }
    }
    for (var, value) in env.iter() {
        let Some(rest) = var.strip_prefix("TERN_") else { continue };
        if !rest.contains("__") {
            continue;
        }
        let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if segments.iter().any(String::is_empty) {
            out.problems.push(Problem {
                location: Location::Env { var: var.to_string() },
                key: segments.join("."),
                reason: "is not of the form TERN_<SECTION>__<KEY> (an empty level between `__`)"
                    .to_string(),
            });
            continue;
        }
        let key = segments.join(".");
        set_path(root, &segments, text(value), var, &mut out);
        index.record_env(&key, var);
    }
    // A file without a `listeners` block has an implicit TCP listener; a variable that adds,
    // say, `listeners.ws` must not take it away (a `listeners` block without `tcp` means no TCP).
    if !had_listeners
        && let HoconValue::Object(top) = root
        && let Some(HoconValue::Object(listeners)) = top.get_mut("listeners")
        && !listeners.contains_key("tcp")
    {
        listeners.shift_insert(0, "tcp".to_string(), HoconValue::Object(Default::default()));
    }
    out
}

fn apply_nanomq(
    root: &mut HoconValue,
    var: &str,
    value: &str,
    action: Action,
    index: &mut SourceIndex,
    out: &mut EnvOutcome,
) {
    match action {
        Action::Set(key) => set_key(root, key, text(value), var, index, out),
        Action::SetAddress(key) => {
            set_key(root, key, text(strip_scheme(value)), var, index, out);
        }
        Action::SetInBlock(key) | Action::SetAddressInBlock(key) => {
            let block = key.rsplit_once('.').map_or(key, |(block, _)| block);
            let value = if matches!(action, Action::SetAddressInBlock(_)) {
                strip_scheme(value)
            } else {
                value
            };
            if lookup(root, block).is_some() {
                set_key(root, key, text(value), var, index, out);
            } else {
                out.warnings.push(format!(
                    "environment variable {var} is ignored: there is no `{block}` block (add it \
                     to the file or enable it with its ..._ENABLE variable)"
                ));
            }
        }
        Action::Toggle(block) | Action::ToggleListener(block) => match parse_bool(value) {
            Some(true) => {
                if lookup(root, block).is_none() {
                    set_key(root, block, HoconValue::Object(Default::default()), var, index, out);
                }
                if matches!(action, Action::ToggleListener(_)) {
                    set_key(root, &format!("{block}.enable"), text("true"), var, index, out);
                }
            }
            Some(false) => {
                if matches!(action, Action::ToggleListener(_)) {
                    if lookup(root, block).is_some() {
                        set_key(root, &format!("{block}.enable"), text("false"), var, index, out);
                    }
                } else {
                    remove_path(root, block);
                }
            }
            None => out.problems.push(Problem {
                location: Location::Env { var: var.to_string() },
                key: block.to_string(),
                reason: format!("{value:?} is not a boolean (use true or false)"),
            }),
        },
        Action::Ignore => {
            if var != "NANOMQ_CONF_PATH" {
                out.ignored.push(format!("{var} (environment)"));
            }
        }
    }
}

/// Booleans as NanoMQ's variables spell them.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `nmq-tcp://0.0.0.0:1883` → `0.0.0.0:1883` (NanoMQ's variables carry its internal URLs).
fn strip_scheme(value: &str) -> &str {
    value.split_once("://").map_or(value, |(_, rest)| rest)
}

fn text(value: &str) -> HoconValue {
    HoconValue::Scalar(ScalarValue::string(value.to_string()))
}

fn set_key(
    root: &mut HoconValue,
    key: &str,
    value: HoconValue,
    var: &str,
    index: &mut SourceIndex,
    out: &mut EnvOutcome,
) {
    let segments: Vec<String> = key.split('.').map(String::from).collect();
    set_path(root, &segments, value, var, out);
    index.record_env(key, var);
}

/// Set `segments` in `root`, creating objects on the way; a scalar in the way is an error
/// reported against the variable.
fn set_path(
    root: &mut HoconValue,
    segments: &[String],
    value: HoconValue,
    var: &str,
    out: &mut EnvOutcome,
) {
    let mut node = root;
    for (depth, segment) in segments.iter().enumerate() {
        let HoconValue::Object(map) = node else {
            out.problems.push(Problem {
                location: Location::Env { var: var.to_string() },
                key: segments.join("."),
                reason: format!(
                    "cannot be set: `{}` is a value, not a block",
                    segments[..depth].join(".")
                ),
            });
            return;
        };
        if depth + 1 == segments.len() {
            map.insert(segment.clone(), value);
            return;
        }
        let child =
            map.entry(segment.clone()).or_insert_with(|| HoconValue::Object(Default::default()));
        if child.is_null() {
            *child = HoconValue::Object(Default::default());
        }
        node = child;
    }
}

fn remove_path(root: &mut HoconValue, key: &str) {
    let segments: Vec<&str> = key.split('.').collect();
    let Some((last, parents)) = segments.split_last() else { return };
    let mut node = root;
    for segment in parents {
        match node {
            HoconValue::Object(map) => match map.get_mut(*segment) {
                Some(child) => node = child,
                None => return,
            },
            _ => return,
        }
    }
    if let HoconValue::Object(map) = node {
        map.shift_remove(*last);
    }
}

fn lookup<'a>(root: &'a HoconValue, key: &str) -> Option<&'a HoconValue> {
    key.split('.').try_fold(root, |node, segment| node.as_object()?.get(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_values() {
        let env = Env::from_iter([("NANOMQ_HTTP_SERVER_PASSWORD", "s3cret")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("NANOMQ_HTTP_SERVER_PASSWORD"));
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn strips_nanomq_schemes() {
        assert_eq!(strip_scheme("nmq-ws://0.0.0.0:8083/mqtt"), "0.0.0.0:8083/mqtt");
        assert_eq!(strip_scheme("0.0.0.0:1883"), "0.0.0.0:1883");
    }
}
