//! The workspace's binaries, built once per test process with the same cargo, target directory
//! and profile as the tests (`CARGO_BIN_EXE_*` only exists for a package's own binaries, and
//! these belong to broker-core, auth-service, tern…).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The path of binary `name` (e.g. `broker-core`), built if needed.
///
/// # Panics
/// When the workspace's binaries cannot be built, or `name` is not one of them.
pub fn path(name: &str) -> PathBuf {
    let dir = match BUILT.get_or_init(build) {
        Ok(dir) => dir,
        Err(message) => panic!("building the workspace's binaries failed: {message}"),
    };
    let path = dir.join(name);
    assert!(path.is_file(), "{name} is not a binary of the workspace (no {})", path.display());
    path
}

/// `cargo build --workspace --bins` into the directory the running test binary was built in.
fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // <target>/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary path {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("unexpected profile directory {}", profile_dir.display()))?;
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--workspace", "--bins", "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cargo.arg("--release");
    }
    let output = cargo.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(profile_dir.to_path_buf())
}

/// The names of the workspace's binary targets, from `cargo metadata`.
///
/// # Panics
/// When cargo metadata cannot be read.
pub fn workspace_binaries() -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let mut names = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_bin = target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"));
            if is_bin && let Some(name) = target["name"].as_str() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    names
}
