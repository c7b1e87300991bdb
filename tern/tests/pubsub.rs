//! `tern pub` and `tern sub`, the real binary, against Tern started in-process by the launcher
//! library (broker-core authenticating through auth-service over loopback gRPC) on port 0: every
//! transport, QoS 0/1/2, retained messages, MQTT 3.1.1 and 5 and mosquitto's refusal messages
//! and exit codes.

use tern::launch::{self, Running, Service};
use test_support::cli::{Cli, Output, write};
use test_support::pki::Pki;
use tokio_util::sync::CancellationToken;

fn cli() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_tern"))
}

async fn run(args: &[&str]) -> Output {
    cli().run(args).await
}

/// Tern on every transport with users `admin` (anything) and `client` (only `client/#`).
struct Fixture {
    running: Option<Running>,
    shutdown: CancellationToken,
    pki: Pki,
    client: test_support::pki::Files,
}

impl Fixture {
    async fn start() -> Self {
        test_support::install_crypto_provider();
        let pki = Pki::new();
        let dir = pki.dir.path();
        let server = pki.server("server", "localhost");
        let client = pki.client("device", "device-1");
        let pwd = write(dir, "pwd.conf", "\"admin\": \"public\"\n\"client\": \"public\"\n");
        let acl = write(
            dir,
            "acl.conf",
            r##"rules = [
                {"permit": "allow", "username": "admin", "action": "pubsub", "topics": ["#"]}
                {"permit": "allow", "username": "client", "action": "pubsub", "topics": ["client/#"]}
                {"permit": "deny"}
            ]"##,
        );
        let conf = format!(
            r#"
            listeners.tcp {{ bind = "127.0.0.1:0" }}
            listeners.ssl {{
                bind = "127.0.0.1:0"
                keyfile = "{key}"
                certfile = "{cert}"
                cacertfile = "{ca}"
                verify_peer = false
            }}
            listeners.ssl.mutual {{
                bind = "127.0.0.1:0"
                keyfile = "{key}"
                certfile = "{cert}"
                cacertfile = "{ca}"
                verify_peer = true
                fail_if_no_peer_cert = true
            }}
            listeners.ws {{ bind = "127.0.0.1:0/mqtt" }}
            auth {{
                allow_anonymous = false
                password = {{include "{pwd}"}}
                acl = {{include "{acl}"}}
            }}
            "#,
            key = server.key.display(),
            cert = server.cert.display(),
            ca = pki.ca_file().display(),
        );
        let loaded = tern_config::parse_str(&conf, "pubsub.conf", dir, &tern_config::Env::new())
            .expect("valid configuration");
        let shutdown = CancellationToken::new();
        let running =
            launch::start(loaded.config, None, shutdown.clone()).await.expect("tern starts");
        Self { running: Some(running), shutdown, pki, client }
    }

    fn port(&self, what: &str) -> String {
        let running = self.running.as_ref().expect("running");
        running
            .endpoint(Service::BrokerCore, what)
            .unwrap_or_else(|| panic!("an endpoint {what}: {:?}", running.endpoints))
            .addr
            .port()
            .to_string()
    }

    fn tcp(&self) -> String {
        self.port("MQTT over TCP")
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        let running = self.running.take().expect("running");
        running.wait().await.expect("clean stop");
    }
}

const ADMIN: [&str; 4] = ["-u", "admin", "-P", "public"];

