//! The auth function against real MariaDB and Redis: each test has its own database and key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration as ChronoDuration, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::{
    Platform,
    adapters::redis::RedisStore,
    domain::auth::AccessClaims,
    testing::{ApiRequest, PrivateRedis, TEST_JWT_SECRET, TestContext, body_json, problem_code},
};

use super::*;

const PASSWORD: &str = "sneakers-4-ever";

struct App {
    ctx: TestContext,
    deps: Deps,
}

impl App {
    async fn new() -> Self {
        Self::with_vars(&[]).await
    }

    async fn with_vars(vars: &[(&str, &str)]) -> Self {
        let ctx = TestContext::with_vars(vars).await;
        let deps = Deps::new(&ctx.platform);
        Self { ctx, deps }
    }

    async fn call(&self, req: ApiRequest) -> Response<Body> {
        handle(&self.deps, req.build()).await
    }

    async fn signup(&self, email: &str, role: &str) -> Response<Body> {
        let mut body =
            json!({"email": email, "password": PASSWORD, "name": "Kim Min-ji", "role": role});
        if role == "partner" {
            body["business_name"] = json!("Sole Seoul");
        }
        self.call(ApiRequest::new("POST /auth/signup").json(&body))
            .await
    }

    async fn login(&self, email: &str, password: &str) -> Response<Body> {
        self.call(
            ApiRequest::new("POST /auth/login")
                .json(&json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs a buyer up and logs in: (access token, refresh token).
    async fn buyer_session(&self, email: &str) -> (String, String) {
        assert_eq!(self.signup(email, "buyer").await.status(), 201);
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn me(&self, token: &str) -> Response<Body> {
        self.call(ApiRequest::new("GET /auth/me").bearer(token))
            .await
    }

    async fn refresh(&self, refresh_token: &str) -> Response<Body> {
        self.call(
            ApiRequest::new("POST /auth/refresh").json(&json!({"refresh_token": refresh_token})),
        )
        .await
    }

    async fn count(&self, sql: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(&self.ctx.platform.db)
            .await
            .unwrap();
        n
    }
}

// --- signup ---------------------------------------------------------------------------------

#[tokio::test]
async fn signup_creates_a_buyer_with_a_normalized_email() {
    let app = App::new().await;
    let response = app.signup("  Min.Ji@Example.COM ", "buyer").await;
    assert_eq!(response.status(), 201);
    let body = body_json(&response);
    assert_eq!(body["email"], "min.ji@example.com");
    assert_eq!(body["role"], "buyer");
    assert!(body["id"].as_i64().unwrap() > 0);
    let hash: (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE email = ?")
        .bind("min.ji@example.com")
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    assert!(
        hash.0.starts_with("$argon2id$"),
        "passwords are stored as argon2id hashes"
    );
}

#[tokio::test]
async fn signup_of_a_partner_records_the_business() {
    let app = App::new().await;
    let response = app.signup("drops@sole-seoul.kr", "partner").await;
    assert_eq!(response.status(), 201);
    let id = body_json(&response)["id"].as_i64().unwrap();
    let (name,): (String,) =
        sqlx::query_as("SELECT business_name FROM partner_profiles WHERE partner_id = ?")
            .bind(id)
            .fetch_one(&app.ctx.platform.db)
            .await
            .unwrap();
    assert_eq!(name, "Sole Seoul");
}

#[tokio::test]
async fn a_partner_may_sign_up_without_a_business_name() {
    let app = App::new().await;
    for body in [
        json!({"email": "park@shop.kr", "password": PASSWORD, "name": "Park Jun", "role": "partner"}),
        json!({"email": "lee@shop.kr", "password": PASSWORD, "name": "Lee", "role": "partner", "business_name": null}),
    ] {
        let response = app
            .call(ApiRequest::new("POST /auth/signup").json(&body))
            .await;
        assert_eq!(response.status(), 201, "{body}");
        assert_eq!(body_json(&response)["role"], "partner");
        let id = body_json(&response)["id"].as_i64().unwrap();
        // The profile exists (products and orders refer to it), without a business name.
        let (name,): (Option<String>,) =
            sqlx::query_as("SELECT business_name FROM partner_profiles WHERE partner_id = ?")
                .bind(id)
                .fetch_one(&app.ctx.platform.db)
                .await
                .unwrap();
        assert_eq!(name, None, "{body}");
    }
}

#[tokio::test]
async fn signup_is_rate_limited_per_client_address() {
    let app = App::with_vars(&[("SIGNUP_LIMIT_PER_ADDRESS", "2")]).await;
    let attempt = |email: &str, ip: &str| {
        ApiRequest::new("POST /auth/signup")
            .json(&json!({"email": email, "password": PASSWORD, "name": "Kim", "role": "buyer"}))
            .source_ip(ip)
    };
    for email in ["a@x.kr", "b@x.kr"] {
        assert_eq!(app.call(attempt(email, "198.51.100.1")).await.status(), 201);
    }
    let limited = app.call(attempt("c@x.kr", "198.51.100.1")).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(problem_code(&limited), "RATE_LIMITED");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // A taken email is counted too (409 would tell it is taken), and is refused before that.
    let taken = app.call(attempt("a@x.kr", "198.51.100.1")).await;
    assert_eq!(problem_code(&taken), "RATE_LIMITED");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 2);
    // Another address is counted on its own.
    assert_eq!(
        app.call(attempt("c@x.kr", "198.51.100.2")).await.status(),
        201
    );
}

#[tokio::test]
async fn duplicate_email_is_409_whatever_its_case() {
    let app = App::new().await;
    assert_eq!(app.signup("kim@example.com", "buyer").await.status(), 201);
    let response = app.signup("KIM@example.com", "partner").await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem_code(&response), "EMAIL_TAKEN");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM partner_profiles").await, 0);
}

#[tokio::test]
async fn invalid_signups_are_422_and_write_nothing() {
    let app = App::new().await;
    let cases = [
        (
            json!({"email": "nope", "password": PASSWORD, "name": "K", "role": "buyer"}),
            "email",
        ),
        (
            json!({"email": "a@b.kr", "password": "short", "name": "K", "role": "buyer"}),
            "password",
        ),
        (
            json!({"email": "a@b.kr", "password": PASSWORD, "name": "  ", "role": "buyer"}),
            "name",
        ),
        (
            json!({"email": "a@b.kr", "password": PASSWORD, "name": "K", "role": "admin"}),
            "role",
        ),
        (
            json!({"email": "a@b.kr", "password": PASSWORD, "name": "K", "role": "partner", "business_name": "  "}),
            "business_name",
        ),
        (
            json!({"password": PASSWORD, "name": "K", "role": "buyer"}),
            "email",
        ),
        (
            json!({"email": 42, "password": PASSWORD, "name": "K", "role": "buyer"}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .call(ApiRequest::new("POST /auth/signup").json(&body))
            .await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(problem_code(&response), "VALIDATION");
        let errors = body_json(&response)["errors"].clone();
        assert!(
            errors
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body} → {errors}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_are_refused() {
    let app = App::new().await;
    let malformed = app
        .call(
            ApiRequest::new("POST /auth/signup")
                .header("content-type", "application/json")
                .raw_body(r#"{"email": "a@b.kr", "#),
        )
        .await;
    assert_eq!(
        (
            malformed.status().as_u16(),
            problem_code(&malformed).as_str()
        ),
        (400, "MALFORMED_JSON")
    );

    let huge = json!({"email": "a@b.kr", "password": PASSWORD, "name": "x".repeat(70_000), "role": "buyer"});
    let oversized = app
        .call(ApiRequest::new("POST /auth/signup").json(&huge))
        .await;
    assert_eq!(
        (
            oversized.status().as_u16(),
            problem_code(&oversized).as_str()
        ),
        (413, "PAYLOAD_TOO_LARGE")
    );

    let form = app
        .call(
            ApiRequest::new("POST /auth/signup")
                .header("content-type", "application/x-www-form-urlencoded")
                .raw_body("email=a@b.kr"),
        )
        .await;
    assert_eq!(
        (form.status().as_u16(), problem_code(&form).as_str()),
        (415, "UNSUPPORTED_MEDIA_TYPE")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

// --- login ----------------------------------------------------------------------------------

#[tokio::test]
async fn login_returns_a_bearer_pair_that_works() {
    let app = App::new().await;
    app.signup("kim@example.com", "buyer").await;
    let response = app.login("Kim@Example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body = body_json(&response);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let me = app.me(body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
    let me = body_json(&me);
    assert_eq!(me["email"], "kim@example.com");
    assert_eq!(me["name"], "Kim Min-ji");
    assert_eq!(me["role"], "buyer");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = App::new().await;
    app.signup("kim@example.com", "buyer").await;
    let wrong = app.login("kim@example.com", "not-the-password").await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(body_json(&wrong), body_json(&unknown));
    assert_eq!(problem_code(&wrong), "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn login_is_rate_limited_per_email() {
    let app = App::with_vars(&[
        ("LOGIN_LIMIT_PER_EMAIL", "3"),
        ("LOGIN_LIMIT_PER_ADDRESS", "100"),
    ])
    .await;
    app.signup("kim@example.com", "buyer").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("kim@example.com", "wrong-password")
                .await
                .status(),
            401
        );
    }
    // Even the right password waits out the window.
    let limited = app.login("KIM@example.com", PASSWORD).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(problem_code(&limited), "RATE_LIMITED");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another email from the same address is still fine.
    app.signup("lee@example.com", "buyer").await;
    assert_eq!(app.login("lee@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn every_spelling_of_an_accounts_email_shares_one_login_counter() {
    let app = App::with_vars(&[
        ("LOGIN_LIMIT_PER_EMAIL", "3"),
        ("LOGIN_LIMIT_PER_ADDRESS", "100"),
    ])
    .await;
    assert_eq!(
        app.signup("victim@example.com", "buyer").await.status(),
        201
    );
    // The lookup (the column's collation) takes each of these for the account's email...
    let right = app.login("vÍctim@example.com", PASSWORD).await;
    assert_eq!(
        right.status(),
        200,
        "accents and case are ignored by the lookup"
    );
    // ...so they all count against the account, however they are spelled.
    for spelling in ["víctim@example.com", "vìctim@example.com \u{200b}"] {
        assert_eq!(app.login(spelling, "wrong-password").await.status(), 401);
    }
    let limited = app.login("VÏCTIM@example.com", PASSWORD).await;
    assert_eq!(limited.status(), 429, "the fourth attempt on one account");
    assert_eq!(problem_code(&limited), "RATE_LIMITED");
}

#[tokio::test]
async fn spellings_of_an_unknown_email_share_one_login_counter() {
    let app = App::with_vars(&[
        ("LOGIN_LIMIT_PER_EMAIL", "3"),
        ("LOGIN_LIMIT_PER_ADDRESS", "100"),
    ])
    .await;
    for spelling in [
        "ghost@example.com",
        "ghóst@example.com",
        "GHÒST@example.com",
    ] {
        assert_eq!(app.login(spelling, PASSWORD).await.status(), 401);
    }
    // An unknown email is answered like a known one, limit included.
    let limited = app.login("ghöst@example.com", PASSWORD).await;
    assert_eq!(problem_code(&limited), "RATE_LIMITED");
}

#[tokio::test]
async fn the_login_lookup_names_the_email_columns_collation() {
    // store::login_lookup keys unknown emails by their weights under utf8mb4_unicode_ci; that must
    // be the collation the lookup and the unique index compare with.
    let app = App::new().await;
    let (collation,): (String,) = sqlx::query_as(
        "SELECT COLLATION_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME = 'email'",
    )
    .fetch_one(&app.ctx.platform.db)
    .await
    .unwrap();
    assert_eq!(collation, "utf8mb4_unicode_ci");
}

#[tokio::test]
async fn an_email_is_taken_in_every_spelling_the_lookup_accepts() {
    let app = App::new().await;
    assert_eq!(
        app.signup("victim@example.com", "buyer").await.status(),
        201
    );
    for spelling in ["víctim@example.com", "VÌCTIM@example.com"] {
        let response = app.signup(spelling, "buyer").await;
        assert_eq!(problem_code(&response), "EMAIL_TAKEN", "{spelling}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn login_is_rate_limited_per_client_address() {
    let app = App::with_vars(&[
        ("LOGIN_LIMIT_PER_EMAIL", "100"),
        ("LOGIN_LIMIT_PER_ADDRESS", "2"),
    ])
    .await;
    let attempt = |email: &'static str, ip: &'static str| {
        ApiRequest::new("POST /auth/login")
            .json(&json!({"email": email, "password": PASSWORD}))
            .source_ip(ip)
    };
    assert_eq!(
        app.call(attempt("a@x.kr", "198.51.100.1")).await.status(),
        401
    );
    assert_eq!(
        app.call(attempt("b@x.kr", "198.51.100.1")).await.status(),
        401
    );
    assert_eq!(
        app.call(attempt("c@x.kr", "198.51.100.1")).await.status(),
        429
    );
    assert_eq!(
        app.call(attempt("c@x.kr", "198.51.100.2")).await.status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_signups_and_logins_is_slowed_down_not_failed_or_unlimited() {
    let app = App::with_vars(&[
        ("LOGIN_LIMIT_PER_EMAIL", "3"),
        ("LOGIN_LIMIT_PER_ADDRESS", "100000"),
        ("SIGNUP_LIMIT_PER_ADDRESS", "100000"),
    ])
    .await;
    assert_eq!(
        app.signup("victim@example.com", "buyer").await.status(),
        201
    );
    let app = &app;
    // 300 buyers sign up and log in at once, on this machine's few cores, while someone guesses
    // one account's password.
    let buyer = |n: usize| async move {
        let email = format!("buyer-{n}@example.com");
        let signup = app.signup(&email, "buyer").await;
        let login = app.login(&email, PASSWORD).await;
        (signup.status().as_u16(), login.status().as_u16())
    };
    let guess = |_| async move {
        app.login("victim@example.com", "wrong-password")
            .await
            .status()
            .as_u16()
    };
    let started = std::time::Instant::now();
    let (buyers, guesses) = tokio::join!(
        futures::future::join_all((0..300).map(buyer)),
        futures::future::join_all((0..30).map(guess)),
    );
    let mut outcomes = std::collections::BTreeMap::<(u16, u16), usize>::new();
    for pair in &buyers {
        *outcomes.entry(*pair).or_default() += 1;
    }
    assert_eq!(
        outcomes,
        std::collections::BTreeMap::from([((201, 200), 300)]),
        "every buyer signed up and logged in, after {:?}",
        started.elapsed()
    );
    let counted = guesses.iter().filter(|status| **status == 401).count();
    let limited = guesses.iter().filter(|status| **status == 429).count();
    assert_eq!((counted, limited), (3, 27), "{guesses:?}");
}

// --- refresh --------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_and_a_replay_revokes_the_family() {
    let app = App::new().await;
    let (_, first) = app.buyer_session("kim@example.com").await;

    let rotated = app.refresh(&first).await;
    assert_eq!(rotated.status(), 200);
    let rotated = body_json(&rotated);
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(
        app.me(rotated["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Replaying the spent token: refused, and the family is revoked...
    let replay = app.refresh(&first).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(problem_code(&replay), "REFRESH_TOKEN_REUSED");
    // ...so even the legitimate successor no longer works.
    let successor = app.refresh(&second).await;
    assert_eq!(successor.status(), 401);
    assert_eq!(problem_code(&successor), "INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn a_replay_revokes_only_its_own_family() {
    let app = App::new().await;
    let (_, phone) = app.buyer_session("kim@example.com").await;
    let laptop = body_json(&app.login("kim@example.com", PASSWORD).await)["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.refresh(&phone).await.status(), 200);
    assert_eq!(app.refresh(&phone).await.status(), 401);
    assert_eq!(
        app.refresh(&laptop).await.status(),
        200,
        "the other session lives on"
    );
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_yield_one_pair() {
    let app = App::new().await;
    let (_, token) = app.buyer_session("kim@example.com").await;
    let (a, b) = tokio::join!(app.refresh(&token), app.refresh(&token));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);
}

#[tokio::test]
async fn garbage_refresh_tokens_are_401() {
    let app = App::new().await;
    for token in [
        "",
        "nonsense",
        "abc.def",
        &RefreshToken::new_family().to_token_string(),
    ] {
        let response = app.refresh(token).await;
        assert_eq!(response.status(), 401, "{token}");
        assert_eq!(problem_code(&response), "INVALID_REFRESH_TOKEN");
    }
    let missing = app
        .call(ApiRequest::new("POST /auth/refresh").json(&json!({})))
        .await;
    assert_eq!(missing.status(), 422);
}

// --- logout and token checks ----------------------------------------------------------------

#[tokio::test]
async fn logout_refuses_the_access_token_and_revokes_the_given_family() {
    let app = App::new().await;
    let (access, refresh) = app.buyer_session("kim@example.com").await;
    let response = app
        .call(
            ApiRequest::new("POST /auth/logout")
                .bearer(&access)
                .json(&json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(response.status(), 204);
    let me = app.me(&access).await;
    assert_eq!(me.status(), 401);
    assert_eq!(problem_code(&me), "UNAUTHENTICATED");
    assert_eq!(app.refresh(&refresh).await.status(), 401);
}

#[tokio::test]
async fn logout_without_a_body_keeps_the_refresh_token() {
    let app = App::new().await;
    let (access, refresh) = app.buyer_session("kim@example.com").await;
    assert_eq!(
        app.call(ApiRequest::new("POST /auth/logout").bearer(&access))
            .await
            .status(),
        204
    );
    assert_eq!(app.me(&access).await.status(), 401);
    assert_eq!(app.refresh(&refresh).await.status(), 200);
}

#[tokio::test]
async fn logout_ignores_someone_elses_refresh_token() {
    let app = App::new().await;
    let (kim_access, _) = app.buyer_session("kim@example.com").await;
    let (_, lee_refresh) = app.buyer_session("lee@example.com").await;
    let response = app
        .call(
            ApiRequest::new("POST /auth/logout")
                .bearer(&kim_access)
                .json(&json!({"refresh_token": lee_refresh})),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.refresh(&lee_refresh).await.status(), 200);
}

#[tokio::test]
async fn logout_needs_a_token() {
    let app = App::new().await;
    let response = app.call(ApiRequest::new("POST /auth/logout")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM revoked_access_tokens")
            .await,
        0
    );
}

fn claims_for(user_id: i64, issued: chrono::DateTime<Utc>, audience: &str) -> AccessClaims {
    AccessClaims {
        sub: user_id.to_string(),
        role: Role::Buyer,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: issued.timestamp(),
        exp: (issued + ChronoDuration::minutes(15)).timestamp(),
        iss: "kicksync".into(),
        aud: audience.into(),
    }
}

/// What the hostile-token cases are made from: a live user, and the stack's signing key, so
/// each case can be a token the function accepts but for the one flaw the case names.
struct Forge {
    user_id: i64,
    issuer: String,
    audience: String,
}

impl Forge {
    /// The claims of a token the function accepts.
    fn claims(&self) -> Value {
        let now = Utc::now().timestamp();
        json!({"sub": self.user_id.to_string(), "role": "buyer",
            "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 900,
            "iss": self.issuer, "aud": self.audience})
    }

    /// The claims with one of them changed.
    fn claims_with(&self, name: &str, value: Value) -> Value {
        let mut claims = self.claims();
        claims[name] = value;
        claims
    }

    /// `header` and `claims` signed with HMAC-SHA256 under `secret`, whatever the header says.
    fn signed_with(header: &Value, claims: &Value, secret: &str) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let signature = ring::hmac::sign(&key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Signed with the stack's key, as the function signs.
    fn signed(header: &Value, claims: &Value) -> String {
        Self::signed_with(header, claims, TEST_JWT_SECRET)
    }

    fn hs256() -> Value {
        json!({"alg": "HS256", "typ": "JWT"})
    }

    /// A token the function accepts.
    fn valid(&self) -> String {
        Self::signed(&Self::hs256(), &self.claims())
    }
}

/// A token that must be refused: its name, how it is made, and the answer it gets.
struct HostileToken {
    name: &'static str,
    token: fn(&Forge) -> String,
    status: u16,
    code: &'static str,
}

/// Each made as [`Forge::valid`] is but for the flaw its name says, so each fails alone when
/// the check it covers is gone.
const HOSTILE_TOKENS: &[HostileToken] = &[
    HostileToken {
        name: "expired beyond the clock leeway",
        token: |forge| {
            let exp = Utc::now().timestamp() - shared::auth::LEEWAY_SECS - 60;
            let mut claims = forge.claims_with("exp", json!(exp));
            claims["iat"] = json!(exp - 900);
            Forge::signed(&Forge::hs256(), &claims)
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "for another audience",
        token: |forge| {
            Forge::signed(
                &Forge::hs256(),
                &forge.claims_with("aud", json!("partner-portal")),
            )
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "from another issuer",
        token: |forge| {
            Forge::signed(
                &Forge::hs256(),
                &forge.claims_with("iss", json!("someone-else")),
            )
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "signed with another key",
        token: |forge| {
            Forge::signed_with(
                &Forge::hs256(),
                &forge.claims(),
                "another-secret-another-secret-0123",
            )
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "signature with one bit flipped",
        token: |forge| {
            let token = forge.valid();
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            signature[0] ^= 1;
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "claims raised to admin under the original signature",
        token: |forge| {
            let token = forge.valid();
            let (header, rest) = token.split_once('.').unwrap();
            let (_, signature) = rest.split_once('.').unwrap();
            let claims =
                URL_SAFE_NO_PAD.encode(forge.claims_with("role", json!("admin")).to_string());
            format!("{header}.{claims}.{signature}")
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "alg none without a signature",
        token: |forge| {
            let signed = Forge::signed(&json!({"alg": "none", "typ": "JWT"}), &forge.claims());
            let (unsigned, _) = signed.rsplit_once('.').unwrap();
            format!("{unsigned}.")
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "alg none over a good HS256 signature",
        token: |forge| Forge::signed(&json!({"alg": "none", "typ": "JWT"}), &forge.claims()),
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "alg HS512 over a good HS256 signature",
        token: |forge| Forge::signed(&json!({"alg": "HS512", "typ": "JWT"}), &forge.claims()),
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "no alg over a good HS256 signature",
        token: |forge| Forge::signed(&json!({"typ": "JWT"}), &forge.claims()),
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "without an exp claim",
        token: |forge| {
            let mut claims = forge.claims();
            claims.as_object_mut().unwrap().remove("exp");
            Forge::signed(&Forge::hs256(), &claims)
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "a subject that is no user id",
        token: |forge| Forge::signed(&Forge::hs256(), &forge.claims_with("sub", json!("kim"))),
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "header and claims without a signature part",
        token: |forge| {
            let token = forge.valid();
            let (signed, _) = token.rsplit_once('.').unwrap();
            signed.to_owned()
        },
        status: 401,
        code: "UNAUTHENTICATED",
    },
    HostileToken {
        name: "not a JWT",
        token: |_| "not.a.jwt".to_owned(),
        status: 401,
        code: "UNAUTHENTICATED",
    },
];

#[tokio::test]
async fn hostile_tokens_are_refused_each_for_its_own_flaw() {
    let app = App::new().await;
    let (access, _) = app.buyer_session("kim@example.com").await;
    let auth = &app.ctx.platform.config.auth;
    let forge = Forge {
        user_id: body_json(&app.me(&access).await)["id"].as_i64().unwrap(),
        issuer: auth.issuer.clone(),
        audience: auth.audience.clone(),
    };
    // The forge's own token is accepted, so each case below is refused for its flaw alone.
    let valid = app.me(&forge.valid()).await;
    assert_eq!(valid.status(), 200, "{:?}", body_json(&valid));

    let mut wrong = Vec::new();
    for case in HOSTILE_TOKENS {
        let response = app.me(&(case.token)(&forge)).await;
        let answer = (response.status().as_u16(), problem_code(&response));
        if answer != (case.status, case.code.to_owned()) {
            wrong.push(format!(
                "{}: answered {answer:?}, not ({}, {:?})",
                case.name, case.status, case.code
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn requests_without_a_bearer_token_are_401() {
    let app = App::new().await;
    let basic = app
        .call(ApiRequest::new("GET /auth/me").header("authorization", "Basic a2ltOnB3"))
        .await;
    assert_eq!(basic.status(), 401);
    assert_eq!(problem_code(&basic), "UNAUTHENTICATED");
    let none = app.call(ApiRequest::new("GET /auth/me")).await;
    assert_eq!(none.status(), 401);
    assert_eq!(problem_code(&none), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_logged_out_token_stays_refused_for_as_long_as_it_would_be_accepted() {
    let app = App::new().await;
    let (access, _) = app.buyer_session("kim@example.com").await;
    let user_id = body_json(&app.me(&access).await)["id"].as_i64().unwrap();
    // Expired two seconds ago, so still accepted for three more (the clock leeway is 5 s).
    let claims = claims_for(
        user_id,
        Utc::now() - ChronoDuration::minutes(15) - ChronoDuration::seconds(2),
        "kicksync-api",
    );
    let token = app.ctx.platform.tokens.sign(&claims).unwrap();
    assert_eq!(app.me(&token).await.status(), 200, "within the leeway");
    let logout = app
        .call(ApiRequest::new("POST /auth/logout").bearer(&token))
        .await;
    assert_eq!(logout.status(), 204);

    // Both copies of the blacklist keep the entry until exp + leeway.
    let accepted_until = claims.exp + 5;
    let mut connection = app.ctx.platform.redis.connection().await.unwrap();
    let entry = app
        .ctx
        .platform
        .redis
        .key(&format!("bl:{{u{user_id}}}:{}", claims.jti));
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&entry)
        .query_async(&mut connection)
        .await
        .unwrap();
    let left_ms = accepted_until * 1000 - Utc::now().timestamp_millis();
    assert!(
        ttl_ms >= left_ms,
        "entry lives {ttl_ms} ms, the token {left_ms} ms"
    );
    let (stored,): (chrono::DateTime<Utc>,) =
        sqlx::query_as("SELECT expires_at FROM revoked_access_tokens WHERE jti = ?")
            .bind(&claims.jti)
            .fetch_one(&app.ctx.platform.db)
            .await
            .unwrap();
    assert!(stored.timestamp() >= accepted_until, "{stored}");

    // Past exp, still inside the leeway: refused, through Redis and through MySQL alike.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(app.me(&token).await.status(), 401);
    let _: () = redis::cmd("DEL")
        .arg(&entry)
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(
            app.ctx
                .platform
                .redis
                .loaded_flag(shared::adapters::redis::LOADED_BLACKLIST, user_id),
        )
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(app.me(&token).await.status(), 401, "MySQL refuses it too");
}

#[tokio::test]
async fn the_blacklist_survives_a_redis_restart() {
    let app = App::new().await;
    let (access, _) = app.buyer_session("kim@example.com").await;
    let user_id = body_json(&app.me(&access).await)["id"].as_i64().unwrap();
    app.call(ApiRequest::new("POST /auth/logout").bearer(&access))
        .await;

    // Redis keeps nothing on disk: a restart loses every key. Simulate it for our prefix.
    let mut connection = app.ctx.platform.redis.connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.ctx.redis_prefix))
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();

    assert_eq!(app.me(&access).await.status(), 401, "reloaded from MySQL");
    let reloaded: bool = redis::cmd("EXISTS")
        .arg(
            app.ctx
                .platform
                .redis
                .loaded_flag(shared::adapters::redis::LOADED_BLACKLIST, user_id),
        )
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(reloaded);
}

/// The test's database, with a Redis server of its own (for faults injected with `CONFIG SET`).
fn deps_on(app: &App, redis: &PrivateRedis) -> Deps {
    let store = RedisStore::with_prefix(&redis.url(), &app.ctx.redis_prefix).unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        store,
    );
    Deps::new(&platform)
}

/// Signs a buyer up and logs in through `deps`; the access token.
async fn session_on(deps: &Deps, email: &str) -> String {
    let signup = json!({"email": email, "password": PASSWORD, "name": "Kim", "role": "buyer"});
    let created = handle(
        deps,
        ApiRequest::new("POST /auth/signup").json(&signup).build(),
    )
    .await;
    assert_eq!(created.status(), 201);
    let credentials = json!({"email": email, "password": PASSWORD});
    let login = handle(
        deps,
        ApiRequest::new("POST /auth/login")
            .json(&credentials)
            .build(),
    )
    .await;
    assert_eq!(login.status(), 200);
    body_json(&login)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_logout_redis_refused_to_record_still_refuses_the_token() {
    let app = App::new().await;
    let redis = PrivateRedis::start();
    let deps = deps_on(&app, &redis);
    let access = session_on(&deps, "kim@example.com").await;
    let me = |token: &str| handle(&deps, ApiRequest::new("GET /auth/me").bearer(token).build());
    // The first check loads the user's blacklist: from now on Redis vouches for the user's tokens
    // it does not list.
    let answer = me(&access).await;
    assert_eq!(answer.status(), 200);
    let user_id = body_json(&answer)["id"].as_i64().unwrap();
    let flag = deps
        .platform
        .redis
        .loaded_flag(shared::adapters::redis::LOADED_BLACKLIST, user_id);
    assert_eq!(redis.command(&["EXISTS", &flag]), redis::Value::Int(1));

    // Out of memory: Redis refuses every write that would grow it (deleting still works).
    redis.command(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    redis.command(&["CONFIG", "SET", "maxmemory", "1"]);
    let logout = handle(
        &deps,
        ApiRequest::new("POST /auth/logout").bearer(&access).build(),
    )
    .await;
    assert_eq!(logout.status(), 204, "recorded in MySQL");
    assert_eq!(
        redis.command(&["EXISTS", &flag]),
        redis::Value::Int(0),
        "Redis no longer vouches"
    );
    assert_eq!(me(&access).await.status(), 401, "MySQL is asked");
}

#[tokio::test]
async fn a_logout_redis_can_neither_record_nor_disown_is_503() {
    let app = App::new().await;
    let redis = PrivateRedis::start();
    let deps = deps_on(&app, &redis);
    let access = session_on(&deps, "kim@example.com").await;
    let logout = || {
        handle(
            &deps,
            ApiRequest::new("POST /auth/logout").bearer(&access).build(),
        )
    };
    assert_eq!(
        handle(
            &deps,
            ApiRequest::new("GET /auth/me").bearer(&access).build()
        )
        .await
        .status(),
        200
    );

    // A read-only replica (its primary unreachable) refuses every write, deletes included.
    redis.command(&["REPLICAOF", "127.0.0.1", "1"]);
    let refused = logout().await;
    assert_eq!(refused.status(), 503, "the logout cannot be promised");
    assert_eq!(problem_code(&refused), "UNAVAILABLE");

    // Once Redis takes writes again, logging out again works (the token is still valid there).
    redis.command(&["REPLICAOF", "NO", "ONE"]);
    assert_eq!(logout().await.status(), 204);
    assert_eq!(
        handle(
            &deps,
            ApiRequest::new("GET /auth/me").bearer(&access).build()
        )
        .await
        .status(),
        401
    );
}

#[tokio::test]
async fn with_redis_down_tokens_are_checked_against_mysql() {
    let app = App::new().await;
    let (logged_out, _) = app.buyer_session("kim@example.com").await;
    let (still_valid, _) = app.buyer_session("lee@example.com").await;
    app.call(ApiRequest::new("POST /auth/logout").bearer(&logged_out))
        .await;

    // The same database, but Redis unreachable (nothing listens on port 1).
    let dead_redis = RedisStore::with_prefix("redis://127.0.0.1:1", &app.ctx.redis_prefix).unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        dead_redis,
    );
    let deps = Deps::new(&platform);
    let me = |token: &str| handle(&deps, ApiRequest::new("GET /auth/me").bearer(token).build());
    assert_eq!(me(&logged_out).await.status(), 401);
    assert_eq!(me(&still_valid).await.status(), 200);
    // Login cannot store a refresh token: a clear 503, not a crash.
    let login = handle(
        &deps,
        ApiRequest::new("POST /auth/login")
            .json(&json!({"email": "kim@example.com", "password": PASSWORD}))
            .build(),
    )
    .await;
    assert_eq!(login.status(), 503);
    // Health says so.
    let health = body_json(&handle(&deps, ApiRequest::new("GET /health").build()).await);
    assert_eq!(health["status"], "degraded");
}

#[tokio::test]
async fn with_redis_unreachable_the_limits_still_hold() {
    let app = App::with_vars(&[
        ("LOGIN_LIMIT_PER_EMAIL", "3"),
        ("LOGIN_LIMIT_PER_ADDRESS", "5"),
        ("SIGNUP_LIMIT_PER_ADDRESS", "2"),
    ])
    .await;
    app.signup("kim@example.com", "buyer").await;
    let dead_redis = RedisStore::with_prefix("redis://127.0.0.1:1", &app.ctx.redis_prefix).unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        dead_redis,
    );
    let deps = Deps::new(&platform);
    let login = |email: &str, ip: &str| {
        handle(
            &deps,
            ApiRequest::new("POST /auth/login")
                .json(&json!({"email": email, "password": "wrong-password"}))
                .source_ip(ip)
                .build(),
        )
    };
    // Per account: three attempts, then refused with a wait.
    for _ in 0..3 {
        assert_eq!(login("kim@example.com", "198.51.100.1").await.status(), 401);
    }
    let limited = login("KIM@example.com", "198.51.100.2").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(problem_code(&limited), "RATE_LIMITED");
    assert!(limited.headers().contains_key("retry-after"));
    // Per address: 198.51.100.1 made three, two more are allowed.
    for email in ["a@x.kr", "b@x.kr"] {
        assert_eq!(login(email, "198.51.100.1").await.status(), 401);
    }
    assert_eq!(login("c@x.kr", "198.51.100.1").await.status(), 429);
    // Sign-ups per address (they need no Redis otherwise).
    let signup = |email: &str| {
        handle(
            &deps,
            ApiRequest::new("POST /auth/signup")
                .json(
                    &json!({"email": email, "password": PASSWORD, "name": "Lee", "role": "buyer"}),
                )
                .source_ip("198.51.100.9")
                .build(),
        )
    };
    assert_eq!(signup("lee1@x.kr").await.status(), 201);
    assert_eq!(signup("lee2@x.kr").await.status(), 201);
    assert_eq!(problem_code(&signup("lee3@x.kr").await), "RATE_LIMITED");
}

// --- API Gateway events ---------------------------------------------------------------------

fn event(json: &str) -> Request {
    lambda_http::request::from_str(json).expect("a valid API Gateway v2 event")
}

#[tokio::test]
async fn api_gateway_sample_events_flow_through_the_handler() {
    let app = App::new().await;
    let sample = |json: &str| handle(&app.deps, event(json));
    let health = sample(include_str!("../../../events/auth/health.json")).await;
    assert_eq!(health.status(), 200);
    assert_eq!(body_json(&health)["status"], "ok");

    let signup = sample(include_str!("../../../events/auth/signup.json")).await;
    assert_eq!(signup.status(), 201);
    assert_eq!(body_json(&signup)["email"], "min.ji@example.com");
    let partner = sample(include_str!("../../../events/auth/signup-partner.json")).await;
    assert_eq!(partner.status(), 201);
    assert_eq!(body_json(&partner)["role"], "partner");

    let login = sample(include_str!("../../../events/auth/login.json")).await;
    assert_eq!(login.status(), 200);
    let access = body_json(&login)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let without_token = include_str!("../../../events/auth/me-without-token.json");
    let anonymous = sample(without_token).await;
    assert_eq!(anonymous.status(), 401);
    let me =
        sample(&include_str!("../../../events/auth/me.json").replace("<access token>", &access))
            .await;
    assert_eq!(me.status(), 200);
    assert_eq!(body_json(&me)["email"], "min.ji@example.com");

    let malformed = sample(include_str!("../../../events/auth/refresh-malformed.json")).await;
    assert_eq!(malformed.status(), 400);
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let app = App::new().await;
    let response = app.call(ApiRequest::new("DELETE /auth/me")).await;
    assert_eq!(response.status(), 404);
    assert_eq!(problem_code(&response), "ROUTE_NOT_FOUND");
}

#[tokio::test]
async fn every_auth_route_in_the_table_is_handled() {
    let app = App::new().await;
    for route in shared::routes::routes_of(shared::routes::AUTH) {
        let response = app.call(ApiRequest::new(&route.key())).await;
        assert_ne!(
            response.status(),
            404,
            "{} is in the route table but not handled",
            route.key()
        );
    }
}

/// Whether each of `keys` exists.
async fn exist(app: &App, keys: &[String]) -> Vec<bool> {
    let mut connection = app.ctx.platform.redis.connection().await.unwrap();
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.exists(key);
    }
    pipe.query_async(&mut connection).await.unwrap()
}

/// A drop's first checkouts must not each wait on MySQL to load their buyer's blacklist and
/// idempotency markers into Redis: login and refresh load them, beside each other in the buyer's
/// hash slot, and load them again once that slot lost them.
#[tokio::test]
async fn login_and_refresh_load_the_buyers_flags_into_redis() {
    let app = App::new().await;
    let (access, refresh) = app.buyer_session("kim@example.com").await;
    let user_id = body_json(&app.me(&access).await)["id"].as_i64().unwrap();
    let redis = &app.ctx.platform.redis;
    let flags = [
        redis.loaded_flag(shared::adapters::redis::LOADED_BLACKLIST, user_id),
        redis.loaded_flag(shared::adapters::redis::LOADED_MARKERS, user_id),
    ];
    assert_eq!(exist(&app, &flags).await, [true, true], "loaded at login");

    // The buyer's slot forgets everything (its Redis restarted empty).
    let mut connection = redis.connection().await.unwrap();
    let lost: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*{{u{user_id}}}*", app.ctx.redis_prefix))
        .query_async(&mut connection)
        .await
        .unwrap();
    for key in &lost {
        let () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    assert_eq!(exist(&app, &flags).await, [false, false]);
    assert_eq!(app.refresh(&refresh).await.status(), 200);
    assert_eq!(
        exist(&app, &flags).await,
        [true, true],
        "loaded again at refresh"
    );
}
