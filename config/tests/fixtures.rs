//! The NanoMQ files users bring (`/work/shared/fixtures/nanomq`) load unchanged, from their real
//! location, with a working directory laid out as their relative paths expect.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tern_config::{
    AclAction, BodyEncoding, ByteSize, Config, Env, HttpMethod, ListenerKind, LogLevel, LogTarget,
    Permit, Secret, WebhookEvent, Who, load_in, parse_str,
};

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

fn exposed(pairs: &[(String, Secret)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.expose())).collect()
}

fn strs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJlbnZOYW1lIjoibG9jYWwifQ.oWJU9JhpdASfv_9XDHm1wZ2w7IA86N2YAr3aX8NUNEY";

/// What both fixtures share: listeners, mqtt limits, log, auth basics, webhook.
fn assert_common(config: &Config, workdir: &Path) {
    let mqtt = &config.mqtt;
    assert_eq!(mqtt.property_size, 32);
    assert_eq!(mqtt.max_packet_size, ByteSize(272_629_760));
    assert_eq!(mqtt.max_mqueue_len, 2048);
    assert_eq!(mqtt.retry_interval, Duration::from_secs(10));
    assert_eq!(mqtt.keepalive_multiplier, 1.25);
    assert_eq!(mqtt.max_inflight_window, 2048);
    // `max_awaiting_rel = 10s` is NanoMQ's duration; Tern keeps its count default.
    assert_eq!(mqtt.max_awaiting_rel, 1000);
    assert_eq!(mqtt.await_rel_timeout, Duration::from_secs(10));

    let kinds: Vec<ListenerKind> = config.listeners.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [ListenerKind::Tcp, ListenerKind::Ssl, ListenerKind::Ws]);
    let [tcp, ssl, ws] = &config.listeners[..] else { unreachable!() };
    assert_eq!(
        (tcp.name.as_str(), tcp.bind, tcp.enable, tcp.tls.is_none()),
        ("default", addr("0.0.0.0:1883"), true, true)
    );
    assert_eq!(ssl.bind, addr("0.0.0.0:8883"));
    let tls = ssl.tls.as_ref().expect("ssl listener has TLS");
    assert_eq!(tls.keyfile, workdir.join("etc/certs/key.pem"));
    assert_eq!(tls.certfile, workdir.join("etc/certs/cert.pem"));
    assert_eq!(tls.cacertfile.as_deref(), Some(workdir.join("etc/certs/cacert.pem").as_path()));
    assert!(!tls.verify_peer);
    assert!(!tls.fail_if_no_peer_cert);
    assert_eq!(tls.key_password, None);
    assert_eq!(ws.bind, addr("0.0.0.0:8083"));
    assert_eq!(ws.path.as_deref(), Some("/mqtt"));
    assert!(ws.tls.is_none());

    assert!(config.http_server.is_none(), "http_server is commented out in the fixtures");

    let log = &config.log;
    assert_eq!(log.to, [LogTarget::File, LogTarget::Console]);
    assert_eq!(log.level, LogLevel::Warn);
    assert_eq!(log.dir, Path::new("/tmp"));
    assert_eq!(log.file, "nanomq.log");
    assert_eq!(log.rotation_size, ByteSize::mb(10));
    assert_eq!(log.rotation_count, 5);

    let auth = &config.auth;
    assert!(!auth.allow_anonymous);
    assert_eq!(auth.no_match, Permit::Allow);
    assert_eq!(auth.deny_action, tern_config::DenyAction::Ignore);
    assert_eq!(auth.cache.max_size, 32);
    assert_eq!(auth.cache.ttl, Duration::from_secs(60));

    let webhook = config.webhook.as_ref().expect("webhook block");
    assert_eq!(webhook.url, "http://127.0.0.1:3000/mqtt");
    assert_eq!(
        exposed(&webhook.headers),
        [("content-type", "application/json"), ("authorization", JWT)]
    );
    assert_eq!(webhook.body_encoding, BodyEncoding::Plain);
    assert_eq!(webhook.pool_size, 32);
    assert_eq!(webhook.cancel_timeout, Duration::from_millis(5000));
    assert_eq!(webhook.events.len(), 1);
    assert_eq!(webhook.events[0].event, WebhookEvent::MessagePublish);
    assert_eq!(webhook.events[0].topic.as_deref(), Some("#"));
}

/// The only warning the fixtures produce is about NanoMQ's duration in `max_awaiting_rel`.
fn assert_fixture_warnings(warnings: &[String], file: &str, line: usize) {
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains(&format!("{file}:{line}: mqtt.max_awaiting_rel")),
        "{warnings:#?}"
    );
}

