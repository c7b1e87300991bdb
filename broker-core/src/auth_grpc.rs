//! The authentication seam implemented by auth-service over gRPC.
//!
//! - **Deadline and retries:** every call has the configured deadline; Authenticate and Authorize
//!   are idempotent and are retried on UNAVAILABLE (another replica may answer) within it.
//! - **Replicas:** the service's host name is resolved every `resolve_interval` (tonic does not
//!   re-resolve by itself) and calls go round-robin over every address it returns, which is what
//!   `docker compose up --scale auth-service=3` needs. A call that fails on a replica (UNAVAILABLE,
//!   or a stream reset when the replica dies mid-call) is retried on the next one, and that
//!   replica is skipped for a while: failover does not depend on a dead connection noticing it is
//!   dead.
//! - **No round trip per publish:** the ACL auth-service preloads at CONNECT is evaluated locally;
//!   otherwise decisions are cached per client (`auth.cache { max_size, ttl }`, capped by the TTL
//!   each answer gives: zero, i.e. no caching, while a backend cannot report its changes). A
//!   decision that was asked for before a revocation is not cached. Superusers are never checked.
//! - **Fail closed:** when auth-service cannot answer, CONNECT is refused with 0x88 (3 on 3.1.1)
//!   and undecided publishes/subscribes are denied — unless `auth_service.on_unavailable` says
//!   otherwise per operation.
//! - **Revocations:** a watcher task follows `WatchRevocations`; any revocation makes every client
//!   drop its cached decisions and its preloaded ACL, and ask again. While the stream is down,
//!   decisions stay valid (clients keep working through an outage); once it is open again, they
//!   are dropped once, since revocations may have been missed.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytestring::ByteString;
use mqtt_codec::{ConnectReasonCode, QoS};
use parking_lot::Mutex;
use proto::{
    auth::v1::{self as pb, auth_service_client::AuthServiceClient},
    grpc::{AttachToken, BearerToken},
    types::v1 as types,
};
use tern_acl::{Action, ClientPolicy, ClientRule, Permission, RuleAction, RuleTopic};
use tokio_stream::StreamExt as _;

use tonic::{
    Code,
    transport::{Channel, Endpoint},
};

use crate::auth::{
    Authenticator, BoxFuture, Check, ClientAuthorizer, ClientIdentity, ConnectVerdict, DenyAction,
    Permission as BrokerPermission, Transport,
};

/// Replicas tried per call (the first plus retries after replica failures), all within the deadline.
const ATTEMPTS: usize = 3;
/// Pause before re-opening the revocation stream after it broke.
const WATCH_BACKOFF: Duration = Duration::from_secs(1);

/// Settings of the gRPC authenticator (from `auth_service {}` and `auth.cache {}`).
#[derive(Debug, Clone)]
pub struct GrpcAuthConfig {
    /// `host:port` of auth-service.
    pub address: String,
    /// Deadline of one call, retries included.
    pub timeout: Duration,
    /// How often `address` is resolved again.
    pub resolve_interval: Duration,
    /// Allow CONNECT when auth-service cannot answer.
    pub connect_when_unavailable: bool,
    /// Allow an undecided PUBLISH when auth-service cannot answer.
    pub publish_when_unavailable: bool,
    /// Allow an undecided SUBSCRIBE when auth-service cannot answer.
    pub subscribe_when_unavailable: bool,
    /// Most cached decisions per client (`auth.cache.max_size`).
    pub cache_max_size: usize,
    /// Longest a decision is cached (`auth.cache.ttl`; the service's TTL may be shorter).
    pub cache_ttl: Duration,
    /// This node's id (for the service's logs).
    pub node_id: Arc<str>,
    /// Bearer token sent on every call (`auth_service.token`).
    pub token: Option<String>,
    /// Call auth-service over TLS (`auth_service.tls`).
    pub tls: Option<proto::grpc::TlsFiles>,
}

