//! Webhooks: delivered to a receiver, repeated on request, and verifiable with KickSync's own
//! verification code.

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use fake_portone::{FakeConfig, FakePayment, FakePortOne, FakeStatus, SignedWebhook};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::webhook::{SignedHeaders, WebhookSecret, verify};

use super::*;

/// What a receiver saw: the three signature headers, the content type and the raw body.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        let value = headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        value.unwrap_or_default()
    };
    inbox.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    StatusCode::OK
}

/// A receiver on a free port: its URL and what it has received.
async fn receiver() -> (String, Inbox) {
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/webhooks/portone", post(receive))
        .with_state(Arc::clone(&inbox));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/portone", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

fn secret() -> WebhookSecret {
    WebhookSecret::new(&FakeConfig::local().webhook_secret).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn assert_verifies(id: &str, timestamp: &str, signature: &str, body: &str) {
    let headers = SignedHeaders {
        id: Some(id),
        timestamp: Some(timestamp),
        signature: Some(signature),
    };
    assert_eq!(verify(&secret(), headers, body.as_bytes(), now()), Ok(()));
}

fn assert_webhook_verifies(webhook: &SignedWebhook) {
    let timestamp = webhook.timestamp.to_string();
    assert_verifies(&webhook.id, &timestamp, &webhook.signature, &webhook.body);
}

#[tokio::test]
async fn a_recorded_payment_is_announced_twice_with_one_signed_message() {
    let (url, inbox) = receiver().await;
    let config = FakeConfig {
        webhook_url: Some(url),
        ..FakeConfig::local()
    };
    let fake = FakePortOne::start("127.0.0.1:0", config).await.unwrap();
    let record = json!({ "paymentId": "pay-1", "amount": 150_000, "webhookCopies": 2 });
    let response = client()
        .post(format!("{}/_fake/payments", fake.base_url()))
        .json(&record)
        .send()
        .await
        .unwrap();
    let (status, answer) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let deliveries = &answer["webhook"]["deliveries"];
    assert_eq!(deliveries, &json!([{ "status": 200 }, { "status": 200 }]));

    let received = inbox.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0], received[1],
        "the same message, delivered twice"
    );
    let first = &received[0];
    assert_eq!(first.id, answer["webhook"]["id"]);
    assert_eq!(first.body, answer["webhook"]["body"]);
    assert!(first.id.starts_with("msg_"));
    assert_eq!(first.content_type, "application/json");
    assert_verifies(&first.id, &first.timestamp, &first.signature, &first.body);

    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["type"], "Transaction.Paid");
    assert!(body["timestamp"].is_string());
    assert_eq!(body["data"]["paymentId"], "pay-1");
    assert_eq!(body["data"]["storeId"], "store-local");
    let payment = fake.payment("pay-1").unwrap();
    assert_eq!(body["data"]["transactionId"], payment["transactionId"]);
}

#[tokio::test]
async fn without_a_webhook_url_the_signed_webhook_is_returned_but_not_sent() {
    let fake = start().await;
    let record = json!({ "paymentId": "pay-1", "amount": 1000, "status": "FAILED" });
    let response = client()
        .post(format!("{}/_fake/payments", fake.base_url()))
        .json(&record)
        .send()
        .await
        .unwrap();
    let (_, answer) = read(response).await;
    let webhook = &answer["webhook"];
    assert_eq!(webhook["deliveries"], json!([]));
    let body: Value = serde_json::from_str(webhook["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "Transaction.Failed");
    assert_verifies(
        webhook["id"].as_str().unwrap(),
        &webhook["timestamp"].to_string(),
        webhook["signature"].as_str().unwrap(),
        webhook["body"].as_str().unwrap(),
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_reported_not_fatal() {
    // Nothing listens on the receiver's port once its listener is gone.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/portone", listener.local_addr().unwrap());
    drop(listener);
    let config = FakeConfig {
        webhook_url: Some(url),
        ..FakeConfig::local()
    };
    let fake = FakePortOne::start("127.0.0.1:0", config).await.unwrap();
    let record = json!({ "paymentId": "pay-1", "amount": 1000 });
    let response = client()
        .post(format!("{}/_fake/payments", fake.base_url()))
        .json(&record)
        .send()
        .await
        .unwrap();
    let (status, answer) = read(response).await;
    assert_eq!(status, StatusCode::CREATED);
    let delivery = &answer["webhook"]["deliveries"][0];
    assert_eq!(delivery["status"], json!(null));
    assert!(delivery["error"].is_string(), "{delivery}");
}

#[tokio::test]
async fn webhook_signs_now_for_known_and_unknown_payments() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 1000).status(FakeStatus::Cancelled));
    let cancelled = fake.webhook("Transaction.Cancelled", "pay-1");
    assert_webhook_verifies(&cancelled);
    assert!((cancelled.timestamp - now()).abs() <= 5);
    let body: Value = serde_json::from_str(&cancelled.body).unwrap();
    assert_eq!(body["type"], "Transaction.Cancelled");
    assert!(body["data"]["cancellationId"].is_string());

    let unknown = fake.webhook("Transaction.Paid", "nobody");
    assert_webhook_verifies(&unknown);
    let body: Value = serde_json::from_str(&unknown.body).unwrap();
    assert_eq!(body["data"]["paymentId"], "nobody");
    assert_eq!(body["data"]["storeId"], "store-local");
    assert_ne!(cancelled.id, unknown.id);
}
