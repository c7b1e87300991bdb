//! `/mqtt/publish`, `/mqtt/subscribe`, `/mqtt/unsubscribe` and their batch forms.
//!
//! A publish goes to every broker node (each routes it to its own subscribers and keeps it when
//! retained); a subscribe or unsubscribe goes to the node holding the client. NanoMQ documents
//! subscribe and unsubscribe but answers them with 404 (nanomq#1538); here they work.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use base64::Engine as _;
use proto::{broker::v1 as pb, types::v1 as types};
use serde::{Deserialize, Serialize};

use crate::{
    AppState,
    body::JsonBody,
    clients::{Done, Envelope},
    error::{ApiError, ApiResult, Code},
};

/// The client id NanoMQ publishes as when none is given.
pub const DEFAULT_CLIENT_ID: &str = "NanoMQ-HTTP-Client";

/// `POST /mqtt/publish` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// One topic.
    pub topic: Option<String>,
    /// Several topics, comma-separated.
    pub topics: Option<String>,
    /// The payload (required).
    pub payload: Option<String>,
    /// Publisher client id; default `NanoMQ-HTTP-Client`.
    pub clientid: Option<String>,
    /// QoS, default 0.
    #[serde(default)]
    pub qos: u8,
    /// Retain flag.
    #[serde(default)]
    pub retain: bool,
    /// `plain` (default) or `base64`: NanoMQ encodes the payload into base64 before publishing.
    pub encoding: Option<String>,
    /// `plain` (default) or `base64`: the payload given is base64 and is decoded first.
    pub decoding: Option<String>,
    /// MQTT 5 properties.
    pub properties: Option<PublishPropertiesBody>,
}

/// MQTT 5 properties of an API publish.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishPropertiesBody {
    /// 0 or 1 (or a boolean).
    pub payload_format_indicator: Option<serde_json::Value>,
    /// Seconds.
    pub message_expiry_interval: Option<u32>,
    /// Response topic.
    pub response_topic: Option<String>,
    /// Correlation data (text).
    pub correlation_data: Option<String>,
    /// Ignored (subscription identifiers are set per subscriber).
    pub subscription_identifier: Option<u32>,
    /// Content type.
    pub content_type: Option<String>,
    /// User properties; numbers and booleans are turned into strings.
    pub user_properties: Option<BTreeMap<String, serde_json::Value>>,
}

fn topics_of(topic: Option<&str>, topics: Option<&str>) -> ApiResult<Vec<String>> {
    let mut all: Vec<String> = Vec::new();
    if let Some(t) = topic {
        all.push(t.to_owned());
    }
    if let Some(ts) = topics {
        all.extend(ts.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned));
    }
    if all.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            Code::BadParameter,
            "topic or topics is required",
        ));
    }
    Ok(all)
}

fn qos(value: u8) -> ApiResult<i32> {
    if value > 2 {
        return Err(ApiError::bad_parameter(format!("qos must be 0, 1 or 2, not {value}")));
    }
    Ok(i32::from(value))
}

fn is_base64(option: Option<&str>, key: &str) -> ApiResult<bool> {
    match option {
        None | Some("plain") => Ok(false),
        Some("base64") => Ok(true),
        Some(other) => {
            Err(ApiError::bad_parameter(format!("{key} must be plain or base64, not {other:?}")))
        }
    }
}

fn properties(p: Option<PublishPropertiesBody>) -> ApiResult<Option<types::MessageProperties>> {
    let Some(p) = p else { return Ok(None) };
    let pfi = match p.payload_format_indicator {
        None => None,
        Some(serde_json::Value::Bool(b)) => Some(u32::from(b)),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
            n.as_u64().and_then(|v| u32::try_from(v).ok())
        }
        Some(other) => {
            return Err(ApiError::bad_parameter(format!(
                "properties.payload_format_indicator must be 0 or 1, not {other}"
            )));
        }
    };
    let user_properties = p
        .user_properties
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            types::UserProperty { key, value }
        })
        .collect();
    Ok(Some(types::MessageProperties {
        payload_format_indicator: pfi,
        message_expiry_interval: p.message_expiry_interval,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data.map(|c| c.into_bytes().into()),
        user_properties,
        subscription_identifiers: Vec::new(),
    }))
}