impl GrpcAuthConfig {
    /// The settings of a loaded configuration, when it names an auth-service.
    pub fn from_config(config: &tern_config::Config) -> Option<Self> {
        let a = &config.auth_service;
        let allow = |p: tern_config::Permit| p == tern_config::Permit::Allow;
        Some(Self {
            address: a.address.clone()?,
            timeout: a.timeout,
            resolve_interval: a.resolve_interval,
            connect_when_unavailable: allow(a.on_unavailable.connect),
            publish_when_unavailable: allow(a.on_unavailable.publish),
            subscribe_when_unavailable: allow(a.on_unavailable.subscribe),
            cache_max_size: config.auth.cache.max_size as usize,
            cache_ttl: config.auth.cache.ttl,
            node_id: Arc::from(config.node.id.as_str()),
            token: a.token.as_ref().map(|t| t.expose().to_owned()),
            tls: a.tls.as_ref().map(proto::grpc::TlsFiles::from),
        })
    }
}

/// How long a replica that answered UNAVAILABLE is tried only after the others.
const DOWN_FOR: Duration = Duration::from_secs(3);

/// An AuthService client that sends the configured token.
type Client =
    AuthServiceClient<tonic::service::interceptor::InterceptedService<Channel, AttachToken>>;

/// A client of the replica at `addr`, over TLS when configured (verifying the configured host
/// name, not the resolved address).
fn replica_client(config: &GrpcAuthConfig, addr: SocketAddr) -> Result<Client, String> {
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(config.timeout)
        .tcp_nodelay(true);
    if let Some(tls) = &config.tls {
        let host = config.address.rsplit_once(':').map_or(config.address.as_str(), |(h, _)| h);
        let settings = tls.client(host).map_err(|e| e.to_string())?;
        endpoint = endpoint.tls_config(settings).map_err(|e| e.to_string())?;
    }
    Ok(AuthServiceClient::with_interceptor(
        endpoint.connect_lazy(),
        AttachToken(BearerToken::new(config.token.as_deref())),
    ))
}

/// One auth-service replica.
#[derive(Debug)]
struct Replica {
    addr: SocketAddr,
    /// A lazily connected channel to it.
    client: Client,
    /// Until when (ms since `Replicas::epoch`) it is considered down.
    down_until_ms: AtomicU64,
}

/// The replicas behind the configured address, kept up to date by the resolver task.
#[derive(Debug)]
struct Replicas {
    /// The current set; replaced whole, read under a short lock (never across `.await`).
    list: parking_lot::RwLock<Arc<Vec<Arc<Replica>>>>,
    /// Round-robin position.
    next: std::sync::atomic::AtomicUsize,
    /// Reference point of `down_until_ms`.
    epoch: Instant,
    /// Becomes true once the address resolved at least once.
    resolved: tokio::sync::watch::Sender<bool>,
}

