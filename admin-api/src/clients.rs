//! `/clients` and `/subscriptions`: merged across every broker node; per-client calls go to the
//! node holding the client.

use axum::{
    Json,
    extract::{Path, RawQuery, State},
};
use base64::Engine as _;
use proto::broker::v1 as pb;
use serde::Serialize;

use crate::{
    AppState,
    body::{parse_bool, query_pairs},
    error::{ApiError, ApiResult},
};

/// NanoMQ's `{"code":0,"data":…}` envelope.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    /// Always 0.
    pub code: u16,
    /// The answer.
    pub data: T,
}

impl<T> Envelope<T> {
    /// A success envelope.
    pub fn ok(data: T) -> Json<Self> {
        Json(Self { code: 0, data })
    }
}

/// `{"code":0}`.
#[derive(Debug, Serialize)]
pub struct Done {
    /// Always 0.
    pub code: u16,
}

impl Done {
    /// `{"code":0}`.
    pub fn ok() -> Json<Self> {
        Json(Self { code: 0 })
    }
}

/// One client, as NanoMQ's `/clients` shows it (plus where it is).
#[derive(Debug, Serialize, PartialEq)]
pub struct ClientItem {
    /// Client id.
    pub client_id: String,
    /// Username, when it had one.
    pub username: Option<String>,
    /// Keep alive, seconds.
    pub keepalive: u32,
    /// `connected` or `disconnected`.
    pub conn_state: &'static str,
    /// Clean start / clean session.
    pub clean_start: bool,
    /// `MQTT` or `MQIsdp`.
    pub proto_name: String,
    /// 3, 4 or 5.
    pub proto_ver: i32,
    /// Will topic, when a will is set (offline sessions with a delayed will).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will_topic: Option<String>,
    /// Will payload (UTF-8, else base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub will_msg: Option<String>,
    /// Tern: the node holding the client.
    pub node_id: String,
    /// Tern: the client's IP address.
    pub ip_address: String,
    /// Tern: its TCP port.
    pub port: u32,
    /// Tern: when it connected (epoch ms).
    pub connected_at: u64,
    /// Tern: its subscriptions.
    pub subscriptions_cnt: u32,
    /// Tern: messages waiting in its queue.
    pub mqueue_len: u32,
}