/// The messages one publish body asks for (one per topic), validated.
pub fn messages_of(body: PublishBody) -> ApiResult<Vec<types::Message>> {
    let topics = topics_of(body.topic.as_deref(), body.topics.as_deref())?;
    let Some(payload) = body.payload else {
        return Err(ApiError::bad_parameter("payload is required"));
    };
    let mut payload = payload.into_bytes();
    if is_base64(body.decoding.as_deref(), "decoding")? {
        payload = base64::engine::general_purpose::STANDARD
            .decode(&payload)
            .map_err(|e| ApiError::bad_parameter(format!("payload is not base64: {e}")))?;
    }
    if is_base64(body.encoding.as_deref(), "encoding")? {
        payload = base64::engine::general_purpose::STANDARD.encode(&payload).into_bytes();
    }
    let qos = qos(body.qos)?;
    let properties = properties(body.properties)?;
    let from = body.clientid.unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned());
    topics
        .into_iter()
        .map(|topic| {
            if topic.is_empty() || topic.contains(['+', '#']) || topic.contains('\0') {
                return Err(ApiError::bad_parameter(format!(
                    "{topic:?} is not a valid topic name"
                )));
            }
            Ok(types::Message {
                topic,
                payload: payload.clone().into(),
                qos,
                retain: body.retain,
                dup: false,
                properties: properties.clone(),
                from_client_id: from.clone(),
                from_username: None,
                received_at_ms: 0,
            })
        })
        .collect()
}

/// Publishes `message` on every node; fails only when no node took it.
async fn publish_everywhere(state: &AppState, message: types::Message) -> ApiResult<()> {
    let answers = state
        .nodes()
        .each(|mut client| {
            let request = pb::PublishRequest { message: Some(message.clone()) };
            async move { client.publish(request).await }
        })
        .await?;
    if answers.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Code::RpcError,
            "no broker node is registered",
        ));
    }
    let mut first_error = None;
    let mut delivered = false;
    for (node, answer) in answers {
        match answer {
            Ok(_) => delivered = true,
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                return Err(ApiError::bad_parameter(status.message().to_owned()));
            }
            Err(status) => {
                first_error.get_or_insert_with(|| ApiError::node_failed(&node.node_id, &status));
            }
        }
    }
    match (delivered, first_error) {
        (false, Some(error)) => Err(error),
        _ => Ok(()),
    }
}

/// `POST /mqtt/publish`.
pub async fn publish(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PublishBody>,
) -> ApiResult<Json<Done>> {
    for message in messages_of(body)? {
        publish_everywhere(&state, message).await?;
    }
    Ok(Done::ok())
}

/// One result of a batch.
#[derive(Debug, Serialize)]
pub struct BatchItem {
    /// The topic (publish), or filter (subscribe, unsubscribe).
    pub topic: String,
    /// The client id (subscribe, unsubscribe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clientid: Option<String>,
    /// 0, or the error code.
    pub code: u16,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn item(topic: String, clientid: Option<String>, result: ApiResult<()>) -> BatchItem {
    match result {
        Ok(()) => BatchItem { topic, clientid, code: 0, message: None },
        Err(e) => BatchItem { topic, clientid, code: e.code as u16, message: Some(e.message) },
    }
}

/// `POST /mqtt/publish_batch`: an array of publish bodies; one result per topic.
pub async fn publish_batch(
    State(state): State<AppState>,
    JsonBody(bodies): JsonBody<Vec<PublishBody>>,
) -> ApiResult<Json<Envelope<Vec<BatchItem>>>> {
    let mut results = Vec::new();
    for body in bodies {
        let shown = body.topic.clone().or_else(|| body.topics.clone()).unwrap_or_default();
        match messages_of(body) {
            Ok(messages) => {
                for message in messages {
                    let topic = message.topic.clone();
                    results.push(item(topic, None, publish_everywhere(&state, message).await));
                }
            }
            Err(e) => results.push(item(shown, None, Err(e))),
        }
    }
    Ok(Envelope::ok(results))
}

/// `POST /mqtt/subscribe` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    /// One filter.
    pub topic: Option<String>,
    /// Several filters, comma-separated.
    pub topics: Option<String>,
    /// The client (required).
    pub clientid: Option<String>,
    /// Maximum QoS, default 0.
    #[serde(default)]
    pub qos: u8,
    /// MQTT 5 No Local.
    #[serde(default)]
    pub nl: bool,
    /// MQTT 5 Retain As Published.
    #[serde(default)]
    pub rap: bool,
    /// MQTT 5 Retain Handling (0, 1, 2).
    #[serde(default)]
    pub rh: u8,
}