impl Replicas {
    fn new() -> Self {
        Self {
            list: parking_lot::RwLock::new(Arc::new(Vec::new())),
            next: std::sync::atomic::AtomicUsize::new(0),
            epoch: Instant::now(),
            resolved: tokio::sync::watch::channel(false).0,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The replicas to try for one call: round-robin, those recently down last.
    fn order(&self) -> Vec<Arc<Replica>> {
        let list = Arc::clone(&self.list.read());
        if list.is_empty() {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % list.len();
        let now = self.now_ms();
        let (up, down): (Vec<_>, Vec<_>) = (0..list.len())
            .map(|i| Arc::clone(&list[(start + i) % list.len()]))
            .partition(|r| r.down_until_ms.load(Ordering::Relaxed) <= now);
        up.into_iter().chain(down).collect()
    }

    fn mark_down(&self, replica: &Replica) {
        let until = self.now_ms() + u64::try_from(DOWN_FOR.as_millis()).unwrap_or(u64::MAX);
        replica.down_until_ms.store(until, Ordering::Relaxed);
    }

    /// Waits (at most `limit`) until the address has resolved once.
    async fn wait_resolved(&self, limit: Duration) {
        let mut ready = self.resolved.subscribe();
        let _ = tokio::time::timeout(limit, ready.wait_for(|r| *r)).await;
    }
}

#[derive(Debug)]
struct Shared {
    replicas: Replicas,
    config: GrpcAuthConfig,
    /// Bumped by every revocation: authorizers created before it drop what they cached.
    epoch: AtomicU64,
}

/// Authenticates through auth-service.
#[derive(Debug, Clone)]
pub struct GrpcAuth {
    shared: Arc<Shared>,
    /// Authenticate calls in flight, by client and credentials: an identical CONNECT arriving
    /// meanwhile (a reconnect storm of one device) waits for the same answer instead of asking
    /// again. Locked only to look up, insert or remove.
    inflight: Arc<Mutex<HashMap<CallKey, SharedVerdict>>>,
    /// Calls answered by joining one already in flight.
    coalesced: Arc<AtomicU64>,
}

/// What makes two Authenticate calls identical.
type CallKey =
    (ByteString, Option<ByteString>, Option<bytes::Bytes>, std::net::IpAddr, Option<Arc<str>>);

type SharedVerdict = futures_util::future::Shared<BoxFuture<ConnectVerdict>>;

impl GrpcAuth {
    /// Starts resolving `config.address`, balancing over its addresses, and watching revocations.
    /// Must be called inside a tokio runtime.
    pub fn start(config: GrpcAuthConfig) -> Self {
        Self::with_resolver(config, Arc::new(DnsResolver))
    }

    /// Like [`GrpcAuth::start`], with another way of turning the address into socket addresses.
    pub fn with_resolver(config: GrpcAuthConfig, resolver: Arc<dyn Resolve>) -> Self {
        let shared =
            Arc::new(Shared { replicas: Replicas::new(), config, epoch: AtomicU64::new(0) });
        tokio::spawn(resolve_loop(Arc::downgrade(&shared), resolver));
        tokio::spawn(watch_revocations(Arc::downgrade(&shared)));
        Self { shared, inflight: Arc::default(), coalesced: Arc::default() }
    }

    /// How many Authenticate calls were answered by joining an identical one in flight.
    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }
}

/// Turns an `auth_service.address` into the socket addresses of the replicas.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    /// The current addresses behind `address` (`host:port`).
    fn resolve(&self, address: &str) -> BoxFuture<std::io::Result<HashSet<SocketAddr>>>;
}

/// DNS, through the system resolver (Docker's embedded DNS returns one address per replica).
#[derive(Debug, Clone, Copy)]
pub struct DnsResolver;

impl Resolve for DnsResolver {
    fn resolve(&self, address: &str) -> BoxFuture<std::io::Result<HashSet<SocketAddr>>> {
        let address = address.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host(address).await?.collect()) })
    }
}

async fn resolve_loop(shared: std::sync::Weak<Shared>, resolver: Arc<dyn Resolve>) {
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let config = &strong.config;
        match resolver.resolve(&config.address).await {
            Ok(now) if !now.is_empty() => {
                let current = Arc::clone(&strong.replicas.list.read());
                let known: HashSet<SocketAddr> = current.iter().map(|r| r.addr).collect();
                if known != now {
                    let mut next: Vec<Arc<Replica>> =
                        current.iter().filter(|r| now.contains(&r.addr)).cloned().collect();
                    for addr in now.iter().filter(|a| !known.contains(a)) {
                        match replica_client(config, *addr) {
                            Ok(client) => next.push(Arc::new(Replica {
                                addr: *addr,
                                client,
                                down_until_ms: AtomicU64::new(0),
                            })),
                            Err(error) => tracing::warn!(%error, "auth-service address unusable"),
                        }
                    }
                    next.sort_by_key(|r| r.addr);
                    tracing::info!(address = %config.address, replicas = next.len(), "auth-service replicas");
                    *strong.replicas.list.write() = Arc::new(next);
                }
                strong.replicas.resolved.send_replace(true);
            }
            // Keep the last known replicas while the name does not resolve.
            Ok(_) => {
                tracing::warn!(address = %config.address, "auth-service name resolves to nothing")
            }
            Err(error) => {
                tracing::warn!(address = %config.address, %error, "cannot resolve auth-service")
            }
        }
        let interval = config.resolve_interval;
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}

