//! Keys Tern does not read: typos are named (with the nearest known key), NanoMQ settings Tern
//! ignores are listed in one warning.

use std::path::Path;

use tern_config::{Env, parse_str};

fn warnings(text: &str) -> Vec<String> {
    parse_str(text, "nanomq.conf", Path::new("."), &Env::new()).expect("valid config").warnings
}

#[test]
fn a_typo_is_named_with_its_line_and_the_nearest_key() {
    let w = warnings("mqtt {\n  max_packet_size = 1MB\n  max_packet_sise = 2MB\n}\n");
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        w[0],
        "nanomq.conf:3: unknown key mqtt.max_packet_sise is ignored; did you mean mqtt.max_packet_size?"
    );
}

#[test]
fn typos_in_block_names_and_nested_keys_are_named() {
    let w = warnings(
        "mqt {\n  max_packet_size = 1MB\n}\nlog.levle = debug\nwebhook {\n  url = \"http://h/\"\n  events = [{event = on_message_publish, topc = \"a/#\"}]\n}\n",
    );
    assert!(
        w.iter().any(|m| m.contains("unknown key mqt.max_packet_size")
            && m.contains("did you mean mqtt.max_packet_size?")),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|m| m.contains("nanomq.conf:4: unknown key log.levle")
            && m.contains("did you mean log.level?")),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|m| m.contains("nanomq.conf:7: unknown key webhook.events.0.topc")
            && m.contains("did you mean webhook.events.0.topic?")),
        "{w:#?}"
    );
}

#[test]
fn an_unknown_block_is_named_without_a_guess() {
    let w = warnings("kafka {\n  brokers = \"127.0.0.1:9092\"\n}\n");
    assert_eq!(w, ["nanomq.conf:2: unknown key kafka.brokers is ignored"]);
}

#[test]
fn ignored_nanomq_settings_produce_one_warning_listing_them() {
    let text = "system {\n  daemon = false\n  num_taskq_thread = 4\n}\n\
                mqtt {\n  batch_resend = true\n}\n\
                sqlite {\n  disk_cache_size = 102400\n}\n\
                bridges.mqtt.emqx1 {\n  server = \"mqtt-tcp://127.0.0.1:1883\"\n}\n\
                rules.repub { rules = [] }\n\
                log.uds_addr = \"/tmp/nanomq.sock\"\n";
    let w = warnings(text);
    let ignored: Vec<&String> = w.iter().filter(|m| m.contains("ignored by Tern")).collect();
    assert_eq!(ignored.len(), 1, "{w:#?}");
    for name in ["system", "mqtt.batch_resend", "sqlite", "bridges", "rules", "log.uds_addr"] {
        assert!(ignored[0].contains(name), "{name} missing from {ignored:?}");
    }
    assert_eq!(w.len(), 1, "nothing else is reported: {w:#?}");
}

#[test]
fn ignored_nanomq_environment_variables_join_the_same_warning() {
    let env = Env::from_iter([("NANOMQ_DAEMON", "true"), ("NANOMQ_PARALLEL", "8")]);
    let loaded = parse_str("sqlite {}\n", "nanomq.conf", Path::new("."), &env).unwrap();
    let ignored: Vec<&String> =
        loaded.warnings.iter().filter(|m| m.contains("ignored by Tern")).collect();
    assert_eq!(ignored.len(), 1, "{:#?}", loaded.warnings);
    for name in ["sqlite", "NANOMQ_DAEMON", "NANOMQ_PARALLEL"] {
        assert!(ignored[0].contains(name), "{name} missing from {ignored:?}");
    }
}

#[test]
fn a_clean_file_has_no_warnings() {
    let w = warnings(
        "mqtt {\n  max_packet_size = 1MB\n}\nlisteners.tcp {\n  bind = \"127.0.0.1:0\"\n}\nlog.level = info\n",
    );
    assert!(w.is_empty(), "{w:#?}");
}

#[test]
fn uds_logging_is_dropped_with_a_warning() {
    let loaded =
        parse_str("log.to = [console, uds]\n", "nanomq.conf", Path::new("."), &Env::new()).unwrap();
    assert_eq!(loaded.config.log.to, [tern_config::LogTarget::Console]);
    assert!(loaded.warnings.iter().any(|m| m.contains("uds")), "{:#?}", loaded.warnings);
}
