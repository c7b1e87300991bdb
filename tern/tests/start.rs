//! `tern start`, the real binary: it prints where everything listens, a `tern pub` / `tern sub`
//! pair exchanges messages through it, a NanoMQ user's own files (the seed's
//! nanomq-file-auth.conf with its password and ACL files) work unchanged apart from addresses,
//! SIGINT / SIGTERM stop it cleanly, and a `webhook {}` block is served by the in-process
//! webhook-relay, which also applies targets written through admin-api while it runs.

use std::{path::Path, process::Stdio};

use test_support::cli::{Cli, Output, WAIT, write};
use test_support::nanomq::Layout;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Child,
};

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_tern"))
}

async fn run(args: &[&str]) -> Output {
    cli().run(args).await
}

/// A running `tern start` and what it printed.
struct Started {
    child: Child,
    banner: Vec<String>,
    stderr: String,
    /// What it prints on stderr after the banner, until it exits.
    later: tokio::task::JoinHandle<String>,
}

impl Started {
    /// Runs `tern start <args>` in `dir` (with `env`) and reads its banner.
    async fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = cli().command();
        command.current_dir(dir).arg("start").args(args).stdout(Stdio::piped());
        command.stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("tern start runs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut banner = Vec::new();
        let ready = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                let done = line.starts_with("Stop with");
                banner.push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        let mut stderr = String::new();
        if ready != Ok(true) {
            let _ = child.kill().await;
            if let Some(mut pipe) = child.stderr.take() {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stderr).await;
            }
            panic!("tern start did not start: {banner:?}\n{stderr}");
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        // Notes are printed before the banner's last line, so they are already in the pipe.
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(std::time::Duration::from_millis(200), err_lines.next_line()).await
        {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        let later = tokio::spawn(async move {
            let mut later = String::new();
            while let Ok(Some(line)) = err_lines.next_line().await {
                later.push_str(&line);
                later.push('\n');
            }
            later
        });
        Self { child, banner, stderr, later }
    }

    /// The port printed for the first endpoint line containing `what`.
    fn port(&self, what: &str) -> String {
        let line = self
            .banner
            .iter()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what} in {:#?}", self.banner));
        let url = line.split_whitespace().last().expect("a URL at the end");
        let after_host = url.rsplit_once(':').expect("host:port").1;
        after_host.split('/').next().expect("port").to_owned()
    }

    /// Sends `signal`, expects a clean exit, and returns what it printed on stderr after the
    /// banner.
    async fn stop(mut self, signal: rustix::process::Signal) -> String {
        let pid = self.child.id().expect("running");
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("signal");
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("tern start stops in time")
            .expect("wait");
        assert!(status.success(), "clean exit after {signal:?}: {status:?}");
        tokio::time::timeout(WAIT, self.later).await.expect("stderr closes").expect("read")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_on_free_ports_serves_pub_and_sub_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(
        dir.path(),
        "tern.conf",
        r#"
        listeners.tcp { bind = "127.0.0.1:0" }
        listeners.ws { bind = "127.0.0.1:0/mqtt" }
        auth_service.metrics_bind = "127.0.0.1:0"
        "#,
    );
    let tern = Started::spawn(dir.path(), &["--conf", &conf], &[]).await;
    assert!(tern.banner[0].starts_with("Tern "), "{:?}", tern.banner);
    assert!(tern.banner.iter().any(|l| l.contains("auth-service") && l.contains("127.0.0.1")));
    let auth_metrics = tern.port("Prometheus metrics");
    let tcp = tern.port("MQTT over TCP");
    let ws = tern.port("MQTT over WebSocket");
    let sub = cli().subscriber(&["-p", &tcp, "-t", "greet/#", "-C", "2", "-v"]).await;
    assert_eq!(run(&["pub", "-p", &tcp, "-t", "greet/tcp", "-m", "hi"]).await.code, Some(0));
    assert_eq!(
        run(&["pub", "--ws", "-p", &ws, "-t", "greet/ws", "-m", "hey", "-q", "1"]).await.code,
        Some(0)
    );
    let out = sub.finish().await;
    assert_eq!(out.stdout, "greet/tcp hi\ngreet/ws hey\n");

    // auth-service's own metrics: the three clients' CONNECTs were allowed.
    let metrics = reqwest::get(format!("http://127.0.0.1:{auth_metrics}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    let allowed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tern_auth_authenticate_total{result=\"allow\"} "))
        .unwrap_or_else(|| panic!("authenticate counter in {metrics}"));
    assert_eq!(allowed, "3", "{metrics}");

    // The probes the compose health checks run.
    let auth = format!("127.0.0.1:{}", tern.port("auth-service"));
    let grpc = run(&["health", "grpc", &auth]).await;
    assert_eq!((grpc.code, grpc.stdout.trim()), (Some(0), format!("{auth}: SERVING").as_str()));
    let service = run(&["health", "grpc", &auth, "--service", "tern.auth.v1.AuthService"]).await;
    assert_eq!(service.code, Some(0), "{service:?}");
    let mqtt = run(&["health", "mqtt", &format!("127.0.0.1:{tcp}")]).await;
    assert_eq!(mqtt.code, Some(0), "{mqtt:?}");
    tern.stop(rustix::process::Signal::TERM).await;
    let down = run(&["health", "mqtt", &format!("127.0.0.1:{tcp}")]).await;
    assert_eq!(down.code, Some(1), "{down:?}");
    assert!(down.stderr.starts_with("tern health: "), "{down:?}");
}

/// A webhook receiver: every request's `authorization` header and JSON body.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, serde_json::Value)>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let json = serde_json::from_str(&body).expect("a JSON body");
                let _ = tx.send((auth, json));
                "ok"
            }
        }),
    );
    let (listener, addr) = test_support::bind_tokio().await;
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
    (format!("http://{addr}/hook"), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_block_is_delivered_by_the_in_process_relay() {
    let (url, mut requests) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(
        dir.path(),
        "tern.conf",
        &format!(
            r#"
            listeners.tcp {{ bind = "127.0.0.1:0" }}
            webhook {{
              url = "{url}"
              headers.authorization = "Bearer seed-token"
              events = [ {{ event = "on_message_publish", topic = "hooked/#" }} ]
            }}
            webhook_relay {{ outbox = "outbox.redb", address = "192.0.2.1:50052" }}
            "#
        ),
    );
    let tern = Started::spawn(dir.path(), &["--conf", &conf], &[]).await;
    assert!(
        tern.banner.iter().any(|l| l.contains("webhook-relay") && l.contains("EventIngest")),
        "{:?}",
        tern.banner
    );
    assert!(
        tern.stderr.contains("webhook_relay.address"),
        "the address in the file is not used, and tern start says so: {}",
        tern.stderr
    );
    let tcp = tern.port("MQTT over TCP");
    assert_eq!(run(&["pub", "-p", &tcp, "-t", "other/1", "-m", "skip"]).await.code, Some(0));
    assert_eq!(run(&["pub", "-p", &tcp, "-t", "hooked/1", "-m", "hello"]).await.code, Some(0));
    let (auth, body) = tokio::time::timeout(WAIT, requests.recv())
        .await
        .expect("a webhook in time")
        .expect("receiver running");
    assert_eq!(auth, "Bearer seed-token");
    assert_eq!(body["action"], "message_publish");
    assert_eq!(body["topic"], "hooked/1", "only the filtered topic: {body}");
    assert_eq!(body["payload"], "hello");
    assert!(dir.path().join("outbox.redb").exists(), "the outbox is where the file says");
    let stopping = tern.stop(rustix::process::Signal::TERM).await;
    // The broker hands the relay its last events and closes its stream before the relay stops.
    assert!(!stopping.contains("broken"), "no broken event stream at shutdown: {stopping}");
}

/// Calls admin-api at `url` as admin/public; the status and the JSON body (`Null` when not JSON).
async fn api_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = http.request(method, url).basic_auth("admin", Some("public"));
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_target_written_through_the_api_is_delivered_without_a_restart() {
    let (url, mut first) = receiver().await;
    let (added_url, mut added) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(
        dir.path(),
        "tern.conf",
        &format!(
            r#"
            listeners.tcp {{ bind = "127.0.0.1:0" }}
            http_server {{ ip_addr = "127.0.0.1", port = 0 }}
            webhook {{
              url = "{url}"
              headers.authorization = "Bearer one"
              events = [ {{ event = "on_message_publish", topic = "hooked/#" }} ]
            }}
            webhook_relay {{ outbox = "outbox.redb" }}
            "#
        ),
    );
    let tern = Started::spawn(dir.path(), &["--conf", &conf], &[]).await;
    let api = format!("http://127.0.0.1:{}/api/v4", tern.port("HTTP API"));
    let http = reqwest::Client::new();
    let body = serde_json::json!({"data": {"added": {
        "url": added_url,
        "headers": {"authorization": "Bearer two"},
        "events": [{"event": "on_message_publish", "topic": "hooked/#"}],
    }}});
    let body = body.to_string();
    let url = format!("{api}/configuration/webhooks");
    let (status, written) = api_call(&http, reqwest::Method::POST, url, Some(&body)).await;
    assert_eq!(status, 200, "{written}");
    // GET /configuration shows the relay's applied version.
    let configuration = test_support::eventually(WAIT, || async {
        let url = format!("{api}/configuration");
        let (_, json) = api_call(&http, reqwest::Method::GET, url, None).await;
        let relay = json["applied"]
            .as_array()?
            .iter()
            .find(|a| a["service"] == "webhook-relay" && a["versions"]["webhooks"].is_u64())?
            .clone();
        Some(relay)
    })
    .await
    .expect("the relay reports the version it applied");
    assert_eq!(configuration["errors"], serde_json::json!({}), "{configuration}");

    let tcp = tern.port("MQTT over TCP");
    assert_eq!(run(&["pub", "-p", &tcp, "-t", "hooked/2", "-m", "live"]).await.code, Some(0));
    for (name, requests, token) in
        [("first", &mut first, "Bearer one"), ("added", &mut added, "Bearer two")]
    {
        let (auth, body) = tokio::time::timeout(WAIT, requests.recv())
            .await
            .unwrap_or_else(|_| panic!("{name}: a webhook in time"))
            .expect("receiver running");
        assert_eq!((auth.as_str(), &body["payload"]), (token, &serde_json::json!("live")));
    }
    tern.stop(rustix::process::Signal::TERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_targets_already_in_redis_start_the_relay() {
    use tern_config_store::ConfigStore as _;
    let (url, mut requests) = receiver().await;
    let redis = test_support::RedisServer::start();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let settings = tern_config_store::redis_store::RedisSettings {
        url: redis.url(),
        prefix: "tern:".into(),
        timeout: std::time::Duration::from_secs(2),
        poll_interval: std::time::Duration::from_millis(200),
    };
    let store =
        tern_config_store::RedisStore::start(settings, shutdown.clone()).expect("config store");
    let stored = serde_json::json!({"audit": {
        "url": url,
        "headers": {"authorization": "Bearer stored"},
        "events": [{"event": "on_message_publish", "topic": "stored/#"}],
    }});
    store.put("webhooks", stored).await.expect("written to Redis");
    let dir = tempfile::tempdir().expect("tempdir");
    // No webhook target in the file.
    let conf = write(
        dir.path(),
        "tern.conf",
        &format!(
            "listeners.tcp {{ bind = \"127.0.0.1:0\" }}\nredis {{ url = \"{}\" }}\nwebhook_relay {{ outbox = \"outbox.redb\" }}\n",
            redis.url()
        ),
    );
    let tern = Started::spawn(dir.path(), &["--conf", &conf], &[]).await;
    assert!(
        tern.banner.iter().any(|l| l.contains("webhook-relay")),
        "the relay runs for the stored targets: {:?}",
        tern.banner
    );
    let tcp = tern.port("MQTT over TCP");
    assert_eq!(run(&["pub", "-p", &tcp, "-t", "stored/1", "-m", "kept"]).await.code, Some(0));
    let (auth, body) = tokio::time::timeout(WAIT, requests.recv())
        .await
        .expect("a webhook in time")
        .expect("receiver running");
    assert_eq!((auth.as_str(), &body["payload"]), ("Bearer stored", &serde_json::json!("kept")));
    tern.stop(rustix::process::Signal::TERM).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_default_runs_and_stops_on_sigint() {
    // The shipped default binds 1883 and 8083; environment overrides move it to free ports.
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("TERN_LISTENERS__TCP__BIND", "127.0.0.1:0"),
        ("TERN_LISTENERS__WS__BIND", "127.0.0.1:0/mqtt"),
        ("TERN_HTTP_SERVER__PORT", "0"),
        ("TERN_NODE__METRICS_BIND", "127.0.0.1:0"),
    ];
    let tern = Started::spawn(dir.path(), &[], &env).await;
    assert!(tern.banner[0].contains("etc/tern.conf (built in)"), "{:?}", tern.banner);
    assert!(tern.banner.iter().any(|l| l.contains("ws://127.0.0.1:") && l.ends_with("/mqtt")));
    let tcp = tern.port("MQTT over TCP");
    let sub = cli().subscriber(&["-p", &tcp, "-t", "t", "-C", "2", "-V", "5"]).await;
    assert_eq!(run(&["pub", "-p", &tcp, "-t", "t", "-m", "anon", "-V", "5"]).await.code, Some(0));

    // The admin API of the default file (HTTP Basic admin / public), over the in-process broker.
    let api = format!("http://127.0.0.1:{}/api/v4", tern.port("HTTP API"));
    let http = reqwest::Client::new();
    let refused = http.get(format!("{api}/clients")).send().await.expect("request");
    assert_eq!(refused.status(), 401, "no credentials");
    let clients = http
        .get(format!("{api}/clients"))
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body");
    let clients: serde_json::Value = serde_json::from_slice(&clients).expect("JSON");
    assert_eq!(clients["code"], 0, "{clients}");
    assert_eq!(clients["data"].as_array().map(Vec::len), Some(1), "the subscriber: {clients}");
    let published = http
        .post(format!("{api}/mqtt/publish"))
        .basic_auth("admin", Some("public"))
        .body(r#"{"topic": "t", "payload": "from-api", "qos": 1, "clientid": "api"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(published.status(), 200);
    assert_eq!(sub.finish().await.stdout, "anon\nfrom-api\n");

    // A change through the API reaches the in-process broker (embedded store).
    let (_, written) = api_call(
        &http,
        reqwest::Method::POST,
        format!("{api}/configuration/mqtt"),
        Some(r#"{"data": {"max_mqueue_len": 64}}"#),
    )
    .await;
    let version = written["data"]["mqtt"].as_u64().unwrap_or_else(|| panic!("{written}"));
    let applied = test_support::eventually(WAIT, || async {
        let url = format!("{api}/configuration");
        let (_, body) = api_call(&http, reqwest::Method::GET, url, None).await;
        let applied = body["applied"].as_array()?.iter().any(|a| {
            a["service"] == "broker-core" && a["versions"]["mqtt"].as_u64() == Some(version)
        });
        applied.then_some(())
    })
    .await;
    assert!(applied.is_some(), "the broker reports mqtt version {version} applied");

    // The broker's own metrics, where the banner says.
    let metrics = format!("http://127.0.0.1:{}/metrics", tern.port("Prometheus metrics"));
    let text = http.get(metrics).send().await.expect("request").text().await.expect("body");
    assert!(text.contains("\nnanomq_messages_received "), "{text}");
    tern.stop(rustix::process::Signal::INT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nanomq_users_file_auth_config_works_unchanged() {
    test_support::install_crypto_provider();
    let layout = Layout::new("nanomq-file-auth.conf", None);
    let dir = &layout.dir;
    let tern = Started::spawn(dir.path(), &["--conf", "nanomq-file-auth.conf"], &[]).await;
    // The webhook block is served by the in-process relay.
    assert!(
        tern.banner.iter().any(|l| l.contains("webhook-relay")),
        "the relay runs for the webhook block: {:?}",
        tern.banner
    );
    let tcp = tern.port("MQTT over TCP");
    let tls = tern.port("MQTT over TLS");
    let ca = layout.cafile();
    let ca = ca.as_str();

    // admin may do anything, over TCP and TLS.
    let admin = ["-u", "admin", "-P", "public"];
    let sub_args = [
        &["-p", tls.as_str(), "-h", "localhost", "--cafile", ca][..],
        &admin,
        &["-t", "#", "-C", "1", "-v"],
    ]
    .concat();
    let sub = cli().subscriber(&sub_args).await;
    let publish =
        [&["pub", "-p", tcp.as_str(), "-t", "any/where", "-m", "m1"][..], &admin].concat();
    assert_eq!(run(&publish).await.code, Some(0));
    assert_eq!(sub.finish().await.stdout, "any/where m1\n");

    // client only on client/only-one.
    let client = ["-u", "client", "-P", "public"];
    let sub_args =
        [&["-p", tcp.as_str(), "-t", "client/only-one", "-C", "1"][..], &client].concat();
    let sub = cli().subscriber(&sub_args).await;
    let publish =
        [&["pub", "-p", tcp.as_str(), "-t", "client/only-one", "-m", "m2", "-q", "1"][..], &client]
            .concat();
    assert_eq!(run(&publish).await.code, Some(0));
    assert_eq!(sub.finish().await.stdout, "m2\n");
    let denied = [&["sub", "-p", tcp.as_str(), "-t", "other", "-C", "1"][..], &client].concat();
    let denied = run(&denied).await;
    assert_eq!(denied.stderr.trim(), "All subscription requests were denied.", "{denied:?}");

    // Unknown users and wrong passwords are refused, as mosquitto_pub reports it.
    for creds in [["-u", "admin", "-P", "wrong"], ["-u", "mallory", "-P", "public"]] {
        let refused =
            run(&[&["pub", "-p", tcp.as_str(), "-t", "t", "-m", "x"][..], &creds].concat()).await;
        assert_eq!(refused.code, Some(5), "{refused:?}");
        assert_eq!(refused.stderr.trim(), "Connection error: Connection Refused: not authorised.");
    }
    let anonymous = run(&["pub", "-p", &tcp, "-t", "t", "-m", "x", "-V", "5"]).await;
    assert_ne!(anonymous.code, Some(0), "anonymous refused: {anonymous:?}");
    tern.stop(rustix::process::Signal::TERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_is_refused_at_start_naming_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(dir.path(), "bad.conf", "listeners.tcp {\n  bind = \"nowhere\"\n}\n");
    let out = run(&["start", "--conf", &conf]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("bad.conf"), "{out:?}");
    assert!(out.stderr.contains("listeners.tcp.bind"), "{out:?}");
    let checked = run(&["start", "--check-config", "--conf", &conf]).await;
    assert_eq!(checked.code, Some(2), "{checked:?}");

    let good = write(dir.path(), "good.conf", "listeners.tcp { bind = \"127.0.0.1:0\" }\n");
    let checked = run(&["start", "--check-config", "--conf", &good]).await;
    assert_eq!((checked.code, checked.stdout.trim()), (Some(0), "ok"), "{checked:?}");

    // A webhook target webhook-relay could not use fails the check too (a header value with a
    // line break is valid HOCON but not a valid HTTP header).
    let webhook = write(
        dir.path(),
        "webhook.conf",
        "listeners.tcp { bind = \"127.0.0.1:0\" }\nwebhook {\n  url = \"http://127.0.0.1:1/x\"\n  \
         headers.x-note = \"two\\nlines\"\n  events = [ { event = on_message_publish } ]\n}\n",
    );
    let checked = run(&["start", "--check-config", "--conf", &webhook]).await;
    assert_eq!(checked.code, Some(2), "{checked:?}");
    assert!(checked.stderr.contains("webhook-relay: webhook target"), "{checked:?}");

    // A port already taken stops the start with the listener named.
    let (_taken, addr) = test_support::bind_tcp();
    let busy = write(dir.path(), "busy.conf", &format!("listeners.tcp {{ bind = \"{addr}\" }}\n"));
    let out = run(&["start", "--conf", &busy]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("broker-core"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_redriven_through_the_admin_api() {
    // A receiver that answers 404 (a dead letter at once) until it is switched on.
    let accepting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, mut requests) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let on = std::sync::Arc::clone(&accepting);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (tx, on) = (tx.clone(), std::sync::Arc::clone(&on));
            async move {
                if !on.load(std::sync::atomic::Ordering::SeqCst) {
                    return axum::http::StatusCode::NOT_FOUND;
                }
                let _ = tx.send(serde_json::from_str(&body).expect("a JSON body"));
                axum::http::StatusCode::OK
            }
        }),
    );
    let (listener, addr) = test_support::bind_tokio().await;
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });

    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(
        dir.path(),
        "tern.conf",
        &format!(
            r#"
            listeners.tcp {{ bind = "127.0.0.1:0" }}
            http_server {{ port = 0, username = admin, password = public }}
            webhooks.strict {{
              url = "http://{addr}/hook"
              events = [ {{ event = "on_message_publish", topic = "dl/#" }} ]
            }}
            webhook_relay {{ outbox = "outbox.redb" }}
            "#
        ),
    );
    let tern = Started::spawn(dir.path(), &["--conf", &conf], &[]).await;
    let tcp = tern.port("MQTT over TCP");
    let api = format!("http://127.0.0.1:{}/api/v4", tern.port("HTTP API"));
    let http = reqwest::Client::new();
    let list =
        || api_call(&http, reqwest::Method::GET, format!("{api}/webhooks/dead_letters"), None);
    assert_eq!(run(&["pub", "-p", &tcp, "-t", "dl/1", "-m", "one"]).await.code, Some(0));
    let listed = test_support::eventually(WAIT, || async {
        let (_, body) = list().await;
        (body["data"].as_array()?.len() == 1).then_some(body)
    })
    .await
    .expect("the refused delivery is listed");
    let letter = &listed["data"][0];
    assert_eq!(letter["target"], "strict", "{listed}");
    assert_eq!(letter["event"]["action"], "message_publish", "{listed}");
    assert_eq!(letter["event"]["topic"], "dl/1", "{listed}");
    assert!(letter["reason"].as_str().is_some_and(|r| r.contains("404")), "{listed}");

    accepting.store(true, std::sync::atomic::Ordering::SeqCst);
    let redrive = format!("{api}/webhooks/dead_letters/redrive");
    let (_, redriven) =
        api_call(&http, reqwest::Method::POST, redrive.clone(), Some(r#"{"target": "strict"}"#))
            .await;
    assert_eq!(redriven["data"]["redriven"], 1, "{redriven}");
    let body = tokio::time::timeout(WAIT, requests.recv())
        .await
        .expect("the redriven webhook in time")
        .expect("receiver running");
    assert_eq!((body["topic"].as_str(), body["payload"].as_str()), (Some("dl/1"), Some("one")));
    let (_, empty) = list().await;
    assert_eq!(empty["data"], serde_json::json!([]), "nothing left dead");
    let (status, _) =
        api_call(&http, reqwest::Method::POST, redrive, Some(r#"{"offsets": [1]}"#)).await;
    assert_eq!(status, 400, "a body without target");
    tern.stop(rustix::process::Signal::TERM).await;
}