/// `POST /mqtt/unsubscribe` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeBody {
    /// One filter.
    pub topic: Option<String>,
    /// Several filters, comma-separated.
    pub topics: Option<String>,
    /// The client (required).
    pub clientid: Option<String>,
}

fn client_id_of(clientid: Option<String>) -> ApiResult<String> {
    clientid.filter(|c| !c.is_empty()).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            Code::MissingParameter,
            "clientid is required",
        )
    })
}

fn reason_error(filter: &str, code: u32) -> ApiResult<()> {
    match code {
        0..=2 => Ok(()),
        0x11 => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            Code::BadParameter,
            format!("the client has no subscription {filter:?}"),
        )),
        0x8F => Err(ApiError::bad_parameter(format!("{filter:?} is not a valid topic filter"))),
        0x97 => Err(ApiError::bad_parameter("the client has too many subscriptions")),
        other => Err(ApiError::bad_parameter(format!("refused with reason code 0x{other:02X}"))),
    }
}

async fn subscribe_one(
    state: &AppState,
    body: SubscribeBody,
) -> ApiResult<Vec<(String, ApiResult<()>)>> {
    let filters = topics_of(body.topic.as_deref(), body.topics.as_deref())?;
    let client_id = client_id_of(body.clientid)?;
    let qos = qos(body.qos)?;
    if body.rh > 2 {
        return Err(ApiError::bad_parameter("rh must be 0, 1 or 2"));
    }
    let Some((node, _)) = state.nodes().holding(&client_id).await? else {
        return Err(ApiError::client_not_found(&client_id));
    };
    let request = pb::SubscribeRequest {
        client_id: client_id.clone(),
        subscriptions: filters
            .iter()
            .map(|f| types::Subscription {
                topic_filter: f.clone(),
                qos,
                no_local: body.nl,
                retain_as_published: body.rap,
                retain_handling: u32::from(body.rh),
                subscription_identifier: 0,
                share_group: String::new(),
            })
            .collect(),
    };
    let mut client = node.client;
    let answer = client.subscribe(request).await.map_err(|status| match status.code() {
        tonic::Code::NotFound => ApiError::client_not_found(&client_id),
        _ => ApiError::node_failed(&node.record.node_id, &status),
    })?;
    Ok(filters
        .into_iter()
        .zip(answer.into_inner().reason_codes)
        .map(|(f, code)| {
            let result = reason_error(&f, code);
            (f, result)
        })
        .collect())
}

async fn unsubscribe_one(
    state: &AppState,
    body: UnsubscribeBody,
) -> ApiResult<Vec<(String, ApiResult<()>)>> {
    let filters = topics_of(body.topic.as_deref(), body.topics.as_deref())?;
    let client_id = client_id_of(body.clientid)?;
    let Some((node, _)) = state.nodes().holding(&client_id).await? else {
        return Err(ApiError::client_not_found(&client_id));
    };
    let mut client = node.client;
    let answer = client
        .unsubscribe(pb::UnsubscribeRequest {
            client_id: client_id.clone(),
            topic_filters: filters.clone(),
        })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => ApiError::client_not_found(&client_id),
            _ => ApiError::node_failed(&node.record.node_id, &status),
        })?;
    Ok(filters
        .into_iter()
        .zip(answer.into_inner().reason_codes)
        .map(|(f, code)| {
            let result = if code == 0 { Ok(()) } else { reason_error(&f, code) };
            (f, result)
        })
        .collect())
}

