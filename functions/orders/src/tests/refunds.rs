//! Cancelling a paid order refunds it through PortOne (the fake one here): that order's amount
//! only, never twice, and nothing changes when PortOne refuses or does not answer.

use std::time::Duration;

use fake_portone::{FakeConfig, FakePayment, FakePortOne, Fault, FaultTarget};
use shared::{adapters::payments, services::payments::Payments};

use super::*;

struct Refunds {
    app: App,
    portone: FakePortOne,
}

/// A paid checkout: its payment id and its orders' ids (one per partner).
struct Paid {
    payment_id: String,
    orders: Vec<i64>,
    token: String,
}

impl Refunds {
    async fn new() -> Self {
        let portone = FakePortOne::start("127.0.0.1:0", FakeConfig::local())
            .await
            .unwrap();
        let base = portone.base_url();
        let app = App::with_vars(&[
            ("PORTONE_API_BASE", base.as_str()),
            ("PORTONE_TIMEOUT_MS", "400"),
        ])
        .await;
        Self { app, portone }
    }

    /// Checks out one unit of each product through the API, then pays at PortOne and lets the
    /// cross-check mark it paid.
    async fn paid_checkout(&self, products: &[i64]) -> Paid {
        let (_, token) = self.app.ctx.user(Role::Buyer).await;
        let items: Vec<Value> = products
            .iter()
            .map(|product| json!({"product_id": product, "quantity": 1}))
            .collect();
        let response = self
            .app
            .checkout(&token, uuid::Uuid::new_v4().to_string(), json!(items))
            .await;
        assert_eq!(response.status(), 201, "{:?}", body_json(&response));
        let body = body_json(&response);
        let payment_id = body["payment_id"].as_str().unwrap().to_owned();
        self.portone.record(FakePayment::paid(
            payment_id.clone(),
            body["amount"].as_i64().unwrap(),
        ));
        let platform = &self.app.ctx.platform;
        let payment = payments::find(&platform.db, &payment_id)
            .await
            .unwrap()
            .unwrap();
        Payments::new(platform, portone_gateway(platform))
            .reconcile(&payment)
            .await
            .unwrap();
        let orders = body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|order| order["id"].as_i64().unwrap())
            .collect();
        Paid {
            payment_id,
            orders,
            token,
        }
    }

    async fn cancel(&self, paid: &Paid, order: i64) -> Response<Body> {
        self.app
            .call(
                ApiRequest::new("POST /orders/{id}/cancel")
                    .path_param("id", &order.to_string())
                    .bearer(&paid.token),
            )
            .await
    }

    async fn payment(&self, paid: &Paid) -> payments::PaymentRow {
        payments::find(&self.app.ctx.platform.db, &paid.payment_id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn order_status(&self, order: i64) -> String {
        sqlx::query_scalar("SELECT status FROM orders WHERE id = ?")
            .bind(order)
            .fetch_one(&self.app.ctx.platform.db)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_paid_order_is_refunded_in_full_and_its_units_come_back() {
    let refunds = Refunds::new().await;
    let (partner, _) = refunds.app.ctx.user(Role::Partner).await;
    let product = refunds.app.product(partner, 5, 1).await;
    let paid = refunds.paid_checkout(&[product]).await;
    assert_eq!(refunds.order_status(paid.orders[0]).await, "PAID");
    assert_eq!(refunds.app.stock_in_mysql(product).await, 4);

    let response = refunds.cancel(&paid, paid.orders[0]).await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
    assert_eq!(body_json(&response)["status"], "CANCELLED");
    let cancels = refunds.portone.cancels();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].amount, 100_000);
    let payment = refunds.payment(&paid).await;
    assert_eq!(payment.status.as_str(), "CANCELLED");
    assert_eq!(payment.cancelled_amount, 100_000);
    assert_eq!(refunds.app.stock_in_mysql(product).await, 5);
    assert_eq!(refunds.app.stock_in_redis(product).await, Some(5));

    // Cancelling it again is refused and refunds nothing more.
    let again = refunds.cancel(&paid, paid.orders[0]).await;
    assert_eq!(problem_code(&again), "INVALID_STATE");
    assert_eq!(refunds.portone.cancels().len(), 1);
}

#[tokio::test]
async fn one_order_of_a_split_payment_refunds_that_orders_amount_only() {
    let refunds = Refunds::new().await;
    let (first_partner, _) = refunds.app.ctx.user(Role::Partner).await;
    let (second_partner, _) = refunds.app.ctx.user(Role::Partner).await;
    let first = refunds.app.product(first_partner, 5, 1).await;
    let second = refunds.app.product(second_partner, 5, 1).await;
    let paid = refunds.paid_checkout(&[first, second]).await;
    assert_eq!(paid.orders.len(), 2);

    assert_eq!(refunds.cancel(&paid, paid.orders[0]).await.status(), 200);
    let payment = refunds.payment(&paid).await;
    assert_eq!(payment.status.as_str(), "PARTIAL_CANCELLED");
    assert_eq!(payment.cancelled_amount, 100_000);
    assert_eq!(refunds.order_status(paid.orders[1]).await, "PAID");
    let theirs = refunds.portone.payment(&paid.payment_id).unwrap();
    assert_eq!(theirs["status"], "PARTIAL_CANCELLED");
    assert_eq!(theirs["amount"]["cancelled"], 100_000);

    assert_eq!(refunds.cancel(&paid, paid.orders[1]).await.status(), 200);
    let payment = refunds.payment(&paid).await;
    assert_eq!(payment.status.as_str(), "CANCELLED");
    assert_eq!(payment.cancelled_amount, 200_000);
    let amounts: Vec<i64> = refunds.portone.cancels().iter().map(|c| c.amount).collect();
    assert_eq!(amounts, [100_000, 100_000]);
}

#[tokio::test]
async fn a_retry_after_a_timed_out_refund_never_refunds_twice() {
    let refunds = Refunds::new().await;
    let (first_partner, _) = refunds.app.ctx.user(Role::Partner).await;
    let (second_partner, _) = refunds.app.ctx.user(Role::Partner).await;
    let first = refunds.app.product(first_partner, 5, 1).await;
    let second = refunds.app.product(second_partner, 5, 1).await;
    let paid = refunds.paid_checkout(&[first, second]).await;

    // PortOne performs the cancel but its answer comes too late for us.
    refunds.portone.fault(Fault::Slow {
        delay: Duration::from_millis(1_500),
        times: Some(1),
        on: FaultTarget::Cancel,
    });
    let timed_out = refunds.cancel(&paid, paid.orders[0]).await;
    assert_eq!(timed_out.status(), 503, "{:?}", body_json(&timed_out));
    assert_eq!(problem_code(&timed_out), "UNAVAILABLE");
    assert_eq!(refunds.order_status(paid.orders[0]).await, "PAID");
    // Let the slow answer finish at the fake.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(refunds.portone.cancels().len(), 1);

    // The buyer retries: PortOne's record shows the refund done, we record it, nothing is sent
    // through twice.
    let retried = refunds.cancel(&paid, paid.orders[0]).await;
    assert_eq!(retried.status(), 200, "{:?}", body_json(&retried));
    assert_eq!(refunds.order_status(paid.orders[0]).await, "CANCELLED");
    assert_eq!(refunds.portone.cancels().len(), 1);
    let payment = refunds.payment(&paid).await;
    assert_eq!(payment.cancelled_amount, 100_000);
    assert_eq!(refunds.app.stock_in_mysql(first).await, 5);
    assert_eq!(refunds.order_status(paid.orders[1]).await, "PAID");
}

#[tokio::test]
async fn portone_down_or_refusing_answers_503_and_changes_nothing() {
    let refunds = Refunds::new().await;
    let (partner, _) = refunds.app.ctx.user(Role::Partner).await;
    let product = refunds.app.product(partner, 5, 1).await;
    let paid = refunds.paid_checkout(&[product]).await;

    refunds.portone.fault(Fault::ServerError {
        times: None,
        on: FaultTarget::Cancel,
    });
    let response = refunds.cancel(&paid, paid.orders[0]).await;
    assert_eq!(response.status(), 503, "{:?}", body_json(&response));
    assert_eq!(problem_code(&response), "UNAVAILABLE");
    assert_eq!(refunds.order_status(paid.orders[0]).await, "PAID");
    assert_eq!(refunds.payment(&paid).await.cancelled_amount, 0);
    assert_eq!(refunds.app.stock_in_mysql(product).await, 4);
    assert!(refunds.portone.cancels().is_empty());

    refunds.portone.clear_faults();
    assert_eq!(refunds.cancel(&paid, paid.orders[0]).await.status(), 200);
    assert_eq!(refunds.portone.cancels().len(), 1);
}

#[tokio::test]
async fn a_shipped_order_is_not_refunded() {
    let refunds = Refunds::new().await;
    let (partner, _) = refunds.app.ctx.user(Role::Partner).await;
    let product = refunds.app.product(partner, 5, 1).await;
    let paid = refunds.paid_checkout(&[product]).await;
    refunds.app.set_status(paid.orders[0], "SHIPPED").await;
    let response = refunds.cancel(&paid, paid.orders[0]).await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem_code(&response), "INVALID_STATE");
    assert!(refunds.portone.cancels().is_empty());
}
