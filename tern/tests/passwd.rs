//! `tern passwd` prints hashes the password-file backend accepts, from an argument or stdin.

use std::{
    io::Write,
    process::{Command, Stdio},
};

#[test]
fn hashes_verify_and_lines_parse_as_a_password_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["passwd", "--algorithm", "bcrypt", "--username", "device-1", "s3cret"])
        .output()
        .expect("tern runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).expect("utf8");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pwd.conf");
    std::fs::write(&file, &line).expect("write");
    let entries = tern_config::parse_password_file(&file).expect("a valid password file line");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "device-1");
    let stored = entries[0].1.expose();
    assert!(stored.starts_with("$2"), "a bcrypt PHC string: {stored}");
    assert!(auth_service::passwd::verify(stored, b"s3cret"));
    assert!(!auth_service::passwd::verify(stored, b"wrong"));
}

#[test]
fn reads_the_password_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["passwd", "--algorithm", "pbkdf2-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tern runs");
    child.stdin.take().expect("stdin").write_all(b"from stdin\n").expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).expect("utf8");
    assert!(hash.starts_with("$pbkdf2-sha256$"), "{hash}");
    assert!(auth_service::passwd::verify(hash.trim(), b"from stdin"));
}
