//! The broker node registry: each broker node keeps `<prefix>nodes:<id>` (a [`NodeRecord`] as
//! JSON) alive with a TTL it refreshes, and deletes it on shutdown; admin-api lists the records
//! to find every node's BrokerAdmin address.

use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{StoreError, redis_store::Keys};

/// What a broker node registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node id (`node.id`).
    pub node_id: String,
    /// `host:port` of its BrokerAdmin gRPC server.
    pub grpc_address: String,
    /// Whether BrokerAdmin is served over TLS.
    pub tls: bool,
    /// Tern version.
    pub version: String,
    /// When the node started, epoch ms.
    pub started_at_ms: u64,
    /// Its MQTT listeners, as `<kind>:<name>@<address>`.
    #[serde(default)]
    pub listeners: Vec<String>,
}

/// Keeps `record` registered under `keys` until `shutdown`, refreshing it every third of `ttl`
/// (so a missed refresh or two does not drop it) and re-creating it after Redis lost it; then
/// deletes it.
pub async fn keep_registered(
    manager: ConnectionManager,
    keys: Keys,
    record: NodeRecord,
    ttl: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let key = keys.node(&record.node_id);
    let text = match serde_json::to_string(&record) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(%error, "node registry: cannot encode this node's record");
            return;
        }
    };
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registered = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let mut conn = manager.clone();
        if !registered {
            warn_if_taken(&mut conn, &key, &record, timeout).await;
        }
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(&text).arg("PX").arg(ttl_ms);
        match tokio::time::timeout(timeout, set.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {
                if !registered {
                    tracing::info!(key, address = %record.grpc_address, "node registered");
                }
                registered = true;
            }
            Ok(Err(error)) => {
                if registered {
                    tracing::warn!(%error, "node registry: cannot refresh this node's registration");
                }
                registered = false;
            }
            Err(_) => {
                if registered {
                    tracing::warn!("node registry: Redis did not answer the refresh in time");
                }
                registered = false;
            }
        }
    }
    let mut conn = manager.clone();
    let mut del = redis::cmd("DEL");
    del.arg(&key);
    match tokio::time::timeout(timeout, del.query_async::<()>(&mut conn)).await {
        Ok(Ok(())) => tracing::info!(key, "node unregistered"),
        _ => tracing::warn!(
            key,
            "node registry: cannot remove this node's registration; it expires by itself"
        ),
    }
}

/// Node ids must be unique: a registration of another address under ours is logged, since the
/// two nodes would keep replacing each other and admin-api would see only one of them.
async fn warn_if_taken(
    conn: &mut ConnectionManager,
    key: &str,
    record: &NodeRecord,
    timeout: Duration,
) {
    let mut get = redis::cmd("GET");
    get.arg(key);
    if let Ok(Ok(Some(text))) =
        tokio::time::timeout(timeout, get.query_async::<Option<String>>(conn)).await
        && let Ok(other) = serde_json::from_str::<NodeRecord>(&text)
        && other.grpc_address != record.grpc_address
    {
        tracing::error!(
            node_id = %record.node_id,
            other = %other.grpc_address,
            "another broker is registered with this node.id; give every node its own node.id"
        );
    }
}

/// Every registered node, sorted by id.
pub async fn list(
    manager: &ConnectionManager,
    keys: &Keys,
    timeout: Duration,
) -> Result<Vec<NodeRecord>, StoreError> {
    let mut conn = manager.clone();
    let work = async {
        let mut found: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(keys.nodes_pattern())
                .arg("COUNT")
                .arg(200)
                .query_async(&mut conn)
                .await?;
            found.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let docs: Vec<Option<String>> =
            redis::cmd("MGET").arg(&found).query_async(&mut conn).await?;
        Ok::<_, redis::RedisError>(docs)
    };
    let docs = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(docs)) => docs,
        Ok(Err(e)) => return Err(StoreError::Unavailable(e.to_string())),
        Err(_) => return Err(StoreError::Unavailable("Redis did not answer in time".into())),
    };
    let mut nodes: Vec<NodeRecord> =
        docs.into_iter().flatten().filter_map(|text| serde_json::from_str(&text).ok()).collect();
    nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok(nodes)
}