fn args<'a>(parts: &[&'a [&'a str]]) -> Vec<&'a str> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

fn ok(out: &Output) {
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_over_tcp_at_every_qos_on_311_and_5() {
    let tern = Fixture::start().await;
    let port = tern.tcp();
    for version in ["mqttv311", "5", "31"] {
        for qos in ["0", "1", "2"] {
            let topic = format!("qos/{version}/{qos}");
            let base = ["-p", &port, "-V", version, "-q", qos, "-t", &topic];
            let sub =
                cli().subscriber(&args(&[&base, &ADMIN, &["-C", "1", "-F", "%q %t %p"]])).await;
            let payload = format!("hello at {qos}");
            let publish = run(&args(&[&["pub"], &base, &ADMIN, &["-m", &payload]])).await;
            ok(&publish);
            let out = sub.finish().await;
            ok(&out);
            assert_eq!(out.stdout, format!("{qos} {topic} {payload}\n"));
        }
    }
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_over_tls_and_mutual_tls() {
    let tern = Fixture::start().await;
    let ca = tern.pki.ca_file();
    let ca = ca.to_str().expect("utf-8");
    let tls = tern.port("MQTT over TLS");
    let sub = cli()
        .subscriber(&args(&[
            &["-h", "localhost", "-p", &tls, "--cafile", ca, "-t", "tls/#", "-C", "1", "-v"],
            &ADMIN,
        ]))
        .await;
    let publish = run(&args(&[
        &["pub", "-h", "localhost", "-p", &tls, "--cafile", ca],
        &ADMIN,
        &["-t", "tls/a", "-m", "secret", "-q", "1"],
    ]))
    .await;
    ok(&publish);
    let out = sub.finish().await;
    ok(&out);
    assert_eq!(out.stdout, "tls/a secret\n");

    // A listener that requires a client certificate: refused without one, served with one.
    let mutual = tern.port("MQTT over TLS (mutual)");
    let base = ["pub", "-h", "localhost", "-p", &mutual, "--cafile", ca, "-t", "m", "-m", "x"];
    let without = run(&args(&[&base, &ADMIN])).await;
    assert_ne!(without.code, Some(0), "no client certificate: {without:?}");
    assert!(without.stderr.starts_with("Error: "), "{without:?}");
    let cert = tern.client.cert.to_str().expect("utf-8");
    let key = tern.client.key.to_str().expect("utf-8");
    let with = run(&args(&[&base, &ADMIN, &["--cert", cert, "--key", key]])).await;
    ok(&with);
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_over_websocket_with_flag_and_url() {
    let tern = Fixture::start().await;
    let ws = tern.port("MQTT over WebSocket");
    let sub = cli()
        .subscriber(&args(&[
            &["--ws", "-p", &ws, "-t", "ws/#", "-C", "2", "-v", "-V", "5"],
            &ADMIN,
        ]))
        .await;
    ok(&run(&args(&[&["pub", "--ws", "-p", &ws, "-t", "ws/flag", "-m", "one"], &ADMIN])).await);
    let url = format!("ws://admin:public@127.0.0.1:{ws}/mqtt");
    ok(&run(&["pub", "-L", &url, "-t", "ws/url", "-m", "two", "-q", "2"]).await);
    let out = sub.finish().await;
    ok(&out);
    assert_eq!(out.stdout, "ws/flag one\nws/url two\n");
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_reach_later_subscribers_and_can_be_cleared() {
    let tern = Fixture::start().await;
    let port = tern.tcp();
    let p = ["-p", port.as_str()];
    ok(&run(&args(&[&["pub"], &p, &ADMIN, &["-t", "r/1", "-m", "kept", "-r", "-q", "1"]])).await);
    let out =
        run(&args(&[&["sub"], &p, &ADMIN, &["-t", "r/#", "-C", "1", "-F", "%r %t %p"]])).await;
    ok(&out);
    assert_eq!(out.stdout, "1 r/1 kept\n");
    // -R skips stale retained messages; -W then ends the wait with mosquitto's timeout code.
    let stale = run(&args(&[&["sub"], &p, &ADMIN, &["-t", "r/#", "-R", "-W", "1"]])).await;
    assert_eq!(stale.code, Some(27), "{stale:?}");
    assert_eq!(stale.stdout, "");
    assert_eq!(stale.stderr.trim(), "Timed out");
    // A null retained message clears it.
    ok(&run(&args(&[&["pub"], &p, &ADMIN, &["-t", "r/1", "-n", "-r", "-q", "1"]])).await);
    let cleared = run(&args(&[&["sub"], &p, &ADMIN, &["-t", "r/#", "-W", "1"]])).await;
    assert_eq!(cleared.code, Some(27), "{cleared:?}");
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_properties_travel_and_lines_become_messages() {
    let tern = Fixture::start().await;
    let port = tern.tcp();
    let sub = cli()
        .subscriber(&args(&[
            &["-p", &port, "-V", "mqttv5", "-t", "props", "-C", "1", "-F", "%P|%C|%p"],
            &ADMIN,
        ]))
        .await;
    let publish = run(&args(&[
        &["pub", "-p", &port, "-V", "mqttv5", "-t", "props", "-m", "body"],
        &ADMIN,
        &["-D", "publish", "user-property", "site", "north", "-D", "publish", "content-type"],
        &["text/plain", "-D", "publish", "user-property", "rack", "7"],
    ]))
    .await;
    ok(&publish);
    let out = sub.finish().await;
    ok(&out);
    assert_eq!(out.stdout, "site:north rack:7|text/plain|body\n");

    // -D needs MQTT 5, as with mosquitto.
    let v3 = run(&args(&[
        &["pub", "-p", &port, "-t", "x", "-m", "y"],
        &ADMIN,
        &["-D", "publish", "user-property", "a", "b"],
    ]))
    .await;
    assert_eq!(v3.code, Some(1));
    assert!(v3.stderr.contains("-D is only valid for MQTT v5"), "{v3:?}");
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_lines_are_published_one_by_one() {
    use tokio::io::AsyncWriteExt as _;
    let tern = Fixture::start().await;
    let port = tern.tcp();
    let sub = cli().subscriber(&args(&[&["-p", &port, "-t", "lines", "-C", "3"], &ADMIN])).await;
    let mut publisher = cli()
        .command()
        .args(args(&[&["pub", "-p", &port, "-t", "lines", "-l", "-q", "1"], &ADMIN]))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("tern pub starts");
    let mut stdin = publisher.stdin.take().expect("stdin");
    stdin.write_all(b"first\nsecond\nthird\n").await.expect("write");
    drop(stdin);
    let status =
        tokio::time::timeout(test_support::cli::WAIT, publisher.wait()).await.expect("in time");
    assert!(status.expect("wait").success());
    let out = sub.finish().await;
    ok(&out);
    assert_eq!(out.stdout, "first\nsecond\nthird\n");
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_read_and_exit_like_mosquitto() {
    let tern = Fixture::start().await;
    let port = tern.tcp();
    let p = ["-p", port.as_str(), "-t", "t", "-m", "x"];

    let v311 = run(&args(&[&["pub"], &p, &["-u", "admin", "-P", "wrong"]])).await;
    assert_eq!(v311.code, Some(5), "{v311:?}");
    assert_eq!(v311.stderr.trim(), "Connection error: Connection Refused: not authorised.");

    let v5 = run(&args(&[&["pub", "-V", "5"], &p, &["-u", "nobody", "-P", "x"]])).await;
    assert_eq!(v5.code, Some(0x86), "{v5:?}");
    assert!(v5.stderr.starts_with("Connection error: Bad User Name or Password"), "{v5:?}");

    let anonymous = run(&args(&[&["sub", "-p", &port, "-t", "t", "-C", "1"]])).await;
    assert_eq!(anonymous.code, Some(5), "{anonymous:?}");

    // The ACL denies `client` everything outside client/#.
    let client = ["-u", "client", "-P", "public"];
    let denied = run(&args(&[&["sub", "-p", &port, "-t", "admin/only", "-C", "1"], &client])).await;
    assert_eq!(denied.code, Some(1), "{denied:?}");
    assert_eq!(denied.stderr.trim(), "All subscription requests were denied.");
    let publish = run(&args(&[
        &["pub", "-V", "5", "-p", &port, "-t", "admin/x", "-m", "x", "-q", "1"],
        &client,
    ]))
    .await;
    assert_eq!(publish.code, Some(1), "{publish:?}");
    assert_eq!(publish.stderr.trim(), "Warning: Publish 1 failed: Not authorized.");

    tern.stop().await;
    // Nobody listens any more.
    let gone = run(&["pub", "-p", &port, "-t", "t", "-m", "x"]).await;
    assert_eq!(gone.code, Some(1), "{gone:?}");
    assert_eq!(gone.stderr.trim(), "Error: Connection refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_published_whole_and_keep_alive_pings_hold_idle_connections() {
    let tern = Fixture::start().await;
    let port = tern.tcp();
    let p = ["-p", port.as_str()];
    let file = write(tern.pki.dir.path(), "payload.bin", "line one\nline two");
    let sub = cli().subscriber(&args(&[&p, &ADMIN, &["-t", "file", "-C", "1", "-N"]])).await;
    ok(&run(&args(&[&["pub"], &p, &ADMIN, &["-t", "file", "-f", &file, "-q", "1"]])).await);
    assert_eq!(sub.finish().await.stdout, "line one\nline two");
    let missing = run(&args(&[&["pub"], &p, &ADMIN, &["-t", "file", "-f", "/nonexistent"]])).await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.starts_with("Error loading input file"), "{missing:?}");

    // Keep alive 1 s: without PINGREQ the broker would close the connection after 1.5 s of
    // silence; with it the subscriber is still there when its own -W 3 timeout ends the run.
    let idle = run(&args(&[&["sub"], &p, &ADMIN, &["-t", "quiet", "-k", "1", "-W", "3"]])).await;
    assert_eq!((idle.code, idle.stderr.trim()), (Some(27), "Timed out"), "{idle:?}");
    tern.stop().await;
}

fn signal(sub: &test_support::cli::Subscriber, signal: rustix::process::Signal) {
    let pid = sub.pid().and_then(|p| rustix::process::Pid::from_raw(p as i32)).expect("running");
    rustix::process::kill_process(pid, signal).expect("signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_disconnects_cleanly_so_no_will_is_sent() {
    let tern = Fixture::start().await;
    let port = tern.tcp();
    let p = ["-p", port.as_str()];
    let will = |name: &'static str| ["-t", "x", "--will-topic", name, "--will-payload", "gone"];

    // Killed: the broker sees the connection drop and publishes the will.
    let watcher = cli().subscriber(&args(&[&p, &ADMIN, &["-t", "will/#", "-C", "1", "-v"]])).await;
    let crashed = cli().subscriber(&args(&[&p, &ADMIN, &will("will/crashed")])).await;
    signal(&crashed, rustix::process::Signal::KILL);
    assert_eq!(watcher.finish().await.stdout, "will/crashed gone\n");

    // Interrupted: DISCONNECT first, exit 0, no will; the next message is the marker.
    let watcher = cli().subscriber(&args(&[&p, &ADMIN, &["-t", "will/#", "-C", "1", "-v"]])).await;
    let stopped = cli().subscriber(&args(&[&p, &ADMIN, &will("will/stopped")])).await;
    signal(&stopped, rustix::process::Signal::INT);
    assert_eq!(stopped.finish().await.code, Some(0));
    ok(&run(&args(&[&["pub"], &p, &ADMIN, &["-t", "will/marker", "-m", "m"]])).await);
    assert_eq!(watcher.finish().await.stdout, "will/marker m\n");
    tern.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_refused_with_a_message() {
    let missing = run(&["pub", "-t", "t"]).await;
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr.trim(), "Error: Both topic and message must be supplied.");
    let two = run(&["pub", "-t", "t", "-m", "x", "-n"]).await;
    assert_eq!(two.stderr.trim(), "Error: Only one type of message can be sent at once.");
    let wildcard = run(&["pub", "-t", "a/#", "-m", "x"]).await;
    assert!(wildcard.stderr.contains("Invalid publish topic 'a/#'"), "{wildcard:?}");
    let persistent = run(&["sub", "-t", "a", "-c"]).await;
    assert!(persistent.stderr.contains("You must provide a client id"), "{persistent:?}");
    let version = run(&["sub", "-t", "a", "-V", "4"]).await;
    assert_eq!(version.code, Some(2), "clap usage error: {version:?}");
}
