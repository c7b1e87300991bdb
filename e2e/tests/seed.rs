//! The seed article's verification list, end to end: the real `broker-core`, `auth-service` and
//! `webhook-relay` binaries as separate processes, configured from the article's own files (as NanoMQ users
//! bring them: tests/fixtures, only addresses changed), with `redis-server` and an HTTP server
//! answering as the article's does; real `tern pub` / `tern sub` clients.
//!
//! | the article's check | where |
//! |---|---|
//! | MQTT over TCP | both tests |
//! | MQTT over TLS | `file_auth_…` |
//! | username / password | both tests (and a user kept in Redis) |
//! | ACL | `file_auth_…` (the ACL file), `http_auth_…` (acl_req) |
//! | HTTP authentication and ACL | `http_auth_…` |
//! | webhook MQTT → HTTP with the `authorization` header | `http_auth_…` (webhook-relay), `tern_start_…` |
//!
//! and then one of two auth-service replicas is killed and clients still connect. The last test
//! runs the HTTP-auth file with `tern start` (everything in one process) instead.

use std::net::SocketAddr;

use e2e::{balancer::Balancer, binaries, process::Process, seed_server::SeedServer};
use test_support::{
    RedisServer,
    cli::{Cli, Output},
    nanomq::Layout,
};

fn tern() -> Cli {
    Cli::new(binaries::path("tern"))
}

async fn run(args: &[&str]) -> Output {
    tern().run(args).await
}

fn conf_arg(layout: &Layout) -> &str {
    layout.conf.to_str().expect("utf-8 path")
}

/// An auth-service replica on the layout's file, on a free port.
async fn auth_service(layout: &Layout, name: &str) -> (Process, SocketAddr) {
    let mut process = Process::spawn(
        name,
        &binaries::path("auth-service"),
        &["--conf", conf_arg(layout)],
        layout.dir.path(),
        &[("TERN_AUTH_SERVICE__BIND", "127.0.0.1:0".into())],
    );
    let addr = process.addr(&["auth-service listening"]).await;
    (process, addr)
}

/// webhook-relay on the layout's file (its `webhook {}` block), on a free port, with its outbox
/// in the layout's directory.
async fn webhook_relay(layout: &Layout) -> (Process, SocketAddr) {
    let mut process = Process::spawn(
        "webhook-relay",
        &binaries::path("webhook-relay"),
        &["--conf", conf_arg(layout)],
        layout.dir.path(),
        &[
            ("TERN_WEBHOOK_RELAY__BIND", "127.0.0.1:0".into()),
            ("TERN_WEBHOOK_RELAY__OUTBOX", "outbox.redb".into()),
        ],
    );
    let addr = process.addr(&["webhook-relay listening"]).await;
    (process, addr)
}

/// broker-core on the layout's file, asking auth-service at `auth`.
struct Broker {
    process: Process,
    tcp: String,
    tls: String,
    ws: String,
}

async fn broker(layout: &Layout, auth: SocketAddr, relay: Option<SocketAddr>) -> Broker {
    let mut env = vec![("TERN_AUTH_SERVICE__ADDRESS", auth.to_string())];
    if let Some(relay) = relay {
        env.push(("TERN_WEBHOOK_RELAY__ADDRESS", relay.to_string()));
    }
    let mut process = Process::spawn(
        "broker-core",
        &binaries::path("broker-core"),
        &["--conf", conf_arg(layout)],
        layout.dir.path(),
        &env,
    );
    let port = |addr: SocketAddr| addr.port().to_string();
    let tcp = port(process.addr(&["listening", "listener=tcp:default"]).await);
    let tls = port(process.addr(&["listening", "listener=ssl:default"]).await);
    let ws = port(process.addr(&["listening", "listener=ws:default"]).await);
    Broker { process, tcp, tls, ws }
}

/// How long a webhook may take to arrive.
const WEBHOOK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const ADMIN: [&str; 4] = ["-u", "admin", "-P", "public"];
const CLIENT: [&str; 4] = ["-u", "client", "-P", "public"];

