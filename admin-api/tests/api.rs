//! admin-api end to end: real redis-server, auth-service, two broker nodes, admin-api on port 0,
//! a real HTTP client and real MQTT clients.

mod common;

use std::collections::BTreeSet;

use common::{Api, Cluster, WAIT, basic, client, puback, wait_for_puback};
use mqtt_codec::{Packet, PubAckReasonCode, QoS};
use serde_json::{Value, json};
use test_support::{eventually, mqtt::raw::RawClient};

fn ids(body: &Value, key: &str) -> BTreeSet<String> {
    body["data"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i[key].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_endpoint_answers_with_nanomq_shapes() {
    let cluster = Cluster::start().await;
    let api = &cluster.api;
    let mut c1 = client(cluster.nodes[0].mqtt, "c1", "alice").await;
    let mut c2 = client(cluster.nodes[1].mqtt, "c2", "bob").await;
    assert_eq!(
        c1.suback(1, "sensors/+/temp", QoS::AtLeastOnce).await,
        mqtt_codec::SubAckReasonCode::GrantedQoS1
    );
    assert_eq!(
        c2.suback(1, "$share/g/jobs/#", QoS::AtMostOnce).await,
        mqtt_codec::SubAckReasonCode::GrantedQoS0
    );

    let (status, body) = api.get("").await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)));
    assert!(
        body["data"].as_array().is_some_and(|d| d.iter().any(|e| e["path"] == "/api/v4/clients"))
    );

    let (status, body) = api.get("/brokers").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body, "node_id"), BTreeSet::from(["node-a".into(), "node-b".into()]));
    for broker in body["data"].as_array().into_iter().flatten() {
        assert_eq!(broker["node_status"], "Running");
        assert!(broker["uptime"].as_str().is_some_and(|u| u.contains("Hours")), "{broker}");
        assert!(broker["datetime"].as_str().is_some_and(|d| d.len() == 19), "{broker}");
    }

    let body = api
        .wait_get("/nodes", |b| {
            b["data"].as_array().is_some_and(|n| {
                n.iter().map(|x| x["connections"].as_u64().unwrap_or(0)).sum::<u64>() == 2
            })
        })
        .await
        .expect("two connections over the nodes");
    assert_eq!(body["code"], 0);

    let (_, body) = api.get("/clients").await;
    assert_eq!(ids(&body, "client_id"), BTreeSet::from(["c1".into(), "c2".into()]));
    let c1_item = body["data"]
        .as_array()
        .and_then(|d| d.iter().find(|c| c["client_id"] == "c1"))
        .cloned()
        .expect("c1");
    assert_eq!(c1_item["username"], "alice");
    assert_eq!(c1_item["conn_state"], "connected");
    assert_eq!(c1_item["proto_name"], "MQTT");
    assert_eq!(c1_item["proto_ver"], 5);
    assert_eq!(c1_item["keepalive"], 30);
    assert_eq!(c1_item["clean_start"], true);
    assert_eq!(c1_item["node_id"], "node-a");

    let (_, body) = api.get("/clients?username=bob&conn_state=connected").await;
    assert_eq!(ids(&body, "client_id"), BTreeSet::from(["c2".into()]));
    let (_, body) = api.get("/clients?proto_ver=4").await;
    assert!(ids(&body, "client_id").is_empty());
    let (status, body) = api.get("/clients?conn_state=idle").await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(108)));
    let (status, body) = api.get("/clients?page=2").await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(108)));

    let (_, body) = api.get("/clients/c2").await;
    assert_eq!(ids(&body, "node_id"), BTreeSet::from(["node-b".into()]));
    let (_, body) = api.get("/clients/username/alice").await;
    assert_eq!(ids(&body, "client_id"), BTreeSet::from(["c1".into()]));

    let (_, body) = api.get("/subscriptions").await;
    assert_eq!(
        ids(&body, "topic"),
        BTreeSet::from(["sensors/+/temp".into(), "$share/g/jobs/#".into()])
    );
    let (_, body) = api.get("/subscriptions?qos=1").await;
    assert_eq!(ids(&body, "clientid"), BTreeSet::from(["c1".into()]));
    let (_, body) = api.get("/subscriptions?share=g").await;
    assert_eq!(ids(&body, "clientid"), BTreeSet::from(["c2".into()]));
    let (_, body) = api.get("/subscriptions?_match_topic=sensors/k/temp").await;
    assert_eq!(ids(&body, "clientid"), BTreeSet::from(["c1".into()]));
    let (_, body) = api.get("/subscriptions/c2").await;
    assert_eq!(body["data"][0]["qos"], 0);

    let (_, body) = api.get("/topic-tree").await;
    assert_eq!(body["data"][0][0]["topic"], "");
    assert_eq!(body["data"][0][0]["cld_cnt"], 2, "{body}");
    let level1: BTreeSet<String> = body["data"][1]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["topic"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(level1, BTreeSet::from(["jobs".into(), "sensors".into()]));

    let (status, body) = api.get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(body["connections"], 2);
    assert!(body["memory"].as_str().is_some_and(|m| m.parse::<u64>().is_ok()), "{body}");
    assert!(body["cpuinfo"].as_str().is_some_and(|c| c.ends_with('%')), "{body}");
    assert_eq!(body["metrics"].as_array().map(Vec::len), Some(2));

    let (status, text) = api.get("/prometheus").await;
    assert_eq!(status, 200);
    let text = text.as_str().expect("text").to_owned();
    assert!(
        text.contains("# TYPE nanomq_connections_count gauge\nnanomq_connections_count 2\n"),
        "{text}"
    );
    assert!(text.contains("nanomq_subscribers_count 2\n"), "{text}");
    assert!(text.contains("tern_connections{node=\"node-b\"} 1\n"), "{text}");

    // Publish through the API reaches the subscriber on its own node.
    let (status, body) = api
        .post("/mqtt/publish", json!({"topic": "sensors/k/temp", "payload": "21.5", "qos": 1}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let got = c1.next_publish().await;
    assert_eq!((&*got.topic, &got.payload[..]), ("sensors/k/temp", &b"21.5"[..]));
    let (status, body) = api
        .post(
            "/mqtt/publish_batch",
            json!([{"topic": "jobs/1", "payload": "a"}, {"topic": "bad/#", "payload": "b"}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["code"], 0);
    assert_eq!(body["data"][1]["code"], 108);
    assert_eq!(&c2.next_publish().await.payload[..], b"a");
    let (status, body) = api.post("/mqtt/publish", json!({"topic": "a"})).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(108)));

    // Subscribe and unsubscribe through the API (NanoMQ answers these with 404).
    let (status, body) =
        api.post("/mqtt/subscribe", json!({"clientid": "c2", "topic": "alerts/#", "qos": 1})).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (_, body) = api.get("/subscriptions/c2").await;
    assert!(ids(&body, "topic").contains("alerts/#"), "{body}");
    api.post("/mqtt/publish", json!({"topic": "alerts/fire", "payload": "!"})).await;
    assert_eq!(&*c2.next_publish().await.topic, "alerts/fire");
    let (status, body) = api
        .post(
            "/mqtt/subscribe_batch",
            json!([{"clientid": "c1", "topic": "x/y"}, {"clientid": "ghost", "topic": "x"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["data"][0]["code"].as_i64(), body["data"][1]["code"].as_i64()),
        (Some(0), Some(112))
    );
    let (status, body) =
        api.post("/mqtt/unsubscribe", json!({"clientid": "c2", "topic": "alerts/#"})).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (_, body) = api.get("/subscriptions/c2").await;
    assert!(!ids(&body, "topic").contains("alerts/#"), "{body}");
    let (status, body) =
        api.post("/mqtt/unsubscribe_batch", json!([{"clientid": "c1", "topic": "x/y"}])).await;
    assert_eq!((status, body["data"][0]["code"].as_i64()), (200, Some(0)), "{body}");
    let (status, body) =
        api.post("/mqtt/subscribe", json!({"clientid": "ghost", "topic": "a"})).await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(112)));
    let (status, body) = api.post("/mqtt/subscribe", json!({"topic": "a"})).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(107)));

    // Reload and configuration.
    let (status, body) = api.get("/reload").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["msq_len"].is_u64(), "{body}");
    let (status, body) =
        api.post("/reload", json!({"data": {"msq_len": 100, "allow_anonymous": true}})).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (_, body) = api.get("/reload").await;
    assert_eq!(body["data"]["msq_len"], 100);
    let (status, body) =
        api.post("/configuration/log", json!({"data": {"log": {"level": "info"}}})).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (_, body) = api.get("/configuration/log").await;
    assert_eq!(body["data"]["log"]["level"], "info");
    let (status, body) =
        api.post("/configuration", json!({"data": {"sys": {"interval": "30s"}}})).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (status, body) = api.post("/configuration/log", json!({"data": {"level": "loud"}})).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(108)), "{body}");
    let (status, body) = api.get("/configuration/nonsense").await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(101)));
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/config_update",
            Some("log { level = warn }\nmqtt.max_mqueue_len = 50".into()),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (_, body) = api.get("/configuration").await;
    assert_eq!(body["data"]["log"]["level"], "warn");
    assert_eq!(body["data"]["mqtt"]["max_mqueue_len"], 50);
    assert_eq!(body["store_connected"], true);
    let (status, body) =
        api.call(reqwest::Method::POST, "/config_update", Some("log { level = ".into())).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(117)));
    // Every node reports the log version it applied.
    let log_version = body_version(api, "log").await;
    api.wait_get("/configuration", |b| {
        let applied = b["applied"].as_array().cloned().unwrap_or_default();
        ["node-a", "node-b"].iter().all(|node| {
            applied.iter().any(|a| {
                a["instance"] == *node && a["versions"]["log"].as_u64() == Some(log_version)
            })
        })
    })
    .await
    .expect("both nodes applied the log level");

    // Kick, then it is gone; kicking an unknown client is 404/112.
    let (status, body) = api.delete("/clients/c1").await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (status, body) = api.delete("/clients/nobody").await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(112)));
}

