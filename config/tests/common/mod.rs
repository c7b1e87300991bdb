//! Shared test helpers: a working directory laid out like a NanoMQ installation.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The shared NanoMQ fixtures (`/work/shared/fixtures/nanomq` next to the workspace).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nanomq")
}

/// A temporary working directory with `etc/nanomq_pwd.conf`, `etc/nanomq_acl.conf` (copies of
/// the fixtures) and placeholder `etc/certs/{key,cert,cacert}.pem`, as the fixtures' relative
/// paths expect.
pub fn workdir() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("etc/certs")).expect("mkdir");
    for file in ["nanomq_pwd.conf", "nanomq_acl.conf"] {
        std::fs::copy(fixtures().join(file), dir.path().join("etc").join(file)).expect("copy");
    }
    for file in ["key.pem", "cert.pem", "cacert.pem"] {
        std::fs::write(dir.path().join("etc/certs").join(file), "placeholder\n").expect("write");
    }
    dir
}

/// Write `files` (relative path, content) under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write");
    }
}
