//! `tern.auth.v1.AuthService` over the chain: conversions between the gRPC messages and the
//! chain's types, and the revocation stream.

use std::{net::IpAddr, pin::Pin, sync::Arc, time::Instant};

use proto::{
    auth::v1::{
        self as pb, AclAction as PbAclAction, AclPolicy, AclRule, AclTopic, AuthenticateRequest,
        AuthenticateResponse, AuthorizeRequest, AuthorizeResponse, Decision, Revocation,
        TopicDecision as PbTopicDecision, WatchRevocationsRequest,
        auth_service_server::AuthService,
    },
    types::v1::ClientInfo,
};
use tern_acl::{Action, ClientPolicy, Permission, RuleAction};
use tokio::sync::watch;
use tokio_stream::{
    Stream, StreamExt,
    wrappers::{BroadcastStream, WatchStream},
};
use tonic::{Request, Response, Status};

use crate::{
    backend::Client,
    chain::{Answer, DenyAction},
    live::LiveChain,
    metrics::{Metrics, Operation, Outcome},
};

/// Reason code of a denied topic.
const NOT_AUTHORIZED: u32 = 0x87;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    /// The chain (each call answers from the one current when it starts) and the revocations
    /// for WatchRevocations subscribers (bounded; a lagging subscriber is told to drop
    /// everything).
    live: Arc<LiveChain>,
    /// Changes when the server shuts down: WatchRevocations streams end then, so a graceful
    /// shutdown does not wait for brokers to hang up their never-ending watch.
    stopping: watch::Receiver<()>,
}

impl AuthGrpc {
    /// A service answering from the chain `live` holds; its revocations feed WatchRevocations.
    pub fn new(live: Arc<LiveChain>) -> Self {
        Self { live, stopping: watch::channel(()).1 }
    }

    fn metrics(&self) -> &Arc<Metrics> {
        self.live.revocations().metrics()
    }

    /// Ends every WatchRevocations stream once `stopping` changes (or its sender is dropped).
    pub fn with_stop(mut self, stopping: watch::Receiver<()>) -> Self {
        self.stopping = stopping;
        self
    }
}

/// The chain's view of a client described in a request.
pub fn client_from(info: Option<ClientInfo>) -> Result<Client, Status> {
    let info = info.ok_or_else(|| Status::invalid_argument("client is required"))?;
    if info.client_id.is_empty() {
        return Err(Status::invalid_argument("client.client_id is required"));
    }
    let ip = if info.peer_address.is_empty() {
        None
    } else {
        Some(info.peer_address.parse::<IpAddr>().map_err(|_| {
            Status::invalid_argument(format!(
                "client.peer_address {:?} is not an IP address",
                info.peer_address
            ))
        })?)
    };
    Ok(Client {
        client_id: info.client_id,
        username: info.username,
        password: info.password.map(|p| p.to_vec()),
        ip,
        port: u16::try_from(info.peer_port).unwrap_or(0),
        listener_port: u16::try_from(info.listener_port).unwrap_or(0),
        protocol_name: info.protocol_name,
        protocol_version: u8::try_from(info.protocol_version).unwrap_or(0),
        cert_common_name: info.cert_common_name,
        cert_subject: info.cert_subject,
        mountpoint: info.mountpoint,
    })
}

fn decision(p: Permission) -> i32 {
    match p {
        Permission::Allow => Decision::Allow.into(),
        Permission::Deny => Decision::Deny.into(),
    }
}

fn deny_action(a: DenyAction) -> i32 {
    match a {
        DenyAction::Ignore => pb::DenyAction::Ignore.into(),
        DenyAction::Disconnect => pb::DenyAction::Disconnect.into(),
    }
}

