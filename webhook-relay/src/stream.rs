//! `EventStream.Subscribe`: events from the outbox's log (when resuming from `start_offset`, within
//! the retention) and then live, filtered by type, topic filter and node. While a subscriber is
//! connected, brokers are told to produce the types it asks for.

use std::sync::{Arc, atomic::Ordering::Relaxed};

use proto::events::v1::{
    Event, EventType, StreamEvent, SubscribeRequest, event_stream_server::EventStream,
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{route, server::Inner};

/// Every event type (bits 1–13).
pub const ALL_TYPES: u32 = 0b11_1111_1111_1110;

/// Log entries read per query when catching up.
const PAGE: usize = 512;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct StreamService {
    pub(crate) inner: Arc<Inner>,
}

/// What one subscriber asked for.
#[derive(Debug)]
struct Filter {
    types: u32,
    topics: Vec<String>,
    nodes: Vec<String>,
}

impl Filter {
    fn matches(&self, event: &Event) -> bool {
        let Some(kind) = route::event_kind(event) else { return false };
        if self.types & route::type_bit(route::event_type(kind)) == 0 {
            return false;
        }
        if !self.nodes.is_empty() && !self.nodes.contains(&event.node_id) {
            return false;
        }
        match route::message_topic(event) {
            Some(topic) if !self.topics.is_empty() => {
                self.topics.iter().any(|f| tern_acl::topic::matches(f, topic))
            }
            _ => true,
        }
    }
}

/// Unregisters a subscriber's types when its stream ends.
struct Registration {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inner.subscribers.lock().remove(&self.id);
        self.inner.update_wanted();
    }
}

#[tonic::async_trait]
impl EventStream for StreamService {
    type SubscribeStream = ReceiverStream<Result<StreamEvent, Status>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let r = request.into_inner();
        let mut types = 0;
        for t in &r.types {
            match EventType::try_from(*t) {
                Ok(EventType::Unspecified) | Err(_) => {
                    return Err(Status::invalid_argument(format!("unknown event type {t}")));
                }
                Ok(t) => types |= route::type_bit(t),
            }
        }
        for filter in &r.topic_filters {
            tern_acl::topic::validate_filter(filter).map_err(|reason| {
                Status::invalid_argument(format!("topic filter {filter:?}: {reason}"))
            })?;
        }
        let filter = Filter {
            types: if types == 0 { ALL_TYPES } else { types },
            topics: r.topic_filters,
            nodes: r.node_ids,
        };
        let inner = Arc::clone(&self.inner);
        // Live events first, so nothing falls between the log and the live channel.
        let mut live = inner.live.subscribe();
        let (first, next) = bounds(&inner).await?;
        let mut from = match r.start_offset {
            Some(start) if start < first => {
                return Err(Status::out_of_range(format!(
                    "offset {start} is older than the relay's retention (oldest held: {first})"
                )));
            }
            Some(start) => start,
            None => next,
        };
        let id = inner.next_subscriber.fetch_add(1, Relaxed);
        inner.subscribers.lock().insert(id, filter.types);
        inner.update_wanted();
        let registration = Registration { inner: Arc::clone(&inner), id };
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let _registration = registration;
            if !catch_up(&inner, &filter, &mut from, &tx).await {
                return;
            }
            loop {
                let received = tokio::select! {
                    received = live.recv() => received,
                    _ = tx.closed() => return,
                    () = inner.stopping.cancelled() => return,
                };
                match received {
                    Ok((offset, event)) => {
                        if offset < from {
                            continue;
                        }
                        if offset > from && !catch_up(&inner, &filter, &mut from, &tx).await {
                            return;
                        }
                        if offset < from {
                            continue;
                        }
                        from = offset + 1;
                        if filter.matches(&event) && !send(&tx, offset, &event).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !catch_up(&inner, &filter, &mut from, &tx).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn bounds(inner: &Arc<Inner>) -> Result<(u64, u64), Status> {
    let outbox = inner.outbox.clone();
    tokio::task::spawn_blocking(move || outbox.bounds())
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|_| Status::unavailable("the relay cannot read its outbox"))
}

async fn send(tx: &mpsc::Sender<Result<StreamEvent, Status>>, offset: u64, event: &Event) -> bool {
    tx.send(Ok(StreamEvent { offset, event: Some(event.clone()) })).await.is_ok()
}

/// Sends the log from `*from` on; returns false when the subscriber went away or the log failed.
async fn catch_up(
    inner: &Arc<Inner>,
    filter: &Filter,
    from: &mut u64,
    tx: &mpsc::Sender<Result<StreamEvent, Status>>,
) -> bool {
    loop {
        let outbox = inner.outbox.clone();
        let start = *from;
        let page = match tokio::task::spawn_blocking(move || outbox.read_log(start, PAGE)).await {
            Ok(Ok(page)) => page,
            _ => {
                let _ = tx.send(Err(Status::unavailable("the relay cannot read its outbox"))).await;
                return false;
            }
        };
        if page.is_empty() {
            return true;
        }
        for (offset, event) in page {
            *from = offset + 1;
            if filter.matches(&event) && !send(tx, offset, &event).await {
                return false;
            }
        }
    }
}
