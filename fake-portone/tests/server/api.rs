//! The PortOne routes: authentication, look-ups and cancels with PortOne's errors.

use fake_portone::{FakePayment, FakeStatus};
use reqwest::StatusCode;
use serde_json::json;

use super::*;

#[tokio::test]
async fn requests_without_the_secret_or_with_a_wrong_one_are_unauthorized() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 1000));
    let url = format!("{}/payments/pay-1", fake.base_url());
    let none = client().get(&url).send().await.unwrap();
    assert_error(none, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let wrong = client()
        .get(&url)
        .header("authorization", "PortOne not-the-secret")
        .send()
        .await
        .unwrap();
    assert_error(wrong, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let bearer = client()
        .post(format!("{url}/cancel"))
        .header("authorization", format!("Bearer {SECRET}"))
        .json(&reason("no"))
        .send()
        .await
        .unwrap();
    assert_error(bearer, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Refused requests are logged and counted, and nothing was cancelled.
    let statuses: Vec<_> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(401); 3]);
    assert_eq!(fake.lookups("pay-1"), 2);
    assert!(fake.cancels().is_empty());
}

#[tokio::test]
async fn an_unknown_payment_is_not_found() {
    let fake = start().await;
    let response = get_payment(&fake, "nobody").await;
    assert_error(response, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
    let response = cancel(&fake, "nobody", reason("refund")).await;
    assert_error(response, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
}

#[tokio::test]
async fn a_recorded_paid_payment_is_reported_as_paid() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 150_000));
    let (status, body) = read(get_payment(&fake, "pay-1").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "PAID");
    assert_eq!(body["id"], "pay-1");
    assert_eq!(body["storeId"], "store-local");
    assert_eq!(body["currency"], "KRW");
    assert_eq!(body["version"], "V2");
    assert_eq!(body["amount"]["total"], 150_000);
    assert_eq!(body["amount"]["paid"], 150_000);
    assert_eq!(body["amount"]["cancelled"], 0);
    assert!(body["paidAt"].is_string() && body["transactionId"].is_string());
    assert_eq!(fake.payment("pay-1"), Some(body));
    assert_eq!(fake.lookups("pay-1"), 1);
}

#[tokio::test]
async fn reported_amount_store_and_currency_are_what_the_api_shows() {
    let fake = start().await;
    let odd = FakePayment::paid("pay-1", 150_000)
        .reporting(1_000)
        .store("store-elsewhere")
        .currency("USD");
    fake.record(odd);
    let (_, body) = read(get_payment(&fake, "pay-1").await).await;
    assert_eq!(body["amount"]["total"], 1_000);
    assert_eq!(body["storeId"], "store-elsewhere");
    assert_eq!(body["currency"], "USD");
    // Asking for the configured store does not find another store's payment.
    let scoped = client()
        .get(format!(
            "{}/payments/pay-1?storeId=store-local",
            fake.base_url()
        ))
        .header("authorization", format!("PortOne {SECRET}"))
        .send()
        .await
        .unwrap();
    assert_error(scoped, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
}

#[tokio::test]
async fn a_full_cancel_empties_the_payment_and_a_second_one_conflicts() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 150_000));
    let (status, body) = read(cancel(&fake, "pay-1", reason("sold out")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cancellation = &body["cancellation"];
    assert_eq!(cancellation["status"], "SUCCEEDED");
    assert_eq!(cancellation["totalAmount"], 150_000);
    assert_eq!(cancellation["reason"], "sold out");
    assert!(cancellation["id"].is_string() && cancellation["cancelledAt"].is_string());

    let (_, payment) = read(get_payment(&fake, "pay-1").await).await;
    assert_eq!(payment["status"], "CANCELLED");
    assert_eq!(payment["amount"]["cancelled"], 150_000);
    assert_eq!(payment["cancellations"][0]["id"], cancellation["id"]);

    let again = cancel(&fake, "pay-1", reason("sold out")).await;
    assert_error(again, StatusCode::CONFLICT, "PAYMENT_ALREADY_CANCELLED").await;
    let cancels = fake.cancels();
    assert_eq!(cancels.len(), 1);
    assert_eq!(
        (cancels[0].payment_id.as_str(), cancels[0].amount),
        ("pay-1", 150_000)
    );
}

#[tokio::test]
async fn a_partial_cancel_leaves_the_rest_cancellable() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 150_000));
    let part = json!({ "reason": "one pair refunded", "amount": 50_000 });
    assert_eq!(cancel(&fake, "pay-1", part).await.status(), StatusCode::OK);
    let (_, payment) = read(get_payment(&fake, "pay-1").await).await;
    assert_eq!(payment["status"], "PARTIAL_CANCELLED");
    assert_eq!(payment["amount"]["cancelled"], 50_000);

    let too_much = json!({ "reason": "all", "amount": 100_001 });
    let response = cancel(&fake, "pay-1", too_much).await;
    assert_error(
        response,
        StatusCode::CONFLICT,
        "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT",
    )
    .await;
    let rest = json!({ "reason": "the rest", "currentCancellableAmount": 100_000 });
    let (_, body) = read(cancel(&fake, "pay-1", rest).await).await;
    assert_eq!(body["cancellation"]["totalAmount"], 100_000);
    let (_, payment) = read(get_payment(&fake, "pay-1").await).await;
    assert_eq!(payment["status"], "CANCELLED");
    assert_eq!(payment["cancellations"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn unpaid_payments_cannot_be_cancelled() {
    let fake = start().await;
    for (id, status) in [("ready", FakeStatus::Ready), ("failed", FakeStatus::Failed)] {
        fake.record(FakePayment::paid(id, 1000).status(status));
        let response = cancel(&fake, id, reason("refund")).await;
        assert_error(response, StatusCode::CONFLICT, "PAYMENT_NOT_PAID").await;
    }
    let (_, failed) = read(get_payment(&fake, "failed").await).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(failed["failedAt"].is_string());
    assert!(fake.cancels().is_empty());
}

#[tokio::test]
async fn a_stale_cancellable_amount_is_refused_and_nothing_is_cancelled() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 150_000));
    let stale = json!({ "reason": "refund", "currentCancellableAmount": 100_000 });
    let response = cancel(&fake, "pay-1", stale).await;
    assert_error(
        response,
        StatusCode::CONFLICT,
        "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN",
    )
    .await;
    assert!(fake.cancels().is_empty());
    assert_eq!(fake.payment("pay-1").unwrap()["status"], "PAID");
}

#[tokio::test]
async fn a_bad_cancel_body_is_an_invalid_request() {
    let fake = start().await;
    fake.record(FakePayment::paid("pay-1", 1000));
    for body in [
        json!({}),
        json!({ "reason": "x", "amount": -5 }),
        json!("text"),
    ] {
        let response = cancel(&fake, "pay-1", body).await;
        assert_error(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
    assert_eq!(fake.payment("pay-1").unwrap()["status"], "PAID");
}
