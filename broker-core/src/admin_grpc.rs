//! The BrokerAdmin gRPC server of one node (`tern.broker.v1.BrokerAdmin`): clients, kick,
//! subscriptions, topic tree, publish and statistics, for admin-api and other services.
//!
//! Reads go straight to the registry (one short slot lock per client, never held across a network
//! await) and the router (`Router::for_each`). Changes to a connected client's session
//! (subscribe, unsubscribe) are sent to its connection task as a [`Control::WithSession`], since
//! that task owns the session; a detached session is changed in place under its slot lock.
//!
//! Served with `grpc.health.v1` and reflection; calls to BrokerAdmin need the bearer token when
//! one is configured ([`proto::grpc::BearerToken`]), and the server can require TLS.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use bytestring::ByteString;
use mqtt_codec::{PublishProperties, QoS, RetainHandling};
use parking_lot::Mutex;
use proto::{
    broker::v1::{
        self as pb,
        broker_admin_server::{BrokerAdmin, BrokerAdminServer},
    },
    grpc::BearerToken,
    types::v1 as types,
};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::{
    broker::Broker,
    clock,
    events::{Event, EventKind, SubscriptionEvent},
    message::{Delivery, Message},
    registry::{Control, SessionOp, Slot},
    router::{RouteOptions, SubscriptionFilter},
    session::{SessionState, SubscriptionRecord},
};

/// How long a call waits for a connection task to run a session operation.
const SESSION_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// How the BrokerAdmin server is secured: a bearer token required on every BrokerAdmin call and
/// TLS (optionally mutual), from `broker_admin {}`.
pub type AdminSecurity = proto::grpc::Security;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AdminServeError {
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The TLS files do not load.
    #[error("broker_admin.tls: {0}")]
    Tls(std::io::Error),
    /// The node registry cannot be used (a bad Redis URL).
    #[error("redis: {0}")]
    Registry(String),
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves BrokerAdmin for `broker` on `listener` until `shutdown` completes.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    security: AdminSecurity,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AdminServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("tern.broker.v1.BrokerAdmin", tonic_health::ServingStatus::Serving)
        .await;
    let reflection =
        proto::grpc::reflection().map_err(|e| AdminServeError::Reflection(e.to_string()))?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &security.tls {
        builder = builder.tls_config(tls.server().map_err(AdminServeError::Tls)?)?;
    }
    let admin = BrokerAdminServer::with_interceptor(
        AdminGrpc::new(broker),
        BearerToken::new(security.token.as_deref()),
    );
    builder
        .add_service(health)
        .add_service(reflection)
        .add_service(admin)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// Where this node registers itself so admin-api finds it.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The Redis URL (secret).
    pub redis_url: String,
    /// Key prefix (`tern:`).
    pub prefix: String,
    /// Lifetime of the registration unless refreshed.
    pub ttl: Duration,
    /// Deadline of one Redis command.
    pub timeout: Duration,
    /// `host:port` admin-api calls.
    pub advertise: String,
    /// This node's MQTT listeners, for the record.
    pub listeners: Vec<String>,
}

/// The security and registration settings of `config` (`broker_admin {}`, `redis {}`) for a
/// server bound on `port`; `listeners` describes the node's MQTT listeners.
pub fn settings_from(
    config: &tern_config::Config,
    admin: &tern_config::BrokerAdminConfig,
    port: u16,
    listeners: Vec<String>,
) -> (AdminSecurity, Option<Registration>) {
    let security = AdminSecurity::from_config(admin.token.as_ref(), admin.tls.as_ref());
    let registration = config.redis.as_ref().map(|redis| Registration {
        redis_url: redis.url.expose().to_owned(),
        prefix: redis.prefix.clone(),
        ttl: redis.node_ttl,
        timeout: redis.timeout,
        advertise: admin.advertise.clone().unwrap_or_else(|| format!("{}:{port}", config.node.id)),
        listeners,
    });
    (security, registration)
}