async fn body_version(api: &Api, section: &str) -> u64 {
    let (_, body) = api.get("/configuration").await;
    body["versions"][section].as_u64().expect("version")
}

#[tokio::test]
async fn credentials_bad_bodies_and_unknown_paths_get_nanomq_codes() {
    let cluster = Cluster::start().await;
    let mut api = clone_api(&cluster.api);
    api.authorization = None;
    let (status, body) = api.get("/clients").await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(104)));
    api.authorization = Some(basic("admin", "wrong"));
    let (status, body) = api.get("/clients").await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(103)));
    api.authorization = Some(basic("admin", "public"));
    for path in
        ["/mqtt/publish", "/mqtt/subscribe", "/configuration", "/reload", "/mqtt/publish_batch"]
    {
        let (status, body) = api.call(reqwest::Method::POST, path, Some("{not json".into())).await;
        assert_eq!((status, body["code"].as_i64()), (400, Some(109)), "{path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, body) =
        api.post("/mqtt/publish", json!({"topic": "a", "payload": "x", "qos": "high"})).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(108)), "{body}");
    let (status, body) = api.get("/no/such/thing").await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(102)));
    let (status, body) = api.call(reqwest::Method::PUT, "/clients", None).await;
    assert_eq!((status, body["code"].as_i64()), (405, Some(102)));
    // Odd input never brings the server down.
    for path in
        ["/clients/%FF%FE", "/clients?clientid=%", "/subscriptions?qos=%00", "/topic-tree?x"]
    {
        let (status, _) = api.get(path).await;
        assert!(status < 500, "{path}: {status}");
    }
    let garbage = [
        "",
        "null",
        "[]",
        "{}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"data\": 7}",
        "{\"data\": {\"auth\": {\"acl\": {\"rules\": \"x\"}}}}",
        "{\"topic\": \"\\u0000\", \"payload\": \"x\"}",
        "{\"clientid\": \"\", \"topic\": \"a\"}",
        "\u{feff}{\"a\":1}",
    ];
    for route in [
        "/mqtt/publish",
        "/mqtt/publish_batch",
        "/mqtt/subscribe",
        "/mqtt/subscribe_batch",
        "/mqtt/unsubscribe",
        "/mqtt/unsubscribe_batch",
        "/reload",
        "/configuration",
        "/configuration/auth",
        "/config_update",
    ] {
        for body in garbage {
            let (status, _) = api.call(reqwest::Method::POST, route, Some(body.into())).await;
            assert!((200..500).contains(&status), "{route} with {body:?}: {status}");
        }
    }
    let (status, _) = api.get("/brokers").await;
    assert_eq!(status, 200);
}