fn join<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    parts.concat()
}

fn ok(out: &Output) {
    assert_eq!(out.code, Some(0), "{out:?}");
}

/// `client` may publish and subscribe on client/only-one and nowhere else.
async fn client_is_held_to_its_topic(port: &str) {
    let own = tern()
        .subscriber(&join(&[&["-p", port, "-t", "client/only-one", "-C", "1"], &CLIENT]))
        .await;
    denied_publish_is_dropped(port).await;
    assert_eq!(own.finish().await.stdout, "yes\n");
    let denied = run(&join(&[&["sub", "-p", port, "-t", "elsewhere", "-C", "1"], &CLIENT])).await;
    assert_eq!(denied.stderr.trim(), "All subscription requests were denied.", "{denied:?}");
}

/// admin's `#` subscriber sees only what the ACL lets `client` publish: the denied publish comes
/// first and is dropped, the allowed one arrives (one publisher's messages stay in order).
async fn denied_publish_is_dropped(port: &str) {
    let watcher =
        tern().subscriber(&join(&[&["-p", port, "-t", "#", "-C", "1", "-v"], &ADMIN])).await;
    ok(&run(&join(&[&["pub", "-p", port, "-t", "admin/secret", "-m", "no"], &CLIENT])).await);
    ok(&run(&join(&[&["pub", "-p", port, "-t", "client/only-one", "-m", "yes"], &CLIENT])).await);
    assert_eq!(watcher.finish().await.stdout, "client/only-one yes\n");
}

