//! The fake driven over HTTP, as the code under test and the scripts drive it: one started server
//! per test, a real client, real JSON.

// The helpers below are test code too: a failed request should fail the test on the spot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod control;
mod faults;
mod webhooks;

use fake_portone::{FakeConfig, FakePortOne};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "local-portone-secret";

async fn start() -> FakePortOne {
    FakePortOne::start("127.0.0.1:0", FakeConfig::local())
        .await
        .unwrap()
}

fn client() -> Client {
    Client::new()
}

/// `GET /payments/{id}` with the right secret.
async fn get_payment(fake: &FakePortOne, id: &str) -> Response {
    client()
        .get(format!("{}/payments/{id}", fake.base_url()))
        .header("authorization", format!("PortOne {SECRET}"))
        .send()
        .await
        .unwrap()
}

/// `POST /payments/{id}/cancel` with the right secret.
async fn cancel(fake: &FakePortOne, id: &str, body: Value) -> Response {
    client()
        .post(format!("{}/payments/{id}/cancel", fake.base_url()))
        .header("authorization", format!("PortOne {SECRET}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The status and JSON body of an answer.
async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Asserts a PortOne error answer: its status and `type`.
async fn assert_error(response: Response, status: StatusCode, kind: &str) {
    let (got, body) = read(response).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["type"], kind, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

fn reason(text: &str) -> Value {
    json!({ "reason": text })
}
