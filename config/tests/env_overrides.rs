//! Environment overrides, each test with its own explicit map (never the process environment).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tern_config::{
    ByteSize, Env, HttpAuthType, ListenerKind, LogLevel, LogTarget, parse_str, resolve_conf_path,
};

const BASE: &str = "mqtt {\n  max_packet_size = 10MB\n}\nlisteners.tcp {\n  bind = \"0.0.0.0:1883\"\n}\nauth {\n  allow_anonymous = true\n}\n";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

#[test]
fn nanomq_variables_override_the_file() {
    let dir = common::workdir();
    let env = Env::from_iter([
        ("NANOMQ_LOG_LEVEL", "debug"),
        ("NANOMQ_ALLOW_ANONYMOUS", "false"),
        // NanoMQ reads this one into its byte field with atol: a plain number is bytes.
        ("NANOMQ_MAX_PACKET_SIZE", "1048576"),
        ("NANOMQ_MSQ_LEN", "512"),
        // NanoMQ's qos_duration is the retry interval in seconds.
        ("NANOMQ_QOS_DURATION", "30"),
        ("NANOMQ_WEBSOCKET_ENABLE", "true"),
        ("NANOMQ_WEBSOCKET_URL", "nmq-ws://127.0.0.1:9083/ws"),
        ("NANOMQ_TLS_ENABLE", "true"),
        ("NANOMQ_TLS_URL", "tls+nmq-tcp://127.0.0.1:9883"),
        ("NANOMQ_TLS_CERT_PATH", "./etc/certs/cert.pem"),
        ("NANOMQ_TLS_KEY_PATH", "./etc/certs/key.pem"),
        ("NANOMQ_TLS_KEY_PASSWORD", "k3y"),
        ("NANOMQ_TLS_VERIFY_PEER", "yes"),
        ("NANOMQ_HTTP_SERVER_ENABLE", "true"),
        ("NANOMQ_HTTP_SERVER_PORT", "9081"),
        ("NANOMQ_HTTP_SERVER_USERNAME", "root"),
        ("NANOMQ_HTTP_SERVER_PASSWORD", "s3cret"),
        ("NANOMQ_HTTP_SERVER_AUTH_TYPE", "no_auth"),
        ("NANOMQ_LOG_TO", "file,console"),
    ]);
    let loaded = parse_str(BASE, "nanomq.conf", dir.path(), &env).unwrap();
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.to, [LogTarget::File, LogTarget::Console]);
    assert!(!c.auth.allow_anonymous);
    assert_eq!(c.mqtt.max_packet_size, ByteSize::mb(1));
    assert_eq!(c.mqtt.max_mqueue_len, 512);
    assert_eq!(c.mqtt.retry_interval, Duration::from_secs(30));

    let ws = c.listeners.iter().find(|l| l.kind == ListenerKind::Ws).expect("ws listener enabled");
    assert_eq!(ws.bind, addr("127.0.0.1:9083"));
    assert_eq!(ws.path.as_deref(), Some("/ws"));
    let ssl =
        c.listeners.iter().find(|l| l.kind == ListenerKind::Ssl).expect("ssl listener enabled");
    assert_eq!(ssl.bind, addr("127.0.0.1:9883"));
    let tls = ssl.tls.as_ref().unwrap();
    assert_eq!(tls.certfile, dir.path().join("etc/certs/cert.pem"));
    assert_eq!(tls.keyfile, dir.path().join("etc/certs/key.pem"));
    assert_eq!(tls.key_password.as_ref().map(|s| s.expose()), Some("k3y"));
    assert!(tls.verify_peer);

    let http = c.http_server.as_ref().expect("http server enabled");
    assert_eq!(http.port, 9081);
    assert_eq!(http.username, "root");
    assert_eq!(http.password.expose(), "s3cret");
    assert_eq!(http.auth_type, HttpAuthType::NoAuth);
}

#[test]
fn tern_variables_override_the_file() {
    let env = Env::from_iter([
        ("TERN_MQTT__MAX_PACKET_SIZE", "1MB"),
        ("TERN_LISTENERS__TCP__BIND", "0.0.0.0:1884"),
        ("TERN_LOG__TO", "file,syslog"),
        ("TERN_LOG__ROTATION__COUNT", "9"),
        ("TERN_AUTH__CACHE__TTL", "5m"),
        ("TERN_NODE__ID", "edge-7"),
        // Not an override: no `__`.
        ("TERN_CONF", "/etc/tern.conf"),
    ]);
    let loaded = parse_str(BASE, "nanomq.conf", Path::new("."), &env).unwrap();
    let c = &loaded.config;
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    assert_eq!(c.mqtt.max_packet_size, ByteSize::mb(1));
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].bind, addr("0.0.0.0:1884"));
    assert_eq!(c.log.to, [LogTarget::File, LogTarget::Syslog]);
    assert_eq!(c.log.rotation_count, 9);
    assert_eq!(c.auth.cache.ttl, Duration::from_secs(300));
    assert_eq!(c.node.id, "edge-7");
}

#[test]
fn tern_variables_win_over_nanomq_ones() {
    let env =
        Env::from_iter([("NANOMQ_MAX_PACKET_SIZE", "2048"), ("TERN_MQTT__MAX_PACKET_SIZE", "4KB")]);
    let loaded = parse_str(BASE, "nanomq.conf", Path::new("."), &env).unwrap();
    assert_eq!(loaded.config.mqtt.max_packet_size, ByteSize::kb(4));
}

