//! Running Tern's command-line clients (`tern pub`, `tern sub`) as real processes in tests, a
//! subscriber that is known to be subscribed before anything is published, and a service binary's
//! `--check-config`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
};

/// How long a process may take to do its job before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A command-line program under test (the `tern` binary).
#[derive(Debug, Clone)]
pub struct Cli {
    program: PathBuf,
}

/// What a finished process said.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Writes `text` to `dir/name` and runs `program --conf <that file> --check-config` (a service
/// binary, e.g. `env!("CARGO_BIN_EXE_webhook-relay")`); returns what it said.
///
/// # Panics
/// When the file cannot be written or the program cannot be run (the test cannot go on then).
pub fn check_config(program: &str, dir: &Path, name: &str, text: &str) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write the configuration file");
    let out = std::process::Command::new(program)
        .arg("--conf")
        .arg(&file)
        .arg("--check-config")
        .output()
        .expect("run the program");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Cli {
    /// The program at `program` (e.g. `env!("CARGO_BIN_EXE_tern")`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into() }
    }

    /// The program's path.
    pub fn path(&self) -> &Path {
        &self.program
    }

    /// A command for the program: killed when dropped, no standard input.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.kill_on_drop(true).stdin(Stdio::null());
        command
    }

    /// Runs the program with `args` to completion.
    ///
    /// # Panics
    /// When it cannot run or takes longer than [`WAIT`].
    pub async fn run(&self, args: &[&str]) -> Output {
        let output = tokio::time::timeout(WAIT, self.command().args(args).output())
            .await
            .unwrap_or_else(|_| panic!("{} {args:?} finished in time", self.program.display()))
            .expect("the program runs");
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts `<program> sub -d <args>` and waits until it is subscribed.
    ///
    /// # Panics
    /// When it does not get its SUBACK in time.
    pub async fn subscriber(&self, args: &[&str]) -> Subscriber {
        let mut child = self
            .command()
            .arg("sub")
            .arg("-d")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sub starts");
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
        assert_eq!(subscribed, Ok(true), "sub {args:?} subscribed; stderr:\n{stderr}");
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Subscriber { child, stderr }
    }
}

/// A `sub` process that has its SUBACK (it runs with `-d` to say so).
#[derive(Debug)]
pub struct Subscriber {
    child: Child,
    stderr: String,
}

impl Subscriber {
    /// The process id (to send it signals).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the subscriber to exit (it runs with `-C`) and returns its output.
    ///
    /// # Panics
    /// When it does not exit within [`WAIT`].
    pub async fn finish(mut self) -> Output {
        let mut stdout = String::new();
        let mut pipe = self.child.stdout.take().expect("stdout");
        let status = tokio::time::timeout(WAIT, async {
            pipe.read_to_string(&mut stdout).await.expect("read stdout");
            self.child.wait().await.expect("wait")
        })
        .await
        .unwrap_or_else(|_| panic!("sub exited in time; stdout so far: {stdout:?}"));
        Output { code: status.code(), stdout, stderr: self.stderr }
    }
}

/// Writes `text` to `dir/name` and returns the path as a string.
///
/// # Panics
/// When the file cannot be written or the path is not UTF-8.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_str().expect("utf-8 path").to_owned()
}
