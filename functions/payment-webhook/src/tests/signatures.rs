//! Nothing unsigned, tampered with or stale is read: 400/401, PortOne never asked, nothing changed.

use shared::domain::webhook::WebhookSecret;

use super::*;

/// A copy of PortOne's webhook with one thing changed, and the problem code it must get.
async fn assert_refused(app: &App, checkout: &Checkout, req: ApiRequest, status: u16, code: &str) {
    let response = app.call(req).await;
    assert_eq!(response.status(), status, "{:?}", response.body());
    assert_eq!(problem_code(&response), code);
    assert_eq!(app.portone.lookups(&checkout.fixture.payment_id), 0);
    assert_eq!(app.payment_status(checkout).await, PaymentStatus::Pending);
}

#[tokio::test]
async fn forged_tampered_missing_stale_and_future_webhooks_are_refused() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    let genuine = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);

    // Signed with another secret.
    let forger = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let mut forged = genuine.clone();
    forged.signature = forger.sign(&forged.id, forged.timestamp, forged.body.as_bytes());
    assert_refused(
        &app,
        &checkout,
        App::webhook_request(&forged),
        401,
        "INVALID_SIGNATURE",
    )
    .await;

    // The body changed after signing (another payment id).
    let mut tampered = genuine.clone();
    tampered.body = tampered
        .body
        .replace(&checkout.fixture.payment_id, "pay_someone_else");
    assert_refused(
        &app,
        &checkout,
        App::webhook_request(&tampered),
        401,
        "INVALID_SIGNATURE",
    )
    .await;

    // The id changed after signing.
    let mut renamed = genuine.clone();
    renamed.id.push('x');
    assert_refused(
        &app,
        &checkout,
        App::webhook_request(&renamed),
        401,
        "INVALID_SIGNATURE",
    )
    .await;

    // No signature at all.
    let unsigned = ApiRequest::new("POST /webhooks/portone")
        .header("content-type", "application/json")
        .header("webhook-id", &genuine.id)
        .header("webhook-timestamp", &genuine.timestamp.to_string())
        .raw_body(&genuine.body);
    assert_refused(&app, &checkout, unsigned, 400, "MALFORMED_WEBHOOK").await;

    // Correctly signed, but six minutes old, or six minutes ahead.
    let secret = WebhookSecret::new(shared::config::local_portone::WEBHOOK_SECRET).unwrap();
    for shift in [-360, 360] {
        let mut moved = genuine.clone();
        moved.timestamp += shift;
        moved.signature = secret.sign(&moved.id, moved.timestamp, moved.body.as_bytes());
        assert_refused(
            &app,
            &checkout,
            App::webhook_request(&moved),
            401,
            "INVALID_SIGNATURE",
        )
        .await;
    }

    // A timestamp that is not a number.
    let garbled = ApiRequest::new("POST /webhooks/portone")
        .header("content-type", "application/json")
        .header("webhook-id", &genuine.id)
        .header("webhook-timestamp", "yesterday")
        .header("webhook-signature", &genuine.signature)
        .raw_body(&genuine.body);
    assert_refused(&app, &checkout, garbled, 400, "MALFORMED_WEBHOOK").await;

    // The genuine one still works afterwards.
    let response = app.call(App::webhook_request(&genuine)).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Paid);
}

#[tokio::test]
async fn one_valid_signature_among_several_is_enough() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    let mut webhook = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);
    // During a secret rotation: an old key's signature, an unknown version, then the valid one.
    let old = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    webhook.signature = format!(
        "{} v2,bm90LWEtc2lnbmF0dXJl {}",
        old.sign(&webhook.id, webhook.timestamp, webhook.body.as_bytes()),
        webhook.signature
    );
    let response = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(body_json(&response)["status"], "HANDLED");
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Paid);
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_anything_is_read() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    let mut webhook = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);
    webhook.body = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let response = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(response.status(), 413);
    assert_eq!(problem_code(&response), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn the_signed_samples_verify_and_a_captured_copy_cannot_be_replayed() {
    let app = App::new().await;
    let secret = WebhookSecret::new(shared::config::local_portone::WEBHOOK_SECRET).unwrap();
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/payment-webhook");
    for name in ["webhook-paid.json", "webhook-unknown-type.json"] {
        let text = std::fs::read_to_string(format!("{events}/{name}")).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let headers = &event["headers"];
        let body = event["body"].as_str().unwrap();
        let timestamp: i64 = headers["webhook-timestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        // Signed correctly at the moment it was captured...
        shared::domain::webhook::verify(
            &secret,
            shared::domain::webhook::SignedHeaders {
                id: headers["webhook-id"].as_str(),
                timestamp: headers["webhook-timestamp"].as_str(),
                signature: headers["webhook-signature"].as_str(),
            },
            body.as_bytes(),
            timestamp,
        )
        .unwrap();
        // ...and refused when replayed now, as an API Gateway event fed to the handler.
        let request = lambda_http::request::from_str(&text).unwrap();
        let response = handle(&app.deps, request).await;
        assert_eq!(response.status(), 401, "{name}: {:?}", response.body());
        assert_eq!(problem_code(&response), "INVALID_SIGNATURE");
    }
}
