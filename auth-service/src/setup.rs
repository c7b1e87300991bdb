//! Building the service from a loaded configuration: the backends `auth {}` describes, in chain
//! order, the chain's policy, and the files to watch for hot reload.
//!
//! Chain order: the password file, then the ACL file, then HTTP auth — so a user in the password
//! file is decided locally and HTTP is asked about the others (NanoMQ asked HTTP as well, after
//! the file; the difference is listed in the README).

use std::sync::Arc;

use tern_acl::{Permission, Rule};

use crate::{
    backend::{
        Backend, BackendError, acl_file::AclFile, http::HttpBackend, http::HttpSettings,
        password_file::PasswordFile,
    },
    chain::{Chain, DenyAction, Policy},
    watch::Watched,
};

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An ACL rule could not be used.
    #[error("auth.acl: {0}")]
    Acl(String),
    /// A backend could not be created.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The chain and the files to watch.
#[derive(Debug)]
pub struct Built {
    /// The chain.
    pub chain: Arc<Chain>,
    /// Files whose changes are applied without a restart.
    pub watched: Vec<Watched>,
}

fn acl_rules(rules: &[tern_config::AclRule]) -> Result<Vec<Rule>, SetupError> {
    rules.iter().map(|r| Rule::from_config(r).map_err(|e| SetupError::Acl(e.to_string()))).collect()
}

/// The chain described by `config.auth`.
pub fn build(config: &tern_config::Config) -> Result<Built, SetupError> {
    let auth = &config.auth;
    let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
    let mut watched = Vec::new();
    if let Some(passwords) = &auth.password {
        let backend =
            Arc::new(PasswordFile::new(passwords.entries.clone(), passwords.file.clone()));
        if let Some(path) = &passwords.file {
            let target = Arc::clone(&backend);
            watched.push(Watched {
                path: path.clone(),
                reload: Box::new(move |path| {
                    let entries =
                        tern_config::parse_password_file(path).map_err(|e| e.to_string())?;
                    target.reload(entries);
                    Ok(())
                }),
            });
        }
        backends.push(backend);
    }
    if let Some(acl) = &auth.acl {
        let backend = Arc::new(AclFile::new(acl_rules(&acl.rules)?));
        if let Some(path) = &acl.file {
            let target = Arc::clone(&backend);
            watched.push(Watched {
                path: path.clone(),
                reload: Box::new(move |path| {
                    let parsed = tern_config::parse_acl_file(path).map_err(|e| e.to_string())?;
                    target.reload(acl_rules(&parsed).map_err(|e| e.to_string())?);
                    Ok(())
                }),
            });
        }
        backends.push(backend);
    }
    if let Some(http) = &auth.http_auth {
        backends.push(Arc::new(HttpBackend::new(HttpSettings::from_config(http))?));
    }
    let policy = Policy {
        allow_anonymous: auth.allow_anonymous,
        no_match: match auth.no_match {
            tern_config::Permit::Allow => Permission::Allow,
            tern_config::Permit::Deny => Permission::Deny,
        },
        deny_action: match auth.deny_action {
            tern_config::DenyAction::Ignore => DenyAction::Ignore,
            tern_config::DenyAction::Disconnect => DenyAction::Disconnect,
        },
        cache_ttl: auth.cache.ttl,
    };
    Ok(Built { chain: Arc::new(Chain::new(backends, policy)), watched })
}
