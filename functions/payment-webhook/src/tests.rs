//! The payment-webhook function against real MariaDB, Redis, moto (the webhook ids) and the
//! workspace's fake PortOne, each test with its own database, key prefix, table and fake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use fake_portone::{FakeConfig, FakePayment, FakePortOne, SignedWebhook};
use lambda_http::{Body, Response};
use shared::{
    adapters::{payments, portone::PortOneClient},
    domain::{auth::Role, payment::PaymentStatus},
    testing::{
        ApiRequest, CheckoutFixture, ProductFixture, TestContext, aws::TestAws, body_json,
        problem_code,
    },
};

use super::*;

mod complete;
mod delivery;
mod faults;
mod settling;
mod signatures;

/// How long the tests let one PortOne call take: short, so timeouts are quick to provoke.
const PORTONE_TIMEOUT_MS: &str = "400";

struct App {
    ctx: TestContext,
    /// The webhook-id table, deleted when the test ends.
    _aws: TestAws,
    portone: FakePortOne,
    deps: Deps,
}

impl App {
    async fn new() -> Self {
        let portone = FakePortOne::start("127.0.0.1:0", FakeConfig::local())
            .await
            .unwrap();
        let aws = TestAws::new(30).await;
        let base = portone.base_url();
        let ctx = TestContext::with_vars(&[
            ("PORTONE_API_BASE", base.as_str()),
            ("PORTONE_TIMEOUT_MS", PORTONE_TIMEOUT_MS),
            ("IDEMPOTENCY_TABLE", aws.table.as_str()),
        ])
        .await;
        let gateway = Arc::new(PortOneClient::new(&ctx.platform.config.portone).unwrap());
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk);
        let deps = Deps::new(&ctx.platform, gateway, dynamodb).unwrap();
        Self {
            ctx,
            _aws: aws,
            portone,
            deps,
        }
    }

    async fn call(&self, req: ApiRequest) -> Response<Body> {
        handle(&self.deps, req.build()).await
    }

    /// A buyer with a pending checkout of one product (`quantity` units at 100,000 KRW).
    async fn checkout(&self, quantity: i32) -> Checkout {
        let (partner, _) = self.ctx.user(Role::Partner).await;
        let product = ProductFixture::new(partner)
            .insert(&self.ctx.platform.db)
            .await;
        let (buyer, token) = self.ctx.user(Role::Buyer).await;
        let fixture =
            CheckoutFixture::insert(&self.ctx.platform.db, buyer, &[(product, quantity)]).await;
        Checkout {
            fixture,
            product,
            token,
        }
    }

    /// PortOne records the payment as paid in full, as the buyer's payment window would.
    fn pay(&self, checkout: &Checkout) {
        self.portone.record(FakePayment::paid(
            checkout.fixture.payment_id.clone(),
            checkout.fixture.amount,
        ));
    }

    fn webhook_request(webhook: &SignedWebhook) -> ApiRequest {
        ApiRequest::new("POST /webhooks/portone")
            .header("content-type", "application/json")
            .header("webhook-id", &webhook.id)
            .header("webhook-timestamp", &webhook.timestamp.to_string())
            .header("webhook-signature", &webhook.signature)
            .raw_body(&webhook.body)
    }

    /// Delivers PortOne's signed `Transaction.Paid` webhook for the checkout's payment.
    async fn deliver_paid(&self, checkout: &Checkout) -> Response<Body> {
        let webhook = self
            .portone
            .webhook("Transaction.Paid", &checkout.fixture.payment_id);
        self.call(Self::webhook_request(&webhook)).await
    }

    async fn complete(&self, checkout: &Checkout, token: &str) -> Response<Body> {
        self.call(
            ApiRequest::new("POST /payments/{payment_id}/complete")
                .path_param("payment_id", &checkout.fixture.payment_id)
                .bearer(token),
        )
        .await
    }

    async fn payment_status(&self, checkout: &Checkout) -> PaymentStatus {
        payments::find(&self.ctx.platform.db, &checkout.fixture.payment_id)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    async fn order_statuses(&self, checkout: &Checkout) -> Vec<String> {
        sqlx::query_scalar("SELECT status FROM orders WHERE payment_id = ? ORDER BY id")
            .bind(&checkout.fixture.payment_id)
            .fetch_all(&self.ctx.platform.db)
            .await
            .unwrap()
    }

    async fn stock_remaining(&self, product: i64) -> i32 {
        sqlx::query_scalar("SELECT stock_remaining FROM products WHERE id = ?")
            .bind(product)
            .fetch_one(&self.ctx.platform.db)
            .await
            .unwrap()
    }
}

struct Checkout {
    fixture: CheckoutFixture,
    product: i64,
    /// The buyer's access token.
    token: String,
}

#[tokio::test]
async fn every_route_in_the_table_is_handled() {
    let app = App::new().await;
    for route in shared::routes::routes_of(shared::routes::PAYMENT_WEBHOOK) {
        let response = app.call(ApiRequest::new(&route.key())).await;
        assert_ne!(
            problem_code(&response),
            "ROUTE_NOT_FOUND",
            "{}",
            route.key()
        );
    }
    let unknown = app.call(ApiRequest::new("GET /nope")).await;
    assert_eq!(problem_code(&unknown), "ROUTE_NOT_FOUND");
}
