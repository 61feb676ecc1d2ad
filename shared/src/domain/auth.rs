//! Accounts and credentials: roles, email and password rules, password hashing, token shapes.

use std::fmt;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::FieldError;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Argon2 hashes whatever it is given; a cap keeps a megabyte password from costing us.
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_BUSINESS_NAME_CHARS: usize = 200;
/// Random bytes in a refresh token's secret part.
const REFRESH_SECRET_BYTES: usize = 32;
/// Random bytes in a refresh token family id.
const FAMILY_ID_BYTES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Buyer,
    Partner,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Partner => "partner",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "buyer" => Some(Role::Buyer),
            "partner" => Some(Role::Partner),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Emails compare case-insensitively: we store and look them up trimmed and lower-cased.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A deliberately modest check: one `@`, something on both sides, a dot in the domain, no spaces.
/// The real proof of an address is a confirmation mail, not a regex.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
        && email.chars().count() <= MAX_EMAIL_CHARS
}

/// What signup asks for, after JSON parsing.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub password: String,
    pub name: String,
    pub role: Role,
    pub business_name: Option<String>,
}

/// Checks a signup and returns every failing field, so the client can fix them all at once.
/// Buyers and partners sign themselves up; admins are only seeded.
pub fn validate_signup(
    email: &str,
    password: &str,
    name: &str,
    role: &str,
    business_name: Option<&str>,
) -> Result<NewAccount, Vec<FieldError>> {
    let mut errors = Vec::new();
    let email = normalize_email(email);
    if !is_plausible_email(&email) {
        errors.push(FieldError::new("email", "must be an email address"));
    }
    let password_chars = password.chars().count();
    if password_chars < MIN_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    } else if password_chars > MAX_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let role = match Role::parse(role) {
        Some(role @ (Role::Buyer | Role::Partner)) => Some(role),
        _ => {
            errors.push(FieldError::new("role", "must be \"buyer\" or \"partner\""));
            None
        }
    };
    // Optional for partners; when given, it must say something.
    let business_name = business_name.map(|text| text.trim().to_owned());
    if let (Some(Role::Partner), Some(text)) = (role, &business_name)
        && (text.is_empty() || text.chars().count() > MAX_BUSINESS_NAME_CHARS)
    {
        errors.push(FieldError::new(
            "business_name",
            format!("must be 1 to {MAX_BUSINESS_NAME_CHARS} characters when given"),
        ));
    }
    match (errors.is_empty(), role) {
        (true, Some(role)) => Ok(NewAccount {
            email,
            password: password.to_owned(),
            name,
            role,
            business_name: business_name.filter(|_| role == Role::Partner),
        }),
        _ => Err(errors),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Argon2id with the crate's defaults (19 MiB, 2 passes), which follow OWASP's guidance.
/// CPU-heavy: call it from `spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| HashError(err.to_string()))
}

/// CPU-heavy like [`hash_password`]. A malformed stored hash counts as a mismatch.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id, as a string (JWT convention).
    pub sub: String,
    pub role: Role,
    /// Unique per token: what logout blacklists.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// A refresh token as handed to clients: `<family id>.<secret>`. The family id travels inside the
/// token so that the server can find (and revoke) the family even from a spent token, and so that
/// every key of one family lands in one Redis Cluster slot (`{family}` hash tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub family: String,
    pub secret: String,
}

impl RefreshToken {
    /// The first token of a new login session.
    pub fn new_family() -> Self {
        Self {
            family: random_url_safe(FAMILY_ID_BYTES),
            secret: random_url_safe(REFRESH_SECRET_BYTES),
        }
    }

    /// The next token of the same family (rotation).
    pub fn rotate(&self) -> Self {
        Self {
            family: self.family.clone(),
            secret: random_url_safe(REFRESH_SECRET_BYTES),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (family, secret) = text.split_once('.')?;
        let well_formed = |part: &str, bytes: usize| {
            URL_SAFE_NO_PAD
                .decode(part)
                .is_ok_and(|decoded| decoded.len() == bytes)
        };
        (well_formed(family, FAMILY_ID_BYTES) && well_formed(secret, REFRESH_SECRET_BYTES)).then(
            || Self {
                family: family.to_owned(),
                secret: secret.to_owned(),
            },
        )
    }

    /// What the client holds.
    pub fn to_token_string(&self) -> String {
        format!("{}.{}", self.family, self.secret)
    }

    /// What we store: a leaked Redis dump must not hand out working tokens.
    pub fn secret_hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret.as_bytes()))
    }
}

fn random_url_safe(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized() {
        assert_eq!(normalize_email("  Kim@Example.COM "), "kim@example.com");
    }

    #[test]
    fn plausible_emails() {
        assert!(is_plausible_email("kim@example.com"));
        for bad in [
            "",
            "kim",
            "kim@",
            "@example.com",
            "kim@example",
            "kim@@example.com",
            "k im@ex.com",
            "kim@.com",
        ] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn signup_collects_every_error() {
        let errors = validate_signup("nope", "short", " ", "admin", None).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name", "role"]);
    }

    #[test]
    fn a_partners_business_name_is_optional_but_not_blank() {
        let account =
            validate_signup("p@shop.kr", "long-enough-pw", "Park", "partner", None).unwrap();
        assert_eq!(account.role, Role::Partner);
        assert_eq!(account.business_name, None);
        let errors = validate_signup("p@shop.kr", "long-enough-pw", "Park", "partner", Some("  "))
            .unwrap_err();
        assert_eq!(errors[0].field, "business_name");
        let account = validate_signup(
            "P@Shop.kr",
            "long-enough-pw",
            "Park",
            "partner",
            Some(" Sole "),
        )
        .unwrap();
        assert_eq!(account.email, "p@shop.kr");
        assert_eq!(account.business_name.as_deref(), Some("Sole"));
    }

    #[test]
    fn buyers_drop_a_business_name() {
        let account =
            validate_signup("b@x.kr", "long-enough-pw", "Lee", "buyer", Some("ignored")).unwrap();
        assert_eq!(account.role, Role::Buyer);
        assert_eq!(account.business_name, None);
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // ten Hangul syllables are 30 bytes but 10 characters: accepted
        assert!(validate_signup("b@x.kr", "가나다라마바사아자차", "Lee", "buyer", None).is_ok());
        assert!(validate_signup("b@x.kr", "가나다라마바사아자", "Lee", "buyer", None).is_err());
    }

    #[test]
    fn password_hash_round_trip() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("anything", "not-a-hash"));
    }

    #[test]
    fn refresh_tokens_round_trip_and_rotate() {
        let token = RefreshToken::new_family();
        let parsed = RefreshToken::parse(&token.to_token_string()).unwrap();
        assert_eq!(parsed, token);
        let next = token.rotate();
        assert_eq!(next.family, token.family);
        assert_ne!(next.secret, token.secret);
        assert_ne!(next.secret_hash(), token.secret_hash());
    }

    #[test]
    fn malformed_refresh_tokens_are_refused() {
        for bad in ["", "abc", "a.b", "..", &"x".repeat(80)] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad}");
        }
    }
}
