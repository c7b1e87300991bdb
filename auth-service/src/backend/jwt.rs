//! JWT in the CONNECT password (as EMQX and RMQTT users expect): HMAC (HS256/384/512) with a
//! shared secret, or RSA (RS*/PS*) and ECDSA (ES256/ES384) with a PEM public key.
//!
//! - A password that is not a JWT is not this backend's (`Ignore`), so it can sit in a chain with
//!   a password file.
//! - A JWT with a bad signature, an unexpected algorithm, `exp` in the past (after `leeway`),
//!   `nbf` in the future, or a wrong `iss` / `aud` / username / client id claim is refused (0x86).
//! - A `superuser` claim (`is_superuser: true` by default) makes a superuser.
//! - An ACL claim (`acl` by default) is the client's complete ACL: topics not granted by it are
//!   denied. Two shapes are read: EMQX 4's `{"pub": [...], "sub": [...], "all": [...]}` (all
//!   allow) and EMQX 5's list of `{"permission": "allow"|"deny", "action":
//!   "publish"|"subscribe"|"all", "topic": "t" | "topics": [...]}`. Topics may use `@`,
//!   `${username}` and `${clientid}` as in the ACL file. A malformed ACL claim denies everything.
//! - The algorithm is fixed by the key's family: a token whose header names another family (the
//!   "HS256 with the RSA public key as secret" trick) is refused.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};
use tern_acl::{Action, ClientRule, Permission, Rule, RuleAction, Who};
use tern_config::Secret;

use super::acl_file::identity;
use super::{Authn, Authz, Backend, BackendError, BoxFuture, Client};

const NAME: &str = "jwt";

/// MQTT 5 CONNACK "Bad User Name or Password".
const BAD_CREDENTIALS: u8 = 0x86;

/// The key tokens are verified with.
#[derive(Clone)]
pub enum JwtKey {
    /// HMAC shared secret, as raw bytes of the string.
    Hmac(Secret),
    /// HMAC shared secret written in base64 (EMQX's `secret_base64_encoded = true`).
    HmacBase64(Secret),
    /// A PEM public key: RSA (`PUBLIC KEY` / `RSA PUBLIC KEY`) or EC (`PUBLIC KEY`).
    PublicKeyPem(String),
}

impl JwtKey {
    /// Reads a PEM public key file.
    pub fn public_key_file(path: &Path) -> Result<Self, BackendError> {
        std::fs::read_to_string(path).map(JwtKey::PublicKeyPem).map_err(|e| BackendError::Invalid {
            backend: NAME,
            reason: format!("cannot read public key {}: {e}", path.display()),
        })
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKey::Hmac(_) => f.write_str("Hmac(<redacted>)"),
            JwtKey::HmacBase64(_) => f.write_str("HmacBase64(<redacted>)"),
            JwtKey::PublicKeyPem(pem) => write!(f, "PublicKeyPem({} bytes)", pem.len()),
        }
    }
}

/// The JWT backend's settings.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The verification key.
    pub key: JwtKey,
    /// Required `iss` value, if any.
    pub issuer: Option<String>,
    /// Required `aud` value (one of the token's audiences), if any.
    pub audience: Option<String>,
    /// Refuse tokens without `exp`. Default false (EMQX accepts them; `exp` is always honoured
    /// when present).
    pub require_exp: bool,
    /// Clock skew tolerated on `exp` and `nbf`. Default 0s.
    pub leeway: Duration,
    /// Claim that must equal the CONNECT username, if any (e.g. `username` or `sub`).
    pub username_claim: Option<String>,
    /// Claim that must equal the client id, if any (e.g. `clientid`).
    pub clientid_claim: Option<String>,
    /// Boolean claim making the client a superuser. Default `is_superuser`; `None` = never.
    pub superuser_claim: Option<String>,
    /// Claim holding the client's ACL. Default `acl`; `None` = tokens carry no ACL.
    pub acl_claim: Option<String>,
}

impl JwtSettings {
    /// Settings with `key` and the defaults above.
    pub fn new(key: JwtKey) -> Self {
        Self {
            key,
            issuer: None,
            audience: None,
            require_exp: false,
            leeway: Duration::ZERO,
            username_claim: None,
            clientid_claim: None,
            superuser_claim: Some("is_superuser".into()),
            acl_claim: Some("acl".into()),
        }
    }
}