/// The gRPC form of a client's ACL.
pub fn acl_to_proto(policy: &ClientPolicy, deny: DenyAction) -> AclPolicy {
    AclPolicy {
        rules: policy
            .rules
            .iter()
            .map(|rule| AclRule {
                permit: decision(rule.permit),
                action: match rule.action {
                    RuleAction::PubSub => PbAclAction::Pubsub.into(),
                    RuleAction::Publish => PbAclAction::Publish.into(),
                    RuleAction::Subscribe => PbAclAction::Subscribe.into(),
                },
                topics: rule
                    .topics
                    .iter()
                    .map(|t| AclTopic { filter: t.filter.clone(), exact: t.exact })
                    .collect(),
            })
            .collect(),
        no_match: decision(policy.no_match),
        deny_action: deny_action(deny),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

type RevocationStream = Pin<Box<dyn Stream<Item = Result<Revocation, Status>> + Send>>;

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let started = Instant::now();
        let metrics = self.metrics();
        let client = client_from(request.into_inner().client).inspect_err(|_| {
            metrics.authenticated(Outcome::Error, started.elapsed());
        })?;
        let chain = self.live.current();
        let observe = |backend, answer: Answer| {
            metrics.backend_answered(backend, Operation::Authenticate, answer);
        };
        let d = chain.authenticate_observed(&client, &observe).await;
        let outcome = match (d.allowed, d.failed) {
            (true, _) => Outcome::Allow,
            (false, true) => Outcome::Error,
            (false, false) => Outcome::Deny,
        };
        metrics.authenticated(outcome, started.elapsed());
        let policy = chain.policy();
        tracing::debug!(client_id = %client.client_id, allowed = d.allowed, decided_by = d.decided_by, "authenticate");
        Ok(Response::new(AuthenticateResponse {
            decision: if d.allowed { Decision::Allow.into() } else { Decision::Deny.into() },
            reason_code: u32::from(d.reason_code),
            reason: d.reason,
            superuser: d.superuser,
            acl: d.acl.as_ref().map(|acl| acl_to_proto(acl, policy.deny_action)),
            cache_ttl_ms: millis(chain.cache_ttl()),
            expires_at_ms: 0,
            decided_by: d.decided_by.to_owned(),
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeResponse>, Status> {
        let started = Instant::now();
        let metrics = self.metrics();
        let request = request.into_inner();
        let action = match pb::Action::try_from(request.action) {
            Ok(pb::Action::Publish) => Action::Publish,
            Ok(pb::Action::Subscribe) => Action::Subscribe,
            _ => {
                metrics.authorize_took(started.elapsed());
                return Err(Status::invalid_argument("action must be PUBLISH or SUBSCRIBE"));
            }
        };
        let topics = request.topics.len();
        let client = client_from(request.client).inspect_err(|_| {
            for _ in 0..topics.max(1) {
                metrics.authorized_topic(action, Outcome::Error);
            }
            metrics.authorize_took(started.elapsed());
        })?;
        let chain = self.live.current();
        let observe = |backend, answer: Answer| {
            metrics.backend_answered(backend, Operation::Authorize, answer);
        };
        let mut results = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let d = chain.authorize_observed(&client, action, &topic.topic, &observe).await;
            metrics.authorized_topic(
                action,
                match (d.permission, d.failed) {
                    (_, true) => Outcome::Error,
                    (Permission::Allow, false) => Outcome::Allow,
                    (Permission::Deny, false) => Outcome::Deny,
                },
            );
            results.push(PbTopicDecision {
                decision: decision(d.permission),
                reason_code: if d.permission == Permission::Allow { 0 } else { NOT_AUTHORIZED },
                decided_by: d.decided_by.to_owned(),
            });
        }
        metrics.authorize_took(started.elapsed());
        let policy = chain.policy();
        Ok(Response::new(AuthorizeResponse {
            results,
            cache_ttl_ms: millis(chain.cache_ttl()),
            deny_action: deny_action(policy.deny_action),
        }))
    }

    type WatchRevocationsStream = RevocationStream;

    async fn watch_revocations(
        &self,
        request: Request<WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        tracing::debug!(node_id = %request.get_ref().node_id, "revocation watcher joined");
        let watching = self.metrics().watching();
        let revocations =
            BroadcastStream::new(self.live.revocations().subscribe()).map(move |item| {
                let _counted = &watching;
                Some(Ok(item.unwrap_or_else(|_lagged| Revocation {
                    scope: Some(pb::revocation::Scope::All(true)),
                    disconnect: false,
                    reason: "revocations were missed".into(),
                })))
            });
        let mut stopping = self.stopping.clone();
        stopping.mark_unchanged();
        let stop = WatchStream::from_changes(stopping).map(|()| None);
        let stream = revocations.merge(stop).take_while(Option::is_some).filter_map(|item| item);
        Ok(Response::new(Box::pin(stream)))
    }
}
