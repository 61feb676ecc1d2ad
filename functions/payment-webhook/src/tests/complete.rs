//! `POST /payments/{payment_id}/complete`: the buyer's own payments, cross-checked like a webhook.

use super::*;

#[tokio::test]
async fn the_buyer_completes_a_paid_payment() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;

    // Before PortOne knows the payment: still pending, nothing changed.
    let response = app.complete(&checkout, &checkout.token).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(body_json(&response)["status"], "PENDING");

    app.pay(&checkout);
    let response = app.complete(&checkout, &checkout.token).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    let body = body_json(&response);
    assert_eq!(body["payment_id"], checkout.fixture.payment_id.as_str());
    assert_eq!(body["status"], "PAID");
    assert_eq!(body["amount"], checkout.fixture.amount);
    assert_eq!(app.order_statuses(&checkout).await, ["PAID"]);
}

#[tokio::test]
async fn another_buyers_payment_is_not_found_and_untouched() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    let (_, stranger) = app.ctx.user(Role::Buyer).await;
    let response = app.complete(&checkout, &stranger).await;
    assert_eq!(response.status(), 404);
    assert_eq!(problem_code(&response), "PAYMENT_NOT_FOUND");
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Pending);
    assert_eq!(app.portone.lookups(&checkout.fixture.payment_id), 0);

    let unknown = app
        .call(
            ApiRequest::new("POST /payments/{payment_id}/complete")
                .path_param("payment_id", "pay_nobody")
                .bearer(&checkout.token),
        )
        .await;
    assert_eq!(problem_code(&unknown), "PAYMENT_NOT_FOUND");
}

#[tokio::test]
async fn only_a_signed_in_buyer_may_complete() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    let anonymous = app
        .call(
            ApiRequest::new("POST /payments/{payment_id}/complete")
                .path_param("payment_id", &checkout.fixture.payment_id),
        )
        .await;
    assert_eq!(anonymous.status(), 401);
    let (_, partner) = app.ctx.user(Role::Partner).await;
    assert_eq!(app.complete(&checkout, &partner).await.status(), 403);
}

#[tokio::test]
async fn a_mismatch_answers_amount_mismatch_every_time() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.portone.record(
        FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
            .reporting(100),
    );
    for _ in 0..2 {
        let response = app.complete(&checkout, &checkout.token).await;
        assert_eq!(response.status(), 409, "{:?}", response.body());
        assert_eq!(problem_code(&response), "AMOUNT_MISMATCH");
    }
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Failed);
    assert_eq!(app.portone.cancels().len(), 1);
    assert_eq!(app.stock_remaining(checkout.product).await, 10);
}

#[tokio::test]
async fn the_sample_complete_event_flows_through_the_handler() {
    let app = App::new().await;
    let mut event: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../events/payment-webhook/complete.json"
    ))
    .unwrap();
    // A payment of the sample's id does not exist here: the buyer gets a 404, not a 5xx.
    event["headers"]["authorization"] =
        serde_json::json!(format!("Bearer {}", app.ctx.user(Role::Buyer).await.1));
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(&app.deps, request).await;
    assert_eq!(response.status(), 404, "{:?}", response.body());
    assert_eq!(problem_code(&response), "PAYMENT_NOT_FOUND");
}
