//! Section behaviours beyond the fixtures: listeners, inline and standalone auth files,
//! includes, defaults, and the public size and duration parsers.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tern_config::{
    AclAction, ByteSize, Config, Env, ListenerKind, Permit, PlainUnit, Who, parse_acl_file,
    parse_duration, parse_password_file, parse_str,
};

fn parse(text: &str, dir: &Path) -> tern_config::Loaded {
    parse_str(text, "nanomq.conf", dir, &Env::new()).expect("valid config")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

#[test]
fn an_empty_file_is_the_default_config() {
    let loaded = parse("", Path::new("."));
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty());
    let listeners = &loaded.config.listeners;
    assert_eq!(listeners.len(), 1);
    assert_eq!((listeners[0].kind, listeners[0].bind), (ListenerKind::Tcp, addr("0.0.0.0:1883")));
}

#[test]
fn named_listeners_follow_their_kind_in_file_order() {
    let text = "listeners.tcp {\n  bind = \"0.0.0.0:1883\"\n}\n\
                listeners.tcp.second {\n  bind = \"0.0.0.0:1884\"\n  max_connections = 10\n  connect_timeout = 3s\n  proxy_protocol = true\n  max_packet_size = 64KB\n}\n\
                listeners.ws {\n  bind = \"0.0.0.0:8083/mqtt\"\n  enable = false\n}\n";
    let loaded = parse(text, Path::new("."));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let l = &loaded.config.listeners;
    let summary: Vec<(ListenerKind, &str, SocketAddr, bool)> =
        l.iter().map(|l| (l.kind, l.name.as_str(), l.bind, l.enable)).collect();
    assert_eq!(
        summary,
        [
            (ListenerKind::Tcp, "default", addr("0.0.0.0:1883"), true),
            (ListenerKind::Tcp, "second", addr("0.0.0.0:1884"), true),
            (ListenerKind::Ws, "default", addr("0.0.0.0:8083"), false),
        ]
    );
    assert_eq!(l[1].max_connections, 10);
    assert_eq!(l[1].connect_timeout, Duration::from_secs(3));
    assert!(l[1].proxy_protocol);
    assert_eq!(l[1].max_packet_size, Some(ByteSize::kb(64)));
    assert_eq!(l[0].max_packet_size, None);
}

#[test]
fn a_listeners_block_without_tcp_means_no_tcp() {
    let loaded = parse("listeners.ws {\n  bind = \"0.0.0.0:8083/mqtt\"\n}\n", Path::new("."));
    let kinds: Vec<ListenerKind> = loaded.config.listeners.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [ListenerKind::Ws]);
}

#[test]
fn wss_reuses_the_ssl_certificate() {
    let dir = common::workdir();
    let text = "listeners.wss {\n  bind = \"0.0.0.0:8084/mqtt\"\n}\n\
                listeners.ssl {\n  bind = \"0.0.0.0:8883\"\n  keyfile = \"etc/certs/key.pem\"\n  certfile = \"etc/certs/cert.pem\"\n  verify_peer = true\n  key_password = \"pw\"\n}\n";
    let loaded = parse(text, dir.path());
    let [wss, ssl] = &loaded.config.listeners[..] else { panic!("{:#?}", loaded.config.listeners) };
    assert_eq!((wss.kind, ssl.kind), (ListenerKind::Wss, ListenerKind::Ssl));
    assert_eq!(wss.path.as_deref(), Some("/mqtt"));
    assert_eq!(wss.tls, ssl.tls);
    let tls = wss.tls.as_ref().unwrap();
    assert_eq!(tls.certfile, dir.path().join("etc/certs/cert.pem"));
    assert!(tls.verify_peer);
    assert_eq!(format!("{:?}", tls.key_password), "Some(<redacted>)");
}