/// Serves BrokerAdmin on `listener` and, with `registration`, keeps this node registered in
/// Redis (`<prefix>nodes:<node id>`) until `shutdown`, then removes the registration.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    security: AdminSecurity,
    registration: Option<Registration>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), AdminServeError> {
    // Cancelled when the server stops, for whatever reason, without stopping the broker.
    let unregister = shutdown.child_token();
    let registered = match registration {
        Some(r) => {
            let manager =
                tern_config_store::redis_store::connection_manager(&r.redis_url, r.timeout, None)
                    .map_err(|e| AdminServeError::Registry(e.to_string()))?;
            let record = tern_config_store::nodes::NodeRecord {
                node_id: broker.config().node_id.to_string(),
                grpc_address: r.advertise,
                tls: security.tls.is_some(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_at_ms: broker.started_at_ms(),
                listeners: r.listeners,
            };
            Some(tokio::spawn(tern_config_store::nodes::keep_registered(
                manager,
                tern_config_store::redis_store::Keys::new(&r.prefix),
                record,
                r.ttl,
                r.timeout,
                unregister.clone(),
            )))
        }
        None => None,
    };
    let served = serve(broker, listener, security, shutdown.clone().cancelled_owned()).await;
    // Unregister whether the server stopped on shutdown or failed.
    unregister.cancel();
    if let Some(task) = registered {
        let _ = task.await;
    }
    served
}

/// The BrokerAdmin service of one node.
#[derive(Debug)]
pub struct AdminGrpc {
    broker: Arc<Broker>,
    /// Last CPU sample (when, process CPU ticks), for `cpu_percent` between two `Stats` calls.
    cpu: Mutex<Option<(Instant, u64)>>,
}

impl AdminGrpc {
    /// The service for `broker`.
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker, cpu: Mutex::new(None) }
    }

    /// The node's statistics now (CPU use since the previous call).
    pub fn statistics(&self) -> pb::BrokerStats {
        let b = &self.broker;
        let s = &b.stats;
        let mut topics = std::collections::HashSet::new();
        b.router.for_each(|filter, _, _| {
            topics.insert(SubscriptionFilter::parse(filter).filter);
        });
        pb::BrokerStats {
            node_id: b.config().node_id.to_string(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: b.uptime().as_secs(),
            started_at_ms: b.started_at_ms(),
            connections: s.connections.get(),
            sessions: b.sessions.len() as u64,
            subscriptions: b.router.len() as u64,
            shared_subscriptions: b.router.shared_len() as u64,
            topics: topics.len() as u64,
            retained_messages: b.retained.len() as u64,
            connections_max: s.connections.max(),
            messages_received: s.messages_received.get(),
            messages_sent: s.messages_sent.get(),
            messages_dropped: s.messages_dropped.get(),
            bytes_received: s.bytes_received.get(),
            bytes_sent: s.bytes_sent.get(),
            packets_received: s.packets_received.get(),
            packets_sent: s.packets_sent.get(),
            connects_accepted: s.connects_accepted.get(),
            connects_refused: s.connects_refused.get(),
            memory_rss_bytes: process_rss_bytes(),
            cpu_percent: self.cpu_percent(),
            ..Default::default()
        }
    }

    async fn details(&self, client_id: &str) -> Option<pb::ClientDetails> {
        let entry = self.broker.sessions.get(client_id)?;
        let slot = entry.slot.lock().await;
        details_of(&slot, &self.broker.config().node_id)
    }

    /// Runs `op` on the client's session, wherever it is (connection task or registry).
    async fn with_session<T: Send + 'static>(
        &self,
        client_id: &str,
        op: impl Fn(&Broker, &mut SessionState) -> T + Send + Sync + 'static,
    ) -> Result<T, Status> {
        let op = Arc::new(op);
        // A connection closing while we ask detaches its session: look again (bounded).
        for _ in 0..3 {
            let entry = self.broker.sessions.get(client_id).ok_or_else(|| not_found(client_id))?;
            let mut slot = entry.slot.lock().await;
            let control = match &mut *slot {
                Slot::Detached(d) => return Ok(op(&self.broker, &mut d.state)),
                Slot::Attached(a) => a.control.clone(),
                Slot::Empty | Slot::Removed => return Err(not_found(client_id)),
            };
            drop(slot);
            let (reply, answer) = oneshot::channel();
            let run = Arc::clone(&op);
            let session_op = SessionOp(Box::new(move |broker, state| {
                let _ = reply.send(run(broker, state));
            }));
            if control.send(Control::WithSession(session_op)).await.is_err() {
                tokio::task::yield_now().await;
                continue;
            }
            match tokio::time::timeout(SESSION_OP_TIMEOUT, answer).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(_)) => {
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(_) => {
                    return Err(Status::unavailable("the client's connection did not answer"));
                }
            }
        }
        Err(Status::unavailable("the client's session is changing hands; try again"))
    }

    fn cpu_percent(&self) -> f64 {
        let Some(ticks) = process_cpu_ticks() else { return 0.0 };
        let now = Instant::now();
        let mut last = self.cpu.lock();
        let percent = match *last {
            Some((at, before)) => {
                let elapsed = now.duration_since(at).as_secs_f64();
                if elapsed > 0.0 {
                    // Linux reports CPU time in USER_HZ ticks, 100 per second.
                    (ticks.saturating_sub(before) as f64 / 100.0) / elapsed * 100.0
                } else {
                    0.0
                }
            }
            None => {
                let uptime = self.broker.uptime().as_secs_f64();
                if uptime > 0.0 { ticks as f64 / 100.0 / uptime * 100.0 } else { 0.0 }
            }
        };
        *last = Some((now, ticks));
        percent
    }
}