async fn watch_revocations(shared: std::sync::Weak<Shared>) {
    // Decisions stay valid while the stream is down (so clients keep working through an
    // auth-service outage); when it is open again, revocations may have been missed meanwhile,
    // so everything cached is dropped once.
    let mut interrupted = false;
    loop {
        let Some(strong) = shared.upgrade() else { return };
        strong.replicas.wait_resolved(WATCH_BACKOFF).await;
        let replica = strong.replicas.order().into_iter().next();
        let node_id = strong.config.node_id.to_string();
        drop(strong);
        let opened = match replica {
            Some(replica) => {
                let mut client = replica.client.clone();
                client.watch_revocations(pb::WatchRevocationsRequest { node_id }).await.ok()
            }
            None => None,
        };
        if let Some(response) = opened {
            if interrupted {
                let Some(strong) = shared.upgrade() else { return };
                strong.epoch.fetch_add(1, Ordering::Relaxed);
            }
            let mut stream = response.into_inner();
            while let Some(Ok(revocation)) = stream.next().await {
                let Some(strong) = shared.upgrade() else { return };
                tracing::info!(reason = %revocation.reason, "auth decisions revoked");
                strong.epoch.fetch_add(1, Ordering::Relaxed);
            }
        }
        interrupted = true;
        tokio::time::sleep(WATCH_BACKOFF).await;
    }
}

/// Whether a failed call may be tried on another replica: the replica (or the connection to it)
/// failed, not the request. Authenticate and Authorize are idempotent, so a request that died with
/// a connection (UNKNOWN, CANCELLED, INTERNAL from a reset stream) is safe to send again.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal | Code::Aborted
    )
}

