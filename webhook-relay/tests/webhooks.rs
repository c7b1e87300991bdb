//! Webhooks end to end: a real broker (broker-core's library) sends its events to a real relay
//! (this crate's library) over gRPC, and the relay POSTs them to a real HTTP server.

mod common;

use std::collections::{BTreeMap, HashSet};

use broker_core::events::{EventKind, EventSink as _};
use common::{Proxy, Receiver, RunningBroker, RunningRelay, WAIT, client, config, publish};
use proto::events::v1::{EventType, SubscribeRequest, event_stream_client::EventStreamClient};
use tern_config::Config;

/// The seed's token.
const TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJlbnZOYW1lIjoibG9jYWwifQ.oWJU9JhpdASfv_9XDHm1wZ2w7IA86N2YAr3aX8NUNEY";

/// The seed's `webhook {}` block, pointed at `url`.
fn seed_webhook(url: &str) -> String {
    format!(
        "webhook = {{\n  url = \"{url}\"\n  headers.content-type = \"application/json\"\n  headers.authorization = \"{TOKEN}\"\n  body.encoding = \"plain\"\n  pool_size = 32\n  events = [\n    {{\n      event = \"on_message_publish\"\n      topic = \"#\"\n    }}\n  ]\n}}\n"
    )
}

/// The broker and relay blocks of a test configuration.
fn services(relay: std::net::SocketAddr, dir: &std::path::Path) -> String {
    format!(
        "listeners.tcp {{\n  bind = \"127.0.0.1:0\"\n}}\nsys.interval = 0\nnode.id = n1\nwebhook_relay {{\n  address = \"{relay}\"\n  outbox = \"{}\"\n  reconnect_delay = 50ms\n}}\n",
        dir.join("outbox.redb").display()
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    config: Config,
    relay: RunningRelay,
    broker: RunningBroker,
}

async fn setup(webhooks: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (listener, relay_addr) = test_support::bind_tokio().await;
    let text = format!("{webhooks}{}", services(relay_addr, dir.path()));
    let config = config(&text, dir.path());
    let relay = RunningRelay::start(&config, listener).await;
    let broker = RunningBroker::start(&config).await;
    Setup { _dir: dir, config, relay, broker }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_webhook_gets_each_publish_once_with_its_header_and_nanomqs_body() {
    let receiver = Receiver::start().await;
    let s = setup(&seed_webhook(&receiver.url("mqtt"))).await;
    assert_eq!(
        s.config.webhook.as_ref().map(|w| w.delivery),
        Some(tern_config::DeliveryMode::Sent)
    );
    let mut c = client(s.broker.mqtt, "c1", Some("admin")).await;
    for i in 1..=3u16 {
        publish(&mut c, &format!("client/only-one/{i}"), format!("hello {i}"), i).await;
    }
    // `sent` mode: each request goes out once written, so arrival order across connections is
    // the receiver's.
    let mut got = receiver.wait_for(3).await;
    got.sort_by_key(|r| r.field("topic"));
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.delivered) == 3).then_some(())
    })
    .await
    .expect("3 delivered");
    assert_eq!(receiver.received().len(), 3, "each publish exactly once");
    for (i, r) in got.iter().enumerate() {
        let n = i + 1;
        assert_eq!(r.path, "mqtt");
        assert_eq!(r.headers.get("authorization").and_then(|v| v.to_str().ok()), Some(TOKEN));
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        assert!(r.event_id.starts_with("n1/"), "event id header: {:?}", r.event_id);
        let body = String::from_utf8_lossy(&r.body);
        let ts = r.json["ts"].as_u64().unwrap_or(0);
        assert!(ts > 1_600_000_000_000, "ts is epoch milliseconds: {ts}");
        assert_eq!(
            body,
            format!(
                "{{\"ts\":{ts},\"topic\":\"client/only-one/{n}\",\"retain\":false,\"qos\":1,\"action\":\"message_publish\",\"from_username\":\"admin\",\"from_client_id\":\"c1\",\"payload\":\"hello {n}\"}}"
            )
        );
    }
    let ids: HashSet<_> = got.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids.len(), 3, "every event has its own id");

    // The Prometheus endpoint shows the same counters.
    let (listener, addr) = test_support::bind_tokio().await;
    tokio::spawn(webhook_relay::serve_metrics(
        listener,
        s.relay.relay.metrics(),
        std::future::pending(),
    ));
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap_or_default();
    for line in [
        "tern_relay_webhooks_delivered_total 3",
        "tern_relay_webhooks_queued_total 3",
        "tern_relay_webhooks_pending 0",
        "tern_relay_webhook_latency_seconds_count 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encodings_and_topic_filters_select_and_shape_events() {
    let receiver = Receiver::start().await;
    let targets = format!(
        "webhooks.b64 {{\n  url = \"{}\"\n  body.encoding = base64\n  events = [{{event = on_message_publish, topic = \"a/#\"}}]\n}}\n\
         webhooks.b62 {{\n  url = \"{}\"\n  body.encoding = base62\n  events = [{{event = on_message_publish, topic = \"b/+\"}}, {{event = on_client_connack}}]\n}}\n",
        receiver.url("b64"),
        receiver.url("b62")
    );
    let s = setup(&targets).await;
    let mut c = client(s.broker.mqtt, "c2", None).await;
    publish(&mut c, "a/1", "hello", 1).await;
    publish(&mut c, "b/x", &b"\xfb\xff"[..], 2).await;
    publish(&mut c, "c/1", "nobody", 3).await;
    publish(&mut c, "b/x/y", "not b/+", 4).await;
    let got = receiver.wait_for(3).await;
    let by_path = |p: &str| got.iter().filter(|r| r.path == p).cloned().collect::<Vec<_>>();
    let b64 = by_path("b64");
    assert_eq!(b64.len(), 1, "{b64:#?}");
    assert_eq!((b64[0].field("topic"), b64[0].field("payload")), ("a/1".into(), "aGVsbG8=".into()));
    let b62 = by_path("b62");
    assert_eq!(b62.len(), 2, "{b62:#?}");
    assert_eq!(
        String::from_utf8_lossy(&b62[0].body),
        "{\"proto_ver\":4,\"keepalive\":30,\"conn_ack\":\"success\",\"username\":\"undefined\",\"clientid\":\"c2\",\"action\":\"client_connack\"}"
    );
    assert_eq!((b62[1].field("topic"), b62[1].field("payload")), ("b/x".into(), "AB8".into()));
    // Nothing else arrives: a last event on b/+ comes right after.
    publish(&mut c, "b/z", "fence", 5).await;
    let got = receiver.wait_for(4).await;
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].field("topic"), "b/z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_for_a_while_gets_every_event_in_order_per_client() {
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let targets = format!(
        "webhooks.main {{\n  url = \"{}\"\n  pool_size = 4\n  retry {{ initial = 20ms, max = 200ms }}\n  events = [{{event = on_message_publish, topic = \"t/#\"}}]\n}}\n",
        receiver.url("main")
    );
    let s = setup(&targets).await;
    let mut a = client(s.broker.mqtt, "alpha", None).await;
    let mut b = client(s.broker.mqtt, "beta", None).await;
    for i in 1..=10u16 {
        publish(&mut a, "t/a", i.to_string(), i).await;
        publish(&mut b, "t/b", i.to_string(), i).await;
    }
    test_support::eventually(WAIT, || async { (receiver.refused() >= 8).then_some(()) })
        .await
        .expect("the relay keeps trying while the endpoint is down");
    receiver.set_down(false);
    let got = receiver.wait_for(20).await;
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.pending) == 0).then_some(())
    })
    .await
    .expect("nothing left pending");
    assert_eq!(
        receiver.received().len(),
        20,
        "each event delivered once: {:?}",
        receiver
            .received()
            .iter()
            .map(|r| (r.event_id.clone(), r.field("payload")))
            .collect::<Vec<_>>()
    );
    let mut per_client: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for r in &got {
        per_client
            .entry(r.field("from_client_id"))
            .or_default()
            .push(r.field("payload").parse().unwrap_or(0));
    }
    let expected: Vec<u32> = (1..=10).collect();
    assert_eq!(per_client.get("alpha"), Some(&expected));
    assert_eq!(per_client.get("beta"), Some(&expected));
    assert!(s.relay.metric(|m| &m.retried) > 0);
    assert_eq!(s.relay.metric(|m| &m.dead_lettered), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_webhook_becomes_a_dead_letter_and_can_be_redriven() {
    // A real HTTP server without routes: it answers 404, which is not retried.
    let (listener, addr) = test_support::bind_tokio().await;
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new()).await;
    });
    let targets = format!(
        "webhooks.main {{\n  url = \"http://{addr}/hook\"\n  events = [{{event = on_message_publish, topic = \"x/#\"}}]\n}}\n"
    );
    let s = setup(&targets).await;
    let mut c = client(s.broker.mqtt, "c3", None).await;
    publish(&mut c, "x/1", "one", 1).await;
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.dead_lettered) == 1).then_some(())
    })
    .await
    .expect("a 404 is a dead letter");
    assert_eq!(s.relay.metric(|m| &m.retried), 0, "a 404 is not retried");
    let dead = s.relay.relay.dead_letters(None, 10).await.unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("404"), "{}", dead[0].reason);
    assert_eq!(dead[0].target, "main");
    assert!(dead[0].event.id.starts_with("n1/"));
    let n = s.relay.relay.redrive("main", Vec::new()).await.unwrap_or(0);
    assert_eq!(n, 1);
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.dead_lettered) == 2).then_some(())
    })
    .await
    .expect("the re-driven event is tried again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_beyond_max_age_turns_events_into_dead_letters() {
    let receiver = Receiver::start().await;
    receiver.set_down(true);
    let targets = format!(
        "webhooks.main {{\n  url = \"{}\"\n  max_age = 300ms\n  retry {{ initial = 20ms, max = 50ms }}\n  events = [{{event = on_message_publish, topic = \"t/#\"}}]\n}}\n",
        receiver.url("main")
    );
    let s = setup(&targets).await;
    let mut c = client(s.broker.mqtt, "c6", None).await;
    publish(&mut c, "t/1", "late", 1).await;
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.dead_lettered) == 1).then_some(())
    })
    .await
    .expect("given up after max_age");
    assert!(receiver.refused() >= 2, "retried before giving up");
    let dead = s.relay.relay.dead_letters(Some("main".into()), 10).await.unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].reason.contains("max_age") && dead[0].reason.contains("503"),
        "{}",
        dead[0].reason
    );
    // Back up: re-driving delivers it.
    receiver.set_down(false);
    assert_eq!(s.relay.relay.redrive("main", vec![dead[0].offset]).await.unwrap_or(0), 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].field("payload"), "late");
    assert_eq!(got[0].event_id, dead[0].event.id, "the same event id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_resends_unacknowledged_events_after_the_relay_connection_is_cut() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (listener, relay_addr) = test_support::bind_tokio().await;
    let proxy = Proxy::start(relay_addr).await;
    let text = format!(
        "webhooks.main {{\n  url = \"{}\"\n  events = [{{event = on_message_publish, topic = t}}]\n}}\n{}",
        receiver.url("main"),
        services(proxy.addr, dir.path())
    );
    let cfg = config(&text, dir.path());
    let _relay = RunningRelay::start(&cfg, listener).await;
    let broker = RunningBroker::start(&cfg).await;
    let mut c = client(broker.mqtt, "c4", None).await;
    for i in 1..=5u16 {
        publish(&mut c, "t", i.to_string(), i).await;
    }
    receiver.wait_for(5).await;
    proxy.cut();
    for i in 6..=15u16 {
        publish(&mut c, "t", i.to_string(), i).await;
    }
    let stats = broker.events.stats();
    assert!(stats.buffered >= 1, "events wait in the broker's buffer: {stats:?}");
    proxy.restore();
    let got = receiver.wait_for(15).await;
    let payloads: Vec<String> = got.iter().map(|r| r.field("payload")).collect();
    let expected: Vec<String> = (1..=15).map(|i: u32| i.to_string()).collect();
    assert_eq!(payloads, expected, "every event once, in order");
    let stats = broker.events.stats();
    assert!(stats.connects >= 2, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    assert!(broker.events.flush(WAIT).await, "the relay acknowledged everything");
    assert_eq!(broker.events.stats().buffered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_subscriber_gets_exactly_the_publishes_of_its_topic_filter() {
    let s = setup("").await;
    let wants = |b: &RunningBroker| b.events.wants(EventKind::MessagePublish);
    assert!(!wants(&s.broker), "no rule: nothing produced yet");
    let mut stream_client = EventStreamClient::connect(format!("http://{}", s.relay.addr))
        .await
        .expect("connect to the relay");
    let request = SubscribeRequest {
        types: vec![EventType::MessagePublish as i32],
        topic_filters: vec!["sensors/+/temp".into()],
        ..Default::default()
    };
    let mut events =
        stream_client.subscribe(request.clone()).await.expect("subscribe").into_inner();
    test_support::eventually(WAIT, || async { wants(&s.broker).then_some(()) })
        .await
        .expect("the relay tells the broker what its subscriber wants");
    let mut c = client(s.broker.mqtt, "c5", None).await;
    publish(&mut c, "sensors/1/temp", "21", 1).await;
    publish(&mut c, "sensors/1/hum", "40", 2).await;
    publish(&mut c, "other/1/temp", "0", 3).await;
    publish(&mut c, "sensors/2/temp", "22", 4).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(WAIT, events.message()).await;
        let Ok(Ok(Some(e))) = next else { panic!("expected an event, got {next:?}") };
        got.push(e);
    }
    let topics: Vec<String> = got
        .iter()
        .filter_map(|e| match e.event.as_ref()?.payload.as_ref()? {
            proto::events::v1::event::Payload::MessagePublish(p) => {
                Some(p.message.as_ref()?.topic.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["sensors/1/temp", "sensors/2/temp"]);
    // Resuming from the first offset replays the same events from the relay's log.
    let resume = SubscribeRequest { start_offset: Some(got[0].offset), ..request };
    let mut replay = stream_client.subscribe(resume).await.expect("resume").into_inner();
    for expected in &got {
        let next = tokio::time::timeout(WAIT, replay.message()).await;
        let Ok(Ok(Some(e))) = next else { panic!("expected a replayed event, got {next:?}") };
        assert_eq!(e.offset, expected.offset);
        assert_eq!(e.event.as_ref().map(|e| &e.id), expected.event.as_ref().map(|e| &e.id));
    }
    // Health and reflection are served next to the events.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.relay.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect for health");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tern.events.v1.EventStream".into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let bad = stream_client
        .subscribe(SubscribeRequest { topic_filters: vec!["a/#/b".into()], ..Default::default() })
        .await;
    assert_eq!(bad.err().map(|s| s.code()), Some(tonic::Code::InvalidArgument));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_gets_one_request_per_event_without_a_pile_up() {
    let silent = common::SilentReceiver::start().await;
    let s = setup(&seed_webhook(&format!("http://{}/mqtt", silent.addr))).await;
    let events = 60;
    let mut clients = Vec::new();
    for name in ["s1", "s2", "s3"] {
        clients.push(client(s.broker.mqtt, name, Some("admin")).await);
    }
    for i in 0..events {
        let c = &mut clients[i % 3];
        publish(
            c,
            &format!("client/only-one/{i}"),
            format!("m{i}"),
            u16::try_from(i + 1).unwrap_or(1),
        )
        .await;
    }
    test_support::eventually(WAIT, || async {
        (s.relay.metric(|m| &m.delivered) == events as u64).then_some(())
    })
    .await
    .expect("every event counts as delivered once written");
    test_support::eventually(WAIT, || async {
        (silent.requests.lock().len() >= events).then_some(())
    })
    .await
    .expect("every request reaches the receiver");
    // Unanswered requests are closed after cancel_timeout; nothing is sent again.
    test_support::eventually(WAIT, || async {
        (silent.open.load(std::sync::atomic::Ordering::SeqCst) == 0).then_some(())
    })
    .await
    .expect("connections are closed, not piled up");
    let ids = silent.requests.lock().clone();
    assert_eq!(ids.len(), events, "exactly one request per event");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), events);
    assert_eq!(s.relay.metric(|m| &m.retried), 0);
    assert_eq!(s.relay.metric(|m| &m.pending), 0);
    let max_open = silent.max_open.load(std::sync::atomic::Ordering::SeqCst);
    assert!(max_open <= 2 * 32, "at most pool_size lingering plus pool_size sending: {max_open}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_larger_than_a_default_grpc_message_does_not_hold_up_the_stream() {
    let receiver = Receiver::start().await;
    let hook = format!(
        "webhook = {{\n  url = \"{}\"\n  events = [{{event = on_message_publish, topic = \"small/#\"}}]\n}}\n",
        receiver.url("hook")
    );
    let s = setup(&hook).await;
    let mut c = client(s.broker.mqtt, "c1", None).await;
    // 5 MiB: within the broker's default mqtt.max_packet_size (10 MB), beyond gRPC's default
    // 4 MiB message limit.
    publish(&mut c, "big/1", vec![b'x'; 5 << 20], 1).await;
    publish(&mut c, "small/1", "after the big one", 2).await;
    // Events are accepted in sequence order: the later one arriving means the big one was made
    // durable before it.
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].field("topic"), "small/1");
    assert!(s.relay.metric(|m| &m.ingested) >= 2, "both publishes ingested");
}