fn not_found(client_id: &str) -> Status {
    Status::not_found(format!("client {client_id:?} is not on this node"))
}

/// User and system CPU time of this process, in ticks (`/proc/self/stat`, Linux).
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of this process in bytes (`/proc/self/status`, Linux).
pub fn process_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kb = line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim();
                kb.parse::<u64>().ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

fn details_of(slot: &Slot, node_id: &str) -> Option<pb::ClientDetails> {
    match slot {
        Slot::Attached(a) => Some(pb::ClientDetails {
            client: Some(crate::auth_grpc::client_info(&a.client, false)),
            conn_state: pb::ConnState::Connected.into(),
            keepalive: u32::from(a.client.keepalive),
            connected_at_ms: a.connected_at_ms,
            subscriptions: a.mailbox.subscription_count(),
            queue_len: u32::try_from(a.mailbox.len()).unwrap_or(u32::MAX),
            messages_dropped: a.mailbox.dropped(),
            node_id: node_id.to_owned(),
            ..Default::default()
        }),
        Slot::Detached(d) => {
            let state = &d.state;
            let will = d.will.as_ref().map(|w| &w.will);
            Some(pb::ClientDetails {
                client: Some(crate::auth_grpc::client_info(&state.client, false)),
                conn_state: pb::ConnState::Disconnected.into(),
                keepalive: u32::from(state.client.keepalive),
                session_expiry_interval: state.expiry_interval,
                connected_at_ms: state.created_at_ms,
                disconnected_at_ms: Some(d.disconnected_at_ms),
                will_topic: will.map(|w| w.topic.to_string()),
                will_payload: will.map(|w| w.payload.clone()),
                subscriptions: u32::try_from(state.subscriptions.len()).unwrap_or(u32::MAX),
                queue_len: u32::try_from(state.mailbox.len()).unwrap_or(u32::MAX),
                inflight: u32::try_from(state.outbound.len()).unwrap_or(u32::MAX),
                messages_dropped: state.mailbox.dropped(),
                node_id: node_id.to_owned(),
                ..Default::default()
            })
        }
        Slot::Empty | Slot::Removed => None,
    }
}

fn client_matches(filter: &pb::ListClientsRequest, d: &pb::ClientDetails) -> bool {
    let Some(c) = &d.client else { return false };
    let username = c.username.as_deref();
    filter.client_id.as_deref().is_none_or(|id| id == c.client_id)
        && filter.username.as_deref().is_none_or(|u| Some(u) == username)
        && (filter.conn_state == i32::from(pb::ConnState::Unspecified)
            || filter.conn_state == d.conn_state)
        && filter.clean_start.is_none_or(|v| v == c.clean_start)
        && filter.proto_name.as_deref().is_none_or(|n| n == c.protocol_name)
        && filter.proto_ver.is_none_or(|v| i32::try_from(v).is_ok_and(|v| v == c.protocol_version))
        && filter.like_client_id.as_deref().is_none_or(|s| c.client_id.contains(s))
        && filter.like_username.as_deref().is_none_or(|s| username.is_some_and(|u| u.contains(s)))
        && filter.ip_address.as_deref().is_none_or(|ip| ip == c.peer_address)
}

/// The page `offset..offset+limit` (limit 0 = everything after `offset`).
fn page<T>(items: Vec<T>, offset: u32, limit: u32) -> Vec<T> {
    let skipped = items.into_iter().skip(offset as usize);
    if limit == 0 { skipped.collect() } else { skipped.take(limit as usize).collect() }
}

fn qos_of(value: i32) -> Result<QoS, Status> {
    u8::try_from(value)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| Status::invalid_argument(format!("qos {value} is not 0, 1 or 2")))
}

