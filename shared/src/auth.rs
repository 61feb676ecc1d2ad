//! Access tokens and the check every authenticated route goes through.
//!
//! Access tokens are HS256 JWTs (15 minutes by default) with `sub, role, jti, iat, exp, iss, aud`.
//! Verification accepts HS256 only, so `alg: none` and algorithm-confusion tokens fail. Tokens are
//! signed with `jsonwebtoken` and verified here, with the HMAC key prepared once: every request
//! verifies a token, and `jsonwebtoken` derives the key again for each one and parses the claims
//! twice (about a third of a refused drop attempt's instructions went there). A token
//! whose `jti` was logged out is refused: Redis holds the hot blacklist, MySQL the durable one, and
//! when Redis is down or restarted empty the check asks MySQL instead of letting the token through.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lambda_http::{Request, http::header};
use ring::hmac;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sqlx::MySqlPool;

use crate::{
    adapters::redis::{BlacklistAnswer, BlacklistCache, RedisStore},
    config::AuthConfig,
    domain::auth::{AccessClaims, Role},
    error::ApiError,
    http::header_str,
};

/// Clock skew tolerated between the issuer and a verifier.
const LEEWAY_SECS: i64 = 5;

/// Signs and verifies access tokens.
pub struct TokenCodec {
    encoding: EncodingKey,
    verifying: hmac::Key,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
}

impl std::fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCodec")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenCodec {
    pub fn new(config: &AuthConfig) -> Self {
        let secret = config.jwt_secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(secret),
            verifying: hmac::Key::new(hmac::HMAC_SHA256, secret),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl_secs: i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(i64::MAX),
        }
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    /// A new access token for the user, valid from `now`.
    pub fn issue(&self, user_id: i64, role: Role, now: DateTime<Utc>) -> Result<String, ApiError> {
        let claims = AccessClaims {
            sub: user_id.to_string(),
            role,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now.timestamp(),
            exp: now.timestamp() + self.access_ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims; tests use it to forge expired or foreign tokens.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Checks signature, algorithm, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        self.checked_claims(token).map_err(|reason| {
            tracing::debug!(reason, "access token refused");
            ApiError::Unauthenticated("invalid or expired access token")
        })
    }

    /// `header.claims.signature`, each base64url without padding: the header must name HS256,
    /// the signature must be ours over `header.claims`, and the claims (all of them required)
    /// must name our issuer and audience and not have expired more than the leeway ago.
    fn checked_claims(&self, token: &str) -> Result<AccessClaims, &'static str> {
        #[derive(Deserialize)]
        struct JoseHeader<'a> {
            alg: &'a str,
        }

        let (signed, signature) = token.rsplit_once('.').ok_or("not three parts")?;
        let (header, claims) = signed.split_once('.').ok_or("not three parts")?;
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| "header is not base64url")?;
        let header: JoseHeader<'_> =
            serde_json::from_slice(&header).map_err(|_| "header is not a JOSE header")?;
        if header.alg != "HS256" {
            return Err("not HS256");
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "signature is not base64url")?;
        hmac::verify(&self.verifying, signed.as_bytes(), &signature)
            .map_err(|_| "bad signature")?;
        let claims = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| "claims are not base64url")?;
        let claims: AccessClaims =
            serde_json::from_slice(&claims).map_err(|_| "claims missing or malformed")?;
        if claims.exp < Utc::now().timestamp() - LEEWAY_SECS {
            return Err("expired");
        }
        if claims.iss != self.issuer {
            return Err("another issuer");
        }
        if claims.aud != self.audience {
            return Err("another audience");
        }
        Ok(claims)
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub role: Role,
    pub jti: String,
    /// Unix seconds; logout blacklists the token until then.
    pub expires_at: i64,
}

impl Principal {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// An access token whose signature, expiry and subject checked out, not yet checked against the
/// logout blacklist: [`Authenticator::admit`] turns it into a [`Principal`].
#[derive(Debug)]
pub struct SignedToken {
    principal: Principal,
}

impl SignedToken {
    /// Who the token says the caller is; not to be trusted before [`Authenticator::admit`].
    pub fn claimed(&self) -> &Principal {
        &self.principal
    }
}

/// Turns `Authorization: Bearer …` into a [`Principal`], honouring the logout blacklist.
#[derive(Debug, Clone)]
pub struct Authenticator {
    codec: Arc<TokenCodec>,
    blacklist: BlacklistCache,
    db: MySqlPool,
}

impl Authenticator {
    pub fn new(codec: Arc<TokenCodec>, redis: RedisStore, db: MySqlPool) -> Self {
        Self {
            codec,
            blacklist: BlacklistCache::new(redis),
            db,
        }
    }

    pub async fn authenticate(&self, req: &Request) -> Result<Principal, ApiError> {
        let token = self.verify(req)?;
        let principal = &token.principal;
        let answer = match self
            .blacklist
            .check(principal.user_id, &principal.jti)
            .await
        {
            Ok(answer) => Some(answer),
            Err(err) => {
                tracing::warn!(%err, "Redis unavailable; checking the token blacklist in MySQL");
                None
            }
        };
        self.admit(token, answer).await
    }

