//! The `/_fake/*` routes scripts use: record, read back, reset, and the server's lifecycle.

use fake_portone::FakePayment;
use reqwest::StatusCode;
use serde_json::json;

use super::*;

#[tokio::test]
async fn payments_recorded_over_http_are_served_and_logged() {
    let fake = start().await;
    let base = fake.base_url();
    let health = client()
        .get(format!("{base}/_fake/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let record = json!({
        "paymentId": "pay-1", "amount": 150_000, "status": "VIRTUAL_ACCOUNT_ISSUED",
        "reportedAmount": 149_000, "webhook": false,
    });
    let response = client()
        .post(format!("{base}/_fake/payments"))
        .json(&record)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "VIRTUAL_ACCOUNT_ISSUED");
    assert_eq!(body["webhook"], json!(null));
    let (_, payment) = read(get_payment(&fake, "pay-1").await).await;
    assert_eq!(payment["status"], "VIRTUAL_ACCOUNT_ISSUED");
    assert_eq!(payment["amount"]["total"], 149_000);
    assert_eq!(payment["amount"]["paid"], 0);

    let typo = json!({ "paymentId": "pay-2", "amount": 1, "stauts": "PAID" });
    let response = client()
        .post(format!("{base}/_fake/payments"))
        .json(&typo)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;

    let (_, requests) = read(
        client()
            .get(format!("{base}/_fake/requests"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(requests[0]["path"], "/payments/pay-1");
    assert_eq!(requests[0]["answered"], 200);
    assert!(requests[0]["at"].is_string());
    assert_eq!(
        requests.as_array().map(Vec::len),
        Some(1),
        "control routes are not logged"
    );
}

#[tokio::test]
async fn cancels_are_listed_and_reset_forgets_everything() {
    let fake = start().await;
    let base = fake.base_url();
    fake.record(FakePayment::paid("pay-1", 1000));
    assert_eq!(
        cancel(&fake, "pay-1", reason("refund")).await.status(),
        StatusCode::OK
    );
    let (_, cancels) = read(
        client()
            .get(format!("{base}/_fake/cancels"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(cancels[0]["paymentId"], "pay-1");
    assert_eq!(cancels[0]["amount"], 1000);
    assert_eq!(cancels[0]["reason"], "refund");
    assert!(cancels[0]["at"].is_string());

    let reset = client()
        .post(format!("{base}/_fake/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert!(fake.cancels().is_empty() && fake.requests().is_empty());
    assert_eq!(fake.payment("pay-1"), None);
    let response = get_payment(&fake, "pay-1").await;
    assert_error(response, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
}

#[tokio::test]
async fn a_stopped_fake_refuses_connections() {
    let fake = start().await;
    let base = fake.base_url();
    assert!(
        client()
            .get(format!("{base}/_fake/health"))
            .send()
            .await
            .is_ok()
    );
    fake.stop().await;
    let refused = client().get(format!("{base}/_fake/health")).send().await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn unknown_routes_are_not_found() {
    let fake = start().await;
    let response = client()
        .get(format!("{}/v1/payments", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}