/// Subscribes `state` as if its client had sent SUBSCRIBE (no ACL: the caller is an
/// administrator); returns one SUBACK reason code per subscription.
fn subscribe_session(
    broker: &Broker,
    state: &mut SessionState,
    requested: &[types::Subscription],
) -> Vec<u32> {
    let max_subs = broker.config().max_subscriptions_per_client;
    let mut retained = Vec::new();
    let codes = requested
        .iter()
        .map(|sub| {
            let raw = sub.topic_filter.as_str();
            let Ok(qos) = qos_of(sub.qos) else { return 0x80 };
            if mqtt_codec::validate_topic_filter(raw).is_err() {
                return 0x8F;
            }
            if max_subs > 0
                && state.subscriptions.len() >= max_subs
                && !state.subscriptions.contains_key(raw)
            {
                return 0x97;
            }
            let retain_handling = match sub.retain_handling {
                1 => RetainHandling::SendAtSubscribeIfNew,
                2 => RetainHandling::DoNotSend,
                _ => RetainHandling::SendAtSubscribe,
            };
            let filter = SubscriptionFilter::parse(raw);
            let options = RouteOptions {
                qos,
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                subscription_id: (sub.subscription_identifier > 0)
                    .then_some(sub.subscription_identifier),
            };
            let is_new = broker.router.subscribe(&filter, &state.mailbox, options);
            let send_retained = broker.config().retain_available
                && !filter.is_shared()
                && match retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendAtSubscribeIfNew => is_new,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                for message in broker.retained.matching(&filter.filter, Instant::now()) {
                    retained.push(Delivery {
                        qos: message.qos.min(qos),
                        retain: true,
                        subscription_ids: options.subscription_id.into_iter().collect(),
                        message,
                    });
                }
            }
            state.subscriptions.insert(
                ByteString::from(raw),
                SubscriptionRecord { filter, options, retain_handling },
            );
            // Reported like a client's own subscription (webhooks, the event stream).
            broker.emit(EventKind::SessionSubscribed, || Event::SessionSubscribed {
                client: Arc::clone(&state.client),
                subscription: SubscriptionEvent {
                    filter: ByteString::from(raw),
                    options,
                    retain_handling: retain_handling as u8,
                },
            });
            u32::from(qos.as_u8())
        })
        .collect();
    for delivery in retained {
        let _ = state.mailbox.push(delivery);
    }
    codes
}

/// Removes subscriptions from `state`; returns one UNSUBACK reason code per filter.
fn unsubscribe_session(broker: &Broker, state: &mut SessionState, filters: &[String]) -> Vec<u32> {
    filters
        .iter()
        .map(|filter| match state.subscriptions.remove(filter.as_str()) {
            Some(record) if broker.router.unsubscribe(&record.filter, &state.mailbox) => {
                broker.emit(EventKind::SessionUnsubscribed, || Event::SessionUnsubscribed {
                    client: Arc::clone(&state.client),
                    filter: ByteString::from(filter.as_str()),
                });
                0x00
            }
            _ => 0x11,
        })
        .collect()
}

/// A subscription filter as the router stores it, back in the form the client sent.
fn subscription_of(filter: &str, options: &RouteOptions) -> types::Subscription {
    let share_group = match mqtt_codec::parse_shared(filter) {
        Some((group, _)) => group.to_owned(),
        None if filter.starts_with("$queue/") => crate::router::QUEUE_GROUP.to_owned(),
        None => String::new(),
    };
    types::Subscription {
        topic_filter: filter.to_owned(),
        qos: i32::from(options.qos.as_u8()),
        no_local: options.no_local,
        retain_as_published: options.retain_as_published,
        retain_handling: 0,
        subscription_identifier: options.subscription_id.unwrap_or(0),
        share_group,
    }
}

#[derive(Default)]
struct TreeNode {
    client_ids: Vec<String>,
    children: BTreeMap<String, TreeNode>,
}

impl TreeNode {
    fn insert(&mut self, filter: &str, client_id: &str) {
        let mut node = self;
        for level in filter.split('/') {
            node = node.children.entry(level.to_owned()).or_default();
        }
        node.client_ids.push(client_id.to_owned());
    }

    fn into_proto(self) -> Vec<pb::TopicNode> {
        self.children
            .into_iter()
            .map(|(level, mut child)| {
                child.client_ids.sort();
                child.client_ids.dedup();
                pb::TopicNode {
                    level,
                    client_ids: std::mem::take(&mut child.client_ids),
                    children: child.into_proto(),
                }
            })
            .collect()
    }
}

