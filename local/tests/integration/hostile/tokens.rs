//! Access tokens that must not get in: unsigned, signed with another key, another algorithm than
//! their header names or than HS256, expired beyond the leeway, of another issuer or audience,
//! garbage, a refresh token in their place, logged out. Each is tried on routes of every role;
//! a token taken for valid would get anything but 401 there (200, 201 or 403).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use shared::{domain::auth::Role, testing::TEST_JWT_SECRET};

use super::{Hostile, answered, refused, with_authorization};

/// A key that is not ours, as long as ours.
const OTHER_KEY: &str = "an-attackers-key-an-attackers-key-00";

/// Claims as our issuer writes them, for `user` as `role`, expiring `exp`.
fn claims(user: i64, role: &str, exp: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": user.to_string(),
        "role": role,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": exp,
        "iss": "kicksync",
        "aud": "kicksync-api",
    })
}

fn in_ten_minutes() -> i64 {
    chrono::Utc::now().timestamp() + 600
}

/// A token signed by `jsonwebtoken` with `algorithm` and `key`.
fn signed(algorithm: Algorithm, claims: &Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// A token with any header, HMAC-SHA256-signed with `key` over `header.claims`: what a forger
/// who knows the key, or a confused implementation, would write.
fn with_header(header: &Value, claims: &Value, key: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(key.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{signing_input}.{signature}")
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// One authenticated route per function and role, each with a request that would succeed (or
/// be refused with 403) if the token were taken.
fn routes(h: &Hostile, product_id: i64) -> Vec<(&'static str, RequestBuilder)> {
    vec![
        ("GET /auth/me", h.get("/auth/me")),
        (
            "POST /orders",
            h.post("/orders")
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&json!({"items": [{"product_id": product_id, "quantity": 1}]})),
        ),
        ("GET /orders", h.get("/orders")),
        (
            "POST /products",
            h.post("/products")
                .json(&super::product_body("Forged listing")),
        ),
        ("GET /partner/orders", h.get("/partner/orders")),
        (
            "GET /admin/settlements",
            h.get("/admin/settlements?date=2026-01-01"),
        ),
        ("POST /auth/logout", h.post("/auth/logout")),
    ]
}

async fn refused_everywhere(h: &Hostile, what: &str, authorization: Option<&[u8]>, product: i64) {
    for (route, request) in routes(h, product) {
        let request = match authorization {
            Some(value) => with_authorization(request, value),
            None => request,
        };
        let problem = refused(request, 401, "UNAUTHENTICATED").await;
        assert!(
            problem["detail"].is_string(),
            "{what} on {route}: {problem}"
        );
    }
}

#[tokio::test]
async fn forged_expired_foreign_and_revoked_access_tokens_are_401_on_every_route() {
    let h = Hostile::new().await;
    h.secret("the forger's key", OTHER_KEY);
    let partner = h.user(Role::Partner).await;
    let product = h.product(&partner).await["id"].as_i64().unwrap();
    let buyer = h.user(Role::Buyer).await;
    let valid = claims(buyer.id, "buyer", in_ten_minutes());

    // The harness forges tokens the runner accepts when nothing is wrong with them, so each
    // refusal below is about the one thing changed.
    let genuine = signed(Algorithm::HS256, &valid, TEST_JWT_SECRET);
    h.access_token(&genuine);
    let me = answered(h.get("/auth/me").bearer_auth(&genuine), 200).await;
    assert_eq!(me["id"], buyer.id);
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let by_hand = with_header(&hs256, &valid, TEST_JWT_SECRET);
    h.access_token(&by_hand);
    answered(h.get("/auth/me").bearer_auth(&by_hand), 200).await;

    let before = h.state().await;
    let past = chrono::Utc::now().timestamp() - 60;
    let mut wrong_issuer = valid.clone();
    wrong_issuer["iss"] = json!("kicksync-staging");
    let mut wrong_audience = valid.clone();
    wrong_audience["aud"] = json!("kicksync-admin");
    let mut audiences = valid.clone();
    audiences["aud"] = json!(["kicksync-api"]);
    let mut no_expiry = valid.clone();
    no_expiry.as_object_mut().unwrap().remove("exp");
    let mut admin_claims = valid.clone();
    admin_claims["role"] = json!("admin");
    let mut unknown_role = valid.clone();
    unknown_role["role"] = json!("superuser");
    let mut float_expiry = valid.clone();
    float_expiry["exp"] = json!(1e30);
    let mut no_subject = valid.clone();
    no_subject["sub"] = json!("1 OR 1=1");

    let forged: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            unsigned(&json!({"alg": "none", "typ": "JWT"}), &valid),
        ),
        ("alg None", unsigned(&json!({"alg": "None"}), &valid)),
        (
            "alg none with our signature",
            format!(
                "{}.{}",
                unsigned(&json!({"alg": "none"}), &valid).trim_end_matches('.'),
                by_hand.rsplit_once('.').unwrap().1
            ),
        ),
        (
            "HS256 with another key",
            signed(Algorithm::HS256, &valid, OTHER_KEY),
        ),
        (
            "an admin's claims with another key",
            signed(Algorithm::HS256, &admin_claims, OTHER_KEY),
        ),
        (
            "HS512 with our key",
            signed(Algorithm::HS512, &valid, TEST_JWT_SECRET),
        ),
        (
            "HS384 with our key",
            signed(Algorithm::HS384, &valid, TEST_JWT_SECRET),
        ),
        (
            "header RS256, HMAC-signed with our key",
            with_header(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &valid,
                TEST_JWT_SECRET,
            ),
        ),
        (
            "header ES256, HMAC-signed with our key",
            with_header(&json!({"alg": "ES256"}), &valid, TEST_JWT_SECRET),
        ),
        (
            "header hs256 (lower case)",
            with_header(&json!({"alg": "hs256"}), &valid, TEST_JWT_SECRET),
        ),
        (
            "header without alg",
            with_header(&json!({"typ": "JWT"}), &valid, TEST_JWT_SECRET),
        ),
        (
            "expired a minute ago",
            signed(
                Algorithm::HS256,
                &claims(buyer.id, "buyer", past),
                TEST_JWT_SECRET,
            ),
        ),
        (
            "expired at the epoch",
            signed(
                Algorithm::HS256,
                &claims(buyer.id, "buyer", 0),
                TEST_JWT_SECRET,
            ),
        ),
        (
            "expired long before the epoch",
            signed(
                Algorithm::HS256,
                &claims(buyer.id, "buyer", i64::MIN),
                TEST_JWT_SECRET,
            ),
        ),
        (
            "no exp",
            signed(Algorithm::HS256, &no_expiry, TEST_JWT_SECRET),
        ),
        (
            "exp 1e30",
            signed(Algorithm::HS256, &float_expiry, TEST_JWT_SECRET),
        ),
        (
            "another issuer",
            signed(Algorithm::HS256, &wrong_issuer, TEST_JWT_SECRET),
        ),
        (
            "another audience",
            signed(Algorithm::HS256, &wrong_audience, TEST_JWT_SECRET),
        ),
        (
            "audience as a list",
            signed(Algorithm::HS256, &audiences, TEST_JWT_SECRET),
        ),
        (
            "unknown role",
            signed(Algorithm::HS256, &unknown_role, TEST_JWT_SECRET),
        ),
        (
            "subject not an id",
            signed(Algorithm::HS256, &no_subject, TEST_JWT_SECRET),
        ),
        ("claims swapped under our signature", {
            let (signing_input, signature) = by_hand.rsplit_once('.').unwrap();
            let header = signing_input.split_once('.').unwrap().0;
            let claims = URL_SAFE_NO_PAD.encode(admin_claims.to_string());
            format!("{header}.{claims}.{signature}")
        }),
        (
            "signature cut short",
            by_hand[..by_hand.len() - 2].to_owned(),
        ),
        ("two parts", by_hand.rsplit_once('.').unwrap().0.to_owned()),
        ("four parts", format!("{by_hand}.x")),
        ("padding after the signature", format!("{by_hand}=")),
        ("garbage", "garbage".to_owned()),
        ("three dots", "...".to_owned()),
        ("a.b.c", "a.b.c".to_owned()),
        ("SQL", "' OR 1=1 --".to_owned()),
        ("10,000 characters", "x".repeat(10_000)),
        (
            "JSON instead of base64",
            r#"{"alg":"none"}.{"sub":"1"}."#.to_owned(),
        ),
    ];
    for (what, token) in &forged {
        let value = format!("Bearer {token}");
        refused_everywhere(&h, what, Some(value.as_bytes()), product).await;
    }

    for (what, value) in [
        ("no Authorization", None),
        ("Bearer and nothing", Some(b"Bearer".as_slice())),
        ("Bearer and spaces", Some(b"Bearer    ".as_slice())),
        (
            "another scheme",
            Some(b"Basic YnV5ZXI6cGFzc3dvcmQ=".as_slice()),
        ),
        ("a token with no scheme", Some(genuine.as_bytes())),
        ("not UTF-8", Some(b"Bearer \xff\xfe".as_slice())),
    ] {
        refused_everywhere(&h, what, value, product).await;
    }
    let token_and_more = format!("Bearer {genuine} {genuine}");
    refused_everywhere(&h, "two tokens", Some(token_and_more.as_bytes()), product).await;

    assert_eq!(h.state().await, before, "a refused token changed something");
    // The genuine token still works: none of the above revoked or used it up.
    answered(h.get("/auth/me").bearer_auth(&genuine), 200).await;
    h.assert_no_secret_logged();
}