#[test]
fn inline_password_and_acl_with_every_selector() {
    let text = r##"
auth {
  allow_anonymous = false
  no_match = deny
  deny_action = disconnect
  password = { "admin": "public", "user.with.dots": "pw", plain = 1234 }
  acl {
    rules = [
      {"permit": "allow", "ipaddr": "10.0.0.1", "action": "publish", "topics": ["a/${clientid}", "@#"]}
      {"permit": "deny", "ipaddrs": ["10.0.0.2", "10.0.0.3"], "action": "subscribe"}
      {"permit": "allow", "username": "#"}
      {"permit": "allow", "clientid": "c1", "username": "u1"}
      {"permit": "allow", "and": [{"username": "u1"}, {"clientid": "c1"}]}
      {"permit": "deny", "or": [{"ipaddr": "10.0.0.9"}, {"clientid": "#"}]}
    ]
  }
}
"##;
    let loaded = parse(text, Path::new("."));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let auth = &loaded.config.auth;
    assert_eq!(auth.no_match, Permit::Deny);
    assert_eq!(auth.deny_action, tern_config::DenyAction::Disconnect);
    let password = auth.password.as_ref().unwrap();
    assert_eq!(password.file, None);
    let users: Vec<(&str, &str)> =
        password.entries.iter().map(|(u, p)| (u.as_str(), p.expose())).collect();
    assert_eq!(users, [("admin", "public"), ("user.with.dots", "pw"), ("plain", "1234")]);

    let acl = auth.acl.as_ref().unwrap();
    assert_eq!(acl.file, None);
    let r = &acl.rules;
    assert_eq!(r.len(), 6);
    assert_eq!(r[0].who, [Who::IpAddr("10.0.0.1".into())]);
    assert_eq!(r[0].action, AclAction::Publish);
    assert_eq!(r[0].topics, ["a/${clientid}", "@#"]);
    assert_eq!(r[1].who, [Who::IpAddrs(vec!["10.0.0.2".into(), "10.0.0.3".into()])]);
    assert_eq!(r[1].action, AclAction::Subscribe);
    assert_eq!(r[2].who, [Who::Any]);
    // Both selectors are kept, in NanoMQ's precedence order (username before clientid).
    assert_eq!(r[3].who, [Who::Username("u1".into()), Who::ClientId("c1".into())]);
    assert_eq!(r[4].who, [Who::And(vec![Who::Username("u1".into()), Who::ClientId("c1".into())])]);
    assert_eq!(r[5].who, [Who::Or(vec![Who::IpAddr("10.0.0.9".into()), Who::Any])]);
}

#[test]
fn standalone_acl_and_password_files_reload_alone() {
    let rules = parse_acl_file(&common::fixtures().join("nanomq_acl.conf")).unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[1].who, [Who::Username("client".into())]);
    assert_eq!(rules[2].permit, Permit::Deny);

    let users = parse_password_file(&common::fixtures().join("nanomq_pwd.conf")).unwrap();
    let users: Vec<(&str, &str)> = users.iter().map(|(u, p)| (u.as_str(), p.expose())).collect();
    assert_eq!(users, [("admin", "public"), ("client", "public")]);
}

#[test]
fn a_standalone_acl_file_reports_its_own_name_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acl.conf");
    std::fs::write(
        &path,
        "rules = [\n  {permit = allow}\n  {permit = allow, action = write}\n]\nrulez = []\n",
    )
    .unwrap();
    let message = parse_acl_file(&path).unwrap_err().to_string();
    assert!(message.contains("acl.conf:3: rules.1.action: unknown value \"write\""), "{message}");
    assert!(message.contains("acl.conf:5: rulez: unknown key in an ACL"), "{message}");
    let missing = parse_acl_file(&dir.path().join("none.conf")).unwrap_err().to_string();
    assert!(missing.contains("none.conf: cannot read the configuration file"), "{missing}");
}

#[test]
fn a_top_level_include_is_merged_and_a_missing_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[("common.conf", "mqtt {\n  max_mqueue_len = 77\n  retry_interval = 2s\n}\n")],
    );
    let loaded = parse("include \"common.conf\"\nmqtt.retry_interval = 3s\n", dir.path());
    assert_eq!(loaded.config.mqtt.max_mqueue_len, 77);
    assert_eq!(loaded.config.mqtt.retry_interval, Duration::from_secs(3));

    let err = parse_str("\ninclude \"absent.conf\"\n", "nanomq.conf", dir.path(), &Env::new())
        .unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("nanomq.conf:2: include: included file "), "{message}");
    assert!(message.ends_with("absent.conf does not exist"), "{message}");
}

