//! Helpers for tests that run the real `tern` binary: `tern pub` / `tern sub` processes, and a
//! subscriber that is known to be subscribed before anything is published.

#![allow(dead_code)] // each test binary uses a different part

use std::{path::Path, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
};

/// How long a tern process may take to do its job before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The `tern` binary under test.
pub fn tern() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command.kill_on_drop(true).stdin(Stdio::null());
    command
}

/// What a finished process said.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tern <args>` to completion.
pub async fn run(args: &[&str]) -> Output {
    let output = tokio::time::timeout(WAIT, tern().args(args).output())
        .await
        .unwrap_or_else(|_| panic!("tern {args:?} finished in time"))
        .expect("tern runs");
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A `tern sub` process that has its SUBACK (it runs with `-d` to say so).
pub struct Subscriber {
    child: Child,
    stderr: String,
}

impl Subscriber {
    /// Starts `tern sub -d <args>` and waits until it is subscribed.
    pub async fn start(args: &[&str]) -> Self {
        let mut child = tern()
            .arg("sub")
            .arg("-d")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tern sub starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut stderr = String::new();
        let subscribed = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                stderr.push_str(&line);
                stderr.push('\n');
                if line.contains("received SUBACK") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(subscribed, Ok(true), "tern sub {args:?} subscribed; stderr:\n{stderr}");
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, stderr }
    }

    /// Waits for the subscriber to exit (it runs with -C) and returns its output.
    pub async fn finish(mut self) -> Output {
        let mut stdout = String::new();
        let mut pipe = self.child.stdout.take().expect("stdout");
        let status = tokio::time::timeout(WAIT, async {
            pipe.read_to_string(&mut stdout).await.expect("read stdout");
            self.child.wait().await.expect("wait")
        })
        .await
        .unwrap_or_else(|_| panic!("tern sub exited in time; stdout so far: {stdout:?}"));
        Output { code: status.code(), stdout, stderr: self.stderr }
    }
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_str().expect("utf-8 path").to_owned()
}
