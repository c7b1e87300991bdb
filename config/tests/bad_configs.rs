//! Invalid configurations: each must fail with the file, the line, the key and the reason.

mod common;

use tern_config::{Env, load_in};

struct Case {
    name: &'static str,
    conf: &'static str,
    /// Extra files in the working directory.
    files: &'static [(&'static str, &'static str)],
    env: &'static [(&'static str, &'static str)],
    /// Substrings the error message must contain.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "unknown size unit",
        conf: "mqtt {\n    max_packet_size = 10XB\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:2: mqtt.max_packet_size: "10XB" is not a size (use B, KB, MB or GB)"#,
        ],
    },
    Case {
        name: "bind without a port",
        conf: "listeners.tcp {\n    bind = \"0.0.0.0\"\n}\n",
        files: &[],
        env: &[],
        expect: &["nanomq.conf:2: listeners.tcp.bind: ", "has no port"],
    },
    Case {
        name: "missing included password file",
        conf: "auth {\n    allow_anonymous = false\n    password = {include \"./etc/missing_pwd.conf\"}\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:3: auth.password: included file ",
            "etc/missing_pwd.conf does not exist",
        ],
    },
    Case {
        name: "missing included ACL file",
        conf: "auth {\n    acl = {include \"./etc/missing_acl.conf\"}\n}\n",
        files: &[],
        env: &[],
        expect: &["nanomq.conf:2: auth.acl: included file ", "etc/missing_acl.conf does not exist"],
    },
    Case {
        name: "TLS listener without a certificate",
        conf: "listeners.tcp {\n    bind = \"0.0.0.0:1883\"\n}\nlisteners.ssl {\n    bind = \"0.0.0.0:8883\"\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:4: listeners.ssl.keyfile: a TLS listener needs certfile and keyfile",
            "nanomq.conf:4: listeners.ssl.certfile: a TLS listener needs certfile and keyfile",
        ],
    },
    Case {
        name: "nonexistent certfile",
        conf: "listeners.ssl {\n    bind = \"0.0.0.0:8883\"\n    keyfile = \"./etc/certs/key.pem\"\n    certfile = \"./etc/certs/nope.pem\"\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:4: listeners.ssl.certfile: certificate file ",
            "etc/certs/nope.pem does not exist",
        ],
    },
    Case {
        name: "bad duration",
        conf: "mqtt {\n    max_packet_size = 1MB\n    retry_interval = 10x\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:3: mqtt.retry_interval: "10x" is not a duration (use ms, s, m or h)"#,
        ],
    },
    Case {
        name: "max_packet_size above 260MB",
        conf: "mqtt.max_packet_size = 261MB\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:1: mqtt.max_packet_size: 261MB is out of range (expected 1B to 260MB)",
        ],
    },
    Case {
        name: "max_packet_size of 0",
        conf: "mqtt {\n  max_packet_size = 0\n}\n",
        files: &[],
        env: &[],
        expect: &["nanomq.conf:2: mqtt.max_packet_size: 0B is out of range (expected 1B to 260MB)"],
    },
    Case {
        name: "unknown auth_type",
        conf: "http_server {\n    port = 8081\n    auth_type = oauth\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:3: http_server.auth_type: unknown value "oauth" (use basic, jwt or no_auth)"#,
        ],
    },
    Case {
        name: "unknown deny_action",
        conf: "auth {\n    allow_anonymous = true\n    no_match = allow\n    deny_action = kick\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:4: auth.deny_action: unknown value "kick" (use ignore or disconnect)"#,
        ],
    },
    Case {
        name: "unknown no_match",
        conf: "auth.no_match = maybe\n",
        files: &[],
        env: &[],
        expect: &[r#"nanomq.conf:1: auth.no_match: unknown value "maybe" (use allow or deny)"#],
    },
    Case {
        name: "unknown permit in the ACL file",
        conf: "auth {\n    acl = {include \"./etc/bad_acl.conf\"}\n}\n",
        files: &[(
            "etc/bad_acl.conf",
            "rules = [\n  {\"permit\": \"allow\", \"username\": \"admin\"}\n  {\"permit\": \"maybe\", \"username\": \"client\"}\n]\n",
        )],
        env: &[],
        expect: &[
            "etc/bad_acl.conf:3: auth.acl.rules.1.permit: unknown value \"maybe\" (use allow or deny)",
        ],
    },
    Case {
        name: "unknown action in the ACL file",
        conf: "auth {\n    acl = {include \"./etc/bad_acl.conf\"}\n}\n",
        files: &[(
            "etc/bad_acl.conf",
            "rules = [\n  {\"permit\": \"allow\", \"action\": \"write\"}\n]\n",
        )],
        env: &[],
        expect: &[
            "etc/bad_acl.conf:2: auth.acl.rules.0.action: unknown value \"write\" (use publish, subscribe or pubsub)",
        ],
    },
    Case {
        name: "misspelt selector in an ACL rule",
        conf: "auth.acl {\n  rules = [\n    {permit = allow, usernme = admin, topics = [\"#\"]}\n  ]\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:3: auth.acl.rules.0.usernme: unknown ACL rule field \"usernme\"",
            "did you mean username?",
        ],
    },
    Case {
        name: "misspelt rules list in the ACL file",
        conf: "auth {\n    acl = {include \"./etc/bad_acl.conf\"}\n}\n",
        files: &[("etc/bad_acl.conf", "# ACL\nrulez = [\n  {\"permit\": \"deny\"}\n]\n")],
        env: &[],
        expect: &[
            "etc/bad_acl.conf:2: auth.acl.rulez: unknown key in an ACL (it holds `rules = [ ... ]` only)",
        ],
    },
    Case {
        name: "ACL rule without permit",
        conf: "auth.acl {\n  rules = [\n    {username = admin}\n  ]\n}\n",
        files: &[],
        env: &[],
        expect: &["nanomq.conf:3: auth.acl.rules.0.permit: is required (allow or deny)"],
    },
    Case {
        name: "unknown webhook event",
        conf: "webhook {\n  url = \"http://127.0.0.1:3000/mqtt\"\n  events = [\n    { event = \"on_message_publsh\" }\n  ]\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:4: webhook.events.0.event: unknown webhook event \"on_message_publsh\"",
            "did you mean on_message_publish?",
        ],
    },
    Case {
        name: "webhook without url",
        conf: "webhook {\n  events = [{ event = on_client_connack }]\n}\n",
        files: &[],
        env: &[],
        expect: &["nanomq.conf:1: webhook.url: is required"],
    },
    Case {
        name: "bad log level",
        conf: "log {\n    to = [console]\n    level = verbose\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:3: log.level: unknown value "verbose" (use trace, debug, info, warn, error or fatal)"#,
        ],
    },
    Case {
        name: "unknown log target",
        conf: "log {\n    to = [file, journal]\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:2: log.to.1: unknown log target "journal" (use file, console or syslog)"#,
        ],
    },
    Case {
        name: "bad TERN_ environment override",
        conf: "mqtt {\n    max_packet_size = 1MB\n}\n",
        files: &[],
        env: &[("TERN_MQTT__MAX_PACKET_SIZE", "10XB")],
        expect: &[
            r#"environment variable TERN_MQTT__MAX_PACKET_SIZE: mqtt.max_packet_size: "10XB" is not a size (use B, KB, MB or GB)"#,
        ],
    },
    Case {
        name: "bad NANOMQ_ environment override",
        conf: "",
        files: &[],
        env: &[("NANOMQ_ALLOW_ANONYMOUS", "perhaps")],
        expect: &[
            r#"environment variable NANOMQ_ALLOW_ANONYMOUS: auth.allow_anonymous: "perhaps" is not a boolean (use true or false)"#,
        ],
    },
    Case {
        name: "HOCON syntax error",
        conf: "mqtt {\n    max_packet_size = 1MB\n    max_mqueue_len = [1, 2\n}\n",
        files: &[],
        env: &[],
        expect: &["nanomq.conf:4:1: syntax error: "],
    },
    Case {
        name: "HOCON syntax error in an included ACL file",
        conf: "auth {\n    acl = {include \"./etc/broken_acl.conf\"}\n}\n",
        files: &[("etc/broken_acl.conf", "rules = [\n  {\"permit\": \"allow\"\n]\n")],
        env: &[],
        expect: &["etc/broken_acl.conf:3:1: syntax error: "],
    },
    Case {
        name: "keepalive_multiplier below 1",
        conf: "mqtt {\n    keepalive_multiplier = 0.5\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:2: mqtt.keepalive_multiplier: 0.5 is out of range (expected 1 to 100)",
        ],
    },
    Case {
        name: "negative number where unsigned is expected",
        conf: "mqtt {\n    max_mqueue_len = -5\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:2: mqtt.max_mqueue_len: -5 is negative; expected a number from 1 to 4294967295",
        ],
    },
    Case {
        name: "not a number",
        conf: "auth.cache {\n  max_size = lots\n}\n",
        files: &[],
        env: &[],
        expect: &[r#"nanomq.conf:2: auth.cache.max_size: "lots" is not a whole number"#],
    },
    Case {
        name: "bad boolean",
        conf: "auth {\n  allow_anonymous = sometimes\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:2: auth.allow_anonymous: "sometimes" is not a boolean (use true or false)"#,
        ],
    },
    Case {
        name: "HTTP auth param that is not a placeholder",
        conf: "auth.http_auth {\n  auth_req {\n    url = \"http://127.0.0.1:3000/auth\"\n    params = {clientid = \"dev-%c\"}\n  }\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:4: auth.http_auth.auth_req.params.clientid: \"dev-%c\" is not a placeholder",
        ],
    },
    Case {
        name: "HTTP auth URL without scheme",
        conf: "auth.http_auth {\n  acl_req {\n    url = \"127.0.0.1:3000/acl\"\n  }\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:3: auth.http_auth.acl_req.url: ",
            "must start with http:// or https://",
        ],
    },
    Case {
        name: "wss without a certificate and no ssl listener",
        conf: "listeners.wss {\n  bind = \"0.0.0.0:8084/mqtt\"\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:1: listeners.wss.keyfile: a TLS listener needs certfile and keyfile (or an ssl listener to reuse)",
        ],
    },
    Case {
        name: "two listeners on one address",
        conf: "listeners.tcp {\n  bind = \"0.0.0.0:1883\"\n}\nlisteners.ws {\n  bind = \"0.0.0.0:1883/mqtt\"\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:5: listeners.ws.bind: 0.0.0.0:1883 is already used by listeners.tcp.bind",
        ],
    },
    Case {
        name: "jwt auth without a public key",
        conf: "http_server {\n  auth_type = jwt\n}\n",
        files: &[],
        env: &[],
        expect: &[
            "nanomq.conf:1: http_server.jwt.public.keyfile: is required when auth_type = jwt",
        ],
    },
    Case {
        name: "a value where a block is expected",
        conf: "mqtt = 5\n",
        files: &[],
        env: &[],
        expect: &["nanomq.conf:1: mqtt: must be a block ({ ... })"],
    },
    Case {
        name: "unknown webhook delivery mode",
        conf: "webhooks.audit {\n  url = \"http://h/\"\n  delivery = maybe\n  events = [{event = on_message_publish, topic = \"a/#/b\"}]\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:3: webhooks.audit.delivery: unknown value "maybe""#,
            r#"webhooks.audit.events.0.topic: "a/#/b" is not a valid topic filter"#,
        ],
    },
    Case {
        name: "bad relay address",
        conf: "webhook_relay {\n  address = \"relay\"\n  stream_events = [on_message_pub]\n}\n",
        files: &[],
        env: &[],
        expect: &[
            r#"nanomq.conf:2: webhook_relay.address: "relay" is not host:port"#,
            r#"webhook_relay.stream_events: unknown event "on_message_pub""#,
        ],
    },
];

#[test]
fn bad_configs_are_reported_with_file_line_key_and_reason() {
    let mut failures = Vec::new();
    for case in CASES {
        let dir = common::workdir();
        common::write_files(dir.path(), case.files);
        let conf = dir.path().join("nanomq.conf");
        std::fs::write(&conf, case.conf).unwrap();
        let env: Env = case.env.iter().copied().collect();
        match load_in(&conf, dir.path(), &env) {
            Ok(_) => failures.push(format!("{}: loaded without error", case.name)),
            Err(e) => {
                let message = e.to_string();
                println!("{}:\n  {}", case.name, message.replace('\n', "\n  "));
                for want in case.expect {
                    if !message.contains(want) {
                        failures
                            .push(format!("{}: {message:?} does not contain {want:?}", case.name));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