#[test]
fn errors_in_an_included_file_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    common::write_files(dir.path(), &[("limits.conf", "mqtt {\n  keepalive_multiplier = 0\n}\n")]);
    let message = parse_str("include \"limits.conf\"\n", "nanomq.conf", dir.path(), &Env::new())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("limits.conf:2: mqtt.keepalive_multiplier: 0 is out of range"),
        "{message}"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = "mqtt {\n  max_packet_size = 10XB\n  retry_interval = soon\n}\nlog.level = loud\n";
    let err = parse_str(text, "nanomq.conf", Path::new("."), &Env::new()).unwrap_err();
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["mqtt.max_packet_size", "mqtt.retry_interval", "log.level"]);
    assert_eq!(err.to_string().lines().count(), 3);
}

#[test]
fn tern_extensions_are_read() {
    let text = "mqtt {\n  max_keepalive = 600\n  max_session_expiry = 1h\n  queue_qos0 = true\n  mqueue_overflow = drop_newest\n  shared_subscription_strategy = sticky\n  retain_available = false\n  max_retained_messages = 1000\n  max_subscriptions_per_client = 50\n  allow_empty_client_id = false\n  max_topic_alias = 0\n  max_awaiting_rel = 20\n}\nsys.interval = 0\nnode.id = \"edge-1\"\n";
    let loaded = parse(text, Path::new("."));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let m = &loaded.config.mqtt;
    assert_eq!(m.max_keepalive, 600);
    assert_eq!(m.max_session_expiry, Duration::from_secs(3600));
    assert!(m.queue_qos0);
    assert_eq!(m.mqueue_overflow, tern_config::Overflow::DropNewest);
    assert_eq!(m.shared_subscription_strategy, tern_config::SharedStrategy::Sticky);
    assert!(!m.retain_available);
    assert_eq!((m.max_retained_messages, m.max_subscriptions_per_client), (1000, 50));
    assert!(!m.allow_empty_client_id);
    assert_eq!(m.max_topic_alias, 0);
    assert_eq!(m.max_awaiting_rel, 20);
    assert_eq!(loaded.config.sys.interval, Duration::ZERO);
    assert_eq!(loaded.config.node.id, "edge-1");
}

#[test]
fn http_server_and_client_tls() {
    let dir = common::workdir();
    common::write_files(dir.path(), &[("etc/certs/jwt.pub", "key")]);
    let text = "http_server {\n  port = 0\n  ip_addr = \"127.0.0.1\"\n  limit_conn = 4\n  username = admin\n  password = secret\n  max_body = 64KB\n  auth_type = JWT\n  jwt {\n    public.keyfile = \"etc/certs/jwt.pub\"\n  }\n}\n\
                webhook {\n  url = \"https://hooks.example.com/mqtt\"\n  cancel_timeout = 250\n  body.encoding = base62\n  ssl {\n    cacertfile = \"etc/certs/cacert.pem\"\n  }\n  events = [{event = ON_CLIENT_CONNACK}, {event = on_message_dropped}]\n}\n";
    let loaded = parse(text, dir.path());
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let http = loaded.config.http_server.as_ref().unwrap();
    assert_eq!(http.port, 0);
    assert_eq!(http.ip_addr.to_string(), "127.0.0.1");
    assert_eq!(http.limit_conn, 4);
    assert_eq!(http.password.expose(), "secret");
    assert_eq!(http.max_body, ByteSize::kb(64));
    assert_eq!(http.auth_type, tern_config::HttpAuthType::Jwt);
    assert_eq!(
        http.jwt_public_keyfile.as_deref(),
        Some(dir.path().join("etc/certs/jwt.pub").as_path())
    );

    let webhook = loaded.config.webhook.as_ref().unwrap();
    assert_eq!(
        webhook.cancel_timeout,
        Duration::from_millis(250),
        "a plain cancel_timeout is milliseconds"
    );
    assert_eq!(webhook.body_encoding, tern_config::BodyEncoding::Base62);
    let events: Vec<&str> = webhook.events.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events, ["on_client_connack", "on_message_dropped"]);
    let tls = webhook.tls.as_ref().unwrap();
    assert_eq!(tls.cacertfile.as_deref(), Some(dir.path().join("etc/certs/cacert.pem").as_path()));
}