    /// The first half of [`Authenticator::authenticate`]: the token's signature, expiry and
    /// subject, without the blacklist. A handler that sends its Redis reads in one round trip asks
    /// about the token's entry ([`Authenticator::blacklist_key`]) along with them, then calls
    /// [`Authenticator::admit`] with the answer.
    pub fn verify(&self, req: &Request) -> Result<SignedToken, ApiError> {
        let token = bearer_token(req)?;
        let claims = self.codec.verify(token)?;
        let user_id = claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthenticated("invalid access token subject"))?;
        Ok(SignedToken {
            principal: Principal {
                user_id,
                role: claims.role,
                jti: claims.jti,
                expires_at: claims.exp,
            },
        })
    }

    /// The key of `token`'s blacklist entry, in its user's hash slot (`{u<id>}`), for a handler
    /// that asks whether it exists along with its own commands. Whether the list is loaded is
    /// the [`crate::adapters::redis::LOADED_BLACKLIST`] flag ([`RedisStore::loaded_flag`]).
    pub fn blacklist_key(&self, token: &SignedToken) -> String {
        self.blacklist
            .entry_key(token.principal.user_id, &token.principal.jti)
    }

    /// The second half of [`Authenticator::authenticate`]: refuses a logged-out token. `answer` is
    /// what Redis said, `None` when it could not be asked; MySQL decides then, and when Redis
    /// restarted empty (after which the list is reloaded).
    pub async fn admit(
        &self,
        token: SignedToken,
        answer: Option<BlacklistAnswer>,
    ) -> Result<Principal, ApiError> {
        let jti = &token.principal.jti;
        let revoked = match answer {
            Some(BlacklistAnswer::Listed) => true,
            Some(BlacklistAnswer::NotListed) => false,
            Some(BlacklistAnswer::NotLoaded) => {
                let revoked = self.revoked_in_mysql(jti).await?;
                if let Err(err) = self.reload_blacklist().await {
                    tracing::warn!(%err, "could not reload the token blacklist into Redis");
                }
                revoked
            }
            None => self.revoked_in_mysql(jti).await?,
        };
        if revoked {
            return Err(ApiError::Unauthenticated(
                "this access token was logged out",
            ));
        }
        Ok(token.principal)
    }

    async fn revoked_in_mysql(&self, jti: &str) -> Result<bool, ApiError> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM revoked_access_tokens WHERE jti = ? AND expires_at > UTC_TIMESTAMP(6)",
        )
        .bind(jti)
        .fetch_optional(&self.db)
        .await?;
        Ok(found.is_some())
    }

    /// Copies the unexpired part of the MySQL blacklist into Redis and marks it loaded.
    /// Only one of the requests that find it not loaded does it; the others asked MySQL already.
    async fn reload_blacklist(&self) -> Result<(), ApiError> {
        if !self.blacklist.claim_reload().await? {
            return Ok(());
        }
        let rows: Vec<(i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT user_id, jti, expires_at FROM revoked_access_tokens \
             WHERE expires_at > UTC_TIMESTAMP(6)",
        )
        .fetch_all(&self.db)
        .await?;
        let now = Utc::now();
        let entries: Vec<(i64, String, u64)> = rows
            .into_iter()
            .map(|(user_id, jti, expires_at)| {
                let left = (expires_at - now).num_seconds().max(1);
                (user_id, jti, u64::try_from(left).unwrap_or(1))
            })
            .collect();
        self.blacklist.add(&entries, true).await?;
        tracing::info!(tokens = entries.len(), "token blacklist loaded into Redis");
        Ok(())
    }

    /// Logout: the token is refused from now until it expires. MySQL first, so that a Redis
    /// failure cannot leave a logged-out token working.
    pub async fn revoke(&self, principal: &Principal) -> Result<(), ApiError> {
        let expires_at = Utc
            .timestamp_opt(principal.expires_at, 0)
            .single()
            .unwrap_or_else(Utc::now);
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, user_id, expires_at) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE expires_at = VALUES(expires_at)",
        )
        .bind(&principal.jti)
        .bind(principal.user_id)
        .bind(expires_at)
        .execute(&self.db)
        .await?;
        let seconds_left = u64::try_from((expires_at - Utc::now()).num_seconds()).unwrap_or(1);
        if let Err(err) = self
            .blacklist
            .add(
                &[(principal.user_id, principal.jti.clone(), seconds_left)],
                false,
            )
            .await
        {
            tracing::warn!(%err, "Redis unavailable; logout recorded in MySQL only");
        }
        Ok(())
    }
}

fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let value = header_str(req.headers(), header::AUTHORIZATION.as_str())
        .ok_or(ApiError::Unauthenticated("missing Authorization header"))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthenticated(
        "Authorization must be `Bearer <token>`",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthenticated(
            "Authorization must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;

    use super::*;

    fn config(secret: &str, audience: &str) -> AuthConfig {
        AuthConfig {
            jwt_secret: SecretString::from(secret.to_owned()),
            issuer: "kicksync".into(),
            audience: audience.into(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(3600),
            login_limit_per_email: 10,
            login_limit_per_address: 10,
        }
    }

    const SECRET: &str = "test-secret-test-secret-test-secret!";

    #[test]
    fn issued_tokens_verify() {
        let codec = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let token = codec.issue(7, Role::Partner, Utc::now()).unwrap();
        let claims = codec.verify(&token).unwrap();
        assert_eq!(claims.sub, "7");
        assert_eq!(claims.role, Role::Partner);
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(claims.iss, "kicksync");
        assert_eq!(claims.aud, "kicksync-api");
    }

    #[test]
    fn expired_tokens_fail() {
        let codec = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
        let token = codec.issue(7, Role::Buyer, an_hour_ago).unwrap();
        assert!(codec.verify(&token).is_err());
    }

    #[test]
    fn other_secrets_and_audiences_fail() {
        let ours = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let forger = TokenCodec::new(&config(
            "another-secret-another-secret-12345",
            "kicksync-api",
        ));
        let foreign = TokenCodec::new(&config(SECRET, "some-other-api"));
        let now = Utc::now();
        assert!(
            ours.verify(&forger.issue(1, Role::Admin, now).unwrap())
                .is_err()
        );
        assert!(
            ours.verify(&foreign.issue(1, Role::Admin, now).unwrap())
                .is_err()
        );
    }

    #[test]
    fn unsigned_tokens_fail() {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let codec = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let now = Utc::now().timestamp();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"sub":"1","role":"admin","jti":"x","iat":now,"exp":now+600,
                "iss":"kicksync","aud":"kicksync-api"})
            .to_string(),
        );
        assert!(codec.verify(&format!("{header}.{claims}.")).is_err());
    }

    /// A token with any header and claims, HMAC-signed with `secret` (what a forger with the
    /// key, or a confused implementation, would produce).
    fn forge(header: &serde_json::Value, claims: &serde_json::Value, secret: &str) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(hmac::sign(&key, signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    fn claims_expiring_at(exp: i64) -> serde_json::Value {
        serde_json::json!({"sub":"1","role":"buyer","jti":"j","iat":exp - 900,"exp":exp,
            "iss":"kicksync","aud":"kicksync-api"})
    }

    #[test]
    fn only_hs256_headers_are_accepted() {
        let codec = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let claims = claims_expiring_at(Utc::now().timestamp() + 600);
        let hs256 = serde_json::json!({"alg":"HS256","typ":"JWT"});
        assert!(codec.verify(&forge(&hs256, &claims, SECRET)).is_ok());
        for header in [
            serde_json::json!({"alg":"none","typ":"JWT"}),
            serde_json::json!({"alg":"HS512"}),
            serde_json::json!({"alg":"RS256"}),
            serde_json::json!({"typ":"JWT"}),
        ] {
            assert!(
                codec.verify(&forge(&header, &claims, SECRET)).is_err(),
                "{header}"
            );
        }
    }

    #[test]
    fn expiry_allows_the_leeway_and_no_more() {
        let codec = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let header = serde_json::json!({"alg":"HS256"});
        let now = Utc::now().timestamp();
        let just_expired = forge(&header, &claims_expiring_at(now - 2), SECRET);
        let long_expired = forge(&header, &claims_expiring_at(now - 60), SECRET);
        assert!(codec.verify(&just_expired).is_ok());
        assert!(codec.verify(&long_expired).is_err());
    }

    #[test]
    fn every_claim_is_required_and_checked() {
        let codec = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let header = serde_json::json!({"alg":"HS256"});
        let valid = claims_expiring_at(Utc::now().timestamp() + 600);
        for missing in ["sub", "role", "jti", "iat", "exp", "iss", "aud"] {
            let mut claims = valid.clone();
            claims.as_object_mut().unwrap().remove(missing);
            assert!(
                codec.verify(&forge(&header, &claims, SECRET)).is_err(),
                "without {missing}"
            );
        }
        let mut other_issuer = valid;
        other_issuer["iss"] = "someone-else".into();
        assert!(
            codec
                .verify(&forge(&header, &other_issuer, SECRET))
                .is_err()
        );
    }

    #[test]
    fn tampered_or_malformed_tokens_fail() {
        let codec = TokenCodec::new(&config(SECRET, "kicksync-api"));
        let token = codec.issue(7, Role::Buyer, Utc::now()).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = signed.split_once('.').unwrap();
        let admin_claims = URL_SAFE_NO_PAD.encode(
            claims_expiring_at(Utc::now().timestamp() + 600)
                .to_string()
                .replace("buyer", "admin"),
        );
        for bad in [
            format!("{header}.{admin_claims}.{signature}"),
            format!("{token}.extra"),
            format!("{signed}."),
            format!("{signed}.{signature}="),
            signed.to_owned(),
            String::new(),
        ] {
            assert!(codec.verify(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_enforced() {
        let principal = Principal {
            user_id: 1,
            role: Role::Buyer,
            jti: "j".into(),
            expires_at: 0,
        };
        assert!(principal.require(&[Role::Buyer, Role::Admin]).is_ok());
        assert!(matches!(
            principal.require(&[Role::Partner]),
            Err(ApiError::Forbidden)
        ));
    }
}
