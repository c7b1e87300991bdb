//! Who may call the API, as NanoMQ's `http_server.auth_type` says: HTTP Basic against
//! `username`/`password`, an RS256 JWT whose `iss` is the public key file's name, or nobody
//! checked at all. A missing header is 401 with code 104; wrong credentials or an invalid token
//! 401 with code 103; an expired token 401 with code 116.

use std::path::Path;

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::Response,
};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use tern_config::Secret;

use crate::error::{ApiError, Code};

/// NanoMQ validates `exp` with this much tolerance, in seconds.
const JWT_LEEWAY_SECS: u64 = 200;

/// How callers authenticate.
#[derive(Clone)]
pub enum AuthMode {
    /// Anyone may call.
    NoAuth,
    /// HTTP Basic.
    Basic {
        /// Expected username.
        username: String,
        /// Expected password.
        password: Secret,
    },
    /// RS256 JWT.
    Jwt {
        /// The public key.
        key: DecodingKey,
        /// The validation (RS256, `iss` = key file name, `exp` with leeway).
        validation: Box<Validation>,
    },
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoAuth => f.write_str("NoAuth"),
            Self::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).finish_non_exhaustive()
            }
            Self::Jwt { validation, .. } => {
                f.debug_struct("Jwt").field("iss", &validation.iss).finish_non_exhaustive()
            }
        }
    }
}

/// Why the JWT key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("http_server.jwt.public.keyfile: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not an RSA public key.
    #[error("http_server.jwt.public.keyfile: {path} is not an RSA public key (PEM): {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl AuthMode {
    /// The mode `http_server {}` configures.
    pub fn from_config(http: &tern_config::HttpServerConfig) -> Result<Self, KeyError> {
        Ok(match http.auth_type {
            tern_config::HttpAuthType::NoAuth => Self::NoAuth,
            tern_config::HttpAuthType::Basic => {
                Self::Basic { username: http.username.clone(), password: http.password.clone() }
            }
            tern_config::HttpAuthType::Jwt => match &http.jwt_public_keyfile {
                Some(path) => Self::jwt_from_file(path)?,
                None => {
                    return Err(KeyError::Invalid {
                        path: String::new(),
                        reason: "no key file configured".into(),
                    });
                }
            },
        })
    }

    /// RS256 JWT checked with the public key in `path`; tokens must carry `iss` = the file's name.
    pub fn jwt_from_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let pem =
            std::fs::read(path).map_err(|source| KeyError::Read { path: shown.clone(), source })?;
        let key = DecodingKey::from_rsa_pem(&pem)
            .map_err(|e| KeyError::Invalid { path: shown.clone(), reason: e.to_string() })?;
        let issuer = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = JWT_LEEWAY_SECS;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["iss"]);
        validation.validate_exp = true;
        Ok(Self::Jwt { key, validation: Box::new(validation) })
    }

    /// Checks a request's `Authorization` header.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        let unauthorized =
            |code, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, message);
        match self {
            Self::NoAuth => Ok(()),
            Self::Basic { username, password } => {
                let Some(value) = authorization.and_then(|v| strip_scheme(v, "Basic")) else {
                    return Err(unauthorized(
                        Code::MissingCredentials,
                        "username and password required",
                    ));
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok());
                let Some((user, pass)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                    return Err(unauthorized(
                        Code::WrongCredentials,
                        "malformed Basic credentials",
                    ));
                };
                if user.is_empty() || pass.is_empty() {
                    return Err(unauthorized(
                        Code::MissingCredentials,
                        "username and password required",
                    ));
                }
                let user_ok = Secret::new(username.clone()).constant_time_eq(user.as_bytes());
                let pass_ok = password.constant_time_eq(pass.as_bytes());
                if user_ok && pass_ok {
                    Ok(())
                } else {
                    Err(unauthorized(Code::WrongCredentials, "wrong username or password"))
                }
            }
            Self::Jwt { key, validation } => {
                let Some(token) = authorization.and_then(|v| strip_scheme(v, "Bearer")) else {
                    return Err(unauthorized(Code::MissingCredentials, "bearer token required"));
                };
                match jsonwebtoken::decode::<serde_json::Value>(token.trim(), key, validation) {
                    Ok(_) => Ok(()),
                    Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                        Err(unauthorized(Code::TokenExpired, "token expired"))
                    }
                    Err(_) => Err(unauthorized(Code::WrongCredentials, "invalid token")),
                }
            }
        }
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The middleware: refuses requests that fail [`AuthMode::check`].
pub async fn require(
    State(mode): State<std::sync::Arc<AuthMode>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    mode.check(header)?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn basic_auth_codes_follow_nanomq() {
        let mode = AuthMode::Basic { username: "admin".into(), password: Secret::new("public") };
        assert!(mode.check(Some(&basic("admin", "public"))).is_ok());
        let code = |h: Option<&str>| mode.check(h).err().map(|e| e.code);
        assert_eq!(code(None), Some(Code::MissingCredentials));
        assert_eq!(code(Some(&basic("admin", ""))), Some(Code::MissingCredentials));
        assert_eq!(code(Some(&basic("admin", "wrong"))), Some(Code::WrongCredentials));
        assert_eq!(code(Some("Basic !!!")), Some(Code::WrongCredentials));
        assert_eq!(code(Some("Bearer x")), Some(Code::MissingCredentials));
        assert!(AuthMode::NoAuth.check(None).is_ok());
    }
}
