//! Signing and verifying access tokens (HS256 JWTs); see [`crate::auth`] for the format.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::hmac;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::{
    config::AuthConfig,
    domain::auth::{AccessClaims, Role},
    error::ApiError,
};

/// Clock skew tolerated between the issuer and a verifier: a token is accepted until
/// `exp + LEEWAY_SECS`, so a logout must refuse it that long (see [`Principal::accepted_until`]).
///
/// [`Principal::accepted_until`]: super::Principal::accepted_until
pub const LEEWAY_SECS: i64 = 5;

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
            signup_limit_per_address: 10,
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
}
