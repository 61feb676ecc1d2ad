//! Standard Webhooks signatures, as PortOne V2 signs its webhooks (version 2024-04-25).
//!
//! The signed text is `{webhook-id}.{webhook-timestamp}.{raw body}`, HMAC-SHA256 under the secret
//! (its optional `whsec_` prefix removed, then base64-decoded). `webhook-signature` holds
//! space-separated `v1,<base64>` entries, several while a secret is being rotated: any one
//! matching is enough and other versions are ignored. A timestamp more than five minutes away
//! from now, either way, is refused, so a captured webhook cannot be replayed later.
//!
//! Pure computation, no I/O: the caller passes the headers, the raw body bytes (never JSON that
//! was parsed and written again) and the current time.

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::hmac;
use subtle::ConstantTimeEq;

/// How far a webhook's timestamp may be from our clock, either way.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;
const SECRET_PREFIX: &str = "whsec_";

/// The signing key, decoded once at start-up.
#[derive(Clone)]
pub struct WebhookSecret(hmac::Key);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The secret is not base64 (after an optional `whsec_` prefix) or is empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret must be base64, optionally prefixed with whsec_, and not empty")]
pub struct InvalidSecret;

impl WebhookSecret {
    pub fn new(secret: &str) -> Result<Self, InvalidSecret> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let raw = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
        if raw.is_empty() {
            return Err(InvalidSecret);
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &raw)))
    }

    fn tag(&self, id: &str, timestamp: &str, body: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.as_bytes());
        context.update(b".");
        context.update(body);
        context.sign()
    }

    /// The `webhook-signature` value for this message (`v1,<base64>`): what the sender computes.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.tag(id, &timestamp.to_string(), body);
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }
}

/// The three headers a webhook is signed with, as received (absent headers are `None`).
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a webhook was refused. Missing or malformed headers are the sender's mistake (400); the
/// others mean we cannot trust it (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    #[error("webhook-id, webhook-timestamp and webhook-signature are required")]
    MissingHeaders,
    #[error("webhook-timestamp must be Unix seconds")]
    MalformedTimestamp,
    #[error("webhook-timestamp is more than five minutes old")]
    TooOld,
    #[error("webhook-timestamp is more than five minutes ahead")]
    TooNew,
    #[error("no v1 signature matches")]
    NoMatchingSignature,
}

impl SignatureRefusal {
    /// Whether the request was malformed rather than untrusted.
    pub fn is_malformed(self) -> bool {
        matches!(self, Self::MissingHeaders | Self::MalformedTimestamp)
    }
}

