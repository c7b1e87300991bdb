//! The NanoMQ configuration files users bring (`shared/fixtures/nanomq` next to the workspace),
//! laid out in a temporary working directory as the seed article has them: the `.conf` file,
//! `etc/nanomq_pwd.conf`, `etc/nanomq_acl.conf` and `etc/certs/{key,cert,cacert}.pem` (issued by
//! a test CA). Only addresses change: listeners move to free ports, the auth/webhook server and
//! the log directory to where the test says.

use std::path::{Path, PathBuf};

use crate::pki::Pki;

/// The fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/nanomq")
}

/// A working directory holding one fixture configuration and its files.
#[allow(missing_debug_implementations)] // holds the test CA
pub struct Layout {
    /// The directory (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The configuration file in it.
    pub conf: PathBuf,
    /// The CA that issued `etc/certs/cert.pem`.
    pub pki: Pki,
}

impl Layout {
    /// Lays out fixture `name` (e.g. `nanomq-file-auth.conf`) with listeners on 127.0.0.1 port
    /// 0, the log in the directory, and `http_server` (the seed's `127.0.0.1:3000` auth/webhook
    /// server) replaced when given.
    ///
    /// # Panics
    /// When the fixtures cannot be read or the directory written.
    pub fn new(name: &str, http_server: Option<&str>) -> Self {
        let pki = Pki::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(etc.join("certs")).expect("mkdir");
        for file in ["nanomq_pwd.conf", "nanomq_acl.conf"] {
            std::fs::copy(fixtures().join(file), etc.join(file)).expect("copy fixture");
        }
        let server = pki.server("server", "localhost");
        std::fs::copy(&server.cert, etc.join("certs/cert.pem")).expect("cert");
        std::fs::copy(&server.key, etc.join("certs/key.pem")).expect("key");
        std::fs::copy(pki.ca_file(), etc.join("certs/cacert.pem")).expect("ca");
        let original = std::fs::read_to_string(fixtures().join(name)).expect("fixture");
        let mut text = original
            .replace("0.0.0.0:1883", "127.0.0.1:0")
            .replace("0.0.0.0:8883", "127.0.0.1:0")
            .replace("0.0.0.0:8083/mqtt", "127.0.0.1:0/mqtt")
            .replace("dir = \"/tmp\"", &format!("dir = \"{}\"", dir.path().display()));
        if let Some(addr) = http_server {
            text = text.replace("127.0.0.1:3000", addr);
        }
        assert_ne!(text, original, "the fixture's addresses were rewritten");
        let conf = dir.path().join(name);
        std::fs::write(&conf, text).expect("write conf");
        Self { dir, conf, pki }
    }

    /// Appends `text` to the configuration (later keys override and merge, as in HOCON).
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn append(&self, text: &str) {
        let mut conf = std::fs::read_to_string(&self.conf).expect("read conf");
        conf.push('\n');
        conf.push_str(text);
        std::fs::write(&self.conf, conf).expect("write conf");
    }

    /// The CA certificate the listeners' certificate chains to, as `etc/certs/cacert.pem`.
    pub fn cafile(&self) -> String {
        self.dir.path().join("etc/certs/cacert.pem").to_str().expect("utf-8").to_owned()
    }
}