/// Runs `call` on one replica after another until one answers (or fails with a request error),
/// within the deadline. Replicas that failed are skipped for a while by later calls.
async fn with_retries<T, F, Fut>(
    replicas: &Replicas,
    timeout: Duration,
    mut call: F,
) -> Result<T, tonic::Status>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let attempts = async {
        replicas.wait_resolved(timeout).await;
        let mut last = tonic::Status::unavailable("no auth-service replica is known");
        for replica in replicas.order().into_iter().take(ATTEMPTS.max(1)) {
            match call(replica.client.clone()).await {
                Ok(value) => return Ok(value),
                Err(status) if retryable(status.code()) => {
                    tracing::debug!(replica = %replica.addr, %status, "auth-service replica unavailable");
                    replicas.mark_down(&replica);
                    last = status;
                }
                Err(status) => return Err(status),
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempts).await.unwrap_or_else(|_| {
        Err(tonic::Status::deadline_exceeded("auth-service did not answer in time"))
    })
}

pub(crate) fn client_info(client: &ClientIdentity, with_password: bool) -> types::ClientInfo {
    let transport = match client.transport {
        Transport::Tcp => types::Transport::Tcp,
        Transport::Tls => types::Transport::Tls,
        Transport::Ws => types::Transport::Ws,
        Transport::Wss => types::Transport::Wss,
    };
    types::ClientInfo {
        client_id: client.client_id.to_string(),
        username: client.username.as_ref().map(ToString::to_string),
        password: if with_password { client.password.clone() } else { None },
        peer_address: client.peer.ip().to_string(),
        peer_port: u32::from(client.peer.port()),
        listener: client.listener.to_string(),
        transport: transport.into(),
        protocol_name: client.protocol.protocol_name().to_owned(),
        protocol_version: i32::from(client.protocol.level()),
        cert_common_name: client.cert_common_name.as_deref().map(str::to_owned),
        cert_subject: client.cert_subject.as_deref().map(str::to_owned),
        node_id: client.node_id.to_string(),
        mountpoint: None,
        keepalive: u32::from(client.keepalive),
        clean_start: client.clean_start,
        auth_method: client.auth_method.as_ref().map(ToString::to_string),
        auth_data: if with_password { client.auth_data.clone() } else { None },
        user_properties: client
            .user_properties
            .iter()
            .map(|(k, v)| types::UserProperty { key: k.to_string(), value: v.to_string() })
            .collect(),
        listener_port: u32::from(client.listener_port),
    }
}

fn permission(decision: i32) -> Permission {
    if decision == i32::from(pb::Decision::Allow) { Permission::Allow } else { Permission::Deny }
}

/// A preloaded ACL from its gRPC form.
fn policy_from(acl: pb::AclPolicy) -> ClientPolicy {
    ClientPolicy {
        rules: acl
            .rules
            .into_iter()
            .map(|rule| ClientRule {
                permit: permission(rule.permit),
                action: match pb::AclAction::try_from(rule.action) {
                    Ok(pb::AclAction::Publish) => RuleAction::Publish,
                    Ok(pb::AclAction::Subscribe) => RuleAction::Subscribe,
                    _ => RuleAction::PubSub,
                },
                topics: rule
                    .topics
                    .into_iter()
                    .map(|t| RuleTopic { filter: t.filter, exact: t.exact })
                    .collect(),
            })
            .collect(),
        no_match: permission(acl.no_match),
    }
}

impl Authenticator for GrpcAuth {
    fn authenticate(&self, client: Arc<ClientIdentity>) -> BoxFuture<ConnectVerdict> {
        use futures_util::FutureExt as _;
        let key: CallKey = (
            client.client_id.clone(),
            client.username.clone(),
            client.password.clone(),
            client.peer.ip(),
            client.cert_common_name.clone(),
        );
        let call = {
            let mut inflight = self.inflight.lock();
            match inflight.get(&key) {
                Some(call) => {
                    self.coalesced.fetch_add(1, Ordering::Relaxed);
                    call.clone()
                }
                None => {
                    let call = Self::ask(Arc::clone(&self.shared), client).shared();
                    inflight.insert(key.clone(), call.clone());
                    call
                }
            }
        };
        let inflight = Arc::clone(&self.inflight);
        Box::pin(async move {
            let verdict = call.await;
            inflight.lock().remove(&key);
            verdict
        })
    }
}

impl GrpcAuth {
    /// One Authenticate call (with retries) and what it means for the client.
    fn ask(shared: Arc<Shared>, client: Arc<ClientIdentity>) -> BoxFuture<ConnectVerdict> {
        Box::pin(async move {
            let epoch = shared.epoch.load(Ordering::Relaxed);
            let request = pb::AuthenticateRequest { client: Some(client_info(&client, true)) };
            let answer = with_retries(&shared.replicas, shared.config.timeout, |mut stub| {
                let request = request.clone();
                async move { stub.authenticate(request).await.map(tonic::Response::into_inner) }
            })
            .await;
            let info = client_info(&client, false);
            match answer {
                Ok(response) if response.decision == i32::from(pb::Decision::Allow) => {
                    let deny_action = if response
                        .acl
                        .as_ref()
                        .is_some_and(|a| a.deny_action == i32::from(pb::DenyAction::Disconnect))
                    {
                        DenyAction::Disconnect
                    } else {
                        DenyAction::Ignore
                    };
                    ConnectVerdict::Allow {
                        superuser: response.superuser,
                        authorizer: Arc::new(GrpcAuthorizer(Arc::new(AuthorizerInner {
                            shared,
                            info,
                            superuser: response.superuser,
                            state: Mutex::new(AuthorizerState {
                                epoch,
                                policy: response.acl.map(policy_from),
                                cache: HashMap::new(),
                                deny_action,
                            }),
                        }))),
                    }
                }
                Ok(response) => ConnectVerdict::Deny(
                    u8::try_from(response.reason_code)
                        .ok()
                        .and_then(ConnectReasonCode::from_u8)
                        .filter(|c| c.is_error())
                        .unwrap_or(ConnectReasonCode::NotAuthorized),
                ),
                Err(status) => {
                    tracing::warn!(client_id = %client.client_id, %status, "auth-service unavailable for CONNECT");
                    if shared.config.connect_when_unavailable {
                        ConnectVerdict::Allow {
                            superuser: false,
                            authorizer: Arc::new(GrpcAuthorizer(Arc::new(AuthorizerInner {
                                shared,
                                info,
                                superuser: false,
                                state: Mutex::new(AuthorizerState {
                                    epoch,
                                    policy: None,
                                    cache: HashMap::new(),
                                    deny_action: DenyAction::Ignore,
                                }),
                            }))),
                        }
                    } else {
                        ConnectVerdict::Deny(ConnectReasonCode::ServerUnavailable)
                    }
                }
            }
        })
    }
}

#[derive(Debug)]
struct AuthorizerState {
    /// The revocation epoch this state was built in.
    epoch: u64,
    /// The ACL preloaded at CONNECT, while still valid.
    policy: Option<ClientPolicy>,
    /// Remote decisions: (action, topic) -> (decision, expiry).
    cache: HashMap<(Action, ByteString), (Permission, Instant)>,
    deny_action: DenyAction,
}

/// Decides one client's publishes and subscribes (a cheap handle on the shared state, so pending
/// checks can own it).
#[derive(Debug, Clone)]
struct GrpcAuthorizer(Arc<AuthorizerInner>);

#[derive(Debug)]
struct AuthorizerInner {
    shared: Arc<Shared>,
    /// The client as sent with Authorize (no password).
    info: types::ClientInfo,
    superuser: bool,
    /// Preloaded ACL and cached decisions; locked only for lookups and inserts.
    state: Mutex<AuthorizerState>,
}

impl AuthorizerInner {
    /// A local answer (preloaded ACL or cache), if there is one.
    fn local(&self, action: Action, topic: &str) -> Option<Permission> {
        let mut state = self.state.lock();
        let epoch = self.shared.epoch.load(Ordering::Relaxed);
        if state.epoch != epoch {
            state.epoch = epoch;
            state.policy = None;
            state.cache.clear();
        }
        if let Some(policy) = &state.policy {
            return Some(policy.check(action, topic));
        }
        match state.cache.get(&(action, ByteString::from(topic))) {
            Some((p, until)) if *until > Instant::now() => Some(*p),
            _ => None,
        }
    }

    /// Caches a remote decision for `ttl`, unless a revocation came since the call was made (in
    /// `epoch`): the answer may predate the change that caused it.
    fn remember(
        &self,
        epoch: u64,
        ttl: Duration,
        action: Action,
        topic: &str,
        permission: Permission,
    ) {
        if ttl.is_zero() {
            return;
        }
        let mut state = self.state.lock();
        if self.shared.epoch.load(Ordering::Relaxed) != epoch {
            return;
        }
        let max = self.shared.config.cache_max_size.max(1);
        if state.cache.len() >= max {
            let now = Instant::now();
            state.cache.retain(|_, (_, until)| *until > now);
            if state.cache.len() >= max {
                state.cache.clear();
            }
        }
        state.cache.insert((action, ByteString::from(topic)), (permission, Instant::now() + ttl));
    }

    /// Asks auth-service about `topics`; `None` when it could not answer.
    async fn remote(
        &self,
        action: Action,
        topics: &[(String, QoS, bool)],
    ) -> Option<Vec<Permission>> {
        let request = pb::AuthorizeRequest {
            client: Some(self.info.clone()),
            action: match action {
                Action::Publish => pb::Action::Publish.into(),
                Action::Subscribe => pb::Action::Subscribe.into(),
            },
            topics: topics
                .iter()
                .map(|(topic, qos, retain)| pb::TopicRequest {
                    topic: topic.clone(),
                    qos: i32::from(qos.as_u8()),
                    retain: *retain,
                })
                .collect(),
        };
        let epoch = self.shared.epoch.load(Ordering::Relaxed);
        let answer = with_retries(&self.shared.replicas, self.shared.config.timeout, |mut stub| {
            let request = request.clone();
            async move { stub.authorize(request).await.map(tonic::Response::into_inner) }
        })
        .await;
        match answer {
            Ok(response) if response.results.len() == topics.len() => {
                // The service's TTL of this answer (zero while a backend cannot report changes).
                let ttl =
                    Duration::from_millis(response.cache_ttl_ms).min(self.shared.config.cache_ttl);
                let decisions: Vec<Permission> =
                    response.results.iter().map(|r| permission(r.decision)).collect();
                for ((topic, _, _), p) in topics.iter().zip(&decisions) {
                    self.remember(epoch, ttl, action, topic, *p);
                }
                Some(decisions)
            }
            Ok(_) => {
                tracing::warn!("auth-service answered Authorize with the wrong number of results");
                None
            }
            Err(status) => {
                tracing::warn!(client_id = %self.info.client_id, %status, "auth-service unavailable for Authorize");
                None
            }
        }
    }
}

fn to_broker(p: Permission) -> BrokerPermission {
    match p {
        Permission::Allow => BrokerPermission::Allow,
        Permission::Deny => BrokerPermission::Deny,
    }
}

impl ClientAuthorizer for GrpcAuthorizer {
    fn publish(&self, topic: &str, qos: QoS, retain: bool) -> Check {
        if self.0.superuser {
            return Check::Ready(BrokerPermission::Allow);
        }
        if let Some(p) = self.0.local(Action::Publish, topic) {
            return Check::Ready(to_broker(p));
        }
        let this = Arc::clone(&self.0);
        let topics = vec![(topic.to_owned(), qos, retain)];
        Check::Pending(Box::pin(async move {
            match this.remote(Action::Publish, &topics).await {
                Some(d) => to_broker(d.first().copied().unwrap_or(Permission::Deny)),
                None if this.shared.config.publish_when_unavailable => BrokerPermission::Allow,
                None => BrokerPermission::Deny,
            }
        }))
    }

    fn subscribe(&self, filters: Vec<(ByteString, QoS)>) -> BoxFuture<Vec<BrokerPermission>> {
        let this = Arc::clone(&self.0);
        Box::pin(async move {
            if this.superuser {
                return vec![BrokerPermission::Allow; filters.len()];
            }
            let mut answers: Vec<Option<Permission>> =
                filters.iter().map(|(f, _)| this.local(Action::Subscribe, f)).collect();
            let missing: Vec<(String, QoS, bool)> = filters
                .iter()
                .zip(&answers)
                .filter(|(_, a)| a.is_none())
                .map(|((f, q), _)| (f.to_string(), *q, false))
                .collect();
            if !missing.is_empty() {
                let remote = this.remote(Action::Subscribe, &missing).await;
                let fallback = if this.shared.config.subscribe_when_unavailable {
                    Permission::Allow
                } else {
                    Permission::Deny
                };
                let mut remote = remote.into_iter().flatten();
                for answer in answers.iter_mut().filter(|a| a.is_none()) {
                    *answer = Some(remote.next().unwrap_or(fallback));
                }
            }
            answers.into_iter().map(|a| to_broker(a.unwrap_or(Permission::Deny))).collect()
        })
    }

    fn deny_action(&self) -> DenyAction {
        self.0.state.lock().deny_action
    }
}
