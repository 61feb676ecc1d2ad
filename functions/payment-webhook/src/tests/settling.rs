//! What each of PortOne's answers does to a payment and its orders.

use fake_portone::FakeStatus;

use super::*;

#[tokio::test]
async fn a_payment_paid_as_agreed_makes_the_payment_and_its_orders_paid() {
    let app = App::new().await;
    let checkout = app.checkout(2).await;
    app.pay(&checkout);
    let response = app.deliver_paid(&checkout).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(body_json(&response)["status"], "HANDLED");
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Paid);
    assert_eq!(app.order_statuses(&checkout).await, ["PAID"]);
    // The sold units stay sold.
    assert_eq!(app.stock_remaining(checkout.product).await, 8);
    assert!(app.portone.cancels().is_empty());
}

#[tokio::test]
async fn a_split_checkout_is_paid_in_one_transaction() {
    let app = App::new().await;
    let db = &app.ctx.platform.db;
    let (first_partner, _) = app.ctx.user(Role::Partner).await;
    let (second_partner, _) = app.ctx.user(Role::Partner).await;
    let first = ProductFixture::new(first_partner).insert(db).await;
    let second = ProductFixture::new(second_partner).insert(db).await;
    let (buyer, token) = app.ctx.user(Role::Buyer).await;
    let fixture = CheckoutFixture::insert(db, buyer, &[(first, 1), (second, 1)]).await;
    assert_eq!(fixture.order_ids.len(), 2);
    let checkout = Checkout {
        fixture,
        product: first,
        token,
    };
    app.pay(&checkout);
    assert_eq!(app.deliver_paid(&checkout).await.status(), 200);
    assert_eq!(app.order_statuses(&checkout).await, ["PAID", "PAID"]);
}

/// PortOne's record disagrees with the checkout: it is cancelled in full at PortOne, the orders
/// fail and the units come back.
async fn assert_mismatch_is_cancelled(payment: impl FnOnce(&Checkout) -> FakePayment) {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.portone.record(payment(&checkout));
    let response = app.deliver_paid(&checkout).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Failed);
    assert_eq!(app.order_statuses(&checkout).await, ["PAYMENT_FAILED"]);
    assert_eq!(app.stock_remaining(checkout.product).await, 10);
    let cancels = app.portone.cancels();
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(cancels[0].payment_id, checkout.fixture.payment_id);
    let theirs = app.portone.payment(&checkout.fixture.payment_id).unwrap();
    assert_eq!(theirs["status"], "CANCELLED");

    // A copy of the webhook later changes nothing and cancels nothing again.
    assert_eq!(app.deliver_paid(&checkout).await.status(), 200);
    assert_eq!(app.portone.cancels().len(), 1);
    assert_eq!(app.stock_remaining(checkout.product).await, 10);
}

#[tokio::test]
async fn a_wrong_amount_is_cancelled_and_the_units_come_back() {
    assert_mismatch_is_cancelled(|checkout| {
        FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
            .reporting(1_000)
    })
    .await;
}

#[tokio::test]
async fn a_wrong_currency_is_cancelled_and_the_units_come_back() {
    assert_mismatch_is_cancelled(|checkout| {
        FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
            .currency("USD")
    })
    .await;
}

#[tokio::test]
async fn a_payment_in_another_store_is_cancelled_and_the_units_come_back() {
    assert_mismatch_is_cancelled(|checkout| {
        FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
            .store("store-of-someone-else")
    })
    .await;
}

#[tokio::test]
async fn a_payment_not_yet_paid_changes_nothing() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    for status in [
        FakeStatus::Ready,
        FakeStatus::PayPending,
        FakeStatus::VirtualAccountIssued,
    ] {
        app.portone.record(
            FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
                .status(status),
        );
        let response = app.deliver_paid(&checkout).await;
        assert_eq!(response.status(), 200);
        assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Pending);
        assert_eq!(app.order_statuses(&checkout).await, ["PENDING_PAYMENT"]);
    }
    assert_eq!(app.stock_remaining(checkout.product).await, 9);
}

