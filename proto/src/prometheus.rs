//! Broker statistics as Prometheus text: NanoMQ's `nanomq_*` names (summed over nodes) and Tern's
//! per-node `tern_*` series. Used by broker-core's own `/metrics` (one node) and admin-api's
//! `/api/v4/prometheus` (every node).

use std::fmt::Write as _;

use crate::broker::v1 as pb;

/// Peaks of the aggregated gauges across scrapes (NanoMQ's `_max` metrics are maxima of the
/// values seen at scrape time).
#[derive(Debug, Default, Clone, Copy)]
pub struct Peaks {
    connections: u64,
    sessions: u64,
    topics: u64,
    subscribers: u64,
    memory: u64,
    cpu: f64,
}

/// A per-node series: name, type, help, and how to read it.
type Series = (&'static str, &'static str, &'static str, fn(&pb::BrokerStats) -> u64);

/// Renders Prometheus text for the nodes' statistics, updating `peaks`.
pub fn render(all: &[pb::BrokerStats], peaks: &mut Peaks) -> String {
    let sum = |f: fn(&pb::BrokerStats) -> u64| all.iter().map(f).sum::<u64>();
    let connections = sum(|s| s.connections);
    let sessions = sum(|s| s.sessions);
    let topics = sum(|s| s.topics);
    let subscribers = sum(|s| s.subscriptions);
    let memory = sum(|s| s.memory_rss_bytes);
    let cpu: f64 = all.iter().map(|s| s.cpu_percent).sum();
    peaks.connections = peaks.connections.max(connections);
    peaks.sessions = peaks.sessions.max(sessions);
    peaks.topics = peaks.topics.max(topics);
    peaks.subscribers = peaks.subscribers.max(subscribers);
    peaks.memory = peaks.memory.max(memory);
    peaks.cpu = peaks.cpu.max(cpu);

    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    };
    // NanoMQ's names, summed over every node.
    metric("nanomq_connections_count", "gauge", "Connected clients", connections.to_string());
    metric(
        "nanomq_connections_max",
        "gauge",
        "Peak of nanomq_connections_count",
        peaks.connections.to_string(),
    );
    metric("nanomq_sessions_count", "gauge", "Sessions", sessions.to_string());
    metric(
        "nanomq_sessions_max",
        "gauge",
        "Peak of nanomq_sessions_count",
        peaks.sessions.to_string(),
    );
    metric("nanomq_topics_count", "gauge", "Distinct subscribed topic filters", topics.to_string());
    metric("nanomq_topics_max", "gauge", "Peak of nanomq_topics_count", peaks.topics.to_string());
    metric("nanomq_subscribers_count", "gauge", "Subscriptions", subscribers.to_string());
    metric(
        "nanomq_subscribers_max",
        "gauge",
        "Peak of nanomq_subscribers_count",
        peaks.subscribers.to_string(),
    );
    metric(
        "nanomq_messages_received",
        "counter",
        "Messages received",
        sum(|s| s.messages_received).to_string(),
    );
    metric(
        "nanomq_messages_sent",
        "counter",
        "Messages sent",
        sum(|s| s.messages_sent).to_string(),
    );
    metric(
        "nanomq_messages_dropped",
        "counter",
        "Messages dropped",
        sum(|s| s.messages_dropped).to_string(),
    );
    metric(
        "nanomq_memory_usage",
        "gauge",
        "Resident memory of the broker processes, bytes",
        memory.to_string(),
    );
    metric(
        "nanomq_memory_usage_max",
        "gauge",
        "Peak of nanomq_memory_usage",
        peaks.memory.to_string(),
    );
    metric(
        "nanomq_cpu_usage",
        "gauge",
        "CPU use of the broker processes, percent",
        format!("{cpu:.2}"),
    );
    metric(
        "nanomq_cpu_usage_max",
        "gauge",
        "Peak of nanomq_cpu_usage",
        format!("{:.2}", peaks.cpu),
    );

    // Tern's per-node series.
    let per_node: [Series; 12] = [
        ("tern_connections", "gauge", "Connected clients", |s| s.connections),
        ("tern_sessions", "gauge", "Sessions", |s| s.sessions),
        ("tern_subscriptions", "gauge", "Subscriptions", |s| s.subscriptions),
        ("tern_retained_messages", "gauge", "Retained messages", |s| s.retained_messages),
        ("tern_messages_received_total", "counter", "Messages received", |s| s.messages_received),
        ("tern_messages_sent_total", "counter", "Messages sent", |s| s.messages_sent),
        ("tern_messages_dropped_total", "counter", "Messages dropped", |s| s.messages_dropped),
        ("tern_bytes_received_total", "counter", "Bytes received", |s| s.bytes_received),
        ("tern_bytes_sent_total", "counter", "Bytes sent", |s| s.bytes_sent),
        ("tern_connects_accepted_total", "counter", "CONNECTs accepted", |s| s.connects_accepted),
        ("tern_connects_refused_total", "counter", "CONNECTs refused", |s| s.connects_refused),
        ("tern_uptime_seconds", "gauge", "Seconds since the node started", |s| s.uptime_seconds),
    ];
    for (name, kind, help, get) in per_node {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for s in all {
            let node = s.node_id.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{node=\"{node}\"}} {}", get(s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_sums_nodes_under_nanomq_names() {
        let node = |id: &str, c| pb::BrokerStats {
            node_id: id.into(),
            connections: c,
            ..Default::default()
        };
        let mut peaks = Peaks::default();
        let text = render(&[node("n1", 2), node("n2", 3)], &mut peaks);
        assert!(text.contains("\nnanomq_connections_count 5\n"), "{text}");
        assert!(text.contains("tern_connections{node=\"n2\"} 3\n"), "{text}");
        let text = render(&[node("n1", 1)], &mut peaks);
        assert!(text.contains("\nnanomq_connections_max 5\n"), "{text}");
    }
}
