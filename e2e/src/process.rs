//! A service binary running as a child process. Its standard output and error are captured line
//! by line (services log to stderr), so a test can wait for a log line such as
//! `listening listener=tcp:default addr=127.0.0.1:41235` and show the whole log when it fails.

use std::{
    net::SocketAddr,
    path::Path,
    process::{ExitStatus, Stdio},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
};

/// How long a service may take to start or stop.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running service.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `program args…` in `cwd` with `env` added, logging at info level.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        cwd: &Path,
        env: &[(&str, String)],
    ) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(cwd)
            .env("TERN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {}: {e}", program.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(capture(out, Arc::clone(&log)));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(capture(err, Arc::clone(&log)));
        }
        Self { name: name.to_owned(), child, log }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().join("\n")
    }

    /// Waits for a log line containing every one of `parts`; returns it.
    ///
    /// # Panics
    /// When no such line appears within [`WAIT`] or the process exits first.
    pub async fn line(&mut self, parts: &[&str]) -> String {
        let log = Arc::clone(&self.log);
        let found = test_support::eventually(WAIT, || {
            let hit = log.lock().iter().find(|l| parts.iter().all(|p| l.contains(p))).cloned();
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            async move {
                match (hit, exited) {
                    (Some(line), _) => Some(Ok(line)),
                    (None, true) => Some(Err(())),
                    (None, false) => None,
                }
            }
        })
        .await;
        match found {
            Some(Ok(line)) => line,
            Some(Err(())) => {
                panic!("{} exited before logging {parts:?}:\n{}", self.name, self.log())
            }
            None => panic!("{} did not log {parts:?} in time:\n{}", self.name, self.log()),
        }
    }

    /// The address in the `addr=` field of the first log line containing all of `parts`.
    pub async fn addr(&mut self, parts: &[&str]) -> SocketAddr {
        let line = self.line(parts).await;
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("addr="))
            .and_then(|a| a.trim_matches('"').parse().ok())
            .unwrap_or_else(|| panic!("{}: no addr= in {line:?}", self.name))
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    ///
    /// # Panics
    /// When it cannot be killed.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap_or_else(|e| panic!("{}: kill: {e}", self.name));
    }

    /// Sends SIGTERM and waits for the exit.
    ///
    /// # Panics
    /// When it does not exit within [`WAIT`].
    pub async fn terminate(mut self) -> ExitStatus {
        if let Some(pid) = self.child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(Ok(status)) => status,
            _ => panic!("{} did not stop after SIGTERM:\n{}", self.name, self.log()),
        }
    }
}

async fn capture(stream: impl AsyncRead + Unpin, log: Arc<Mutex<Vec<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.lock().push(line);
    }
}