/// JWT authentication (and ACL claims).
pub struct JwtBackend {
    settings: JwtSettings,
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBackend")
            .field("settings", &self.settings)
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

/// Why a token was refused (for logs; no token content).
#[derive(Debug)]
enum Refused {
    /// The password is not a JWT at all.
    NotJwt,
    /// A JWT, but invalid.
    Invalid(String),
}

impl JwtBackend {
    /// Parses the key. Fails on a malformed PEM or base64 secret, or an empty secret.
    pub fn new(settings: JwtSettings) -> Result<Self, BackendError> {
        let invalid = |reason: String| BackendError::Invalid { backend: NAME, reason };
        let key = match &settings.key {
            JwtKey::Hmac(secret) if secret.is_empty() => {
                return Err(invalid("the HMAC secret is empty".into()));
            }
            JwtKey::Hmac(secret) => DecodingKey::from_secret(secret.expose().as_bytes()),
            JwtKey::HmacBase64(secret) => DecodingKey::from_base64_secret(secret.expose())
                .map_err(|e| invalid(format!("the base64 HMAC secret does not decode: {e}")))?,
            JwtKey::PublicKeyPem(pem) => DecodingKey::from_rsa_pem(pem.as_bytes())
                .or_else(|_| DecodingKey::from_ec_pem(pem.as_bytes()))
                .map_err(|e| invalid(format!("not an RSA or EC public key in PEM: {e}")))?,
        };
        // The key's family fixes the accepted algorithms. ES384 with a P-256 key (or the
        // reverse) fails at verification, which is what we want.
        let mut validation = Validation::new_for_family(key.family());
        validation.required_spec_claims.clear();
        if settings.require_exp {
            validation.required_spec_claims.insert("exp".into());
        }
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        match &settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &settings.issuer {
            validation.set_issuer(&[iss]);
        }
        Ok(Self { settings, key, validation })
    }

    /// The verified claims of `client`'s password.
    fn claims(&self, client: &Client) -> Result<Map<String, Value>, Refused> {
        let token = client
            .password
            .as_deref()
            .and_then(|p| std::str::from_utf8(p).ok())
            .filter(|t| looks_like_jwt(t))
            .ok_or(Refused::NotJwt)?;
        if jsonwebtoken::decode_header(token).is_err() {
            return Err(Refused::NotJwt);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| Refused::Invalid(format!("invalid token: {e}")))?;
        let claims = data.claims;
        let must_equal = |claim: &Option<String>, actual: Option<&str>, what: &str| match claim {
            Some(name)
                if claims.get(name).and_then(Value::as_str) != actual || actual.is_none() =>
            {
                Err(Refused::Invalid(format!("the {name:?} claim does not match the {what}")))
            }
            _ => Ok(()),
        };
        must_equal(&self.settings.username_claim, client.username.as_deref(), "username")?;
        must_equal(&self.settings.clientid_claim, Some(&client.client_id), "client id")?;
        Ok(claims)
    }

    /// The ACL of verified `claims`: `None` when the token carries none. Ends with a deny of
    /// everything (the claim is the complete ACL).
    fn rules(&self, claims: &Map<String, Value>) -> Option<Vec<Rule>> {
        let value = claims.get(self.settings.acl_claim.as_deref()?)?;
        let mut rules = parse_acl_claim(value).unwrap_or_else(|e| {
            tracing::warn!(reason = %e, "malformed ACL claim in a JWT; denying everything");
            Vec::new()
        });
        rules.push(deny_all());
        Some(rules)
    }
}

fn deny_all() -> Rule {
    Rule { permit: Permission::Deny, action: RuleAction::PubSub, topics: vec![], who: Who::Any }
}

/// Three dot-separated base64url segments, the first two non-empty.
fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    !h.is_empty() && !p.is_empty() && b64(h) && b64(p) && b64(s)
}

/// Reads an ACL claim (EMQX 4 object or EMQX 5 list).
fn parse_acl_claim(value: &Value) -> Result<Vec<Rule>, String> {
    let rule = |permit, action, topics: Vec<String>| -> Result<Rule, String> {
        if topics.is_empty() {
            return Err("an ACL entry has no topic".into());
        }
        let rule = Rule { permit, action, topics, who: Who::Any };
        // The same checks as the ACL file (malformed filters, $share prefixes).
        let conf = tern_config::AclRule {
            permit: tern_config::Permit::Allow,
            action: tern_config::AclAction::PubSub,
            topics: rule.topics.clone(),
            who: vec![],
        };
        Rule::from_config(&conf).map_err(|e| e.to_string())?;
        Ok(rule)
    };
    let strings = |v: &Value| -> Result<Vec<String>, String> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "a topic is not a string".to_owned())
                })
                .collect(),
            _ => Err("topics must be a string or a list of strings".into()),
        }
    };
    let action = |s: &str| match s {
        "pub" | "publish" => Ok(RuleAction::Publish),
        "sub" | "subscribe" => Ok(RuleAction::Subscribe),
        "all" | "pubsub" => Ok(RuleAction::PubSub),
        other => Err(format!("unknown ACL action {other:?}")),
    };
    match value {
        Value::Object(map) => {
            let mut rules = Vec::new();
            for (key, topics) in map {
                rules.push(rule(Permission::Allow, action(key)?, strings(topics)?)?);
            }
            Ok(rules)
        }
        Value::Array(entries) => entries
            .iter()
            .map(|entry| {
                let entry = entry.as_object().ok_or("an ACL entry is not an object")?;
                let permit = match entry.get("permission").and_then(Value::as_str) {
                    Some("allow") => Permission::Allow,
                    Some("deny") => Permission::Deny,
                    _ => return Err("an ACL entry needs permission allow or deny".to_owned()),
                };
                let act = match entry.get("action").and_then(Value::as_str) {
                    Some(a) => action(a)?,
                    None => RuleAction::PubSub,
                };
                let topics = match (entry.get("topic"), entry.get("topics")) {
                    (Some(t), None) | (None, Some(t)) => strings(t)?,
                    _ => return Err("an ACL entry needs exactly one of topic or topics".to_owned()),
                };
                rule(permit, act, topics)
            })
            .collect(),
        _ => Err("the ACL claim must be an object or a list".into()),
    }
}

