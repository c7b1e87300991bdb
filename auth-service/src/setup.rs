//! Building the service from a loaded configuration: the backends `auth {}` describes, in chain
//! order, the chain's policy, and the files to watch for hot reload. The same code builds the
//! chain at start and again when the config store changes `auth {}` (see [`crate::store`]).
//!
//! Chain order: JWT (a token in the password field), the password file, Redis, the ACL file, then
//! HTTP auth — so local answers come first and HTTP is asked about what nobody else knows
//! (NanoMQ asked HTTP as well, after the file; the difference is listed in the README).

use std::{sync::Arc, time::Duration};

use tern_acl::{Permission, Rule};

use crate::{
    backend::{
        Backend, BackendError,
        acl_file::AclFile,
        http::HttpBackend,
        jwt::{JwtBackend, JwtKey, JwtSettings},
        password_file::PasswordFile,
        redis::{Change, RedisBackend, RedisSettings, SaltPosition},
    },
    chain::{Chain, DenyAction, Policy},
    server::{Revocations, Scope},
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

/// The chain and what keeps it current.
#[derive(Debug)]
pub struct Built {
    /// The chain.
    pub chain: Arc<Chain>,
    /// Files whose changes are applied without a restart.
    pub watched: Vec<Watched>,
    /// The Redis backend, whose changes are followed through keyspace notifications.
    pub redis: Option<Arc<RedisBackend>>,
}

impl Built {
    /// Starts following changes — files checked every `file_interval`, Redis through its
    /// notifications — each reported to brokers through `revocations`; returns the chain to serve.
    /// The watchers run until the runtime shuts down.
    pub fn watch(self, revocations: &Revocations, file_interval: Duration) -> Arc<Chain> {
        let (chain, watchers) = self.start_watchers(revocations, file_interval);
        watchers.detach();
        chain
    }

    /// Like [`Built::watch`], with the watchers stopped when the returned [`Watchers`] is dropped
    /// (for a service that stops without its runtime, as in `tern start`).
    pub fn start_watchers(
        self,
        revocations: &Revocations,
        file_interval: Duration,
    ) -> (Arc<Chain>, Watchers) {
        let mut tasks = vec![tokio::spawn(crate::watch::watch_files(
            self.watched,
            file_interval,
            revocations.clone(),
        ))];
        if let Some(redis) = self.redis {
            let revocations = revocations.clone();
            tasks.push(tokio::spawn(async move {
                redis
                    .watch_changes(move |change, reason| {
                        tracing::debug!(?change, reason, "Redis rules changed");
                        revocations.revoke(
                            match change {
                                Change::All => Scope::All(true),
                                Change::Username(name) => Scope::Username(name),
                                Change::ClientId(id) => Scope::ClientId(id),
                            },
                            reason,
                        );
                    })
                    .await;
            }));
        }
        (self.chain, Watchers(tasks))
    }
}

/// The running watchers of a [`Built`] service; dropping it stops them.
#[derive(Debug, Default)]
pub struct Watchers(Vec<tokio::task::JoinHandle<()>>);

impl Watchers {
    /// Lets the watchers run until the runtime shuts down.
    pub fn detach(mut self) {
        self.0.clear();
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn acl_rules(rules: &[tern_config::AclRule]) -> Result<Vec<Rule>, SetupError> {
    rules.iter().map(|r| Rule::from_config(r).map_err(|e| SetupError::Acl(e.to_string()))).collect()
}

fn jwt_settings(jwt: &tern_config::JwtAuthConfig) -> Result<JwtSettings, SetupError> {
    let key = match (&jwt.secret, &jwt.public_key) {
        (Some(secret), _) if jwt.secret_base64_encoded => JwtKey::HmacBase64(secret.clone()),
        (Some(secret), _) => JwtKey::Hmac(secret.clone()),
        (None, Some(path)) => JwtKey::public_key_file(path)?,
        (None, None) => {
            return Err(SetupError::Backend(BackendError::Invalid {
                backend: "jwt",
                reason: "auth.jwt needs secret or public_key".into(),
            }));
        }
    };
    let mut settings = JwtSettings::new(key);
    settings.issuer = jwt.issuer.clone();
    settings.audience = jwt.audience.clone();
    settings.require_exp = jwt.require_exp;
    settings.leeway = jwt.leeway;
    settings.username_claim = jwt.username_claim.clone();
    settings.clientid_claim = jwt.clientid_claim.clone();
    settings.superuser_claim = Some(jwt.superuser_claim.clone());
    settings.acl_claim = Some(jwt.acl_claim.clone());
    Ok(settings)
}

/// The chain described by `config.auth`. Must run inside a tokio runtime (the Redis backend
/// connects lazily on it).
pub fn build(config: &tern_config::Config) -> Result<Built, SetupError> {
    let auth = &config.auth;
    let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
    let mut watched = Vec::new();
    if let Some(jwt) = &auth.jwt {
        backends.push(Arc::new(JwtBackend::new(jwt_settings(jwt)?)?));
    }
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
    let mut redis_backend = None;
    if let Some(redis) = &auth.redis {
        let backend = Arc::new(RedisBackend::new(RedisSettings {
            url: redis.url.expose().to_owned(),
            user_key: redis.user_key.clone(),
            acl_key: redis.acl_key.clone(),
            salt_position: match redis.salt_position {
                tern_config::SaltPosition::Prefix => SaltPosition::Prefix,
                tern_config::SaltPosition::Suffix => SaltPosition::Suffix,
            },
            timeout: redis.timeout,
        })?);
        redis_backend = Some(Arc::clone(&backend));
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
        backends.push(Arc::new(HttpBackend::new(http.clone())?));
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
    Ok(Built { chain: Arc::new(Chain::new(backends, policy)), watched, redis: redis_backend })
}
