//! The orders function against real MariaDB and Redis (including a private Redis that the tests
//! stop and restart).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::{
    adapters::redis::RedisStore,
    domain::auth::Role,
    testing::{ApiRequest, ProductFixture, TestContext, body_json, portone_gateway, problem_code},
};

use super::*;

mod checkout;
mod history;
mod hoarding;
mod limits;
mod races;
mod redis_faults;
mod refunds;
mod replay;
mod sold_out;
mod stale_facts;
mod writes;

struct App {
    ctx: TestContext,
    deps: Deps,
}

impl App {
    async fn new() -> Self {
        Self::with_vars(&[]).await
    }

    async fn with_vars(vars: &[(&str, &str)]) -> Self {
        let ctx = TestContext::with_vars(vars).await;
        let deps = Deps::new(&ctx.platform, portone_gateway(&ctx.platform));
        Self { ctx, deps }
    }

    async fn call(&self, req: ApiRequest) -> Response<Body> {
        handle(&self.deps, req.build()).await
    }

    /// A released product of `partner` with `stock` units at 100,000 KRW (a [`ProductFixture`]).
    async fn product(&self, partner: i64, stock: i32, max_per_buyer: i32) -> i64 {
        self.product_releasing(
            partner,
            stock,
            max_per_buyer,
            Utc::now() - ChronoDuration::minutes(5),
        )
        .await
    }

    async fn product_releasing(
        &self,
        partner: i64,
        stock: i32,
        max_per_buyer: i32,
        release_at: DateTime<Utc>,
    ) -> i64 {
        ProductFixture {
            release_at,
            stock,
            max_per_buyer,
            ..ProductFixture::new(partner)
        }
        .insert(&self.ctx.platform.db)
        .await
    }

    async fn checkout(&self, token: &str, key: impl AsRef<str>, items: Value) -> Response<Body> {
        self.call(
            ApiRequest::new("POST /orders")
                .bearer(token)
                .header("idempotency-key", key.as_ref())
                .json(&json!({"items": items})),
        )
        .await
    }

    async fn scalar(&self, sql: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(&self.ctx.platform.db)
            .await
            .unwrap();
        n
    }

    async fn stock_in_mysql(&self, product: i64) -> i64 {
        let (n,): (i32,) = sqlx::query_as("SELECT stock_remaining FROM products WHERE id = ?")
            .bind(product)
            .fetch_one(&self.ctx.platform.db)
            .await
            .unwrap();
        n.into()
    }

    async fn stock_in_redis(&self, product: i64) -> Option<i64> {
        self.deps.reservations.remaining(product).await.unwrap()
    }

    async fn set_status(&self, order: i64, status: &str) {
        sqlx::query("UPDATE orders SET status = ? WHERE id = ?")
            .bind(status)
            .bind(order)
            .execute(&self.ctx.platform.db)
            .await
            .unwrap();
    }
}

fn one(product: i64) -> Value {
    json!([{"product_id": product, "quantity": 1}])
}

async fn buyers(app: &App, count: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        tokens.push(app.ctx.user(Role::Buyer).await.1);
    }
    tokens
}

async fn assert_exactly_sold(app: &App, product: i64, units: i64) {
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders WHERE status = 'PENDING_PAYMENT'")
            .await,
        units
    );
    let (sold,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM order_items WHERE product_id = ?",
    )
    .bind(product)
    .fetch_one(&app.ctx.platform.db)
    .await
    .unwrap();
    assert_eq!(sold, units, "units in orders");
    assert_eq!(app.stock_in_mysql(product).await, 0, "MySQL agrees");
}

async fn flush_prefix(app: &App) {
    let mut connection = app.ctx.platform.redis.connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.ctx.redis_prefix))
        .query_async(&mut connection)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
}
