//! `/brokers`, `/nodes`, `/metrics`, `/prometheus` and `/topic-tree`, merged across nodes.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use proto::broker::v1 as pb;
use serde::Serialize;

use crate::{AppState, clients::Envelope, error::ApiResult};

/// NanoMQ's uptime text: "H Hours, M minutes, S seconds".
pub fn uptime_text(seconds: u64) -> String {
    format!("{} Hours, {} minutes, {} seconds", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// "YYYY-MM-DD HH:MM:SS" (UTC) for an epoch time in seconds.
pub fn datetime_text(epoch_secs: u64) -> String {
    let days = i64::try_from(epoch_secs / 86_400).unwrap_or(0);
    let secs = epoch_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

async fn stats(state: &AppState) -> ApiResult<Vec<pb::BrokerStats>> {
    let answers = state
        .nodes()
        .gather(|mut client| async move { client.stats(pb::StatsRequest {}).await })
        .await?;
    Ok(answers.into_iter().map(|(_, s)| s).collect())
}

/// One `/brokers` item.
#[derive(Debug, Serialize)]
pub struct BrokerItem {
    /// Now, "YYYY-MM-DD HH:MM:SS" (UTC; NanoMQ uses local time).
    pub datetime: String,
    /// Always "Running" (a node that stopped leaves the registry).
    pub node_status: &'static str,
    /// "Tern Broker".
    pub sysdescr: &'static str,
    /// "H Hours, M minutes, S seconds".
    pub uptime: String,
    /// Tern version.
    pub version: String,
    /// Tern: the node id.
    pub node_id: String,
}

/// `GET /brokers`.
pub async fn brokers(State(state): State<AppState>) -> ApiResult<Json<Envelope<Vec<BrokerItem>>>> {
    let now = tern_config_store::now_ms() / 1000;
    let items = stats(&state)
        .await?
        .into_iter()
        .map(|s| BrokerItem {
            datetime: datetime_text(now),
            node_status: "Running",
            sysdescr: "Tern Broker",
            uptime: uptime_text(s.uptime_seconds),
            version: s.version,
            node_id: s.node_id,
        })
        .collect();
    Ok(Envelope::ok(items))
}

/// One `/nodes` item.
#[derive(Debug, Serialize)]
pub struct NodeItem {
    /// Connected clients.
    pub connections: u64,
    /// Always "Running".
    pub node_status: &'static str,
    /// "H Hours, M minutes, S seconds".
    pub uptime: String,
    /// Tern version.
    pub version: String,
    /// Tern: the node id.
    pub node_id: String,
}

/// `GET /nodes`.
pub async fn nodes(State(state): State<AppState>) -> ApiResult<Json<Envelope<Vec<NodeItem>>>> {
    let items = stats(&state)
        .await?
        .into_iter()
        .map(|s| NodeItem {
            connections: s.connections,
            node_status: "Running",
            uptime: uptime_text(s.uptime_seconds),
            version: s.version,
            node_id: s.node_id,
        })
        .collect();
    Ok(Envelope::ok(items))
}

/// One node's counters in `/metrics`.
#[derive(Debug, Serialize)]
pub struct NodeMetrics {
    /// The node.
    pub node_id: String,
    /// Gauges and counters by name.
    #[serde(flatten)]
    pub values: BTreeMap<&'static str, u64>,
}

/// `GET /metrics`: NanoMQ's shape (`metrics`, `cpuinfo`, `memory`, `connections`) summed over
/// the nodes, with `metrics` holding one entry per node; plus `code` (NanoMQ omits it).
#[derive(Debug, Serialize)]
pub struct MetricsBody {
    /// 0.
    pub code: u16,
    /// Per node.
    pub metrics: Vec<NodeMetrics>,
    /// Sum of the nodes' CPU use, "x.xx%".
    pub cpuinfo: String,
    /// Sum of the nodes' resident memory, bytes, as text.
    pub memory: String,
    /// Connected clients over all nodes.
    pub connections: u64,
}

fn values(s: &pb::BrokerStats) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("connections", s.connections),
        ("connections_max", s.connections_max),
        ("sessions", s.sessions),
        ("subscriptions", s.subscriptions),
        ("shared_subscriptions", s.shared_subscriptions),
        ("topics", s.topics),
        ("retained_messages", s.retained_messages),
        ("messages_received", s.messages_received),
        ("messages_sent", s.messages_sent),
        ("messages_dropped", s.messages_dropped),
        ("bytes_received", s.bytes_received),
        ("bytes_sent", s.bytes_sent),
        ("packets_received", s.packets_received),
        ("packets_sent", s.packets_sent),
        ("connects_accepted", s.connects_accepted),
        ("connects_refused", s.connects_refused),
        ("uptime_seconds", s.uptime_seconds),
        ("memory_rss_bytes", s.memory_rss_bytes),
    ])
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Json<MetricsBody>> {
    let all = stats(&state).await?;
    let cpu: f64 = all.iter().map(|s| s.cpu_percent).sum();
    Ok(Json(MetricsBody {
        code: 0,
        cpuinfo: format!("{cpu:.2}%"),
        memory: all.iter().map(|s| s.memory_rss_bytes).sum::<u64>().to_string(),
        connections: all.iter().map(|s| s.connections).sum(),
        metrics: all
            .iter()
            .map(|s| NodeMetrics { node_id: s.node_id.clone(), values: values(s) })
            .collect(),
    }))
}

/// `GET /prometheus`.
pub async fn prometheus(State(state): State<AppState>) -> ApiResult<Response> {
    let all = stats(&state).await?;
    let text = {
        let mut peaks = state.inner.peaks.lock();
        proto::prometheus::render(&all, &mut peaks)
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// One node of NanoMQ's `/topic-tree` levels.
#[derive(Debug, Serialize, PartialEq)]
pub struct TreeItem {
    /// The level's text.
    pub topic: String,
    /// Number of children.
    pub cld_cnt: usize,
    /// Clients whose filter ends here.
    pub clientid: Vec<String>,
}

#[derive(Default)]
struct Merged {
    client_ids: Vec<String>,
    children: BTreeMap<String, Merged>,
}

fn merge(into: &mut Merged, nodes: Vec<pb::TopicNode>) {
    for node in nodes {
        let child = into.children.entry(node.level).or_default();
        child.client_ids.extend(node.client_ids);
        merge(child, node.children);
    }
}

/// NanoMQ's shape: an array of trie levels (the root first), each an array of nodes.
pub fn tree_levels(trees: Vec<Vec<pb::TopicNode>>) -> Vec<Vec<TreeItem>> {
    let mut root = Merged::default();
    for tree in trees {
        merge(&mut root, tree);
    }
    let mut levels = vec![vec![TreeItem {
        topic: String::new(),
        cld_cnt: root.children.len(),
        clientid: vec![],
    }]];
    let mut current: Vec<(String, Merged)> = root.children.into_iter().collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        let mut level = Vec::new();
        for (topic, mut node) in current {
            node.client_ids.sort();
            node.client_ids.dedup();
            level.push(TreeItem { topic, cld_cnt: node.children.len(), clientid: node.client_ids });
            next.extend(node.children);
        }
        levels.push(level);
        current = next;
    }
    levels
}

/// `GET /topic-tree`.
pub async fn topic_tree(
    State(state): State<AppState>,
) -> ApiResult<Json<Envelope<Vec<Vec<TreeItem>>>>> {
    let answers = state
        .nodes()
        .gather(|mut client| async move { client.topic_tree(pb::TopicTreeRequest {}).await })
        .await?;
    Ok(Envelope::ok(tree_levels(answers.into_iter().map(|(_, t)| t.roots).collect())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_like_nanomq() {
        assert_eq!(uptime_text(3725), "1 Hours, 2 minutes, 5 seconds");
        assert_eq!(datetime_text(0), "1970-01-01 00:00:00");
        assert_eq!(datetime_text(1_709_251_199), "2024-02-29 23:59:59");
    }

    #[test]
    fn trees_of_two_nodes_merge_into_levels() {
        let node = |level: &str, ids: &[&str], children| pb::TopicNode {
            level: level.into(),
            client_ids: ids.iter().map(|s| s.to_string()).collect(),
            children,
        };
        let a = vec![node("a", &[], vec![node("b", &["c1"], vec![])])];
        let b = vec![node("a", &[], vec![node("b", &["c2"], vec![])]), node("x", &["c3"], vec![])];
        let levels = tree_levels(vec![a, b]);
        assert_eq!(
            levels[0],
            vec![TreeItem { topic: String::new(), cld_cnt: 2, clientid: vec![] }]
        );
        assert_eq!(levels[1].len(), 2);
        assert_eq!(
            levels[2],
            vec![TreeItem {
                topic: "b".into(),
                cld_cnt: 0,
                clientid: vec!["c1".into(), "c2".into()]
            }]
        );
    }
}