#[test]
fn file_auth_fixture_loads_unchanged() {
    let dir = common::workdir();
    let path = common::fixtures().join("nanomq-file-auth.conf");
    let loaded = load_in(&path, dir.path(), &Env::new()).unwrap();
    let config = &loaded.config;
    assert_common(config, dir.path());
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_fixture_warnings(&loaded.warnings, "nanomq-file-auth.conf", 19);

    let password = config.auth.password.as_ref().expect("password list");
    assert_eq!(exposed(&password.entries), [("admin", "public"), ("client", "public")]);
    assert_eq!(password.file.as_deref(), Some(dir.path().join("etc/nanomq_pwd.conf").as_path()));

    let acl = config.auth.acl.as_ref().expect("ACL");
    assert_eq!(acl.file.as_deref(), Some(dir.path().join("etc/nanomq_acl.conf").as_path()));
    assert_eq!(acl.rules.len(), 3);
    let [admin, client, rest] = &acl.rules[..] else { unreachable!() };
    assert_eq!(admin.permit, Permit::Allow);
    assert_eq!(admin.action, AclAction::PubSub);
    assert_eq!(admin.who, [Who::Username("admin".into())]);
    assert_eq!(admin.topics, ["#"]);
    assert_eq!(client.permit, Permit::Allow);
    assert_eq!(client.action, AclAction::PubSub);
    assert_eq!(client.who, [Who::Username("client".into())]);
    assert_eq!(client.topics, ["client/only-one"]);
    assert_eq!(rest.permit, Permit::Deny);
    assert_eq!(rest.action, AclAction::PubSub);
    assert!(rest.who.is_empty(), "no selector = everyone");
    assert!(rest.topics.is_empty(), "no topics = any topic");

    assert!(config.auth.http_auth.is_none());
}

#[test]
fn http_auth_fixture_loads_unchanged() {
    let dir = common::workdir();
    let path = common::fixtures().join("nanomq-http-auth.conf");
    let text = std::fs::read_to_string(&path).unwrap();
    // Through parse_str this time, with the file name as the origin.
    let loaded = parse_str(&text, "nanomq-http-auth.conf", dir.path(), &Env::new()).unwrap();
    let config = &loaded.config;
    assert_common(config, dir.path());
    assert_eq!(config.source, None);
    assert_fixture_warnings(&loaded.warnings, "nanomq-http-auth.conf", 18);

    assert!(config.auth.password.is_none());
    assert!(config.auth.acl.is_none());
    let http = config.auth.http_auth.as_ref().expect("http_auth");
    assert_eq!(http.timeout, Duration::from_secs(5));
    assert_eq!(http.connect_timeout, Duration::from_secs(5));
    assert_eq!(http.pool_size, 32);
    assert_eq!(http.cache_ttl, Duration::ZERO);

    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            &http.auth_req,
            "http://127.0.0.1:3000/mqtt/auth",
            vec![("clientid", "%c"), ("username", "%u"), ("password", "%P")],
        ),
        (
            &http.super_req,
            "http://127.0.0.1:3000/mqtt/superuser",
            vec![("clientid", "%c"), ("username", "%u"), ("password", "%P")],
        ),
        (
            &http.acl_req,
            "http://127.0.0.1:3000/mqtt/acl",
            vec![
                ("clientid", "%c"),
                ("username", "%u"),
                ("access", "%A"),
                ("ipaddr", "%a"),
                ("topic", "%t"),
                ("mountpoint", "%m"),
            ],
        ),
    ];
    for (request, url, params) in cases {
        let request = request.as_ref().expect("request configured");
        assert_eq!(request.url, url);
        assert_eq!(request.method, HttpMethod::Post);
        assert_eq!(exposed(&request.headers), [("content-type", form), ("authorization", JWT)]);
        assert_eq!(strs(&request.params), params);
        assert!(request.tls.is_none());
    }
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let dir = common::workdir();
    for file in ["nanomq-file-auth.conf", "nanomq-http-auth.conf"] {
        let loaded = load_in(&common::fixtures().join(file), dir.path(), &Env::new()).unwrap();
        let shown = format!("{:?} {:#?}", loaded.config, loaded.config);
        assert!(!shown.contains("public"), "{file}: a password leaked: {shown}");
        assert!(!shown.contains("eyJhbGciOiJIUzI1NiJ9"), "{file}: the JWT leaked");
        assert!(shown.contains("<redacted>"));
    }
}

#[test]
fn fixture_loads_relative_to_the_process_working_directory_too() {
    // `load` resolves against the real working directory, where there is no etc/: the
    // fixture's include must then fail loudly rather than be skipped.
    let path = common::fixtures().join("nanomq-file-auth.conf");
    let err = tern_config::load(&path, &Env::new()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("nanomq-file-auth.conf:86: auth.password: included file"),
        "{message}"
    );
    assert!(message.contains("etc/nanomq_pwd.conf does not exist"), "{message}");
}
