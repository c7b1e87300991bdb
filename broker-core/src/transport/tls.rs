//! TLS for the `ssl` and `wss` listeners (rustls, aws-lc-rs): certificate chain, private key
//! (PKCS#8, PKCS#1 or SEC1 PEM; an encrypted PKCS#8 key with `key_password`), optional client
//! certificate verification against `cacertfile` (`verify_peer`, `fail_if_no_peer_cert`), TLS 1.2
//! and 1.3.
//!
//! Certificates are re-read when their files change: the first connection after a change (checked
//! at most once a second) gets the new configuration, without a restart. A change that does not
//! load (a half-written file) keeps the previous configuration and is logged.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use parking_lot::Mutex;
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio_rustls::TlsAcceptor;

/// How often at most the certificate files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Why a TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the combination (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.to_path_buf(), reason: reason.to_string() }
}

/// The files and options of one TLS listener.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Certificate chain (PEM), leaf first.
    pub certfile: PathBuf,
    /// Private key (PEM).
    pub keyfile: PathBuf,
    /// CA certificates for client certificates (PEM).
    pub cacertfile: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key. Never logged.
    pub key_password: Option<tern_config::Secret>,
    /// Ask clients for a certificate and verify it against `cacertfile`.
    pub verify_peer: bool,
    /// With `verify_peer`: refuse clients without a certificate.
    pub fail_if_no_peer_cert: bool,
}

impl From<&tern_config::TlsConfig> for TlsSettings {
    fn from(c: &tern_config::TlsConfig) -> Self {
        Self {
            certfile: c.certfile.clone(),
            keyfile: c.keyfile.clone(),
            cacertfile: c.cacertfile.clone(),
            key_password: c.key_password.clone(),
            verify_peer: c.verify_peer,
            fail_if_no_peer_cert: c.fail_if_no_peer_cert,
        }
    }
}

struct Loaded {
    acceptor: TlsAcceptor,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded").field("stamps", &self.stamps).finish_non_exhaustive()
    }
}

/// A TLS acceptor that follows its certificate files.
#[derive(Debug)]
pub struct TlsSource {
    settings: TlsSettings,
    /// The configuration in use; replaced when the files change.
    current: Mutex<Loaded>,
}

impl TlsSource {
    /// Loads the configuration now (so a bad file stops the service at start).
    pub fn load(settings: TlsSettings) -> Result<Self, TlsError> {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&settings)?));
        let stamps = stamps(&settings);
        Ok(Self {
            settings,
            current: Mutex::new(Loaded { acceptor, stamps, checked: Instant::now() }),
        })
    }

    /// The acceptor for a new connection, reloading the files first if they changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut current = self.current.lock();
        if current.checked.elapsed() >= RELOAD_CHECK {
            current.checked = Instant::now();
            let now = stamps(&self.settings);
            if now != current.stamps {
                match server_config(&self.settings) {
                    Ok(config) => {
                        current.acceptor = TlsAcceptor::from(Arc::new(config));
                        tracing::info!(certfile = %self.settings.certfile.display(), "TLS certificate reloaded");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "TLS files changed but do not load; keeping the previous certificate");
                    }
                }
                current.stamps = now;
            }
        }
        current.acceptor.clone()
    }
}

fn stamps(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    [Some(&s.certfile), Some(&s.keyfile), s.cacertfile.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

fn read_key(
    path: &Path,
    password: Option<&tern_config::Secret>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_error(path, e))?;
    if pem.windows(29).any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--") {
        let Some(password) = password else {
            return Err(file_error(path, "the key is encrypted and no key_password is set"));
        };
        let text = std::str::from_utf8(&pem).map_err(|e| file_error(path, e))?;
        let (_, doc) = pkcs8::SecretDocument::from_pem(text).map_err(|e| file_error(path, e))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| file_error(path, e))?;
        let decrypted = encrypted
            .decrypt(password.expose().as_bytes())
            .map_err(|_| file_error(path, "cannot decrypt the key: wrong key_password?"))?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(decrypted.as_bytes().to_vec())));
    }
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| file_error(path, format!("no usable private key: {e}")))
}

/// Builds the rustls server configuration of `settings`.
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = read_certs(&settings.certfile)?;
    let key = read_key(&settings.keyfile, settings.key_password.as_ref())?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if settings.verify_peer {
        let Some(ca) = &settings.cacertfile else {
            return Err(TlsError::Config("verify_peer needs a cacertfile".into()));
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca)? {
            roots.add(cert).map_err(|e| file_error(ca, e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier =
            if settings.fail_if_no_peer_cert { verifier } else { verifier.allow_unauthenticated() };
        builder.with_client_cert_verifier(
            verifier.build().map_err(|e| TlsError::Config(e.to_string()))?,
        )
    } else {
        builder.with_no_client_auth()
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(format!("certificate and key do not go together: {e}")))
}

/// The Common Name and the subject (RFC 4514 style) of a client certificate.
pub fn peer_identity(cert: &CertificateDer<'_>) -> (Option<String>, Option<String>) {
    match x509_parser::parse_x509_certificate(cert.as_ref()) {
        Ok((_, parsed)) => {
            let subject = parsed.subject();
            let cn = subject
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned);
            (cn, Some(subject.to_string()))
        }
        Err(_) => (None, None),
    }
}
