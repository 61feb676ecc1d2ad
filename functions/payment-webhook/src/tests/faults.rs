//! When PortOne fails or is slow we cannot decide: 503, nothing changed, the webhook id given
//! back, and PortOne's retry succeeds.

use std::time::Duration;

use fake_portone::{Fault, FaultTarget};

use super::*;

/// Large enough (a whole `App`) to be boxed by its callers.
async fn assert_retry_succeeds_after(fault: Fault) {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    app.portone.fault(fault);
    let webhook = app
        .portone
        .webhook("Transaction.Paid", &checkout.fixture.payment_id);

    let failed = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(failed.status(), 503, "{:?}", failed.body());
    assert_eq!(problem_code(&failed), "UNAVAILABLE");
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Pending);
    assert_eq!(app.order_statuses(&checkout).await, ["PENDING_PAYMENT"]);

    app.portone.clear_faults();
    let retry = app.call(App::webhook_request(&webhook)).await;
    assert_eq!(retry.status(), 200, "{:?}", retry.body());
    assert_eq!(body_json(&retry)["status"], "HANDLED");
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Paid);
}

#[tokio::test]
async fn portone_answering_5xx_gets_a_503_and_the_retry_succeeds() {
    Box::pin(assert_retry_succeeds_after(Fault::ServerError {
        times: None,
        on: FaultTarget::Get,
    }))
    .await;
}

#[tokio::test]
async fn portone_too_slow_gets_a_503_and_the_retry_succeeds() {
    Box::pin(assert_retry_succeeds_after(Fault::Slow {
        delay: Duration::from_secs(2),
        times: None,
        on: FaultTarget::Get,
    }))
    .await;
}

#[tokio::test]
async fn a_passing_5xx_is_retried_by_the_client_itself() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);
    app.portone.fault(Fault::ServerError {
        times: Some(2),
        on: FaultTarget::Get,
    });
    let response = app.deliver_paid(&checkout).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Paid);
    assert_eq!(app.portone.lookups(&checkout.fixture.payment_id), 3);
}

#[tokio::test]
async fn a_mismatch_whose_cancel_fails_changes_nothing_until_the_retry() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.portone.record(
        FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
            .reporting(1),
    );
    app.portone.fault(Fault::ServerError {
        times: None,
        on: FaultTarget::Cancel,
    });
    let failed = app.deliver_paid(&checkout).await;
    assert_eq!(failed.status(), 503);
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Pending);
    assert_eq!(app.stock_remaining(checkout.product).await, 9);

    app.portone.clear_faults();
    assert_eq!(app.deliver_paid(&checkout).await.status(), 200);
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Failed);
    assert_eq!(app.stock_remaining(checkout.product).await, 10);
}