impl Backend for JwtBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn authenticate<'a>(
        &'a self,
        client: &'a Client,
    ) -> BoxFuture<'a, Result<Authn, BackendError>> {
        let answer = match self.claims(client) {
            Err(Refused::NotJwt) => Authn::Ignore,
            Err(Refused::Invalid(reason)) => Authn::Deny { reason_code: BAD_CREDENTIALS, reason },
            Ok(claims) => {
                let superuser = self
                    .settings
                    .superuser_claim
                    .as_deref()
                    .and_then(|name| claims.get(name))
                    .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
                Authn::Allow { superuser }
            }
        };
        Box::pin(std::future::ready(Ok(answer)))
    }

    fn authorize<'a>(
        &'a self,
        client: &'a Client,
        action: Action,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Authz, BackendError>> {
        let answer = match self.claims(client) {
            Err(Refused::NotJwt) => Authz::Ignore,
            // Expired (or otherwise invalid) since CONNECT: its grants are gone.
            Err(Refused::Invalid(_)) => Authz::Deny,
            Ok(claims) => match self.rules(&claims) {
                None => Authz::Ignore,
                Some(rules) => match tern_acl::evaluate(&rules, &identity(client), action, topic) {
                    Some(Permission::Allow) => Authz::Allow,
                    Some(Permission::Deny) | None => Authz::Deny,
                },
            },
        };
        Box::pin(std::future::ready(Ok(answer)))
    }

    fn acl_for(&self, client: &Client) -> Option<Vec<ClientRule>> {
        let rules = match self.claims(client) {
            Err(Refused::NotJwt) => return Some(Vec::new()),
            Err(Refused::Invalid(_)) => vec![deny_all()],
            // A valid token without an ACL claim: nothing to say about this client.
            Ok(claims) => self.rules(&claims).unwrap_or_default(),
        };
        Some(tern_acl::for_client(&rules, &identity(client)))
    }

    fn authorizes(&self) -> bool {
        self.settings.acl_claim.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJi.sig-_"));
        assert!(looks_like_jwt("eyJh.eyJi."));
        assert!(!looks_like_jwt("public"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a b.c.d"));
    }

    #[test]
    fn acl_claims() {
        let old = serde_json::json!({"pub": ["a/${clientid}"], "sub": "b/#", "all": ["c"]});
        let rules = parse_acl_claim(&old).unwrap();
        assert_eq!(rules.len(), 3);
        assert!(rules.iter().all(|r| r.permit == Permission::Allow));
        let new = serde_json::json!([
            {"permission": "deny", "action": "subscribe", "topic": "x/#"},
            {"permission": "allow", "topics": ["x/+", "@y"]}
        ]);
        let rules = parse_acl_claim(&new).unwrap();
        assert_eq!(rules[0].permit, Permission::Deny);
        assert_eq!(rules[1].action, RuleAction::PubSub);
        for bad in [
            serde_json::json!({"pub": [1]}),
            serde_json::json!({"write": ["a"]}),
            serde_json::json!([{"action": "publish", "topic": "a"}]),
            serde_json::json!([{"permission": "allow", "topic": "a/#/b"}]),
            serde_json::json!([{"permission": "allow"}]),
            serde_json::json!("a/#"),
        ] {
            assert!(parse_acl_claim(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let backend =
            JwtBackend::new(JwtSettings::new(JwtKey::Hmac(Secret::new("topsecret")))).unwrap();
        let debug = format!("{backend:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(JwtBackend::new(JwtSettings::new(JwtKey::Hmac(Secret::new("")))).is_err());
        assert!(JwtBackend::new(JwtSettings::new(JwtKey::PublicKeyPem("nope".into()))).is_err());
    }
}
