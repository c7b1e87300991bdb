//! The `auth-service` binary's `--check-config`: "ok" for a file it can serve, and the reason
//! when the auth chain cannot be built from it, with exit code 2.

use test_support::cli::check_config;

const BIN: &str = env!("CARGO_BIN_EXE_auth-service");

#[test]
fn check_config_accepts_a_good_file_and_gives_the_reason_for_a_bad_one() {
    let dir = tempfile::tempdir().expect("dir");
    let good = check_config(
        BIN,
        dir.path(),
        "good.conf",
        "auth {\n  allow_anonymous = false\n  password = { \"alice\": \"secret\" }\n}\n",
    );
    assert_eq!((good.code, good.stdout.trim()), (Some(0), "ok"), "{good:?}");

    // The JWT public key file is there (so the file loads) but holds no key: the chain cannot be
    // built.
    let key = dir.path().join("garbage.pem");
    std::fs::write(&key, "not a key\n").expect("write");
    let jwt = format!("auth {{\n  jwt {{\n    public_key = \"{}\"\n  }}\n}}\n", key.display());
    let bad = check_config(BIN, dir.path(), "jwt.conf", &jwt);
    assert_eq!((bad.code, bad.stdout.as_str()), (Some(2), ""), "{bad:?}");
    assert!(bad.stderr.starts_with("auth-service: jwt: not an RSA or EC public key"), "{bad:?}");
}
