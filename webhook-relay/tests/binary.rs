//! The `webhook-relay` binary's `--check-config`: "ok" for a file it can serve, and each webhook
//! target it could not use named, with exit code 2.

use test_support::cli::check_config;

const BIN: &str = env!("CARGO_BIN_EXE_webhook-relay");

#[test]
fn check_config_accepts_a_good_file_and_names_a_target_it_cannot_use() {
    let dir = tempfile::tempdir().expect("dir");
    let good = check_config(
        BIN,
        dir.path(),
        "good.conf",
        "webhook {\n  url = \"http://127.0.0.1:1/x\"\n  events = [ { event = on_message_publish } ]\n}\n",
    );
    assert_eq!((good.code, good.stdout.trim()), (Some(0), "ok"), "{good:?}");

    // A header value with a line break is valid HOCON but not a valid HTTP header.
    let bad = check_config(
        BIN,
        dir.path(),
        "bad.conf",
        "webhook {\n  url = \"http://127.0.0.1:1/x\"\n  headers.x-note = \"two\\nlines\"\n  \
         events = [ { event = on_message_publish } ]\n}\n",
    );
    assert_eq!((bad.code, bad.stdout.as_str()), (Some(2), ""), "{bad:?}");
    assert!(
        bad.stderr.contains("webhook-relay: webhook target")
            && bad.stderr.contains("headers.x-note"),
        "{bad:?}"
    );

    // A file that does not load names file and key.
    let broken =
        check_config(BIN, dir.path(), "broken.conf", "webhook_relay {\n  bind = \"nowhere\"\n}\n");
    assert_eq!(broken.code, Some(2), "{broken:?}");
    assert!(
        broken.stderr.contains("webhook-relay: invalid configuration")
            && broken.stderr.contains("broken.conf")
            && broken.stderr.contains("webhook_relay.bind"),
        "{broken:?}"
    );
}