/// Checks a webhook's signature and age; `now` is Unix seconds.
pub fn verify(
    secret: &WebhookSecret,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureRefusal> {
    let (Some(id), Some(timestamp_text), Some(signatures)) = (
        non_empty(headers.id),
        non_empty(headers.timestamp),
        non_empty(headers.signature),
    ) else {
        return Err(SignatureRefusal::MissingHeaders);
    };
    let timestamp: i64 = timestamp_text
        .trim()
        .parse()
        .map_err(|_| SignatureRefusal::MalformedTimestamp)?;
    if now.saturating_sub(timestamp) > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureRefusal::TooOld);
    }
    if timestamp.saturating_sub(now) > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureRefusal::TooNew);
    }
    let expected = secret.tag(id, timestamp_text, body);
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|candidate| bool::from(candidate.as_slice().ct_eq(expected.as_ref())));
    if matches {
        Ok(())
    } else {
        Err(SignatureRefusal::NoMatchingSignature)
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks test vector.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn secret() -> WebhookSecret {
        WebhookSecret::new(SECRET).unwrap()
    }

    fn headers(signature: &str) -> SignedHeaders<'_> {
        SignedHeaders {
            id: Some(ID),
            timestamp: Some("1649367553"),
            signature: Some(signature),
        }
    }

    #[test]
    fn signs_the_known_vector() {
        assert_eq!(secret().sign(ID, TIMESTAMP, BODY), SIGNATURE);
    }

    #[test]
    fn accepts_the_known_vector_with_or_without_the_prefix() {
        assert_eq!(
            verify(&secret(), headers(SIGNATURE), BODY, TIMESTAMP),
            Ok(())
        );
        let bare = WebhookSecret::new(SECRET.trim_start_matches("whsec_")).unwrap();
        assert_eq!(verify(&bare, headers(SIGNATURE), BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn any_one_v1_signature_is_enough_and_other_versions_are_ignored() {
        let several = format!(
            "v1,bm90IGl0 v2,{} v1a,xyz garbage {SIGNATURE}",
            &SIGNATURE[3..]
        );
        assert_eq!(
            verify(&secret(), headers(&several), BODY, TIMESTAMP),
            Ok(())
        );
        let only_other_versions = format!("v2,{}", &SIGNATURE[3..]);
        assert_eq!(
            verify(&secret(), headers(&only_other_versions), BODY, TIMESTAMP),
            Err(SignatureRefusal::NoMatchingSignature)
        );
    }

    #[test]
    fn a_tampered_body_id_or_timestamp_fails() {
        let tampered = br#"{"email":"test@example.com","username":"test_user2"}"#;
        assert_eq!(
            verify(&secret(), headers(SIGNATURE), tampered, TIMESTAMP),
            Err(SignatureRefusal::NoMatchingSignature)
        );
        let other_id = SignedHeaders {
            id: Some("msg_other"),
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&secret(), other_id, BODY, TIMESTAMP),
            Err(SignatureRefusal::NoMatchingSignature)
        );
        let other_time = SignedHeaders {
            timestamp: Some("1649367554"),
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&secret(), other_time, BODY, TIMESTAMP),
            Err(SignatureRefusal::NoMatchingSignature)
        );
    }

    #[test]
    fn another_secret_fails() {
        let other = WebhookSecret::new("whsec_a1wPPpGi1HcI47Fcap8tQMjhezpfCdLm").unwrap();
        assert_eq!(
            verify(&other, headers(SIGNATURE), BODY, TIMESTAMP),
            Err(SignatureRefusal::NoMatchingSignature)
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail_at_five_minutes() {
        let at = |now| verify(&secret(), headers(SIGNATURE), BODY, now);
        assert_eq!(at(TIMESTAMP + TIMESTAMP_TOLERANCE_SECS), Ok(()));
        assert_eq!(
            at(TIMESTAMP + TIMESTAMP_TOLERANCE_SECS + 1),
            Err(SignatureRefusal::TooOld)
        );
        assert_eq!(at(TIMESTAMP - TIMESTAMP_TOLERANCE_SECS), Ok(()));
        assert_eq!(
            at(TIMESTAMP - TIMESTAMP_TOLERANCE_SECS - 1),
            Err(SignatureRefusal::TooNew)
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_malformed() {
        let missing = SignedHeaders {
            signature: None,
            ..headers(SIGNATURE)
        };
        let refusal = verify(&secret(), missing, BODY, TIMESTAMP).unwrap_err();
        assert_eq!(refusal, SignatureRefusal::MissingHeaders);
        assert!(refusal.is_malformed());
        let empty = SignedHeaders {
            id: Some(""),
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&secret(), empty, BODY, TIMESTAMP),
            Err(SignatureRefusal::MissingHeaders)
        );
        let words = SignedHeaders {
            timestamp: Some("yesterday"),
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&secret(), words, BODY, TIMESTAMP),
            Err(SignatureRefusal::MalformedTimestamp)
        );
        assert!(!SignatureRefusal::NoMatchingSignature.is_malformed());
    }

    #[test]
    fn secrets_must_be_base64_and_not_empty() {
        assert_eq!(WebhookSecret::new("whsec_***").unwrap_err(), InvalidSecret);
        assert_eq!(WebhookSecret::new("whsec_").unwrap_err(), InvalidSecret);
        assert!(format!("{:?}", secret()).contains("redacted"));
    }
}