fn text_or_base64(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

impl ClientItem {
    fn from_details(d: pb::ClientDetails) -> Option<Self> {
        let c = d.client?;
        Some(Self {
            conn_state: if d.conn_state == i32::from(pb::ConnState::Connected) {
                "connected"
            } else {
                "disconnected"
            },
            client_id: c.client_id,
            username: c.username,
            keepalive: d.keepalive,
            clean_start: c.clean_start,
            proto_name: c.protocol_name,
            proto_ver: c.protocol_version,
            will_msg: d.will_payload.as_deref().map(text_or_base64),
            will_topic: d.will_topic,
            node_id: d.node_id,
            ip_address: c.peer_address,
            port: c.peer_port,
            connected_at: d.connected_at_ms,
            subscriptions_cnt: d.subscriptions,
            mqueue_len: d.queue_len,
        })
    }
}

/// The `/clients` filters from a query string. NanoMQ's parameters (`clientid`/`client_id`,
/// `username`, `conn_state`, `clean_start`, `proto_name`, `proto_ver`) plus Tern's
/// `_like_clientid`, `_like_username`, `ip_address`; anything else is 400/108.
pub fn client_filter(raw: Option<&str>) -> ApiResult<pb::ListClientsRequest> {
    let mut f = pb::ListClientsRequest::default();
    for (key, value) in query_pairs(raw) {
        match key.as_str() {
            "clientid" | "client_id" => f.client_id = Some(value),
            "username" => f.username = Some(value),
            "conn_state" => {
                f.conn_state = match value.as_str() {
                    "connected" => pb::ConnState::Connected.into(),
                    "disconnected" => pb::ConnState::Disconnected.into(),
                    _ => {
                        return Err(ApiError::bad_parameter(format!(
                            "conn_state must be connected or disconnected, not {value:?}"
                        )));
                    }
                }
            }
            "clean_start" => f.clean_start = Some(parse_bool(&key, &value)?),
            "proto_name" => f.proto_name = Some(value),
            "proto_ver" => {
                f.proto_ver = Some(match value.as_str() {
                    "3" => 3,
                    "4" => 4,
                    "5" => 5,
                    _ => {
                        return Err(ApiError::bad_parameter(format!(
                            "proto_ver must be 3, 4 or 5, not {value:?}"
                        )));
                    }
                });
            }
            "_like_clientid" => f.like_client_id = Some(value),
            "_like_username" => f.like_username = Some(value),
            "ip_address" => f.ip_address = Some(value),
            _ => return Err(ApiError::bad_parameter(format!("unknown parameter {key:?}"))),
        }
    }
    Ok(f)
}

async fn list_clients(
    state: &AppState,
    filter: pb::ListClientsRequest,
) -> ApiResult<Vec<ClientItem>> {
    let answers = state
        .nodes()
        .gather(|mut client| {
            let filter = filter.clone();
            async move { client.list_clients(filter).await }
        })
        .await?;
    let mut items: Vec<ClientItem> = answers
        .into_iter()
        .flat_map(|(_, answer)| answer.clients)
        .filter_map(ClientItem::from_details)
        .collect();
    items.sort_by(|a, b| (&a.client_id, &a.node_id).cmp(&(&b.client_id, &b.node_id)));
    Ok(items)
}

/// `GET /clients`.
pub async fn clients(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Envelope<Vec<ClientItem>>>> {
    let filter = client_filter(query.as_deref())?;
    Ok(Envelope::ok(list_clients(&state, filter).await?))
}

/// `GET /clients/{clientid}`.
pub async fn client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<Json<Envelope<Vec<ClientItem>>>> {
    let filter = pb::ListClientsRequest { client_id: Some(client_id), ..Default::default() };
    Ok(Envelope::ok(list_clients(&state, filter).await?))
}

/// `GET /clients/username/{username}`.
pub async fn clients_by_username(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<Json<Envelope<Vec<ClientItem>>>> {
    let filter = pb::ListClientsRequest { username: Some(username), ..Default::default() };
    Ok(Envelope::ok(list_clients(&state, filter).await?))
}

/// `DELETE /clients/{clientid}`: disconnects the client on the node holding it (its persistent
/// session stays); a client known only by an offline session has that session discarded.
pub async fn kick(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<Json<Done>> {
    let Some((node, details)) = state.nodes().holding(&client_id).await? else {
        return Err(ApiError::client_not_found(&client_id));
    };
    let connected = details.conn_state == i32::from(pb::ConnState::Connected);
    let mut client = node.client;
    client
        .kick_client(pb::KickClientRequest {
            client_id: client_id.clone(),
            discard_session: !connected,
        })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => ApiError::client_not_found(&client_id),
            _ => ApiError::node_failed(&node.record.node_id, &status),
        })?;
    Ok(Done::ok())
}

/// One subscription, as NanoMQ's `/subscriptions` shows it (plus where it is).
#[derive(Debug, Serialize, PartialEq)]
pub struct SubscriptionItem {
    /// Client id.
    pub clientid: String,
    /// The filter as subscribed (with any `$share/<group>/` prefix).
    pub topic: String,
    /// Granted QoS.
    pub qos: i32,
    /// Tern: the node.
    pub node_id: String,
}

/// The `/subscriptions` filters: `clientid`, `topic`, `qos`, `share` (the group) and
/// `_match_topic` (filters matching a topic name). They work (NanoMQ ignores them).
pub fn subscription_filter(raw: Option<&str>) -> ApiResult<pb::ListSubscriptionsRequest> {
    let mut f = pb::ListSubscriptionsRequest::default();
    for (key, value) in query_pairs(raw) {
        match key.as_str() {
            "clientid" | "client_id" => f.client_id = Some(value),
            "topic" => f.topic = Some(value),
            "qos" => {
                f.qos = Some(match value.as_str() {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    _ => {
                        return Err(ApiError::bad_parameter(format!(
                            "qos must be 0, 1 or 2, not {value:?}"
                        )));
                    }
                });
            }
            "share" => f.share = Some(value),
            "_match_topic" => f.match_topic = Some(value),
            _ => return Err(ApiError::bad_parameter(format!("unknown parameter {key:?}"))),
        }
    }
    Ok(f)
}

async fn list_subscriptions(
    state: &AppState,
    filter: pb::ListSubscriptionsRequest,
) -> ApiResult<Vec<SubscriptionItem>> {
    let answers = state
        .nodes()
        .gather(|mut client| {
            let filter = filter.clone();
            async move { client.list_subscriptions(filter).await }
        })
        .await?;
    let mut items: Vec<SubscriptionItem> = answers
        .into_iter()
        .flat_map(|(_, answer)| answer.subscriptions)
        .filter_map(|s| {
            let sub = s.subscription?;
            Some(SubscriptionItem {
                clientid: s.client_id,
                topic: sub.topic_filter,
                qos: sub.qos,
                node_id: s.node_id,
            })
        })
        .collect();
    items.sort_by(|a, b| (&a.clientid, &a.topic).cmp(&(&b.clientid, &b.topic)));
    Ok(items)
}

/// `GET /subscriptions`.
pub async fn subscriptions(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Envelope<Vec<SubscriptionItem>>>> {
    let filter = subscription_filter(query.as_deref())?;
    Ok(Envelope::ok(list_subscriptions(&state, filter).await?))
}

/// `GET /subscriptions/{clientid}`.
pub async fn client_subscriptions(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<Json<Envelope<Vec<SubscriptionItem>>>> {
    let filter = pb::ListSubscriptionsRequest { client_id: Some(client_id), ..Default::default() };
    Ok(Envelope::ok(list_subscriptions(&state, filter).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[test]
    fn client_filters_follow_nanomq() {
        let f =
            client_filter(Some("clientid=c1&conn_state=connected&proto_ver=5&clean_start=true"))
                .expect("valid");
        assert_eq!(f.client_id.as_deref(), Some("c1"));
        assert_eq!(f.proto_ver, Some(5));
        assert_eq!(f.clean_start, Some(true));
        for bad in ["conn_state=idle", "proto_ver=6", "clean_start=yes", "page=1"] {
            let e = client_filter(Some(bad)).expect_err(bad);
            assert_eq!(e.code, Code::BadParameter, "{bad}");
        }
    }

    #[test]
    fn subscription_filters_are_applied() {
        let f = subscription_filter(Some("clientid=c&topic=a/%2B&qos=1&share=g")).expect("valid");
        assert_eq!(f.topic.as_deref(), Some("a/+"));
        assert_eq!(f.qos, Some(1));
        assert!(subscription_filter(Some("qos=3")).is_err());
    }
}
