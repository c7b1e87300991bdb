//! `EventIngest.Publish`: a broker's batches become durable in the outbox before they are
//! acknowledged; batches that queued up while a commit ran share the next commit (and its ack).
//! Each ack also tells the broker which event types the relay wants (its rules plus its connected
//! subscribers), and a fresh ack goes out whenever that set changes.

use std::sync::{Arc, atomic::Ordering::Relaxed};

use proto::events::v1::{Ack, EventBatch, EventType, event_ingest_server::EventIngest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{delivery::now_ms, route, server::Inner};

/// Most events a broker's batches grouped into one outbox commit have (batches that arrive while
/// a commit runs are made durable together: fewer fsyncs when a broker streams fast).
const MAX_GROUPED_EVENTS: usize = 65_536;

/// Most batches read off a broker's stream ahead of the commit (each at most one broker batch,
/// 1 MiB): the stream is read and decoded while the previous commit's fsync runs.
const READ_AHEAD_BATCHES: usize = 64;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct IngestService {
    pub(crate) inner: Arc<Inner>,
}

/// The event types of a mask, for an ack.
pub fn mask_types(mask: u32) -> Vec<i32> {
    (1..32).filter(|bit| mask & (1 << bit) != 0 && EventType::try_from(*bit).is_ok()).collect()
}

#[tonic::async_trait]
impl EventIngest for IngestService {
    type PublishStream = ReceiverStream<Result<Ack, Status>>;

    async fn publish(
        &self,
        request: Request<Streaming<EventBatch>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let mut stream = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let inner = Arc::clone(&self.inner);
        // The reader: decodes batches while the committer below waits on the disk.
        let (ahead, mut batches) = mpsc::channel(READ_AHEAD_BATCHES);
        let stopping = inner.stopping.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = stopping.cancelled() => return,
                    next = stream.message() => next,
                };
                let end = !matches!(next, Ok(Some(_)));
                if ahead.send(next).await.is_err() || end {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            let mut wanted = inner.wanted.subscribe();
            let mut last =
                Ack { wanted_types: mask_types(*wanted.borrow_and_update()), ..Ack::default() };
            if tx.send(Ok(last.clone())).await.is_err() {
                return;
            }
            // What the stream yielded while batches were being grouped, handled next.
            let mut carried = None;
            loop {
                let next = match carried.take() {
                    Some(next) => next,
                    None => tokio::select! {
                        () = inner.stopping.cancelled() => return,
                        batch = batches.recv() => match batch {
                            Some(batch) => batch,
                            None => return,
                        },
                        changed = wanted.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            last.wanted_types = mask_types(*wanted.borrow_and_update());
                            if tx.send(Ok(last.clone())).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    },
                };
                let mut batch = match next {
                    Ok(Some(batch)) => batch,
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%status, "a broker's event stream ended");
                        return;
                    }
                };
                // Batches that arrived meanwhile join this one: one durable commit for them all.
                while batch.events.len() < MAX_GROUPED_EVENTS {
                    match batches.try_recv() {
                        Err(_) => break,
                        Ok(Ok(Some(more)))
                            if more.node_id == batch.node_id
                                && more.incarnation == batch.incarnation =>
                        {
                            batch.events.extend(more.events);
                        }
                        Ok(other) => {
                            carried = Some(other);
                            break;
                        }
                    }
                }
                match append(&inner, batch).await {
                    Ok((durable_sequence, incarnation)) => {
                        last.durable_sequence = durable_sequence;
                        last.incarnation = incarnation;
                        if tx.send(Ok(last.clone())).await.is_err() {
                            return;
                        }
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Makes a batch durable; returns the durable sequence and the incarnation.
async fn append(inner: &Arc<Inner>, batch: EventBatch) -> Result<(u64, u64), Status> {
    let node = Arc::clone(inner);
    let incarnation = batch.incarnation;
    let received = batch.events.len() as u64;
    let appended = tokio::task::spawn_blocking(move || {
        // Held until the commit: a target removed meanwhile gets nothing queued after its
        // pending deliveries were dropped.
        let targets = node.targets.read();
        let names: Vec<Arc<str>> = targets.iter().map(|t| Arc::clone(&t.name)).collect();
        let appended = node.outbox.append(batch, now_ms(), &names, |event| {
            targets
                .iter()
                .enumerate()
                .filter(|(_, t)| route::rules_match(&t.config.events, event))
                .map(|(i, _)| i)
                .collect()
        });
        appended.map(|a| (a, Arc::clone(&targets)))
    })
    .await
    .map_err(|e| Status::internal(format!("outbox writer failed: {e}")))?
    .map_err(|e| {
        tracing::error!(error = %e, "cannot make events durable");
        Status::unavailable("the relay cannot write its outbox")
    })?;
    let (appended, targets) = appended;
    let m = &inner.metrics;
    let accepted = appended.accepted.len() as u64;
    m.ingested.fetch_add(accepted, Relaxed);
    m.duplicates.fetch_add(received - accepted, Relaxed);
    m.queued.fetch_add(appended.queued, Relaxed);
    m.pending.fetch_add(appended.queued, Relaxed);
    if appended.queued > 0 {
        for target in targets.iter() {
            target.wake.notify_one();
        }
    }
    for (offset, event) in appended.accepted {
        // No subscriber is not an error.
        let _ = inner.live.send((offset, event));
    }
    Ok((appended.durable_sequence, incarnation))
}