#[test]
fn webhook_targets_and_the_relay_block() {
    let text = "webhook {\n  url = \"http://h/mqtt\"\n  events = [{event = on_message_publish, topic = \"#\"}]\n}\n\
                webhooks.audit {\n  url = \"https://audit.example.com/events\"\n  headers.x-token = abc\n  max_age = 10m\n  retry { initial = 200ms, max = 5s }\n  events = [{event = on_client_connected}]\n}\n\
                webhooks.legacy {\n  url = \"http://l/\"\n  delivery = sent\n  events = [{event = on_message_publish}]\n}\n\
                webhook_relay {\n  bind = \"127.0.0.1:6000\"\n  address = \"relay:6000\"\n  outbox = \"data/outbox.redb\"\n  retention = 2h\n  metrics_bind = \"127.0.0.1:9102\"\n  buffer_size = 1000\n  batch_size = 64\n  stream_events = [on_message_publish, ON_CLIENT_CONNECTED]\n}\n";
    let dir = common::workdir();
    let loaded = parse(text, dir.path());
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let c = &loaded.config;
    let targets: Vec<(&str, tern_config::DeliveryMode)> =
        c.webhook_targets().map(|t| (t.name.as_str(), t.delivery)).collect();
    use tern_config::DeliveryMode::{Response, Sent};
    assert_eq!(targets, [("webhook", Sent), ("audit", Response), ("legacy", Sent)]);
    let audit = &c.webhooks[0];
    assert_eq!(audit.headers[0].0, "x-token");
    assert_eq!(audit.max_age, Duration::from_secs(600));
    assert_eq!(
        (audit.retry_initial, audit.retry_max),
        (Duration::from_millis(200), Duration::from_secs(5))
    );
    let nanomq = c.webhook.as_ref().unwrap();
    assert_eq!(
        (nanomq.max_age, nanomq.retry_initial),
        (Duration::from_secs(86400), Duration::from_secs(1))
    );
    let relay = &c.webhook_relay;
    assert_eq!(relay.bind, addr("127.0.0.1:6000"));
    assert_eq!(relay.address.as_deref(), Some("relay:6000"));
    assert_eq!(relay.outbox, dir.path().join("data/outbox.redb"));
    assert_eq!(relay.retention, Duration::from_secs(7200));
    assert_eq!(relay.metrics_bind, Some(addr("127.0.0.1:9102")));
    assert_eq!((relay.buffer_size, relay.batch_size), (1000, 64));
    assert_eq!(
        relay.stream_events,
        [tern_config::WebhookEvent::MessagePublish, tern_config::WebhookEvent::ClientConnected]
    );
}

#[test]
fn legacy_enable_false_turns_a_block_off() {
    let text = "webhook {\n  enable = false\n  url = \"http://h/\"\n}\nhttp_server {\n  enable = false\n}\nauth.http_auth {\n  enable = false\n}\n";
    let loaded = parse(text, Path::new("."));
    assert!(loaded.config.webhook.is_none());
    assert!(loaded.config.http_server.is_none());
    assert!(loaded.config.auth.http_auth.is_none());
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
}

#[test]
fn sizes_and_durations() {
    assert_eq!(ByteSize::parse("1KB"), Ok(ByteSize(1024)));
    assert_eq!(ByteSize::parse("1kb"), Ok(ByteSize(1024)));
    assert_eq!(ByteSize::parse("260MB"), Ok(ByteSize(272_629_760)));
    assert_eq!(ByteSize::parse("1GB"), Ok(ByteSize(1 << 30)));
    assert_eq!(ByteSize::parse("100"), Ok(ByteSize(100)));
    assert_eq!("64KB".parse::<ByteSize>(), Ok(ByteSize::kb(64)));
    assert_eq!(ByteSize::mb(260).to_string(), "260MB");
    for bad in ["10XB", "1.5MB", "-1KB", "MB", "1 TB"] {
        assert!(ByteSize::parse(bad).is_err(), "{bad}");
    }

    let s = PlainUnit::Seconds;
    assert_eq!(parse_duration("10s", s), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("1m", s), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("500ms", s), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("1h", s), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("15", s), Ok(Duration::from_secs(15)));
    assert_eq!(parse_duration("15", PlainUnit::Millis), Ok(Duration::from_millis(15)));
    for bad in ["10x", "1.5s", "-1s", "s", "1d", ""] {
        assert!(parse_duration(bad, s).is_err(), "{bad}");
    }
}

