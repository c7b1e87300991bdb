//! The broker nodes admin-api talks to: found in the Redis node registry (or given directly, for
//! a single process), each with a BrokerAdmin gRPC client that carries the bearer token and TLS
//! settings. Clients are created lazily and cached per address.

use std::{collections::HashMap, time::Duration};

use parking_lot::Mutex;
use proto::{
    broker::v1::broker_admin_client::BrokerAdminClient,
    grpc::{AttachToken, BearerToken, TlsFiles},
};
use tern_config_store::{
    nodes::{self, NodeRecord},
    redis_store::Keys,
};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::error::ApiError;

/// A BrokerAdmin client that adds the bearer token to every call.
pub type AdminClient = BrokerAdminClient<InterceptedService<Channel, AttachToken>>;

/// Where the node list comes from.
#[derive(Clone)]
pub enum NodeSource {
    /// The Redis registry.
    Redis {
        /// Connection.
        manager: redis::aio::ConnectionManager,
        /// Key names.
        keys: Keys,
        /// Deadline of one command.
        timeout: Duration,
    },
    /// A fixed list (the all-in-one process, which knows its one node).
    Fixed(Vec<NodeRecord>),
}

impl std::fmt::Debug for NodeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redis { keys, .. } => {
                f.debug_struct("Redis").field("keys", keys).finish_non_exhaustive()
            }
            Self::Fixed(nodes) => f.debug_tuple("Fixed").field(nodes).finish(),
        }
    }
}

/// A node and its client.
#[derive(Debug, Clone)]
pub struct Node {
    /// What it registered.
    pub record: NodeRecord,
    /// Its BrokerAdmin client.
    pub client: AdminClient,
}

/// The broker nodes.
#[derive(Debug)]
pub struct Nodes {
    source: NodeSource,
    token: BearerToken,
    tls: Option<TlsFiles>,
    /// Deadline of one gRPC call.
    timeout: Duration,
    /// Clients by address; a handful of entries, locked only to look up or insert.
    clients: Mutex<HashMap<String, AdminClient>>,
}

impl Nodes {
    /// Nodes from `source`, called with `token` and `tls`, each call bounded by `timeout`.
    pub fn new(
        source: NodeSource,
        token: Option<&str>,
        tls: Option<TlsFiles>,
        timeout: Duration,
    ) -> Self {
        Self { source, token: BearerToken::new(token), tls, timeout, clients: Mutex::default() }
    }

    fn client(&self, record: &NodeRecord) -> Result<AdminClient, String> {
        if let Some(client) = self.clients.lock().get(&record.grpc_address) {
            return Ok(client.clone());
        }
        let scheme = if record.tls { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", record.grpc_address))
            .map_err(|e| format!("bad address {:?}: {e}", record.grpc_address))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        if record.tls {
            let Some(tls) = &self.tls else {
                return Err(
                    "the node serves TLS but broker_admin.tls is not configured here".into()
                );
            };
            let host = record.grpc_address.rsplit_once(':').map_or("", |(h, _)| h);
            let config = tls.client(host).map_err(|e| e.to_string())?;
            endpoint = endpoint.tls_config(config).map_err(|e| e.to_string())?;
        }
        let client = BrokerAdminClient::with_interceptor(
            endpoint.connect_lazy(),
            AttachToken(self.token.clone()),
        );
        self.clients.lock().insert(record.grpc_address.clone(), client.clone());
        Ok(client)
    }

    /// Every registered node with its client (nodes whose client cannot be built are logged and
    /// left out).
    pub async fn list(&self) -> Result<Vec<Node>, ApiError> {
        let records = match &self.source {
            NodeSource::Redis { manager, keys, timeout } => nodes::list(manager, keys, *timeout)
                .await
                .map_err(|e| ApiError::unavailable("node registry", e))?,
            NodeSource::Fixed(records) => records.clone(),
        };
        // Forget clients of nodes that left (the cache stays as small as the registry).
        self.clients.lock().retain(|addr, _| records.iter().any(|r| &r.grpc_address == addr));
        Ok(records
            .into_iter()
            .filter_map(|record| match self.client(&record) {
                Ok(client) => Some(Node { record, client }),
                Err(error) => {
                    tracing::warn!(node = %record.node_id, %error, "cannot call broker node");
                    None
                }
            })
            .collect())
    }

    /// Calls `call` on every node at once; returns each node with its answer.
    pub async fn each<T, F, Fut>(
        &self,
        call: F,
    ) -> Result<Vec<(NodeRecord, Result<T, tonic::Status>)>, ApiError>
    where
        F: Fn(AdminClient) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let nodes = self.list().await?;
        let calls = nodes.into_iter().map(|node| {
            let fut = call(node.client);
            async move { (node.record, fut.await.map(tonic::Response::into_inner)) }
        });
        Ok(futures_util::future::join_all(calls).await)
    }

    /// Like [`Nodes::each`], keeping only the answers: a node that fails is logged and skipped
    /// (a node that died stays registered until its TTL runs out); when every node fails, the
    /// first failure is the answer.
    pub async fn gather<T, F, Fut>(&self, call: F) -> Result<Vec<(NodeRecord, T)>, ApiError>
    where
        F: Fn(AdminClient) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut answers = Vec::new();
        let mut failed = None;
        for (record, answer) in self.each(call).await? {
            match answer {
                Ok(value) => answers.push((record, value)),
                Err(status) => {
                    tracing::warn!(node = %record.node_id, code = ?status.code(), message = status.message(), "broker node skipped");
                    failed.get_or_insert((record.node_id, status));
                }
            }
        }
        // Partial answers are served; no answer at all from nodes that exist is an error.
        match failed {
            Some((node, status)) if answers.is_empty() => {
                Err(ApiError::node_failed(&node, &status))
            }
            _ => Ok(answers),
        }
    }

    /// The node holding `client_id` (connected or with a session), with its client.
    pub async fn holding(
        &self,
        client_id: &str,
    ) -> Result<Option<(Node, proto::broker::v1::ClientDetails)>, ApiError> {
        let nodes = self.list().await?;
        let lookups = nodes.into_iter().map(|node| {
            let mut client = node.client.clone();
            let request = proto::broker::v1::GetClientRequest { client_id: client_id.to_owned() };
            async move { (node, client.get_client(request).await) }
        });
        let mut found: Vec<(Node, proto::broker::v1::ClientDetails)> = Vec::new();
        let mut failed = None;
        for (node, answer) in futures_util::future::join_all(lookups).await {
            match answer {
                Ok(details) => found.push((node, details.into_inner())),
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => {
                    failed.get_or_insert_with(|| {
                        ApiError::node_failed(&node.record.node_id, &status)
                    });
                }
            }
        }
        // "Not found" is only certain when every node answered.
        if found.is_empty()
            && let Some(error) = failed
        {
            return Err(error);
        }
        // A client that moved may briefly have an offline session on its old node: prefer the
        // node where it is connected.
        found.sort_by_key(|(_, d)| {
            d.conn_state != i32::from(proto::broker::v1::ConnState::Connected)
        });
        Ok(found.into_iter().next())
    }
}
