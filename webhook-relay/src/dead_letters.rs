//! `tern.events.v1.DeadLetters`: the deliveries the relay gave up, listed and queued again over
//! gRPC (admin-api serves them as `/api/v4/webhooks/dead_letters`).

use proto::events::v1 as pb;
use tonic::{Request, Response, Status};

use crate::{Relay, RelayError};

/// Most dead letters one List answers.
const MAX_LIMIT: usize = 10_000;
/// What List answers when no limit is given.
const DEFAULT_LIMIT: usize = 100;

/// The DeadLetters service of a relay.
#[derive(Debug, Clone)]
pub struct DeadLetterService {
    relay: Relay,
}

impl DeadLetterService {
    /// The service for `relay`.
    pub fn new(relay: Relay) -> Self {
        Self { relay }
    }
}

fn internal(error: &RelayError) -> Status {
    tracing::error!(%error, "dead letters");
    Status::internal("the outbox could not be read or written")
}

#[tonic::async_trait]
impl pb::dead_letters_server::DeadLetters for DeadLetterService {
    async fn list(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            n => (n as usize).min(MAX_LIMIT),
        };
        let target = (!request.target.is_empty()).then_some(request.target);
        let letters = self.relay.dead_letters(target, limit).await.map_err(|e| internal(&e))?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: letters
                .into_iter()
                .map(|d| pb::DeadLetter {
                    target: d.target,
                    offset: d.offset,
                    reason: d.reason,
                    dead_at_ms: d.dead_at_ms,
                    event: Some(d.event),
                })
                .collect(),
        }))
    }

    async fn redrive(
        &self,
        request: Request<pb::RedriveRequest>,
    ) -> Result<Response<pb::RedriveResponse>, Status> {
        let request = request.into_inner();
        if request.target.is_empty() {
            return Err(Status::invalid_argument("target is required"));
        }
        let redriven =
            self.relay.redrive(&request.target, request.offsets).await.map_err(|e| internal(&e))?;
        tracing::info!(target = request.target, redriven, "dead letters queued again");
        Ok(Response::new(pb::RedriveResponse { redriven }))
    }
}
