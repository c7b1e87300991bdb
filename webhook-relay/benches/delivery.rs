//! Webhook delivery throughput (not a test): how many events per second the relay takes from the
//! EventIngest stream, makes durable and delivers to a local HTTP endpoint.
//!
//! `cargo bench -p webhook-relay --bench delivery` runs the measurement (events fed over gRPC as
//! a broker would, one target in `response` mode, an axum receiver answering 200).
//! `cargo bench -p webhook-relay --bench delivery -- receiver <addr>` only serves that receiver
//! (for `scripts/bench-webhooks`, which measures broker throughput with webhooks on and off).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use proto::{
    events::v1::{self as pb, event_ingest_client::EventIngestClient},
    types::v1 as types,
};
use tokio_stream::StreamExt as _;

const EVENTS: u64 = 100_000;
const BATCH: u64 = 512;

async fn receiver(listener: tokio::net::TcpListener) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    let app = axum::Router::new().fallback(axum::routing::post(move || {
        c.fetch_add(1, Relaxed);
        async { "" }
    }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    count
}

fn event(seq: u64) -> pb::Event {
    pb::Event {
        id: format!("bench/1/{seq}"),
        node_id: "bench".into(),
        incarnation: 1,
        sequence: seq,
        timestamp_ms: 1_700_000_000_000 + seq,
        payload: Some(pb::event::Payload::MessagePublish(pb::MessagePublish {
            message: Some(types::Message {
                topic: format!("bench/{}", seq % 100),
                payload: bytes::Bytes::from_static(&[b'x'; 64]),
                from_client_id: format!("client-{}", seq % 64),
                qos: 1,
                ..Default::default()
            }),
        })),
    }
}

async fn measure() {
    let (http, http_addr) = bind().await;
    let delivered = receiver(http).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "webhooks.bench {{\n  url = \"http://{http_addr}/hook\"\n  pool_size = 32\n  events = [{{event = on_message_publish}}]\n}}\nwebhook_relay.outbox = \"{}\"\n",
        dir.path().join("outbox.redb").display()
    );
    let config =
        match tern_config::parse_str(&text, "bench.conf", dir.path(), &tern_config::Env::new()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        };
    let relay = webhook_relay::Relay::open(webhook_relay::RelayConfig::from_config(&config))
        .expect("relay");
    let metrics = relay.metrics();
    let (grpc, grpc_addr) = bind().await;
    tokio::spawn(relay.serve(grpc, std::future::pending()));
    let mut client =
        EventIngestClient::connect(format!("http://{grpc_addr}")).await.expect("connect");
    let start = Instant::now();
    let batches = tokio_stream::iter((0..EVENTS / BATCH).map(|b| pb::EventBatch {
        node_id: "bench".into(),
        incarnation: 1,
        events: (b * BATCH + 1..=(b + 1) * BATCH).map(event).collect(),
        first_sequence: 0,
    }));
    let total = EVENTS / BATCH * BATCH;
    let mut acks = client.publish(batches).await.expect("publish").into_inner();
    let mut durable = 0;
    while durable < total {
        match acks.next().await {
            Some(Ok(ack)) => durable = durable.max(ack.durable_sequence),
            other => panic!("ack stream ended: {other:?}"),
        }
    }
    let ingest = start.elapsed();
    while delivered.load(Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = start.elapsed();
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "{total} events: durable in {:.2}s ({:.0} events/s), delivered in {:.2}s ({:.0} events/s); relay counted {} delivered, {} retried",
        ingest.as_secs_f64(),
        rate(ingest),
        all.as_secs_f64(),
        rate(all),
        metrics.delivered.load(Relaxed),
        metrics.retried.load(Relaxed),
    );
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    match args.first().map(String::as_str) {
        Some("receiver") => runtime.block_on(async {
            let addr: SocketAddr =
                args.get(1).and_then(|a| a.parse().ok()).expect("receiver <addr>");
            let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the receiver");
            let count = receiver(listener).await;
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = count.load(Relaxed);
                println!("received {now} (+{}/s)", now - last);
                last = now;
            }
        }),
        _ => runtime.block_on(measure()),
    }
}