#[test]
fn two_configs_coexist_in_one_process() {
    let a =
        parse("listeners.tcp.bind = \"127.0.0.1:0\"\nmqtt.max_packet_size = 1KB\n", Path::new("."))
            .config;
    let b =
        parse("listeners.tcp.bind = \"127.0.0.1:0\"\nmqtt.max_packet_size = 2KB\n", Path::new("."))
            .config;
    assert_ne!(a.mqtt.max_packet_size, b.mqtt.max_packet_size);
}

#[test]
fn auth_service_block() {
    let loaded = parse(
        "auth_service {\n  bind = \"127.0.0.1:6000\"\n  address = \"auth-service:50051\"\n  timeout = 500ms\n  resolve_interval = 1s\n  on_unavailable { connect = allow, publish = deny }\n  metrics_bind = \"127.0.0.1:9101\"\n}\n",
        Path::new("."),
    );
    let a = &loaded.config.auth_service;
    assert_eq!(a.bind, addr("127.0.0.1:6000"));
    assert_eq!(a.metrics_bind, Some(addr("127.0.0.1:9101")));
    assert_eq!(a.address.as_deref(), Some("auth-service:50051"));
    assert_eq!(a.timeout, Duration::from_millis(500));
    assert_eq!(a.resolve_interval, Duration::from_secs(1));
    assert_eq!(a.on_unavailable.connect, Permit::Allow);
    assert_eq!(a.on_unavailable.publish, Permit::Deny);
    assert_eq!(a.on_unavailable.subscribe, Permit::Deny, "default: fail closed");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    let bad =
        parse_str("auth_service.address = \"no-port\"\n", "t.conf", Path::new("."), &Env::new())
            .expect_err("invalid address");
    assert!(bad.to_string().contains("t.conf:1: auth_service.address"), "{bad}");
    assert_eq!(parse("", Path::new(".")).config.auth_service.metrics_bind, None, "off by default");
    let bad = parse_str(
        "auth_service.metrics_bind = \"localhost\"\n",
        "t.conf",
        Path::new("."),
        &Env::new(),
    )
    .expect_err("invalid metrics address");
    assert!(bad.to_string().contains("t.conf:1: auth_service.metrics_bind"), "{bad}");
}

#[test]
fn jwt_and_redis_blocks() {
    let loaded = parse(
        "auth {\n  jwt { secret = \"k\", issuer = \"tern\", leeway = 5s, acl_claim = \"perms\" }\n  redis { url = \"redis://:pw@127.0.0.1:6379/0\", acl_key = \"\", salt_position = suffix }\n  http_auth.json_answers = true\n}\n",
        Path::new("."),
    );
    let auth = &loaded.config.auth;
    let jwt = auth.jwt.as_ref().expect("jwt");
    assert_eq!(jwt.secret.as_ref().map(|s| s.expose()), Some("k"));
    assert_eq!(jwt.issuer.as_deref(), Some("tern"));
    assert_eq!(jwt.leeway, Duration::from_secs(5));
    assert_eq!(jwt.acl_claim, "perms");
    assert_eq!(jwt.superuser_claim, "is_superuser");
    let redis = auth.redis.as_ref().expect("redis");
    assert_eq!(redis.user_key, "mqtt_user:${username}");
    assert_eq!(redis.acl_key, None, "an empty acl_key turns the Redis ACL off");
    assert_eq!(redis.salt_position, tern_config::SaltPosition::Suffix);
    assert!(!format!("{:?}", loaded.config).contains(":pw@"), "the Redis URL is a secret");
    assert!(auth.http_auth.as_ref().is_some_and(|h| h.json_answers));

    let bad = parse_str("auth.jwt { issuer = \"x\" }\n", "t.conf", Path::new("."), &Env::new())
        .expect_err("a key is needed");
    assert!(bad.to_string().contains("auth.jwt"), "{bad}");
    let bad =
        parse_str("auth.redis { url = \"http://x\" }\n", "t.conf", Path::new("."), &Env::new())
            .expect_err("not a redis url");
    assert!(bad.to_string().contains("auth.redis.url"), "{bad}");
}
