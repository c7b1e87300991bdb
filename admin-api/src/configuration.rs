//! Configuration through the API: `GET/POST /configuration[/<section>]`, `GET/POST /reload` and
//! `POST /config_update`.
//!
//! Writes are validated with the same parser the services use (tern-config), merged into the
//! stored section (objects key by key, arrays replaced) and written to the config store with a new
//! version; every service re-reads and applies what is hot (the store tells them). NanoMQ rewrote
//! its file and needed a restart; here the change is live. When the store (Redis) is down,
//! writes answer 503 and services keep their last good configuration.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, Request, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tern_config_store::{Applied, HOT_SECTIONS, StoreError, merge_json};

use crate::{
    AppState,
    body::{JsonBody, raw_body},
    clients::Envelope,
    error::{ApiError, ApiResult, Code},
};

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(_) => {
            tracing::warn!(error = %e, "config store unavailable; write refused");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::WriteConfigFailed,
                "the configuration store is unavailable; nothing was changed",
            )
        }
        StoreError::Corrupt { .. } => {
            tracing::error!(error = %e, "config store");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::WriteConfigFailed,
                "the configuration could not be written",
            )
        }
    }
}

fn check_section(name: &str) -> ApiResult<()> {
    if HOT_SECTIONS.contains(&name) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Code::RpcError,
            format!(
                "unknown section {name:?}; sections changed through the API: {}",
                HOT_SECTIONS.join(", ")
            ),
        ))
    }
}

/// Validates `data` as the contents of section `name`; returns the warnings (unknown keys…).
fn validate(state: &AppState, name: &str, data: &Value) -> ApiResult<Vec<String>> {
    if !data.is_object() {
        return Err(ApiError::bad_parameter(format!("section {name:?} must be a JSON object")));
    }
    let text = format!("{name} = {data}");
    tern_config::parse_str(&text, "request body", &state.inner.base_dir, &tern_config::Env::new())
        .map(|loaded| loaded.warnings)
        .map_err(|e| ApiError::bad_parameter(format!("invalid {name} settings: {e}")))
}

/// What a write answers.
#[derive(Debug, Serialize)]
pub struct Written {
    /// 0.
    pub code: u16,
    /// The new version of each section written.
    pub data: BTreeMap<String, u64>,
    /// Keys the parser did not use, and similar caveats.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Merges and writes several sections (validated first, all or nothing on validation).
async fn write_sections(state: &AppState, updates: Map<String, Value>) -> ApiResult<Json<Written>> {
    if updates.is_empty() {
        return Err(ApiError::bad_parameter("no section given"));
    }
    let snapshot = state.store().watch().borrow().clone();
    let mut merged = Vec::new();
    let mut warnings = Vec::new();
    for (name, update) in updates {
        check_section(&name)?;
        if !update.is_object() {
            return Err(ApiError::bad_parameter(format!("section {name:?} must be a JSON object")));
        }
        let mut data = snapshot
            .sections
            .get(&name)
            .map_or_else(|| Value::Object(Map::new()), |s| s.data.clone());
        merge_json(&mut data, update);
        warnings.extend(validate(state, &name, &data)?);
        merged.push((name, data));
    }
    let mut versions = BTreeMap::new();
    for (name, data) in merged {
        let written = state.store().put(&name, data).await.map_err(store_error)?;
        tracing::info!(section = name, version = written.version, "configuration written");
        versions.insert(name, written.version);
    }
    Ok(Json(Written { code: 0, data: versions, warnings }))
}

/// NanoMQ's write body: `{"data": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataBody {
    /// The settings.
    pub data: Map<String, Value>,
}

/// `GET /configuration`: the stored sections, their versions, and what each service applied.
#[derive(Debug, Serialize)]
pub struct ConfigurationBody {
    /// 0.
    pub code: u16,
    /// Stored sections (settings changed through the API; the rest comes from each service's file).
    pub data: BTreeMap<String, Value>,
    /// Version of each stored section.
    pub versions: BTreeMap<String, u64>,
    /// What each service instance applied, per section.
    pub applied: Vec<Applied>,
    /// Whether the store was reachable at the last read.
    pub store_connected: bool,
}

