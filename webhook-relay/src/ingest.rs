//! `EventIngest.Publish`: a broker's batches become durable in the outbox before they are
//! acknowledged; batches that queued up while a commit ran share the next commit (and its ack).
//! Each ack also tells the broker which event types the relay wants (its rules plus its connected
//! subscribers), and a fresh ack goes out whenever that set changes.
//!
//! A batch is read with [`crate::wire::parse_batch`] (events stay encoded) by a reader task that
//! runs ahead of the commits (at most 64 batches); a batch with broken framing
//! ends the stream with `INVALID_ARGUMENT`, and nothing of it is taken.

use std::{
    convert::Infallible,
    sync::{Arc, atomic::Ordering::Relaxed},
    task::{Context, Poll},
};

use bytes::Buf as _;
use prost::Message as _;
use proto::events::v1::{Ack, EventType};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Request, Response, Status, Streaming,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Body as HttpBody, BoxFuture, Service, StdError, http},
    server::{Grpc, NamedService, StreamingService},
};

use crate::{
    delivery::now_ms,
    route,
    server::Inner,
    wire::{RawBatch, parse_batch},
};

/// Most events a broker's batches grouped into one outbox commit have (batches that arrive while
/// a commit runs are made durable together: fewer fsyncs when a broker streams fast).
const MAX_GROUPED_EVENTS: usize = 65_536;

/// Most batches read off a broker's stream ahead of the commit (each at most one broker batch,
/// 1 MiB): the stream is read and decoded while the previous commit's fsync runs.
const READ_AHEAD_BATCHES: usize = 64;

/// The `tern.events.v1.EventIngest` service. Written out rather than generated so that batches are
/// read with [`parse_batch`] (events kept encoded) instead of decoded into `EventBatch`.
#[derive(Debug, Clone)]
pub struct IngestService {
    pub(crate) inner: Arc<Inner>,
    /// Largest batch accepted, bytes.
    pub(crate) max_message_size: usize,
}

impl NamedService for IngestService {
    const NAME: &'static str = "tern.events.v1.EventIngest";
}

impl<B> Service<http::Request<B>> for IngestService
where
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            if request.uri().path() != "/tern.events.v1.EventIngest/Publish" {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc = Grpc::new(RawCodec)
                .apply_max_message_size_config(Some(service.max_message_size), None);
            Ok(grpc.streaming(service, request).await)
        })
    }
}

impl StreamingService<RawBatch> for IngestService {
    type Response = Ack;
    type ResponseStream = ReceiverStream<Result<Ack, Status>>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<RawBatch>>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { Ok(publish(inner, request)) })
    }
}

/// Batches in, read by [`parse_batch`]; acks out, encoded by prost.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Ack;
    type Decode = RawBatch;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Ack;
    type Error = Status;

    fn encode(&mut self, ack: Ack, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        ack.encode(dst).map_err(|e| Status::internal(format!("cannot encode an ack: {e}")))
    }
}

impl Decoder for RawCodec {
    type Item = RawBatch;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<RawBatch>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        parse_batch(bytes)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("malformed event batch: {e}")))
    }
}

/// The event types of a mask, for an ack.
pub fn mask_types(mask: u32) -> Vec<i32> {
    (1..32).filter(|bit| mask & (1 << bit) != 0 && EventType::try_from(*bit).is_ok()).collect()
}

/// `EventIngest.Publish`: one broker's stream.
fn publish(
    inner: Arc<Inner>,
    request: Request<Streaming<RawBatch>>,
) -> Response<ReceiverStream<Result<Ack, Status>>> {
    let mut stream = request.into_inner();
    let (tx, rx) = mpsc::channel(16);
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
                    // A batch that does not read is answered with why (a broker gone meanwhile
                    // does not hear it, which is fine).
                    if status.code() == tonic::Code::InvalidArgument {
                        tracing::warn!(%status, "a broker's event batch was refused");
                    } else {
                        tracing::debug!(%status, "a broker's event stream ended");
                    }
                    let _ = tx.send(Err(status)).await;
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
    Response::new(ReceiverStream::new(rx))
}

/// Makes a batch durable; returns the durable sequence and the incarnation.
async fn append(inner: &Arc<Inner>, batch: RawBatch) -> Result<(u64, u64), Status> {
    let node = Arc::clone(inner);
    let incarnation = batch.incarnation;
    let received = batch.events.len() as u64;
    let appended = tokio::task::spawn_blocking(move || {
        // Held until the commit: a target removed meanwhile gets nothing queued after its
        // pending deliveries were dropped.
        let targets = node.targets.read();
        let names: Vec<Arc<str>> = targets.iter().map(|t| Arc::clone(&t.name)).collect();
        let appended = node.outbox.append(batch, now_ms(), &names, |event, to| {
            to.extend(
                targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| {
                        route::rules_match(&t.config.events, event.kind, event.topic())
                    })
                    .map(|(i, _)| i),
            );
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
    // Live subscribers get the events decoded; without any, nothing is decoded here.
    if inner.live.receiver_count() > 0 {
        for (offset, event) in (appended.first_offset..).zip(appended.accepted) {
            if let Ok(event) = event.decode() {
                // A subscriber gone meanwhile is not an error.
                let _ = inner.live.send((offset, Arc::new(event)));
            }
        }
    }
    Ok((appended.durable_sequence, incarnation))
}