fn first_failure(results: Vec<(String, ApiResult<()>)>) -> ApiResult<Json<Done>> {
    for (_, result) in results {
        result?;
    }
    Ok(Done::ok())
}

/// `POST /mqtt/subscribe`.
pub async fn subscribe(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SubscribeBody>,
) -> ApiResult<Json<Done>> {
    first_failure(subscribe_one(&state, body).await?)
}

/// `POST /mqtt/unsubscribe`.
pub async fn unsubscribe(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<UnsubscribeBody>,
) -> ApiResult<Json<Done>> {
    first_failure(unsubscribe_one(&state, body).await?)
}

/// `POST /mqtt/subscribe_batch`: an array of subscribe bodies; one result per filter.
pub async fn subscribe_batch(
    State(state): State<AppState>,
    JsonBody(bodies): JsonBody<Vec<SubscribeBody>>,
) -> ApiResult<Json<Envelope<Vec<BatchItem>>>> {
    let mut out = Vec::new();
    for body in bodies {
        let clientid = body.clientid.clone();
        let shown = body.topic.clone().or_else(|| body.topics.clone()).unwrap_or_default();
        match subscribe_one(&state, body).await {
            Ok(results) => {
                out.extend(results.into_iter().map(|(f, r)| item(f, clientid.clone(), r)));
            }
            Err(e) => out.push(item(shown, clientid, Err(e))),
        }
    }
    Ok(Envelope::ok(out))
}

/// `POST /mqtt/unsubscribe_batch`: an array of unsubscribe bodies; one result per filter.
pub async fn unsubscribe_batch(
    State(state): State<AppState>,
    JsonBody(bodies): JsonBody<Vec<UnsubscribeBody>>,
) -> ApiResult<Json<Envelope<Vec<BatchItem>>>> {
    let mut out = Vec::new();
    for body in bodies {
        let clientid = body.clientid.clone();
        let shown = body.topic.clone().or_else(|| body.topics.clone()).unwrap_or_default();
        match unsubscribe_one(&state, body).await {
            Ok(results) => {
                out.extend(results.into_iter().map(|(f, r)| item(f, clientid.clone(), r)));
            }
            Err(e) => out.push(item(shown, clientid, Err(e))),
        }
    }
    Ok(Envelope::ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> PublishBody {
        serde_json::from_value(json).expect("body")
    }

    #[test]
    fn publish_bodies_follow_nanomq() {
        let m = messages_of(body(
            serde_json::json!({"topics":"a,b","payload":"aGk=","decoding":"base64","qos":1}),
        ))
        .expect("valid");
        assert_eq!(m.len(), 2);
        assert_eq!(&m[0].payload[..], b"hi");
        assert_eq!(m[1].topic, "b");
        assert_eq!(m[0].from_client_id, DEFAULT_CLIENT_ID);
        let encoded =
            messages_of(body(serde_json::json!({"topic":"a","payload":"hi","encoding":"base64"})))
                .expect("valid");
        assert_eq!(&encoded[0].payload[..], b"aGk=");
        for bad in [
            serde_json::json!({"payload":"x"}),
            serde_json::json!({"topic":"a"}),
            serde_json::json!({"topic":"a/#","payload":"x"}),
            serde_json::json!({"topic":"a","payload":"x","qos":3}),
            serde_json::json!({"topic":"a","payload":"!","decoding":"base64"}),
        ] {
            assert!(messages_of(body(bad.clone())).is_err(), "{bad}");
        }
    }
}
