//! Certificates for TLS tests: a CA, server certificates for 127.0.0.1/localhost, client
//! certificates with a chosen Common Name, written as PEM files in a temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A test certificate authority and the directory its files are written to.
#[allow(missing_debug_implementations)] // holds a private key
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    /// A new CA, written as `ca.pem` in a new temporary directory.
    ///
    /// # Panics
    /// When the certificate cannot be generated or written.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Tern Test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key"))
            .expect("CA certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");
        Self { dir, ca }
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate.
    pub fn ca_der(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A server certificate for 127.0.0.1 and localhost with `cn`, written as `<name>.pem` and
    /// `<name>.key`.
    pub fn server(&self, name: &str, cn: &str) -> Files {
        self.issue(name, cn, vec!["127.0.0.1".into(), "localhost".into()])
    }

    /// A client certificate with Common Name `cn`.
    pub fn client(&self, name: &str, cn: &str) -> Files {
        self.issue(name, cn, Vec::new())
    }

    fn issue(&self, name: &str, cn: &str, sans: Vec<String>) -> Files {
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.distinguished_name.push(DnType::OrganizationName, "Tern Tests");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("signed");
        let files = Files {
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        write_atomically(&files.cert, cert.pem().as_bytes());
        write_atomically(&files.key, key.serialize_pem().as_bytes());
        files
    }
}

/// Writes a file through a rename, as certificate renewal tools do.
pub fn write_atomically(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A rustls client configuration trusting the test CA, optionally presenting a certificate.
pub fn client_config(pki: &Pki, identity: Option<&Files>) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der()).expect("CA");
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(files) => {
            let certs = CertificateDer::pem_file_iter(&files.cert)
                .expect("cert file")
                .collect::<Result<Vec<_>, _>>()
                .expect("certs");
            let key = PrivateKeyDer::from_pem_file(&files.key).expect("key");
            builder.with_client_auth_cert(certs, key).expect("client auth")
        }
    };
    std::sync::Arc::new(config)
}