#[test]
fn an_unknown_tern_key_is_a_warning_naming_the_variable() {
    let env = Env::from_iter([("TERN_MQTT__MAX_PACKET_SISE", "1MB")]);
    let loaded = parse_str(BASE, "nanomq.conf", Path::new("."), &env).unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "environment variable TERN_MQTT__MAX_PACKET_SISE: unknown key mqtt.max_packet_sise is ignored; did you mean mqtt.max_packet_size?"
        ]
    );
}

#[test]
fn a_malformed_tern_variable_is_an_error() {
    let env = Env::from_iter([("TERN_MQTT____MAX", "1")]);
    let err = parse_str(BASE, "nanomq.conf", Path::new("."), &env).unwrap_err().to_string();
    assert!(err.contains("environment variable TERN_MQTT____MAX"), "{err}");
}

#[test]
fn a_tern_variable_cannot_turn_a_value_into_a_block() {
    let env = Env::from_iter([("TERN_MQTT__MAX_PACKET_SIZE__X", "1")]);
    let err = parse_str(BASE, "nanomq.conf", Path::new("."), &env).unwrap_err().to_string();
    assert!(err.contains("environment variable TERN_MQTT__MAX_PACKET_SIZE__X: mqtt.max_packet_size.x: cannot be set"), "{err}");
}

#[test]
fn nanomq_block_settings_without_the_block_are_ignored_with_a_warning() {
    let env =
        Env::from_iter([("NANOMQ_HTTP_SERVER_PORT", "9081"), ("NANOMQ_TLS_CERT_PATH", "/x.pem")]);
    let loaded = parse_str(BASE, "nanomq.conf", Path::new("."), &env).unwrap();
    assert!(loaded.config.http_server.is_none());
    assert!(loaded.config.listeners.iter().all(|l| l.kind == ListenerKind::Tcp));
    assert_eq!(loaded.warnings.len(), 2, "{:#?}", loaded.warnings);
    assert!(loaded.warnings.iter().any(|w| w.contains("NANOMQ_HTTP_SERVER_PORT is ignored")));
    assert!(loaded.warnings.iter().any(|w| w.contains("NANOMQ_TLS_CERT_PATH is ignored")));
}

#[test]
fn enable_variables_switch_blocks_off() {
    let text = "listeners.tcp { bind = \"0.0.0.0:1883\" }\nlisteners.ws { bind = \"0.0.0.0:8083/mqtt\" }\nhttp_server { port = 8081 }\n";
    let env = Env::from_iter([
        ("NANOMQ_WEBSOCKET_ENABLE", "false"),
        ("NANOMQ_HTTP_SERVER_ENABLE", "false"),
        ("NANOMQ_TCP_ENABLE", "no"),
    ]);
    let loaded = parse_str(text, "nanomq.conf", Path::new("."), &env).unwrap();
    assert!(loaded.config.http_server.is_none());
    assert!(loaded.config.listeners.iter().all(|l| !l.enable), "{:#?}", loaded.config.listeners);
}

#[test]
fn an_unknown_nanomq_variable_is_a_warning() {
    let env = Env::from_iter([("NANOMQ_MAX_PAKET_SIZE", "1")]);
    let loaded = parse_str("", "nanomq.conf", Path::new("."), &env).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("NANOMQ_MAX_PAKET_SIZE"));
}

#[test]
fn env_values_reach_hocon_substitutions_from_the_map_only() {
    let env = Env::from_iter([("BROKER_PORT", "1999")]);
    let loaded = parse_str(
        "listeners.tcp.bind = \"0.0.0.0:\"${BROKER_PORT}\n",
        "nanomq.conf",
        Path::new("."),
        &env,
    )
    .unwrap();
    assert_eq!(loaded.config.listeners[0].bind.port(), 1999);
}

#[test]
fn conf_path_precedence() {
    let env =
        Env::from_iter([("NANOMQ_CONF_PATH", "/etc/nanomq.conf"), ("TERN_CONF", "/etc/tern.conf")]);
    assert_eq!(
        resolve_conf_path(Some(Path::new("cli.conf")), &env),
        Some(PathBuf::from("cli.conf"))
    );
    assert_eq!(resolve_conf_path(None, &env), Some(PathBuf::from("/etc/nanomq.conf")));
    let env = Env::from_iter([("TERN_CONF", "/etc/tern.conf"), ("NANOMQ_CONF_PATH", "")]);
    assert_eq!(resolve_conf_path(None, &env), Some(PathBuf::from("/etc/tern.conf")));
    assert_eq!(resolve_conf_path(None, &Env::new()), None);
}

#[test]
fn enabling_a_listener_keeps_the_implicit_tcp_listener() {
    let env = Env::from_iter([("NANOMQ_WEBSOCKET_ENABLE", "true")]);
    let loaded = parse_str("", "nanomq.conf", Path::new("."), &env).unwrap();
    let listeners: Vec<(ListenerKind, SocketAddr)> =
        loaded.config.listeners.iter().map(|l| (l.kind, l.bind)).collect();
    assert_eq!(
        listeners,
        [(ListenerKind::Tcp, addr("0.0.0.0:1883")), (ListenerKind::Ws, addr("0.0.0.0:8083"))]
    );
    assert_eq!(loaded.config.listeners[1].path.as_deref(), Some("/mqtt"));
}