/// Wrong passwords and unknown users are refused, worded as mosquitto_pub words it.
async fn bad_credentials_are_refused(port: &str) {
    for creds in [["-u", "admin", "-P", "wrong"], ["-u", "mallory", "-P", "public"]] {
        let out = run(&join(&[&["pub", "-p", port, "-t", "t", "-m", "x"], &creds])).await;
        assert_eq!(out.code, Some(5), "{out:?}");
        assert_eq!(out.stderr.trim(), "Connection error: Connection Refused: not authorised.");
    }
    let anonymous = run(&["pub", "-p", port, "-t", "t", "-m", "x"]).await;
    assert_eq!(anonymous.code, Some(5), "anonymous is refused: {anonymous:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_auth_over_tcp_and_tls_and_one_of_two_auth_replicas_killed() {
    test_support::install_crypto_provider();
    let redis = RedisServer::start();
    let status = std::process::Command::new("redis-cli")
        .args(["-s", &redis.socket().display().to_string()])
        .args(["HSET", "mqtt_user:carol", "password_hash", "from-redis"])
        .output()
        .expect("redis-cli runs");
    assert!(status.status.success(), "{status:?}");
    let layout = Layout::new("nanomq-file-auth.conf", None);
    layout.append(&format!("auth.redis {{ url = \"{}\" }}\n", redis.url()));

    let (mut first, first_addr) = auth_service(&layout, "auth-service-1").await;
    let (mut second, second_addr) = auth_service(&layout, "auth-service-2").await;
    let balancer = Balancer::start(vec![first_addr, second_addr]).await;
    let broker = broker(&layout, balancer.addr, None).await;
    let (tcp, tls, ws) = (broker.tcp.as_str(), broker.tls.as_str(), broker.ws.as_str());
    let ca = layout.cafile();

    // MQTT over TCP and TLS (and WebSocket), username and password: admin may do anything.
    let over_tls = ["-h", "localhost", "-p", tls, "--cafile", ca.as_str()];
    let sub = tern().subscriber(&join(&[&over_tls, &ADMIN, &["-t", "#", "-C", "3", "-v"]])).await;
    ok(&run(&join(&[&["pub", "-p", tcp, "-t", "seed/tcp", "-m", "1"], &ADMIN])).await);
    ok(&run(&join(&[&["pub"], &over_tls, &ADMIN, &["-t", "seed/tls", "-m", "2", "-q", "1"]]))
        .await);
    ok(&run(&join(&[&["pub", "--ws", "-p", ws, "-t", "seed/ws", "-m", "3", "-q", "2"], &ADMIN]))
        .await);
    // Three publishers on three connections: MQTT orders messages per connection only, and the
    // QoS 0 one may still be on its way when the next has been acknowledged.
    let mut received: Vec<String> = sub.finish().await.stdout.lines().map(String::from).collect();
    received.sort();
    assert_eq!(received, ["seed/tcp 1", "seed/tls 2", "seed/ws 3"]);

    // ACL: client only on client/only-one.
    client_is_held_to_its_topic(tcp).await;
    bad_credentials_are_refused(tcp).await;

    // A user kept in Redis (not in the password file) connects; a wrong password does not.
    ok(&run(&["pub", "-p", tcp, "-t", "t", "-m", "x", "-u", "carol", "-P", "from-redis"]).await);
    let wrong = run(&["pub", "-p", tcp, "-t", "t", "-m", "x", "-u", "carol", "-P", "nope"]).await;
    assert_eq!(wrong.code, Some(5), "{wrong:?}");

    // Kill the replica the broker is talking to; clients keep connecting through the other.
    let before = balancer.connections();
    let in_use = before.iter().position(|c| *c > 0).expect("the broker reached a replica");
    let survivor = 1 - in_use;
    if in_use == 0 {
        first.kill().await
    } else {
        second.kill().await
    }
    let sub =
        tern().subscriber(&join(&[&["-p", tcp, "-t", "after/#", "-C", "5", "-v"], &ADMIN])).await;
    for i in 0..5 {
        let topic = format!("after/{i}");
        let out =
            run(&join(&[&["pub", "-p", tcp, "-t", &topic, "-m", "still", "-q", "1"], &ADMIN]))
                .await;
        ok(&out);
    }
    let expected: String = (0..5).map(|i| format!("after/{i} still\n")).collect();
    assert_eq!(sub.finish().await.stdout, expected);
    assert!(
        balancer.connections()[survivor] > before[survivor],
        "the survivor took over: {before:?} -> {:?}",
        balancer.connections()
    );
    bad_credentials_are_refused(tcp).await;

    assert!(broker.process.terminate().await.success(), "broker-core stops cleanly");
    let survivor = if in_use == 0 { second } else { first };
    assert!(survivor.terminate().await.success(), "auth-service stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_auth_and_acl_against_the_articles_server() {
    test_support::install_crypto_provider();
    let server = SeedServer::start().await;
    let layout = Layout::new("nanomq-http-auth.conf", Some(&server.addr.to_string()));
    let (auth, auth_addr) = auth_service(&layout, "auth-service").await;
    let (relay, relay_addr) = webhook_relay(&layout).await;
    let broker = broker(&layout, auth_addr, Some(relay_addr)).await;
    let tcp = broker.tcp.as_str();

    // HTTP authentication: admin and client are known to the server, others are not.
    let sub =
        tern().subscriber(&join(&[&["-p", tcp, "-t", "any/#", "-C", "1", "-v"], &ADMIN])).await;
    ok(&run(&join(&[&["pub", "-p", tcp, "-t", "any/thing", "-m", "hello", "-q", "1"], &ADMIN]))
        .await);
    assert_eq!(sub.finish().await.stdout, "any/thing hello\n");
    bad_credentials_are_refused(tcp).await;

    // HTTP ACL: client only on client/only-one (access 1 = subscribe, 2 = publish).
    client_is_held_to_its_topic(tcp).await;

    // What the server received: the file's headers (a valid JWT in authorization) and params.
    let auths = server.requests("/mqtt/auth");
    assert!(auths.iter().all(|r| r.authorized), "every auth_req carries the JWT: {auths:?}");
    let admin = auths.iter().find(|r| r.form.get("username").is_some_and(|u| u == "admin"));
    let admin = admin.expect("admin was authenticated over HTTP");
    assert_eq!(admin.form.get("password").map(String::as_str), Some("public"));
    assert!(admin.form.contains_key("clientid"));
    let acls = server.requests("/mqtt/acl");
    assert!(acls.iter().all(|r| r.authorized), "{acls:?}");
    let asked = |access: &str, topic: &str| {
        acls.iter().any(|r| {
            r.form.get("username").is_some_and(|u| u == "client")
                && r.form.get("access").is_some_and(|a| a == access)
                && r.form.get("topic").is_some_and(|t| t == topic)
        })
    };
    assert!(asked("1", "elsewhere"), "the denied subscription was asked: {acls:?}");
    assert!(asked("2", "admin/secret"), "the denied publish was asked: {acls:?}");
    assert!(asked("1", "client/only-one"), "{acls:?}");
    assert!(server.requests("/mqtt/superuser").iter().all(|r| r.authorized));

    // Webhook, MQTT → HTTP with the authorization header: webhook-relay delivers the file's
    // webhook block; the article's server verifies the JWT in `authorization`.
    let hook = test_support::eventually(WEBHOOK_WAIT, || async {
        server.requests("/mqtt").into_iter().find(|r| r.body.contains("\"any/thing\""))
    })
    .await
    .expect("the publish reaches the webhook receiver");
    assert!(hook.authorized, "the webhook carries the file's authorization header: {hook:?}");
    let body: serde_json::Value = serde_json::from_str(&hook.body).expect("a JSON body");
    assert_eq!(body["action"], "message_publish");
    assert_eq!(body["from_username"], "admin");
    assert_eq!(body["payload"], "hello");

    // The relay stops on SIGTERM even with the broker's event stream open.
    assert!(relay.terminate().await.success(), "webhook-relay stops cleanly");
    assert!(broker.process.terminate().await.success(), "broker-core stops cleanly");
    assert!(auth.terminate().await.success(), "auth-service stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tern_start_runs_the_articles_http_auth_file_in_one_process() {
    test_support::install_crypto_provider();
    let server = SeedServer::start().await;
    let layout = Layout::new("nanomq-http-auth.conf", Some(&server.addr.to_string()));
    let mut launcher = Process::spawn(
        "tern start",
        &binaries::path("tern"),
        &["start", "--conf", conf_arg(&layout)],
        layout.dir.path(),
        &[],
    );
    let banner = launcher.line(&["broker-core", "MQTT over TCP"]).await;
    let url = banner.split_whitespace().last().expect("a URL ends the line");
    let tcp = url.rsplit_once(':').expect("host:port").1.to_owned();
    let sub =
        tern().subscriber(&join(&[&["-p", &tcp, "-t", "any/#", "-C", "1", "-v"], &ADMIN])).await;
    ok(&run(&join(&[&["pub", "-p", &tcp, "-t", "any/thing", "-m", "one"], &ADMIN])).await);
    assert_eq!(sub.finish().await.stdout, "any/thing one\n");
    // The article's webhook: the in-process relay posts the publish, with the JWT header.
    let hook = test_support::eventually(WEBHOOK_WAIT, || async {
        server.requests("/mqtt").into_iter().find(|r| r.body.contains("\"any/thing\""))
    })
    .await
    .expect("the publish reaches the webhook receiver");
    assert!(hook.authorized, "the webhook carries the configured authorization header");
    let body: serde_json::Value = serde_json::from_str(&hook.body).expect("a JSON body");
    assert_eq!(
        (body["action"].as_str(), body["from_username"].as_str()),
        (Some("message_publish"), Some("admin"))
    );
    client_is_held_to_its_topic(&tcp).await;
    bad_credentials_are_refused(&tcp).await;
    assert!(server.requests("/mqtt/auth").iter().all(|r| r.authorized));
    assert!(launcher.terminate().await.success(), "tern start stops cleanly on SIGTERM");
}
