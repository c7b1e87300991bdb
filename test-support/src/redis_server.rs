//! A private `redis-server` for one test: unix socket in a temporary directory, no RDB, no AOF,
//! killed and reaped on drop.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Why a [`RedisServer`] could not be started.
#[derive(Debug)]
pub enum RedisServerError {
    /// `redis-server` is not installed (scripts/test installs it).
    NotInstalled(std::io::Error),
    /// Creating the temporary directory or spawning failed.
    Io(std::io::Error),
    /// The server exited or did not answer PING within the deadline.
    NotReady(String),
}

impl std::fmt::Display for RedisServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotInstalled(e) => write!(
                f,
                "redis-server is not installed ({e}); run scripts/test, which installs it"
            ),
            Self::Io(e) => write!(f, "cannot start redis-server: {e}"),
            Self::NotReady(why) => write!(f, "redis-server did not become ready: {why}"),
        }
    }
}

impl std::error::Error for RedisServerError {}

/// A running private `redis-server`. Dropping it kills the server and removes its directory.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    /// Kept so the directory (socket, logs) lives as long as the server.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// How long to wait for the server to answer PING.
    const READY_TIMEOUT: Duration = Duration::from_secs(10);

    /// Starts a server and waits until it answers PING.
    ///
    /// # Panics
    /// When the server cannot be started; use [`RedisServer::try_start`] to handle that.
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts a server and waits until it answers PING.
    pub fn try_start() -> Result<Self, RedisServerError> {
        let dir = tempfile::Builder::new()
            .prefix("tern-redis-")
            .tempdir()
            .map_err(RedisServerError::Io)?;
        let socket = dir.path().join("redis.sock");
        let child = Self::spawn(dir.path(), &socket).map_err(|e| match e {
            RedisServerError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                RedisServerError::NotInstalled(e)
            }
            other => other,
        })?;
        let mut server = Self { child, socket, dir };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), RedisServerError> {
        let deadline = Instant::now() + Self::READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(RedisServerError::Io)? {
                let log =
                    std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
                return Err(RedisServerError::NotReady(format!("exited with {status}: {log}")));
            }
            if ping(&self.socket) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RedisServerError::NotReady(format!(
                    "no PONG on {} after {:?}",
                    self.socket.display(),
                    Self::READY_TIMEOUT
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A `redis` crate URL for this server, speaking RESP3 (needed for pub/sub on a
    /// connection manager).
    pub fn url(&self) -> String {
        format!("redis+unix://{}?protocol=resp3", self.socket.display())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server now (e.g. to test reconnects) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts a new one on the same socket (a Redis restart as clients see it:
    /// same address, empty data).
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
        let fresh = Self::spawn(self.dir.path(), &self.socket)?;
        self.child = fresh;
        self.wait_ready()
    }

    fn spawn(dir: &Path, socket: &Path) -> Result<Child, RedisServerError> {
        Command::new("redis-server")
            .args(["--port", "0", "--unixsocketperm", "700", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(socket)
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RedisServerError::Io)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `PING` over the unix socket and checks for `+PONG`.
fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