/// `GET /configuration`.
pub async fn get_all(State(state): State<AppState>) -> ApiResult<Json<ConfigurationBody>> {
    let snapshot = state.store().watch().borrow().clone();
    let applied = match state.store().applied().await {
        Ok(applied) => applied,
        Err(e) => {
            tracing::warn!(error = %e, "config store: cannot read applied versions");
            Vec::new()
        }
    };
    Ok(Json(ConfigurationBody {
        code: 0,
        data: snapshot.sections.iter().map(|(k, s)| (k.clone(), s.data.clone())).collect(),
        versions: snapshot.sections.iter().map(|(k, s)| (k.clone(), s.version)).collect(),
        applied,
        store_connected: snapshot.connected,
    }))
}

/// `GET /configuration/{section}`: `{"code":0,"data":{"<section>":{...}}}` (empty when nothing is
/// stored for it).
pub async fn get_section(
    State(state): State<AppState>,
    Path(section): Path<String>,
) -> ApiResult<Json<Envelope<BTreeMap<String, Value>>>> {
    check_section(&section)?;
    let snapshot = state.store().watch().borrow().clone();
    let data = snapshot
        .sections
        .get(&section)
        .map_or_else(|| Value::Object(Map::new()), |s| s.data.clone());
    Ok(Envelope::ok(BTreeMap::from([(section, data)])))
}

/// `POST /configuration`: `{"data":{"<section>":{...},...}}`.
pub async fn post_all(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DataBody>,
) -> ApiResult<Json<Written>> {
    write_sections(&state, body.data).await
}

/// `POST /configuration/{section}`: `{"data":{"<section>":{...}}}` (or the settings directly
/// under `data`).
pub async fn post_section(
    State(state): State<AppState>,
    Path(section): Path<String>,
    JsonBody(body): JsonBody<DataBody>,
) -> ApiResult<Json<Written>> {
    check_section(&section)?;
    let mut data = body.data;
    let settings = match data.remove(&section) {
        Some(inner) if data.is_empty() => inner,
        Some(inner) => {
            data.insert(section.clone(), inner);
            Value::Object(data)
        }
        None => Value::Object(data),
    };
    write_sections(&state, Map::from_iter([(section, settings)])).await
}

/// `POST /config_update`: a HOCON document; its hot sections are written to the store (a
/// document that does not parse is 400/117; invalid settings 400/108).
pub async fn config_update(
    State(state): State<AppState>,
    request: Request,
) -> ApiResult<Json<Written>> {
    let body = raw_body(request, &()).await?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, Code::BadHocon, "the body is not UTF-8 text")
    })?;
    let parsed = hocon::parse(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::BadHocon,
            format!("the body is not valid HOCON: {e}"),
        )
    })?;
    let mut updates = Map::new();
    let mut ignored = Vec::new();
    for key in parsed.keys() {
        if HOT_SECTIONS.contains(&key) {
            let Some(value) = parsed.get(key) else { continue };
            let value = hocon_to_json(value);
            updates.insert(key.to_owned(), value);
        } else {
            ignored.push(key.to_owned());
        }
    }
    let mut written = write_sections(&state, updates).await?;
    if !ignored.is_empty() {
        written.0.warnings.push(format!(
            "not changed through the API (edit the file and restart): {}",
            ignored.join(", ")
        ));
    }
    Ok(written)
}