fn clone_api(api: &Api) -> Api {
    Api {
        addr: api.addr,
        http: api.http.clone(),
        authorization: api.authorization.clone(),
        shutdown: tokio_util::sync::CancellationToken::new(),
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let cluster = Cluster::start().await;
    let (status, doc) = cluster.api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let (_, listed) = cluster.api.get("").await;
    let routes = listed["data"].as_array().cloned().expect("routes");
    assert!(routes.len() >= 25, "{listed}");
    for route in &routes {
        let path = route["path"].as_str().expect("path");
        let method = route["method"].as_str().expect("method").to_ascii_lowercase();
        assert!(
            doc["paths"][path][&method].is_object(),
            "{method} {path} is not in the OpenAPI document"
        );
        // And the route really is served: not NanoMQ's unknown-path answer.
        let concrete = path
            .strip_prefix("/api/v4")
            .expect("base")
            .replace("{clientid}", "nobody")
            .replace("{username}", "nobody")
            .replace("{section}", "log");
        let (status, body) = cluster
            .api
            .call(method.to_uppercase().parse().expect("method"), &concrete, Some("{}".into()))
            .await;
        assert!(
            !(status == 404 && body["code"] == 102) && status != 405,
            "{method} {path} is not routed: {status} {body}"
        );
    }
    let paths = doc["paths"].as_object().expect("paths");
    let operations: usize = paths.values().map(|p| p.as_object().map_or(0, |o| o.len())).sum();
    assert_eq!(operations, routes.len(), "the document has no route the API lacks");
}

#[tokio::test]
async fn clients_on_two_nodes_are_listed_and_a_kick_reaches_the_right_one() {
    let cluster = Cluster::start().await;
    let mut on_a = client(cluster.nodes[0].mqtt, "dev-a", "u").await;
    let mut on_b = client(cluster.nodes[1].mqtt, "dev-b", "u").await;
    let body = cluster
        .api
        .wait_get("/clients", |b| ids(b, "client_id").len() == 2)
        .await
        .expect("both clients listed");
    let nodes: BTreeSet<String> = ids(&body, "node_id");
    assert_eq!(nodes, BTreeSet::from(["node-a".into(), "node-b".into()]));

    let (status, _) = cluster.api.delete("/clients/dev-b").await;
    assert_eq!(status, 200);
    let packets = on_b.until_closed().await;
    assert!(
        packets.iter().any(|p| matches!(p, Packet::Disconnect(d) if d.reason_code == mqtt_codec::DisconnectReasonCode::AdministrativeAction)),
        "dev-b gets DISCONNECT 0x98: {packets:?}"
    );
    // dev-a is untouched.
    assert_eq!(puback(&mut on_a, 7, "anything").await, PubAckReasonCode::NotAuthorized);
    let body = cluster
        .api
        .wait_get("/clients?conn_state=connected", |b| {
            ids(b, "client_id") == BTreeSet::from(["dev-a".into()])
        })
        .await;
    assert!(body.is_some(), "only dev-a stays connected");
}

#[tokio::test]
async fn an_acl_rule_added_through_the_api_lets_a_denied_publish_pass_and_removing_it_denies_again()
{
    let cluster = Cluster::start().await;
    let mut publisher = client(cluster.nodes[1].mqtt, "pub-1", "meter").await;
    assert_eq!(puback(&mut publisher, 1, "meters/1").await, PubAckReasonCode::NotAuthorized);

    let allow = json!({"data": {"auth": {"acl": {"rules": [
        {"permit": "allow", "action": "publish", "topics": ["meters/#"]},
        {"permit": "allow", "action": "subscribe"}
    ]}}}});
    let (status, body) = cluster.api.post("/configuration/auth", allow).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    assert!(body["data"]["auth"].is_u64(), "the new version: {body}");
    let passed = wait_for_puback(&mut publisher, "meters/1", 2, |code| {
        code != PubAckReasonCode::NotAuthorized
    })
    .await;
    assert!(passed, "the publish passes once the rule is applied");
    assert_eq!(
        puback(&mut publisher, 1000, "other/1").await,
        PubAckReasonCode::NotAuthorized,
        "only meters/#"
    );

    let deny =
        json!({"data": {"auth": {"acl": {"rules": [{"permit": "allow", "action": "subscribe"}]}}}});
    let (status, written) = cluster.api.post("/configuration/auth", deny).await;
    assert_eq!(status, 200);
    let denied = wait_for_puback(&mut publisher, "meters/1", 2001, |code| {
        code == PubAckReasonCode::NotAuthorized
    })
    .await;
    assert!(denied, "the publish is denied again once the rule is removed");
    let version = written["data"]["auth"].as_u64().expect("version");
    cluster
        .api
        .wait_get("/configuration", |b| {
            b["applied"].as_array().is_some_and(|a| {
                a.iter().any(|r| {
                    r["service"] == "auth-service"
                        && r["versions"]["auth"].as_u64() == Some(version)
                })
            })
        })
        .await
        .expect("auth-service reports the version it applied");
}

#[tokio::test]
async fn after_a_redis_restart_a_config_change_still_reaches_every_service() {
    let mut cluster = Cluster::start().await;
    let mut publisher = client(cluster.nodes[0].mqtt, "pub-r", "meter").await;
    let (status, _) =
        cluster.api.post("/configuration/log", json!({"data": {"level": "info"}})).await;
    assert_eq!(status, 200);

    cluster.redis.kill();
    // Writes are refused while Redis is down; services keep their configuration.
    let refused = eventually(WAIT, || async {
        let (status, body) =
            cluster.api.post("/configuration/log", json!({"data": {"level": "debug"}})).await;
        (status == 503).then_some(body)
    })
    .await
    .expect("writes answer 503 while Redis is down");
    assert_eq!(refused["code"], 118);
    let (status, _) = cluster.api.get("/configuration").await;
    assert_eq!(status, 200, "reads keep answering from the last good snapshot");
    assert_eq!(puback(&mut publisher, 1, "meters/1").await, PubAckReasonCode::NotAuthorized);

    cluster.redis.restart().expect("restart Redis");
    // Nodes register again by themselves.
    cluster
        .api
        .wait_get("/nodes", |b| b["data"].as_array().is_some_and(|n| n.len() == 2))
        .await
        .expect("nodes registered again after the restart");
    let allow = json!({"data": {"auth": {"acl": {"rules": [
        {"permit": "allow", "action": "publish", "topics": ["meters/#"]}
    ]}}}});
    let written = eventually(WAIT, || async {
        let (status, body) = cluster.api.post("/configuration/auth", allow.clone()).await;
        (status == 200).then_some(body)
    })
    .await
    .expect("writes work again");
    let (status, log) =
        cluster.api.post("/configuration/log", json!({"data": {"level": "warn"}})).await;
    assert_eq!(status, 200);
    let auth_version = written["data"]["auth"].as_u64().expect("version");
    let log_version = log["data"]["log"].as_u64().expect("version");
    let passed = wait_for_puback(&mut publisher, "meters/1", 2, |code| {
        code != PubAckReasonCode::NotAuthorized
    })
    .await;
    assert!(passed, "auth-service applied the change made after the restart");
    cluster
        .api
        .wait_get("/configuration", |b| {
            let applied = b["applied"].as_array().cloned().unwrap_or_default();
            let has = |instance: &str, section: &str, version: u64| {
                applied.iter().any(|a| {
                    a["instance"] == instance && a["versions"][section].as_u64() == Some(version)
                })
            };
            has("auth-1", "auth", auth_version)
                && has("node-a", "log", log_version)
                && has("node-b", "log", log_version)
        })
        .await
        .expect("every service reports the versions written after the restart");
}

#[tokio::test]
async fn offline_sessions_are_listed_subscribed_and_discarded() {
    let cluster = Cluster::start().await;
    let mut connect =
        test_support::mqtt::raw::connect_packet(mqtt_codec::ProtocolVersion::V5, "sleeper");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(600);
    let (mut sleeper, _) =
        test_support::mqtt::raw::RawClient::connect(cluster.nodes[1].mqtt, connect.clone()).await;
    sleeper
        .send(&Packet::Disconnect(mqtt_codec::Disconnect::new(
            mqtt_codec::DisconnectReasonCode::NormalDisconnection,
        )))
        .await;
    assert!(sleeper.until_closed().await.is_empty());
    let body = cluster
        .api
        .wait_get("/clients/sleeper", |b| b["data"][0]["conn_state"] == "disconnected")
        .await
        .expect("the offline session is listed");
    assert_eq!(body["data"][0]["node_id"], "node-b");

    // Subscribing an offline session through the API: messages wait for it.
    let (status, body) = cluster
        .api
        .post("/mqtt/subscribe", json!({"clientid": "sleeper", "topic": "inbox/#", "qos": 1}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let (status, _) = cluster
        .api
        .post("/mqtt/publish", json!({"topic": "inbox/1", "payload": "wake up", "qos": 1}))
        .await;
    assert_eq!(status, 200);
    let (mut back, ack) =
        test_support::mqtt::raw::RawClient::connect(cluster.nodes[1].mqtt, connect.clone()).await;
    assert!(ack.session_present);
    let got = back.next_publish().await;
    assert_eq!((&*got.topic, &got.payload[..]), ("inbox/1", &b"wake up"[..]));
    back.send(&Packet::Disconnect(mqtt_codec::Disconnect::new(
        mqtt_codec::DisconnectReasonCode::NormalDisconnection,
    )))
    .await;
    assert!(back.until_closed().await.iter().all(|p| !matches!(p, Packet::Disconnect(_))));
    cluster
        .api
        .wait_get("/clients/sleeper", |b| b["data"][0]["conn_state"] == "disconnected")
        .await
        .expect("offline again");

    // DELETE of an offline client discards its session.
    let (status, _) = cluster.api.delete("/clients/sleeper").await;
    assert_eq!(status, 200);
    let (_, body) = cluster.api.get("/clients/sleeper").await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(0), "{body}");
    let (_, ack) =
        test_support::mqtt::raw::RawClient::connect(cluster.nodes[1].mqtt, connect).await;
    assert!(!ack.session_present, "the session is gone");
}

#[tokio::test]
async fn a_user_added_through_the_api_can_connect() {
    let cluster = Cluster::start_with(
        "auth {\n  allow_anonymous = false\n  password { \"alice\": \"a-secret\" }\n}\n",
    )
    .await;
    let connect = |user: &str, password: &str| {
        let mut c = test_support::mqtt::raw::connect_packet(mqtt_codec::ProtocolVersion::V5, user);
        c.username = Some(user.into());
        c.password = Some(bytes::Bytes::copy_from_slice(password.as_bytes()));
        c
    };
    let addr = cluster.nodes[0].mqtt;
    let (_, ack) =
        test_support::mqtt::raw::RawClient::connect(addr, connect("alice", "a-secret")).await;
    assert_eq!(ack.reason_code, mqtt_codec::ConnectReasonCode::Success);
    let (_, ack) =
        test_support::mqtt::raw::RawClient::connect(addr, connect("bob", "b-secret")).await;
    assert_ne!(ack.reason_code, mqtt_codec::ConnectReasonCode::Success, "bob is unknown");

    let (status, body) = cluster
        .api
        .post("/configuration/auth", json!({"data": {"password": {"bob": "b-secret"}}}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let connected = test_support::eventually(WAIT, || async {
        let (_, ack) =
            test_support::mqtt::raw::RawClient::connect(addr, connect("bob", "b-secret")).await;
        (ack.reason_code == mqtt_codec::ConnectReasonCode::Success).then_some(())
    })
    .await;
    assert!(connected.is_some(), "bob connects once the change is applied");
    let (_, ack) =
        test_support::mqtt::raw::RawClient::connect(addr, connect("alice", "a-secret")).await;
    assert_eq!(ack.reason_code, mqtt_codec::ConnectReasonCode::Success, "the file's users stay");
}

/// Connects an MQTT 5 client to `addr`; returns it and the Maximum Packet Size its CONNACK
/// announced.
async fn connect_v5(addr: std::net::SocketAddr, id: &str) -> (RawClient, Option<u32>) {
    let connect = test_support::mqtt::raw::connect_packet(mqtt_codec::ProtocolVersion::V5, id);
    let (client, ack) = RawClient::connect(addr, connect).await;
    assert_eq!(ack.reason_code, mqtt_codec::ConnectReasonCode::Success, "{id} connects");
    (client, ack.properties.maximum_packet_size.map(|n| n.get()))
}

#[tokio::test]
async fn mqtt_and_sys_changes_through_the_api_apply_on_every_node_without_a_restart() {
    let cluster = Cluster::start().await;
    let (mut early, announced) = connect_v5(cluster.nodes[0].mqtt, "early").await;
    assert_eq!(announced, Some(10 * 1024 * 1024), "the default limit before the change");
    // The test nodes start without `$SYS` statistics.
    let (mut watcher, _) = connect_v5(cluster.nodes[1].mqtt, "watcher").await;
    assert_eq!(
        watcher.suback(1, "$SYS/brokers/node-b/uptime", QoS::AtMostOnce).await,
        mqtt_codec::SubAckReasonCode::GrantedQoS0
    );

    let (status, written) = cluster
        .api
        .post(
            "/configuration",
            json!({"data": {"mqtt": {"max_packet_size": "1KB"}, "sys": {"interval": "1s"}}}),
        )
        .await;
    assert_eq!(status, 200, "{written}");
    let mqtt_version = written["data"]["mqtt"].as_u64().expect("mqtt version");
    let sys_version = written["data"]["sys"].as_u64().expect("sys version");
    cluster
        .api
        .wait_get("/configuration", |b| {
            let applied = b["applied"].as_array().cloned().unwrap_or_default();
            ["node-a", "node-b"].iter().all(|node| {
                applied.iter().any(|a| {
                    a["instance"] == *node
                        && a["versions"]["mqtt"].as_u64() == Some(mqtt_version)
                        && a["versions"]["sys"].as_u64() == Some(sys_version)
                })
            })
        })
        .await
        .expect("both nodes report the versions applied");

    // Statistics start on node-b without a restart.
    let stats = watcher.next_publish().await;
    assert_eq!(&*stats.topic, "$SYS/brokers/node-b/uptime");

    // Clients connecting now, on either node, are held to the new limit.
    static BIG: [u8; 2048] = [b'x'; 2048];
    let big = &BIG;
    for (n, node) in cluster.nodes.iter().enumerate() {
        let (mut late, announced) = connect_v5(node.mqtt, &format!("late-{n}")).await;
        assert_eq!(announced, Some(1024), "{} announces the new limit", node.id);
        let publish = test_support::mqtt::packets::publish("big/1", big, QoS::AtLeastOnce, Some(1));
        late.send(&Packet::Publish(publish)).await;
        let closing = late.until_closed().await;
        assert!(
            closing.iter().any(|p| matches!(
                p,
                Packet::Disconnect(d)
                    if d.reason_code == mqtt_codec::DisconnectReasonCode::PacketTooLarge
            )),
            "{} refuses a 2 KB packet with Packet Too Large: {closing:?}",
            node.id
        );
    }
    // A client connected before keeps what its CONNACK told it: the same packet is taken.
    let publish = test_support::mqtt::packets::publish("big/1", big, QoS::AtLeastOnce, Some(2));
    early.send(&Packet::Publish(publish)).await;
    loop {
        match early.recv().await {
            Some(Packet::PubAck(ack)) if ack.packet_id.get() == 2 => break,
            Some(_) => {}
            None => panic!("the client connected before the change was disconnected"),
        }
    }
}

#[tokio::test]
async fn admin_api_serves_its_own_metrics_behind_its_authentication() {
    let cluster = Cluster::start().await;
    let api = &cluster.api;
    let (status, _) = api.get("/nodes").await;
    assert_eq!(status, 200);
    let url = format!("http://{}/metrics", api.addr);
    let anonymous = reqwest::get(&url).await.expect("GET /metrics");
    assert_eq!(anonymous.status().as_u16(), 401, "the same authentication as /api/v4");
    let text = reqwest::Client::new()
        .get(&url)
        .header("authorization", common::basic("admin", "public"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    let count = |route: &str, code: u16| -> u64 {
        let prefix = format!("tern_admin_requests_total{{route=\"{route}\",code=\"{code}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("/api/v4/nodes", 200) >= 1, "{text}");
    assert_eq!(count("/metrics", 401), 1, "{text}");
    assert!(text.contains("\ntern_admin_config_store_connected 1\n"), "{text}");
    assert!(text.contains("tern_admin_request_duration_seconds_count "), "{text}");
}
