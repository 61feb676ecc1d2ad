//! Secrets never reach the logs. A buyer's and a partner's whole story (sign-up, login, listing,
//! checkout, PortOne's webhook and the buyer's "complete", a refund, a refresh and its reuse,
//! wrong passwords, forged tokens, logout) runs against a runner whose logs are captured at every
//! level; none of the passwords, access or refresh tokens, the JWT secret or the PortOne secrets
//! may appear in them. (Every other test of this suite checks its own logs the same way.)

use base64::{Engine, engine::general_purpose::STANDARD};
use fake_portone::{FakeConfig, FakePayment, FakePortOne, SignedWebhook};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use shared::testing::aws::TestAws;

use super::{Hostile, answered, not_a_server_error, refused};

fn webhook_request(h: &Hostile, webhook: &SignedWebhook) -> reqwest::RequestBuilder {
    h.post("/webhooks/portone")
        .header("content-type", "application/json")
        .header("webhook-id", &webhook.id)
        .header("webhook-timestamp", webhook.timestamp.to_string())
        .header("webhook-signature", &webhook.signature)
        .body(webhook.body.clone())
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[tokio::test]
async fn no_password_token_or_secret_is_ever_logged() {
    let api_secret = format!("portone-api-secret-{}", unique());
    let webhook_key = STANDARD.encode(
        [
            *uuid::Uuid::new_v4().as_bytes(),
            *uuid::Uuid::new_v4().as_bytes(),
        ]
        .concat(),
    );
    let webhook_secret = format!("whsec_{webhook_key}");
    let portone = FakePortOne::start(
        "127.0.0.1:0",
        FakeConfig {
            api_secret: api_secret.clone(),
            webhook_secret: webhook_secret.clone(),
            ..FakeConfig::local()
        },
    )
    .await
    .unwrap();
    let aws = TestAws::new(30).await;
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5001".to_owned());
    let base = portone.base_url();
    let h = Hostile::with_vars(&[
        ("PORTONE_API_BASE", base.as_str()),
        ("PORTONE_API_SECRET", api_secret.as_str()),
        ("PORTONE_WEBHOOK_SECRET", webhook_secret.as_str()),
        ("PORTONE_TIMEOUT_MS", "2000"),
        ("IDEMPOTENCY_TABLE", aws.table.as_str()),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ])
    .await;
    h.secret("the PortOne API secret", &api_secret);
    h.secret("the PortOne webhook secret", &webhook_secret);
    h.secret("the PortOne webhook key", &webhook_key);

    // Sign-ups and logins.
    let partner_password = format!("partner-pw-{}", unique());
    let (_, partner_access, _) = h
        .sign_up(&json!({"email": format!("shop-{}@example.com", unique()),
            "password": partner_password, "name": "Kim's Kicks", "role": "partner",
            "business_name": "Kim's Kicks"}))
        .await;
    let buyer_email = format!("buyer-{}@example.com", unique());
    let buyer_password = format!("buyer-pw-{}", unique());
    let (_, access, refresh) = h
        .sign_up(&json!({"email": buyer_email, "password": buyer_password,
            "name": "Min-ji", "role": "buyer"}))
        .await;

    // A listing, a checkout, PortOne's webhook and the buyer's "complete".
    let product = answered(
        h.post("/products")
            .bearer_auth(&partner_access)
            .json(&super::product_body("Air Jordan 1 Low 'Travis Scott'")),
        201,
    )
    .await;
    let checkout = answered(
        h.post("/orders")
            .bearer_auth(&access)
            .header("idempotency-key", unique())
            .json(&json!({"items": [{"product_id": product["id"], "quantity": 1}]})),
        201,
    )
    .await;
    let payment_id = checkout["payment_id"].as_str().unwrap().to_owned();
    let amount = checkout["amount"].as_i64().unwrap();
    portone.record(FakePayment::paid(payment_id.clone(), amount));
    let webhook = portone.webhook("Transaction.Paid", &payment_id);
    let handled = answered(webhook_request(&h, &webhook), 200).await;
    assert_eq!(handled["status"], "HANDLED");
    let completed = answered(
        h.post(&format!("/payments/{payment_id}/complete"))
            .bearer_auth(&access),
        200,
    )
    .await;
    assert_eq!(completed["status"], "PAID");
    assert!(portone.lookups(&payment_id) >= 2, "PortOne was not asked");

    // Webhooks that are not PortOne's, and signed ones about payments that are not ours.
    let mut forged = portone.webhook("Transaction.Paid", &payment_id);
    forged.signature = format!("v1,{}", STANDARD.encode([0_u8; 32]));
    refused(webhook_request(&h, &forged), 401, "INVALID_SIGNATURE").await;
    let mut stale = portone.webhook("Transaction.Paid", &payment_id);
    stale.timestamp -= 3600;
    refused(webhook_request(&h, &stale), 401, "INVALID_SIGNATURE").await;
    refused(
        h.post("/webhooks/portone")
            .header("content-type", "application/json")
            .body(webhook.body.clone()),
        400,
        "MALFORMED_WEBHOOK",
    )
    .await;
    for hostile in ["' OR 1=1 --", "\u{0}", "\u{202E}👟", &"x".repeat(10_000)] {
        let webhook = portone.webhook("Transaction.Paid", hostile);
        let (status, answer) = not_a_server_error(webhook_request(&h, &webhook)).await;
        assert_eq!(
            (status, &answer["status"]),
            (200, &json!("HANDLED")),
            "{answer}"
        );
    }

    // A refund through PortOne.
    let order = checkout["orders"][0]["id"].as_i64().unwrap();
    let cancelled = answered(
        h.post(&format!("/orders/{order}/cancel"))
            .bearer_auth(&access),
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(portone.cancels().len(), 1);

    // A refresh, and the spent token presented again (which revokes its family).
    let tokens = answered(
        h.post("/auth/refresh")
            .json(&json!({"refresh_token": refresh})),
        200,
    )
    .await;
    let (access, refresh_again) = (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    );
    h.access_token(&access);
    h.refresh_token(&refresh_again);
    refused(
        h.post("/auth/refresh")
            .json(&json!({"refresh_token": refresh})),
        401,
        "REFRESH_TOKEN_REUSED",
    )
    .await;

    // Wrong passwords are passwords too (often a real one mistyped).
    for wrong in [format!("{buyer_password}!"), format!("almost-{}", unique())] {
        h.secret("a wrong password", &wrong);
        refused(
            h.post("/auth/login")
                .json(&json!({"email": buyer_email, "password": wrong})),
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    // A wrong type of password is refused without repeating it in the logs.
    let numeric = 90_210_123_456_789_i64;
    h.secret("a password of the wrong type", &numeric.to_string());
    refused(
        h.post("/auth/login")
            .json(&json!({"email": buyer_email, "password": numeric})),
        422,
        "VALIDATION",
    )
    .await;

    // A forged token, and its key.
    let forger_key = format!("forger-key-{}", unique());
    h.secret("the forger's key", &forger_key);
    let claims: Value = json!({"sub": "1", "role": "admin", "jti": unique(),
        "iat": chrono::Utc::now().timestamp(), "exp": chrono::Utc::now().timestamp() + 600,
        "iss": "kicksync", "aud": "kicksync-api"});
    let forged_token = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(forger_key.as_bytes()),
    )
    .unwrap();
    h.access_token(&forged_token);
    refused(
        h.get("/auth/me").bearer_auth(&forged_token),
        401,
        "UNAUTHENTICATED",
    )
    .await;

    // Logout, with the refresh token, then the same token again.
    let relogin = answered(
        h.post("/auth/login")
            .json(&json!({"email": buyer_email, "password": buyer_password})),
        200,
    )
    .await;
    let (access, refresh) = (
        relogin["access_token"].as_str().unwrap().to_owned(),
        relogin["refresh_token"].as_str().unwrap().to_owned(),
    );
    h.access_token(&access);
    h.refresh_token(&refresh);
    answered(
        h.post("/auth/logout")
            .bearer_auth(&access)
            .json(&json!({"refresh_token": refresh})),
        204,
    )
    .await;
    refused(
        h.get("/auth/me").bearer_auth(&access),
        401,
        "UNAUTHENTICATED",
    )
    .await;

    // The capture saw the story at every level it was told at, so its silence about the
    // secrets means something.
    let logs = h.logs();
    for line in [
        "account created",
        "product listed",
        "payment cross-checked with PortOne",
        "webhook for a payment we do not know",
        "spent refresh token presented",
        "access token refused",
        "request refused",
        "logged out",
    ] {
        assert!(logs.contains(line), "no {line:?} in the logs:\n{logs}");
    }
    h.assert_no_secret_logged();
}