/// A HOCON value as JSON (numbers and booleans keep their type; `10s` and `1KB` stay text, as the
/// services' parser reads them).
fn hocon_to_json(value: &hocon::HoconValue) -> Value {
    match value {
        hocon::HoconValue::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), hocon_to_json(v))).collect())
        }
        hocon::HoconValue::Array(items) => Value::Array(items.iter().map(hocon_to_json).collect()),
        hocon::HoconValue::Scalar(s) => match s.value_type {
            hocon::ScalarType::Null => Value::Null,
            hocon::ScalarType::Boolean => Value::Bool(s.raw == "true"),
            hocon::ScalarType::Number => serde_json::from_str::<serde_json::Number>(&s.raw)
                .map_or_else(|_| Value::String(s.raw.clone()), Value::Number),
            _ => Value::String(s.raw.clone()),
        },
        other => Value::String(format!("{other:?}")),
    }
}

/// NanoMQ's `/reload` settings.
#[derive(Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReloadSettings {
    /// `mqtt.property_size`.
    pub property_size: Option<u32>,
    /// `mqtt.max_packet_size`, in KB.
    pub max_packet_size: Option<u64>,
    /// `mqtt.client_max_packet_size`, in KB.
    pub client_max_packet_size: Option<u64>,
    /// `mqtt.max_mqueue_len`.
    pub msq_len: Option<u32>,
    /// `mqtt.retry_interval`, seconds.
    pub qos_duration: Option<u64>,
    /// `mqtt.keepalive_multiplier`.
    pub keepalive_backoff: Option<f64>,
    /// `auth.allow_anonymous`.
    pub allow_anonymous: Option<bool>,
}

/// The effective settings: the file with the stored sections over it.
fn effective(state: &AppState) -> ApiResult<tern_config::Config> {
    let snapshot = state.store().watch().borrow().clone();
    tern_config_store::effective_config(
        state.inner.config_file.as_deref(),
        &state.inner.base_dir,
        &tern_config::Env::new(),
        &snapshot,
        HOT_SECTIONS,
    )
    .map_err(|error| {
        tracing::warn!(%error, "the effective configuration does not parse");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unknown,
            "the configuration does not parse",
        )
    })
}

/// `GET /reload`.
pub async fn get_reload(
    State(state): State<AppState>,
) -> ApiResult<Json<Envelope<ReloadSettings>>> {
    let config = effective(&state)?;
    let m = &config.mqtt;
    Ok(Envelope::ok(ReloadSettings {
        property_size: Some(m.property_size),
        max_packet_size: Some(m.max_packet_size.as_u64() / 1024),
        client_max_packet_size: m.client_max_packet_size.map(|s| s.as_u64() / 1024),
        msq_len: Some(m.max_mqueue_len),
        qos_duration: Some(m.retry_interval.as_secs()),
        keepalive_backoff: Some(m.keepalive_multiplier),
        allow_anonymous: Some(config.auth.allow_anonymous),
    }))
}

/// `POST /reload` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadBody {
    /// The settings to change.
    pub data: ReloadSettings,
}

/// `POST /reload`: writes the given settings to the `mqtt` and `auth` sections.
pub async fn post_reload(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ReloadBody>,
) -> ApiResult<Json<Written>> {
    let s = body.data;
    let mut mqtt = Map::new();
    if let Some(v) = s.property_size {
        mqtt.insert("property_size".into(), v.into());
    }
    if let Some(v) = s.max_packet_size {
        mqtt.insert("max_packet_size".into(), format!("{v}KB").into());
    }
    if let Some(v) = s.client_max_packet_size {
        mqtt.insert("client_max_packet_size".into(), format!("{v}KB").into());
    }
    if let Some(v) = s.msq_len {
        mqtt.insert("max_mqueue_len".into(), v.into());
    }
    if let Some(v) = s.qos_duration {
        mqtt.insert("retry_interval".into(), format!("{v}s").into());
    }
    if let Some(v) = s.keepalive_backoff {
        mqtt.insert("keepalive_multiplier".into(), v.into());
    }
    let mut updates = Map::new();
    if !mqtt.is_empty() {
        updates.insert("mqtt".into(), Value::Object(mqtt));
    }
    if let Some(v) = s.allow_anonymous {
        updates.insert("auth".into(), serde_json::json!({ "allow_anonymous": v }));
    }
    write_sections(&state, updates).await
}
