//! `/webhooks/dead_letters`: the webhook deliveries webhook-relay gave up, listed and queued again
//! through its `tern.events.v1.DeadLetters` gRPC service (a Tern extension; NanoMQ's webhooks
//! keep nothing to re-drive).

use axum::{
    Json,
    extract::{RawQuery, State},
    http::StatusCode,
};
use proto::{
    events::v1::{self as pb, dead_letters_client::DeadLettersClient, event::Payload},
    grpc::{AttachToken, Security},
};
use serde::{Deserialize, Serialize};
use tonic::{codegen::InterceptedService, transport::Channel};

use crate::{
    AppState,
    body::{JsonBody, query_pairs},
    clients::Envelope,
    error::{ApiError, ApiResult, Code},
    info::datetime_text,
};

/// Where webhook-relay is and how to call it.
#[derive(Debug, Clone)]
pub struct RelayLink {
    /// `host:port` of its gRPC server (`webhook_relay.address`).
    pub address: String,
    /// Its token and TLS settings (`webhook_relay.token`, `tls`).
    pub security: Security,
}

/// A DeadLetters client on a lazily connected channel.
pub type RelayClient = DeadLettersClient<InterceptedService<Channel, AttachToken>>;

impl RelayLink {
    /// A client (the connection opens at the first call and reopens after errors).
    pub fn client(&self, timeout: std::time::Duration) -> std::io::Result<RelayClient> {
        let channel = self.security.endpoint(&self.address)?.timeout(timeout).connect_lazy();
        Ok(DeadLettersClient::with_interceptor(channel, AttachToken(self.security.interceptor())))
    }
}

fn relay(state: &AppState) -> ApiResult<RelayClient> {
    state.inner.relay.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::RpcError,
            "no webhook-relay is configured (webhook_relay.address)",
        )
    })
}

fn relay_failed(status: &tonic::Status) -> ApiError {
    tracing::warn!(code = ?status.code(), message = status.message(), "webhook-relay call failed");
    match status.code() {
        tonic::Code::InvalidArgument => ApiError::bad_parameter(status.message()),
        tonic::Code::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::RpcError,
            "webhook-relay unavailable",
        ),
        _ => {
            ApiError::new(StatusCode::BAD_GATEWAY, Code::RpcError, "webhook-relay failed the call")
        }
    }
}

/// One dead letter as the API shows it.
#[derive(Debug, Serialize)]
pub struct DeadLetterItem {
    /// The target (`webhook` for the `webhook {}` block, else the `webhooks.<name>` name).
    pub target: String,
    /// What `redrive` takes.
    pub offset: u64,
    /// The last answer or error.
    pub reason: String,
    /// When it was given up, UTC.
    pub dead_at: String,
    /// When it was given up, epoch ms.
    pub dead_at_ms: u64,
    /// The event it carried.
    pub event: EventSummary,
}

/// What an event was, without its payload.
#[derive(Debug, Serialize)]
pub struct EventSummary {
    /// The id sent in the event id header.
    pub id: String,
    /// `message_publish`, `client_connected`…
    pub action: &'static str,
    /// The broker node.
    pub node: String,
    /// When it happened, epoch ms.
    pub timestamp_ms: u64,
    /// The client it concerns (the publisher for `message_publish`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clientid: Option<String>,
    /// The topic, for message events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

fn summary(event: &pb::Event) -> EventSummary {
    let client = |c: &Option<proto::types::v1::ClientInfo>| c.as_ref().map(|c| c.client_id.clone());
    let (action, clientid, topic) = match &event.payload {
        Some(Payload::ClientConnect(e)) => ("client_connect", client(&e.client), None),
        Some(Payload::ClientConnack(e)) => ("client_connack", client(&e.client), None),
        Some(Payload::ClientConnected(e)) => ("client_connected", client(&e.client), None),
        Some(Payload::ClientDisconnected(e)) => ("client_disconnected", client(&e.client), None),
        Some(Payload::ClientSubscribe(e)) => ("client_subscribe", client(&e.client), None),
        Some(Payload::ClientUnsubscribe(e)) => ("client_unsubscribe", client(&e.client), None),
        Some(Payload::SessionSubscribed(e)) => ("session_subscribed", client(&e.client), None),
        Some(Payload::SessionUnsubscribed(e)) => ("session_unsubscribed", client(&e.client), None),
        Some(Payload::SessionTerminated(e)) => ("session_terminated", client(&e.client), None),
        Some(Payload::MessagePublish(e)) => (
            "message_publish",
            e.message.as_ref().map(|m| m.from_client_id.clone()),
            e.message.as_ref().map(|m| m.topic.clone()),
        ),
        Some(Payload::MessageDelivered(e)) => {
            ("message_delivered", client(&e.client), e.message.as_ref().map(|m| m.topic.clone()))
        }
        Some(Payload::MessageAcked(e)) => {
            ("message_acked", client(&e.client), e.message.as_ref().map(|m| m.topic.clone()))
        }
        Some(Payload::MessageDropped(e)) => {
            ("message_dropped", client(&e.client), e.message.as_ref().map(|m| m.topic.clone()))
        }
        None => ("unknown", None, None),
    };
    EventSummary {
        id: event.id.clone(),
        action,
        node: event.node_id.clone(),
        timestamp_ms: event.timestamp_ms,
        clientid,
        topic,
    }
}

/// `GET /webhooks/dead_letters?target=&limit=`: oldest first (limit 1–10000, default 100).
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Envelope<Vec<DeadLetterItem>>>> {
    let mut request = pb::ListDeadLettersRequest::default();
    for (key, value) in query_pairs(query.as_deref()) {
        match key.as_str() {
            "target" => request.target = value,
            "limit" => {
                request.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| ApiError::bad_parameter("limit must be 1 to 10000"))?;
            }
            other => return Err(ApiError::bad_parameter(format!("unknown parameter {other:?}"))),
        }
    }
    let answer = relay(&state)?.list(request).await.map_err(|s| relay_failed(&s))?.into_inner();
    Ok(Envelope::ok(
        answer
            .dead_letters
            .into_iter()
            .map(|d| DeadLetterItem {
                dead_at: datetime_text(d.dead_at_ms / 1000),
                event: summary(&d.event.unwrap_or_default()),
                target: d.target,
                offset: d.offset,
                reason: d.reason,
                dead_at_ms: d.dead_at_ms,
            })
            .collect(),
    ))
}

/// `POST /webhooks/dead_letters/redrive` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveBody {
    /// The target.
    pub target: String,
    /// Offsets to queue again; absent or empty = all of the target's.
    #[serde(default)]
    pub offsets: Vec<u64>,
}

/// What a redrive answers.
#[derive(Debug, Serialize)]
pub struct Redriven {
    /// How many dead letters were queued for delivery again.
    pub redriven: u64,
}

/// `POST /webhooks/dead_letters/redrive`.
pub async fn redrive(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RedriveBody>,
) -> ApiResult<Json<Envelope<Redriven>>> {
    if body.target.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::MissingParameter,
            "target is required",
        ));
    }
    let request = pb::RedriveRequest { target: body.target, offsets: body.offsets };
    let answer = relay(&state)?.redrive(request).await.map_err(|s| relay_failed(&s))?.into_inner();
    Ok(Envelope::ok(Redriven { redriven: answer.redriven }))
}