fn properties_of(p: Option<types::MessageProperties>) -> PublishProperties {
    let Some(p) = p else { return PublishProperties::default() };
    PublishProperties {
        payload_format_indicator: p.payload_format_indicator.map(|v| v == 1),
        message_expiry_interval: p.message_expiry_interval,
        content_type: p.content_type.map(ByteString::from),
        response_topic: p.response_topic.map(ByteString::from),
        correlation_data: p.correlation_data,
        user_properties: p
            .user_properties
            .into_iter()
            .map(|u| (ByteString::from(u.key), ByteString::from(u.value)))
            .collect(),
        ..PublishProperties::default()
    }
}

#[tonic::async_trait]
impl BrokerAdmin for AdminGrpc {
    async fn list_clients(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        let filter = request.into_inner();
        let node_id = &self.broker.config().node_id;
        let entries = match filter.client_id.as_deref() {
            Some(id) => self.broker.sessions.get(id).into_iter().collect(),
            None => self.broker.sessions.all(),
        };
        let mut clients = Vec::new();
        for entry in entries {
            let slot = entry.slot.lock().await;
            if let Some(d) = details_of(&slot, node_id)
                && client_matches(&filter, &d)
            {
                clients.push(d);
            }
        }
        clients.sort_by(|a, b| {
            let id = |d: &pb::ClientDetails| d.client.as_ref().map(|c| c.client_id.clone());
            id(a).cmp(&id(b))
        });
        let total = clients.len() as u64;
        Ok(Response::new(pb::ListClientsResponse {
            clients: page(clients, filter.offset, filter.limit),
            total,
        }))
    }