#[tokio::test]
async fn refresh_tokens_and_logged_out_tokens_are_not_access_tokens() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let product = h.product(&partner).await["id"].as_i64().unwrap();
    let email = format!("hostile-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let (account, access, refresh) = h
        .sign_up(&json!({"email": email, "password": password, "name": "Min-ji", "role": "buyer"}))
        .await;
    let before = h.state().await;

    // A refresh token in an access token's place, and the other way round.
    let value = format!("Bearer {refresh}");
    refused_everywhere(&h, "a refresh token", Some(value.as_bytes()), product).await;
    refused(
        h.post("/auth/refresh")
            .json(&json!({"refresh_token": access})),
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    // Well formed (a 16-byte family, a 32-byte secret), but never issued.
    let unissued = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode([7_u8; 16]),
        URL_SAFE_NO_PAD.encode([7_u8; 32])
    );
    let family = refresh.split_once('.').unwrap().0;
    let their_family = format!("{family}.{}", URL_SAFE_NO_PAD.encode([7_u8; 32]));
    for garbage in [
        "",
        ".",
        "a.b",
        "' OR 1=1 --",
        &"x".repeat(10_000),
        &unissued,
        &their_family,
    ] {
        refused(
            h.post("/auth/refresh")
                .json(&json!({"refresh_token": garbage})),
            401,
            "INVALID_REFRESH_TOKEN",
        )
        .await;
    }
    assert_eq!(h.state().await, before);
    // A guessed secret for a known family revoked nothing: the real token still rotates.
    let rotated = answered(
        h.post("/auth/refresh")
            .json(&json!({"refresh_token": refresh})),
        200,
    )
    .await;
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    h.access_token(&access);
    h.refresh_token(&refresh);

    // Logged out, the access token is refused everywhere (a checkout too, whose gate reads the
    // blacklist in its own round trip), and the refresh token with it.
    let logout = h
        .post("/auth/logout")
        .bearer_auth(&access)
        .json(&json!({"refresh_token": refresh}));
    answered(logout, 204).await;
    let after_logout = h.state().await;
    let value = format!("Bearer {access}");
    refused_everywhere(&h, "a logged-out token", Some(value.as_bytes()), product).await;
    refused(
        h.post("/auth/refresh")
            .json(&json!({"refresh_token": refresh})),
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    assert_eq!(h.state().await, after_logout);
    assert_eq!(h.count("orders").await, 0);

    // Another login of the same account still works.
    let tokens = answered(
        h.post("/auth/login")
            .json(&json!({"email": email, "password": password})),
        200,
    )
    .await;
    let fresh = tokens["access_token"].as_str().unwrap();
    h.access_token(fresh);
    h.refresh_token(tokens["refresh_token"].as_str().unwrap());
    let me = answered(h.get("/auth/me").bearer_auth(fresh), 200).await;
    assert_eq!(me["id"], account["id"]);
    h.assert_no_secret_logged();
}
