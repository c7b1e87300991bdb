//! Tern's own small blocks: `sys {}` ($SYS statistics) and `node {}` (this node's identity).

use std::{net::SocketAddr, time::Duration};

use crate::reader::Reader;
use crate::units::PlainUnit;

/// `sys {}` (Tern): periodic `$SYS` statistics published by broker-core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysConfig {
    /// `sys.interval`: how often `$SYS/brokers/...` statistics are published. Default 10s; 0
    /// turns them off; a plain integer is seconds. Hot-reloadable.
    pub interval: Duration,
}

impl Default for SysConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(10) }
    }
}

/// `node {}` (Tern): this node's identity in the node registry and in `$SYS` topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `node.id`: unique per broker node. Default: the host name from `/etc/hostname`, else
    /// `tern-node`. Needs a restart.
    pub id: String,
    /// `node.metrics_bind`: where broker-core serves its own Prometheus metrics at `/metrics`
    /// (none: not served; `/api/v4/prometheus` aggregates every node's). Needs a restart.
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { id: default_node_id(), metrics_bind: None }
    }
}

/// The host name from `/etc/hostname`, else `tern-node`.
pub fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "tern-node".to_string())
}

pub(crate) fn read_sys(r: &mut Reader<'_>) -> SysConfig {
    let d = SysConfig::default();
    if r.has("sys") && r.block("sys").is_none() {
        return d;
    }
    SysConfig { interval: r.duration("sys.interval", d.interval, PlainUnit::Seconds) }
}

pub(crate) fn read_node(r: &mut Reader<'_>) -> NodeConfig {
    if r.has("node") && r.block("node").is_none() {
        return NodeConfig::default();
    }
    let metrics_bind = r.has("node.metrics_bind").then(|| {
        crate::services::read_bind(r, "node.metrics_bind", SocketAddr::from(([0, 0, 0, 0], 9101)))
    });
    let id = match r.non_empty("node.id") {
        Some(id) if id.contains(['/', '+', '#']) => {
            r.error(
                "node.id",
                format!("{id:?} must not contain '/', '+' or '#' (it is used in $SYS topics)"),
            );
            default_node_id()
        }
        Some(id) => id,
        None => default_node_id(),
    };
    NodeConfig { id, metrics_bind }
}