    async fn get_client(
        &self,
        request: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::ClientDetails>, Status> {
        let id = request.into_inner().client_id;
        self.details(&id).await.map(Response::new).ok_or_else(|| not_found(&id))
    }

    async fn kick_client(
        &self,
        request: Request<pb::KickClientRequest>,
    ) -> Result<Response<pb::KickClientResponse>, Status> {
        let pb::KickClientRequest { client_id, discard_session } = request.into_inner();
        let entry = self.broker.sessions.get(&client_id).ok_or_else(|| not_found(&client_id))?;
        let slot = entry.slot.lock().await;
        match &*slot {
            Slot::Attached(a) => {
                let control = a.control.clone();
                drop(slot);
                // A closed channel means the connection is already going away: kicked either way.
                let _ = tokio::time::timeout(
                    SESSION_OP_TIMEOUT,
                    control.send(Control::Kick { discard_session }),
                )
                .await;
                tracing::info!(client_id, discard_session, "client kicked by an administrator");
                Ok(Response::new(pb::KickClientResponse { was_connected: true }))
            }
            Slot::Detached(d) => {
                let generation = d.generation;
                drop(slot);
                if discard_session
                    && let Some((state, will)) =
                        self.broker.sessions.take_detached(&entry, generation).await
                {
                    if let Some(will) = will {
                        self.broker.publish_will(will).await;
                    }
                    self.broker.end_session(&state, "kicked");
                    tracing::info!(client_id, "offline session discarded by an administrator");
                }
                Ok(Response::new(pb::KickClientResponse { was_connected: false }))
            }
            Slot::Empty | Slot::Removed => Err(not_found(&client_id)),
        }
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let f = request.into_inner();
        let node_id = self.broker.config().node_id.to_string();
        let mut subscriptions = Vec::new();
        self.broker.router.for_each(|filter, mailbox, options| {
            let client_id: &str = mailbox.client_id();
            if f.client_id.as_deref().is_some_and(|id| id != client_id)
                || f.topic.as_deref().is_some_and(|t| t != filter)
                || f.qos.is_some_and(|q| q != i32::from(options.qos.as_u8()))
            {
                return;
            }
            let sub = subscription_of(filter, options);
            let plain = SubscriptionFilter::parse(filter);
            if f.share.as_deref().is_some_and(|g| g != sub.share_group)
                || f.match_topic
                    .as_deref()
                    .is_some_and(|t| !crate::router::matches(&plain.filter, t))
            {
                return;
            }
            subscriptions.push(pb::ClientSubscription {
                client_id: client_id.to_owned(),
                subscription: Some(sub),
                node_id: node_id.clone(),
            });
        });
        subscriptions.sort_by(|a, b| {
            let key = |s: &pb::ClientSubscription| {
                (s.client_id.clone(), s.subscription.as_ref().map(|s| s.topic_filter.clone()))
            };
            key(a).cmp(&key(b))
        });
        let total = subscriptions.len() as u64;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: page(subscriptions, f.offset, f.limit),
            total,
        }))
    }

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<pb::SubscribeResponse>, Status> {
        let pb::SubscribeRequest { client_id, subscriptions } = request.into_inner();
        if subscriptions.is_empty() {
            return Err(Status::invalid_argument("no subscription given"));
        }
        let reason_codes = self
            .with_session(&client_id, move |broker, state| {
                subscribe_session(broker, state, &subscriptions)
            })
            .await?;
        Ok(Response::new(pb::SubscribeResponse { reason_codes }))
    }

    async fn unsubscribe(
        &self,
        request: Request<pb::UnsubscribeRequest>,
    ) -> Result<Response<pb::UnsubscribeResponse>, Status> {
        let pb::UnsubscribeRequest { client_id, topic_filters } = request.into_inner();
        if topic_filters.is_empty() {
            return Err(Status::invalid_argument("no topic filter given"));
        }
        let reason_codes = self
            .with_session(&client_id, move |broker, state| {
                unsubscribe_session(broker, state, &topic_filters)
            })
            .await?;
        Ok(Response::new(pb::UnsubscribeResponse { reason_codes }))
    }

    async fn topic_tree(
        &self,
        _request: Request<pb::TopicTreeRequest>,
    ) -> Result<Response<pb::TopicTreeResponse>, Status> {
        let mut root = TreeNode::default();
        self.broker.router.for_each(|filter, mailbox, _| {
            let plain = SubscriptionFilter::parse(filter);
            root.insert(&plain.filter, mailbox.client_id());
        });
        Ok(Response::new(pb::TopicTreeResponse { roots: root.into_proto() }))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let message =
            request.into_inner().message.ok_or_else(|| Status::invalid_argument("no message"))?;
        mqtt_codec::validate_topic_name(&message.topic).map_err(|e| {
            Status::invalid_argument(format!(
                "topic {:?} is not a valid topic name: {e}",
                message.topic
            ))
        })?;
        let qos = qos_of(message.qos)?;
        let routed = self.broker.publish(Arc::new(Message {
            topic: ByteString::from(message.topic),
            payload: message.payload,
            qos,
            retain: message.retain,
            properties: properties_of(message.properties),
            publisher: None,
            from_client_id: ByteString::from(message.from_client_id),
            from_username: message.from_username.map(ByteString::from),
            received_at: Instant::now(),
            received_at_ms: clock::now_ms(),
        }));
        Ok(Response::new(pb::PublishResponse {
            matched: u32::try_from(routed.queued).unwrap_or(u32::MAX),
        }))
    }

    async fn stats(
        &self,
        _request: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::BrokerStats>, Status> {
        Ok(Response::new(self.statistics()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_tree_groups_levels_and_client_ids() {
        let mut root = TreeNode::default();
        root.insert("a/b", "c1");
        root.insert("a/b", "c2");
        root.insert("a/+", "c1");
        root.insert("x", "c3");
        let tree = root.into_proto();
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].level, "a");
        let levels: Vec<_> = tree[0].children.iter().map(|n| n.level.as_str()).collect();
        assert_eq!(levels, ["+", "b"]);
        assert_eq!(tree[0].children[1].client_ids, ["c1", "c2"]);
        assert_eq!(tree[1].client_ids, ["c3"]);
    }

    #[test]
    fn pages_skip_then_take() {
        assert_eq!(page(vec![1, 2, 3, 4], 1, 2), vec![2, 3]);
        assert_eq!(page(vec![1, 2, 3], 0, 0), vec![1, 2, 3]);
        assert!(page(vec![1], 5, 0).is_empty());
    }

    #[test]
    fn shared_subscriptions_report_their_group() {
        let options = RouteOptions {
            qos: QoS::AtLeastOnce,
            no_local: false,
            retain_as_published: false,
            subscription_id: None,
        };
        assert_eq!(subscription_of("$share/g/a/b", &options).share_group, "g");
        assert_eq!(subscription_of("$queue/a", &options).share_group, "$queue");
        assert_eq!(subscription_of("a/#", &options).share_group, "");
        assert_eq!(subscription_of("a/#", &options).qos, 1);
    }
}