#[tokio::test]
async fn a_failed_payment_ends_the_orders_and_returns_the_units_once() {
    let app = App::new().await;
    let checkout = app.checkout(3).await;
    app.portone.record(
        FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
            .status(FakeStatus::Failed),
    );
    for _ in 0..2 {
        let webhook = app
            .portone
            .webhook("Transaction.Failed", &checkout.fixture.payment_id);
        assert_eq!(app.call(App::webhook_request(&webhook)).await.status(), 200);
    }
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Failed);
    assert_eq!(app.order_statuses(&checkout).await, ["PAYMENT_FAILED"]);
    assert_eq!(app.stock_remaining(checkout.product).await, 10);
}

#[tokio::test]
async fn a_payment_cancelled_before_it_was_paid_cancels_the_orders() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.portone.record(
        FakePayment::paid(checkout.fixture.payment_id.clone(), checkout.fixture.amount)
            .status(FakeStatus::Cancelled),
    );
    let webhook = app
        .portone
        .webhook("Transaction.Cancelled", &checkout.fixture.payment_id);
    assert_eq!(app.call(App::webhook_request(&webhook)).await.status(), 200);
    assert_eq!(
        app.payment_status(&checkout).await,
        PaymentStatus::Cancelled
    );
    assert_eq!(app.order_statuses(&checkout).await, ["CANCELLED"]);
    assert_eq!(app.stock_remaining(checkout.product).await, 10);
}

#[tokio::test]
async fn unknown_types_and_unknown_payments_are_acknowledged_and_change_nothing() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    app.pay(&checkout);

    let other = app
        .portone
        .webhook("BillingKey.Issued", &checkout.fixture.payment_id);
    let response = app.call(App::webhook_request(&other)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["status"], "IGNORED");

    app.portone.record(FakePayment::paid("pay_not_ours", 5_000));
    let stranger = app.portone.webhook("Transaction.Paid", "pay_not_ours");
    let response = app.call(App::webhook_request(&stranger)).await;
    assert_eq!(response.status(), 200);

    assert_eq!(app.portone.lookups(&checkout.fixture.payment_id), 0);
    assert_eq!(app.payment_status(&checkout).await, PaymentStatus::Pending);
    assert!(app.portone.cancels().is_empty());
}

#[tokio::test]
async fn a_payment_after_expiry_is_refunded_in_full() {
    let app = App::new().await;
    let checkout = app.checkout(1).await;
    // The sweeper got there first: ten minutes passed and nobody had paid.
    let order = payments::orders_of(&app.ctx.platform.db, &checkout.fixture.payment_id)
        .await
        .unwrap()
        .remove(0);
    let lifecycle = shared::services::order_lifecycle::OrderLifecycle::of(&app.ctx.platform);
    assert!(
        lifecycle
            .release(
                &order,
                shared::domain::order::OrderStatus::Expired,
                chrono::Utc::now()
            )
            .await
            .unwrap()
    );
    assert_eq!(app.stock_remaining(checkout.product).await, 10);

    app.pay(&checkout);
    assert_eq!(app.deliver_paid(&checkout).await.status(), 200);
    assert_eq!(app.order_statuses(&checkout).await, ["EXPIRED"]);
    let cancels = app.portone.cancels();
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(cancels[0].amount, checkout.fixture.amount);
    let ours = payments::find(&app.ctx.platform.db, &checkout.fixture.payment_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ours.status, PaymentStatus::Expired);
    assert_eq!(ours.cancelled_amount, checkout.fixture.amount);
    // The units were not taken again, and a second copy refunds nothing more.
    assert_eq!(app.stock_remaining(checkout.product).await, 10);
    assert_eq!(app.deliver_paid(&checkout).await.status(), 200);
    assert_eq!(app.portone.cancels().len(), 1);
}
