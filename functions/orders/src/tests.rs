//! The orders function against real MariaDB and Redis (including a private Redis that the tests
//! stop and restart).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashSet,
    process::{Child, Command, Stdio},
};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::{
    adapters::redis::RedisStore,
    domain::auth::Role,
    testing::{ApiRequest, TestContext, body_json},
};

use super::*;

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
        let deps = Deps::new(&ctx.platform);
        Self { ctx, deps }
    }

    async fn call(&self, req: ApiRequest) -> Response<Body> {
        handle(&self.deps, req.build()).await
    }

    /// A released product of `partner` with `stock` units at 100,000 KRW.
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
        let result = sqlx::query(
            "INSERT INTO products (partner_id, name, brand, price, release_at, stock, stock_remaining, max_per_buyer) \
             VALUES (?, 'Travis Scott x Air Jordan 1 Low', 'Jordan', 100000, ?, ?, ?, ?)",
        )
        .bind(partner)
        .bind(release_at)
        .bind(stock)
        .bind(stock)
        .bind(max_per_buyer)
        .execute(&self.ctx.platform.db)
        .await
        .unwrap();
        i64::try_from(result.last_insert_id()).unwrap()
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

fn code(response: &Response<Body>) -> String {
    body_json(response)["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn one(product: i64) -> Value {
    json!([{"product_id": product, "quantity": 1}])
}

// --- checkout -------------------------------------------------------------------------------

#[tokio::test]
async fn a_checkout_of_two_partners_is_two_orders_under_one_payment() {
    let app = App::new().await;
    let (nike, _) = app.ctx.user(Role::Partner).await;
    let (shop, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let a = app.product(nike, 10, 2).await;
    let b = app.product(nike, 10, 2).await;
    let c = app.product(shop, 10, 2).await;
    let response = app
        .checkout(&buyer, "checkout-0001", json!([
            {"product_id": c, "quantity": 1}, {"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 1}
        ]))
        .await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    let body = body_json(&response);
    assert_eq!(body["amount"], 400_000);
    let orders = body["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    let by_partner = |partner: i64| orders.iter().find(|o| o["partner_id"] == partner).unwrap();
    assert_eq!(by_partner(nike)["amount"], 300_000);
    assert_eq!(by_partner(nike)["items"].as_array().unwrap().len(), 2);
    assert_eq!(by_partner(shop)["amount"], 100_000);
    assert!(orders.iter().all(|o| o["status"] == "PENDING_PAYMENT"));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(
        (app.stock_in_mysql(a).await, app.stock_in_redis(a).await),
        (8, Some(8))
    );
    assert_eq!(
        (app.stock_in_mysql(c).await, app.stock_in_redis(c).await),
        (9, Some(9))
    );
    // A several-line checkout stores its answer; a replay sends those very bytes.
    let replay = app
        .checkout(&buyer, "checkout-0001", json!([
            {"product_id": c, "quantity": 1}, {"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 1}
        ]))
        .await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.body().as_ref(), response.body().as_ref());
}

#[tokio::test]
async fn short_stock_is_insufficient_then_sold_out() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, first) = app.ctx.user(Role::Buyer).await;
    let (_, second) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 2, 3).await;
    let too_many = app
        .checkout(
            &first,
            "checkout-0001",
            json!([{"product_id": product, "quantity": 3}]),
        )
        .await;
    assert_eq!(
        (too_many.status().as_u16(), code(&too_many).as_str()),
        (409, "INSUFFICIENT_STOCK")
    );
    let all = app
        .checkout(
            &first,
            "checkout-0002",
            json!([{"product_id": product, "quantity": 2}]),
        )
        .await;
    assert_eq!(all.status(), 201);
    let none_left = app.checkout(&second, "checkout-0003", one(product)).await;
    assert_eq!(
        (none_left.status().as_u16(), code(&none_left).as_str()),
        (409, "SOLD_OUT")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
}

#[tokio::test]
async fn nothing_sells_before_the_release() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app
        .product_releasing(partner, 5, 1, Utc::now() + ChronoDuration::hours(1))
        .await;
    let response = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (409, "NOT_ON_SALE")
    );
    assert_eq!(app.stock_in_mysql(product).await, 5);
    assert_eq!(app.stock_in_redis(product).await, Some(5));
}

#[tokio::test]
async fn the_purchase_limit_counts_earlier_orders() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 10, 1).await;
    let two = app
        .checkout(
            &buyer,
            "checkout-0001",
            json!([{"product_id": product, "quantity": 2}]),
        )
        .await;
    assert_eq!(
        (two.status().as_u16(), code(&two).as_str()),
        (409, "PURCHASE_LIMIT")
    );
    assert_eq!(
        app.checkout(&buyer, "checkout-0002", one(product))
            .await
            .status(),
        201
    );
    let again = app.checkout(&buyer, "checkout-0003", one(product)).await;
    assert_eq!(
        (again.status().as_u16(), code(&again).as_str()),
        (409, "PURCHASE_LIMIT")
    );
    assert_eq!(app.stock_in_mysql(product).await, 9);
    assert_eq!(
        app.stock_in_redis(product).await,
        Some(9),
        "the refused unit went back"
    );
}

#[tokio::test]
async fn one_unavailable_item_fails_the_whole_checkout() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let plenty = app.product(partner, 10, 5).await;
    let scarce = app.product(partner, 1, 5).await;
    let response = app
        .checkout(
            &buyer,
            "checkout-0001",
            json!([
                {"product_id": plenty, "quantity": 2}, {"product_id": scarce, "quantity": 2}
            ]),
        )
        .await;
    assert_eq!(
        (response.status().as_u16(), code(&response).as_str()),
        (409, "INSUFFICIENT_STOCK")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(
        (
            app.stock_in_mysql(plenty).await,
            app.stock_in_redis(plenty).await
        ),
        (10, Some(10))
    );
    assert_eq!(app.stock_in_redis(scarce).await, Some(1));
}

#[tokio::test]
async fn bad_checkouts_are_refused_before_anything_is_reserved() {
    let app = App::new().await;
    let (partner, partner_token) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;

    let anonymous = app
        .call(
            ApiRequest::new("POST /orders")
                .header("idempotency-key", "checkout-0001")
                .json(&json!({"items": one(product)})),
        )
        .await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        app.checkout(&partner_token, "checkout-0001", one(product))
            .await
            .status(),
        403
    );

    let no_key = app
        .call(
            ApiRequest::new("POST /orders")
                .bearer(&buyer)
                .json(&json!({"items": one(product)})),
        )
        .await;
    assert_eq!(
        (no_key.status().as_u16(), code(&no_key).as_str()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );
    let short_key = app.checkout(&buyer, "short", one(product)).await;
    assert_eq!(
        (short_key.status().as_u16(), code(&short_key).as_str()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );

    for items in [
        json!([]),
        json!([{"product_id": product, "quantity": 0}]),
        json!([{"product_id": product}]),
        json!([{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 1}]),
        json!("one"),
    ] {
        let response = app.checkout(&buyer, "checkout-0002", items.clone()).await;
        assert_eq!(
            (response.status().as_u16(), code(&response).as_str()),
            (422, "VALIDATION"),
            "{items}"
        );
    }
    let missing = app.checkout(&buyer, "checkout-0003", one(987_654)).await;
    assert_eq!(
        (missing.status().as_u16(), code(&missing).as_str()),
        (404, "PRODUCT_NOT_FOUND")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(app.stock_in_mysql(product).await, 5);
}

#[tokio::test]
async fn checkout_is_rate_limited_per_buyer() {
    let app = App::with_vars(&[("CHECKOUT_LIMIT_PER_MINUTE", "2")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app
        .product_releasing(partner, 5, 1, Utc::now() + ChronoDuration::hours(1))
        .await;
    for key in ["checkout-0001", "checkout-0002"] {
        assert_eq!(app.checkout(&buyer, key, one(product)).await.status(), 409);
    }
    let limited = app.checkout(&buyer, "checkout-0003", one(product)).await;
    assert_eq!(
        (limited.status().as_u16(), code(&limited).as_str()),
        (429, "RATE_LIMITED")
    );
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_limit_counts_attempts_without_a_key_and_answers_first() {
    // GIVEN a limit of one attempt per minute
    let app = App::with_vars(&[("CHECKOUT_LIMIT_PER_MINUTE", "1")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    let without_key = || {
        app.call(
            ApiRequest::new("POST /orders")
                .bearer(&buyer)
                .json(&json!({"items": one(product)})),
        )
    };

    // WHEN the buyer tries twice without an Idempotency-Key, then once with one
    let first = without_key().await;
    let second = without_key().await;
    let keyed = app.checkout(&buyer, "checkout-0001", one(product)).await;

    // THEN the first is refused for its key, and the limit, counting it, refuses the others
    assert_eq!(
        (first.status().as_u16(), code(&first).as_str()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );
    for limited in [second, keyed] {
        assert_eq!(
            (limited.status().as_u16(), code(&limited).as_str()),
            (429, "RATE_LIMITED")
        );
    }
    assert_eq!(app.stock_in_mysql(product).await, 5);
}

#[tokio::test]
async fn checkouts_and_replays_survive_redis_forgetting_its_scripts() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let forget_scripts = || async {
        let mut connection = app.ctx.platform.redis.connection().await.unwrap();
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut connection)
            .await
            .unwrap();
    };

    forget_scripts().await;
    let first = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(first.status(), 201);
    forget_scripts().await;
    let replay = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(body_json(&replay), body_json(&first));
    let (_, other) = app.ctx.user(Role::Buyer).await;
    forget_scripts().await;
    assert_eq!(
        code(&app.checkout(&other, "checkout-0001", one(product)).await),
        "SOLD_OUT"
    );
}

#[tokio::test]
async fn a_logged_out_token_cannot_check_out() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (buyer_id, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    let claims = app.ctx.platform.tokens.verify(&buyer).unwrap();
    let principal = shared::auth::Principal {
        user_id: buyer_id,
        role: Role::Buyer,
        jti: claims.jti,
        expires_at: claims.exp,
    };
    app.ctx
        .platform
        .authenticator
        .revoke(&principal)
        .await
        .unwrap();

    let refused = app.checkout(&buyer, "checkout-0001", one(product)).await;
    // Redis restarted empty: the blacklist is not loaded, and MySQL answers.
    let redis = &app.ctx.platform.redis;
    let mut connection = redis.connection().await.unwrap();
    let blacklist = shared::adapters::redis::BlacklistCache::new(redis.clone());
    let () = redis::pipe()
        .del(blacklist.entry_key(buyer_id, &principal.jti))
        .del(redis.loaded_flag(shared::adapters::redis::LOADED_BLACKLIST))
        .query_async(&mut connection)
        .await
        .unwrap();
    let refused_after_restart = app.checkout(&buyer, "checkout-0002", one(product)).await;
    let reloaded: bool = redis::cmd("EXISTS")
        .arg(redis.loaded_flag(shared::adapters::redis::LOADED_BLACKLIST))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(reloaded, "the refusal reloaded the blacklist from MySQL");
    let listed: bool = redis::cmd("EXISTS")
        .arg(blacklist.entry_key(buyer_id, &principal.jti))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(listed, "the logged-out token is listed again");

    for refused in [refused, refused_after_restart] {
        assert_eq!(refused.status(), 401);
    }
    assert_eq!(app.stock_in_mysql(product).await, 5);
}

#[tokio::test]
async fn the_look_before_reserving_refuses_exactly_what_the_script_refuses() {
    use shared::adapters::stock::{Reservation, StockFacts, StockReservations};

    let app = App::new().await;
    let reservations = StockReservations::new(app.ctx.platform.redis.clone());
    let now = Utc::now();
    let mut connection = app.ctx.platform.redis.connection().await.unwrap();
    let mut product_id = 0;
    for remaining in 0..=2 {
        for released in [true, false] {
            for max_per_buyer in 1..=2 {
                for quantity in 1..=3 {
                    // GIVEN a counter in this state
                    product_id += 1;
                    let release_at = if released {
                        now - ChronoDuration::minutes(1)
                    } else {
                        now + ChronoDuration::minutes(1)
                    };
                    let facts = StockFacts {
                        remaining,
                        release_at,
                        max_per_buyer,
                        price: 100_000,
                        partner_id: 1,
                    };
                    reservations.load(product_id, &facts).await.unwrap();

                    // WHEN the checkout looks first, then the script runs
                    let mut pipe = redis::pipe();
                    reservations.peek(&mut pipe, product_id);
                    let (peeked,): ((Option<i64>, Option<i64>, Option<i64>),) =
                        pipe.query_async(&mut connection).await.unwrap();
                    let looked = StockReservations::refusal(&peeked, quantity, now);
                    let reserved = reservations
                        .reserve(product_id, quantity, now)
                        .await
                        .unwrap();

                    // THEN the look refuses what the script refuses, and nothing else
                    let case = format!(
                        "remaining {remaining}, released {released}, max {max_per_buyer}, quantity {quantity}"
                    );
                    match looked {
                        Some(refusal) => {
                            assert_eq!(Reservation::Refused(refusal), reserved, "{case}")
                        }
                        None => assert!(matches!(reserved, Reservation::Reserved(_)), "{case}"),
                    }
                }
            }
        }
    }
    let mut pipe = redis::pipe();
    reservations.peek(&mut pipe, product_id + 1);
    let (unloaded,): ((Option<i64>, Option<i64>, Option<i64>),) =
        pipe.query_async(&mut connection).await.unwrap();
    assert_eq!(StockReservations::refusal(&unloaded, 1, now), None);
}

#[tokio::test]
async fn the_last_stock_update_ends_the_transaction_both_ways() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 2, 2).await;
    let db = &app.ctx.platform.db;
    let name = || async {
        let (name,): (String,) = sqlx::query_as("SELECT name FROM products WHERE id = ?")
            .bind(product)
            .fetch_one(db)
            .await
            .unwrap();
        name
    };
    let sell = |quantity: i32, new_name: &'static str| async move {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("UPDATE products SET name = ? WHERE id = ?")
            .bind(new_name)
            .bind(product)
            .execute(&mut *tx)
            .await
            .unwrap();
        let sold = store::sell_and_commit(&mut tx, "pay_missing", b"{}", product, quantity)
            .await
            .unwrap();
        // Seen from another connection before the transaction object is finished with.
        (sold, tx)
    };

    // Three units of two: nothing taken, and the earlier write rolled back with it
    let (short, _tx) = sell(3, "rolled back").await;
    assert_eq!(short, store::Sold::RolledBack { left: 2 });
    assert_eq!(name().await, "Travis Scott x Air Jordan 1 Low");

    // Two of two: taken, and the earlier write committed with it
    let (sold, _tx) = sell(2, "committed").await;
    assert_eq!(sold, store::Sold::Committed { left: 0 });
    assert_eq!(name().await, "committed");
    assert_eq!(app.stock_in_mysql(product).await, 0);

    // A product that is gone: nothing to take
    let mut tx = db.begin().await.unwrap();
    let gone = store::sell_and_commit(&mut tx, "pay_missing", b"{}", product + 1000, 1)
        .await
        .unwrap();
    assert_eq!(gone, store::Sold::RolledBack { left: 0 });
}

#[tokio::test]
async fn a_one_line_sale_commits_whole_or_leaves_nothing() {
    use shared::domain::order::PricedItem;

    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (buyer, _) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 3, 2).await;
    let db = &app.ctx.platform.db;
    let rows = || async {
        (
            app.scalar("SELECT COUNT(*) FROM payments").await,
            app.scalar("SELECT COUNT(*) FROM orders").await,
            app.scalar("SELECT COUNT(*) FROM order_items").await,
            app.scalar(
                "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM buyer_product_purchases",
            )
            .await,
            app.stock_in_mysql(product).await,
        )
    };
    let sell = |buyer_id: i64, key: &'static str, product_id: i64, quantity: i32| async move {
        let payment_id = format!("pay_{key}");
        let payment = store::NewPayment {
            id: &payment_id,
            buyer_id,
            amount: i64::from(quantity) * 100_000,
            idempotency_key: key,
            request_hash: &"0".repeat(64),
            expires_at: Utc::now(),
        };
        let item = PricedItem {
            product_id,
            partner_id: partner,
            quantity,
            unit_price: 100_000,
        };
        let sale = store::OneLineSale {
            payment: &payment,
            item: &item,
            max_per_buyer: 2,
        };
        store::sell_one_line(db, &sale).await
    };

    let Ok(store::OneLineSold::Sold { order_id, left: 2 }) =
        sell(buyer, "key-0001", product, 1).await
    else {
        panic!("the first unit sells");
    };
    assert!(order_id > 0);
    assert_eq!(rows().await, (1, 1, 1, 1, 2));

    // Over the buyer's limit (1 held + 2 > 2): nothing written.
    assert_eq!(
        sell(buyer, "key-0002", product, 2).await.unwrap(),
        store::OneLineSold::OverLimit
    );
    assert_eq!(rows().await, (1, 1, 1, 1, 2));

    // More units than are left: nothing written.
    let (other, _) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        sell(other, "key-0003", product, 2).await.unwrap(),
        store::OneLineSold::Sold {
            order_id: order_id + 1,
            left: 0
        }
    );
    let (third, _) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        sell(third, "key-0004", product, 1).await.unwrap(),
        store::OneLineSold::Short { left: 0 }
    );
    assert_eq!(rows().await, (2, 2, 2, 3, 0));

    // The key again: a unique violation, and nothing written.
    let again = sell(buyer, "key-0001", product, 1).await.unwrap_err();
    assert!(again.as_database_error().unwrap().is_unique_violation());
    assert_eq!(rows().await, (2, 2, 2, 3, 0));

    // A product that is gone: short, nothing written.
    assert_eq!(
        sell(third, "key-0005", product + 1000, 1).await.unwrap(),
        store::OneLineSold::Short { left: 0 }
    );
    assert_eq!(rows().await, (2, 2, 2, 3, 0));
}

#[tokio::test]
async fn of_many_requests_finding_a_set_lost_one_claims_its_reload() {
    let app = App::new().await;
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let redis = app.ctx.platform.redis.clone();
        racing.spawn(async move {
            redis
                .claim("ck:loading", Duration::from_secs(10))
                .await
                .unwrap()
        });
    }
    let claimed = racing.join_all().await;
    assert_eq!(claimed.iter().filter(|claimed| **claimed).count(), 1);
}

// --- idempotency ----------------------------------------------------------------------------

#[tokio::test]
async fn the_same_key_replays_the_first_answer() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let first = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(first.status(), 201);
    // Even after the product sold out, the retry gets the original answer.
    let replay = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(replay.status(), 201);
    // A one-line checkout's answer is rebuilt from its rows, byte for byte.
    assert_eq!(replay.body().as_ref(), first.body().as_ref());
    // Even once the order has moved on, the replay is the first answer.
    let order = body_json(&first)["orders"][0]["id"].as_i64().unwrap();
    app.set_status(order, "PAID").await;
    let later = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(later.body().as_ref(), first.body().as_ref());
    let other_body = app
        .checkout(
            &buyer,
            "checkout-0001",
            json!([{"product_id": product, "quantity": 2}]),
        )
        .await;
    assert_eq!(other_body.status(), 422);
    // Keys belong to buyers: another buyer's identical key is a new checkout (sold out here).
    let (_, other) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        code(&app.checkout(&other, "checkout-0001", one(product)).await),
        "SOLD_OUT"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 1);
}

#[tokio::test]
async fn a_replay_is_recognised_after_redis_lost_everything() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let first = app.checkout(&buyer, "checkout-0001", one(product)).await;
    flush_prefix(&app).await;
    let replay = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(body_json(&replay), body_json(&first));
    assert_eq!(app.stock_in_mysql(product).await, 0);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_make_one_checkout() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 10, 5).await;
    let responses = futures::future::join_all(
        (0..8).map(|_| app.checkout(&buyer, "checkout-0001", one(product))),
    )
    .await;
    let bodies: HashSet<String> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status(), 201, "{:?}", body_json(r));
            body_json(r).to_string()
        })
        .collect();
    assert_eq!(bodies.len(), 1, "every retry got the same answer");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (9, Some(9))
    );
}

// --- the drop under concurrency -------------------------------------------------------------

#[tokio::test]
async fn a_counter_left_too_high_is_put_right_by_the_next_attempts() {
    // GIVEN a sold-out product whose Redis counter still says 3 (sales went through MySQL alone
    // while Redis was thought down)
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    assert_eq!(
        app.checkout(&buyer, "checkout-0001", one(product))
            .await
            .status(),
        201
    );
    let redis = &app.ctx.platform.redis;
    let mut connection = redis.connection().await.unwrap();
    let () = redis::cmd("HSET")
        .arg(redis.key(&format!("stock:{{p{product}}}")))
        .arg("remaining")
        .arg(3)
        .query_async(&mut connection)
        .await
        .unwrap();

    // WHEN others try, THEN each is refused, MySQL sells nothing more, and Redis agrees again
    assert_redis_agrees_by_the_next_attempts(&app, product).await;
    assert_exactly_sold(&app, product, 1).await;
}

/// The counter reads 0 once the drop is over. On a loaded machine a Redis reply can take longer
/// than the 500 ms timeout; the breaker then sends some sales through MySQL alone, which leaves
/// the counter too high or dropped. The design's promise is that the next attempts put it right
/// (a refusal in MySQL drops a counter, a missing one is reloaded from MySQL): each is SOLD_OUT,
/// and within a few the counter agrees.
async fn assert_redis_agrees_by_the_next_attempts(app: &App, product: i64) {
    for late in 0..3 {
        if app.stock_in_redis(product).await == Some(0) {
            return;
        }
        let (_, buyer) = app.ctx.user(Role::Buyer).await;
        let attempt = app
            .checkout(&buyer, format!("late-key-{late:04}"), one(product))
            .await;
        assert_eq!(code(&attempt), "SOLD_OUT");
    }
    assert_eq!(app.stock_in_redis(product).await, Some(0), "Redis agrees");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_buyers_race_for_a_hundred_units() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 100, 1).await;
    let tokens = buyers(&app, 2_000).await;
    let responses = futures::future::join_all(
        tokens
            .iter()
            .enumerate()
            .map(|(n, token)| app.checkout(token, format!("drop-key-{n:06}"), one(product))),
    )
    .await;
    let created = responses.iter().filter(|r| r.status() == 201).count();
    let sold_out = responses.iter().filter(|r| code(r) == "SOLD_OUT").count();
    assert_eq!(created, 100);
    assert_eq!(sold_out, 1_900, "everyone else was told it sold out");
    assert_exactly_sold(&app, product, 100).await;
    assert_redis_agrees_by_the_next_attempts(&app, product).await;
    // The sold-out change reached page 1 of the catalogue.
    assert_eq!(app.deps.page_cache.fresh().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_strategy_sells_exactly_too() {
    let app = App::with_vars(&[("STOCK_STRATEGY", "lock"), ("STOCK_LOCK_WAIT_MS", "20000")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 20, 1).await;
    let tokens = buyers(&app, 200).await;
    let responses = futures::future::join_all(
        tokens
            .iter()
            .enumerate()
            .map(|(n, token)| app.checkout(token, format!("lock-key-{n:06}"), one(product))),
    )
    .await;
    assert_eq!(responses.iter().filter(|r| r.status() == 201).count(), 20);
    assert_exactly_sold(&app, product, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_buyers_concurrent_checkouts_respect_the_limit() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 50, 2).await;
    let responses = futures::future::join_all(
        (0..12).map(|n| app.checkout(&buyer, format!("greedy-key-{n:04}"), one(product))),
    )
    .await;
    assert_eq!(responses.iter().filter(|r| r.status() == 201).count(), 2);
    assert!(
        responses
            .iter()
            .filter(|r| r.status() != 201)
            .all(|r| code(r) == "PURCHASE_LIMIT")
    );
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (48, Some(48))
    );
}

#[tokio::test]
async fn with_redis_down_checkout_goes_through_mysql_exactly() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 3, 1).await;
    let dead = RedisStore::with_prefix("redis://127.0.0.1:1", &app.ctx.redis_prefix).unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        dead,
    );
    let deps = Deps::new(&platform);
    let mut created = 0;
    for n in 0..5 {
        let (_, token) = app.ctx.user(Role::Buyer).await;
        let response = handle(
            &deps,
            ApiRequest::new("POST /orders")
                .bearer(&token)
                .header("idempotency-key", &format!("offline-{n:04}"))
                .json(&json!({"items": one(product)}))
                .build(),
        )
        .await;
        if response.status() == 201 {
            created += 1;
        } else {
            assert_eq!(code(&response), "SOLD_OUT");
        }
    }
    assert_eq!(created, 3);
    assert_exactly_sold(&app, product, 3).await;
}

/// A Redis of the test's own, on a free port, that can be stopped and restarted (empty).
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_drop_sells_neither_more_nor_less() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 100, 1).await;
    let mut redis = PrivateRedis::start();
    let store = RedisStore::with_prefix(&redis.url(), "drop:").unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        store,
    );
    let deps = Deps::new(&platform);
    let tokens = buyers(&app, 600).await;
    let attempt = |n: usize| {
        handle(
            &deps,
            ApiRequest::new("POST /orders")
                .bearer(&tokens[n])
                .header("idempotency-key", &format!("restart-{n:06}"))
                .json(&json!({"items": one(product)}))
                .build(),
        )
    };

    let before = futures::future::join_all((0..40).map(attempt)).await;
    redis.stop();
    let during = futures::future::join_all((40..120).map(attempt)).await;
    redis.restart();
    // Once the connection is re-established and the window in which a failed Redis is left
    // alone has passed, requests use Redis again.
    wait_until_redis_answers(&platform).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = futures::future::join_all((120..600).map(attempt)).await;

    let created = before
        .iter()
        .chain(&during)
        .chain(&after)
        .filter(|r| r.status() == 201)
        .count();
    assert_eq!(created, 100);
    assert!(
        during.iter().filter(|r| r.status() == 201).count() > 0,
        "sold while Redis was down"
    );
    assert_exactly_sold(&app, product, 100).await;
    // The restarted Redis was rebuilt from MySQL before it was trusted.
    assert_eq!(deps.reservations.remaining(product).await.unwrap(), Some(0));
}

async fn wait_until_redis_answers(platform: &Platform) {
    for _ in 0..100 {
        if let Ok(mut connection) = platform.redis.connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the restarted Redis never answered");
}

// --- after checkout: history and the status machine -----------------------------------------

async fn placed_order(app: &App, buyer: &str, product: i64, key: &str) -> i64 {
    let response = app.checkout(buyer, key, one(product)).await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    body_json(&response)["orders"][0]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn buyers_see_only_their_own_orders() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, kim) = app.ctx.user(Role::Buyer).await;
    let (_, lee) = app.ctx.user(Role::Buyer).await;
    let mut kims = Vec::new();
    for n in 0..23 {
        let product = app.product(partner, 5, 1).await;
        kims.push(placed_order(&app, &kim, product, &format!("history-{n:04}")).await);
    }
    let first = body_json(&app.call(ApiRequest::new("GET /orders").bearer(&kim)).await);
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    assert_eq!(
        first["items"][0]["id"],
        *kims.last().unwrap(),
        "newest first"
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = body_json(
        &app.call(
            ApiRequest::new("GET /orders")
                .bearer(&kim)
                .query("cursor", cursor),
        )
        .await,
    );
    assert_eq!(second["items"].as_array().unwrap().len(), 3);
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        body_json(&app.call(ApiRequest::new("GET /orders").bearer(&lee)).await)["items"],
        json!([])
    );

    let id = kims[0].to_string();
    let own = app
        .call(
            ApiRequest::new("GET /orders/{id}")
                .path_param("id", &id)
                .bearer(&kim),
        )
        .await;
    assert_eq!(own.status(), 200);
    assert_eq!(body_json(&own)["items"][0]["quantity"], 1);
    let theirs = app
        .call(
            ApiRequest::new("GET /orders/{id}")
                .path_param("id", &id)
                .bearer(&lee),
        )
        .await;
    assert_eq!(
        (theirs.status().as_u16(), code(&theirs).as_str()),
        (404, "ORDER_NOT_FOUND")
    );
    let bad_cursor = app
        .call(
            ApiRequest::new("GET /orders")
                .bearer(&kim)
                .query("cursor", "nope"),
        )
        .await;
    assert_eq!(bad_cursor.status(), 422);
}

#[tokio::test]
async fn partners_see_and_ship_only_their_own_orders() {
    let app = App::new().await;
    let (partner, partner_token) = app.ctx.user(Role::Partner).await;
    let (_, other_partner) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 2).await;
    let paid = placed_order(&app, &buyer, product, "partner-0001").await;
    let pending = placed_order(&app, &buyer, product, "partner-0002").await;
    app.set_status(paid, "PAID").await;

    let list = |token: &str, status: Option<&str>| {
        let mut req = ApiRequest::new("GET /partner/orders").bearer(token);
        if let Some(status) = status {
            req = req.query("status", status);
        }
        app.call(req)
    };
    assert_eq!(
        body_json(&list(&partner_token, None).await)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let only_paid = body_json(&list(&partner_token, Some("PAID")).await);
    assert_eq!(only_paid["items"].as_array().unwrap().len(), 1);
    assert_eq!(only_paid["items"][0]["id"], paid);
    assert_eq!(list(&partner_token, Some("LOST")).await.status(), 422);
    assert_eq!(
        body_json(&list(&other_partner, None).await)["items"],
        json!([])
    );

    let ship = |token: &str, id: i64| {
        app.call(
            ApiRequest::new("POST /partner/orders/{id}/ship")
                .path_param("id", &id.to_string())
                .bearer(token),
        )
    };
    assert_eq!(
        ship(&other_partner, paid).await.status(),
        404,
        "another partner's order is not found"
    );
    assert_eq!(code(&ship(&partner_token, pending).await), "INVALID_STATE");
    let shipped = ship(&partner_token, paid).await;
    assert_eq!(shipped.status(), 200);
    assert_eq!(body_json(&shipped)["status"], "SHIPPED");
    assert!(body_json(&shipped)["shipped_at"].is_string());
    let _ = pending;
}

#[tokio::test]
async fn a_buyer_confirms_a_shipped_order() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    let order = placed_order(&app, &buyer, product, "confirm-0001").await;
    app.set_status(order, "SHIPPED").await;
    let response = app
        .call(
            ApiRequest::new("POST /orders/{id}/confirm")
                .path_param("id", &order.to_string())
                .bearer(&buyer),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["status"], "CONFIRMED");
    assert!(body_json(&response)["confirmed_at"].is_string());
}

#[tokio::test]
async fn cancelling_an_unpaid_order_returns_its_units_and_the_limit() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let order = placed_order(&app, &buyer, product, "cancel-0001").await;
    let cancel = || {
        app.call(
            ApiRequest::new("POST /orders/{id}/cancel")
                .path_param("id", &order.to_string())
                .bearer(&buyer),
        )
    };
    let response = cancel().await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(&response)["status"], "CANCELLED");
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (1, Some(1))
    );
    assert_eq!(
        code(&cancel().await),
        "INVALID_STATE",
        "a second cancel returns nothing"
    );
    assert_eq!(app.stock_in_mysql(product).await, 1);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM payments WHERE status = 'CANCELLED'")
            .await,
        1
    );
    // The unit and the buyer's allowance are both back.
    assert_eq!(
        app.checkout(&buyer, "cancel-0002", one(product))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn every_invalid_transition_is_409() {
    let app = App::new().await;
    let (partner, partner_token) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 50, 50).await;
    // (action, states from which it is not allowed)
    let cases: [(&str, &[&str]); 3] = [
        (
            "cancel",
            &[
                "PAID",
                "SHIPPED",
                "CONFIRMED",
                "EXPIRED",
                "CANCELLED",
                "PAYMENT_FAILED",
            ],
        ),
        (
            "ship",
            &[
                "PENDING_PAYMENT",
                "SHIPPED",
                "CONFIRMED",
                "EXPIRED",
                "CANCELLED",
                "PAYMENT_FAILED",
            ],
        ),
        (
            "confirm",
            &[
                "PENDING_PAYMENT",
                "PAID",
                "CONFIRMED",
                "EXPIRED",
                "CANCELLED",
                "PAYMENT_FAILED",
            ],
        ),
    ];
    let mut n = 0;
    for (action, states) in cases {
        for state in states {
            n += 1;
            let order = placed_order(&app, &buyer, product, &format!("invalid-{n:04}")).await;
            app.set_status(order, state).await;
            let id = order.to_string();
            let request = match action {
                "cancel" => ApiRequest::new("POST /orders/{id}/cancel")
                    .path_param("id", &id)
                    .bearer(&buyer),
                "ship" => ApiRequest::new("POST /partner/orders/{id}/ship")
                    .path_param("id", &id)
                    .bearer(&partner_token),
                _ => ApiRequest::new("POST /orders/{id}/confirm")
                    .path_param("id", &id)
                    .bearer(&buyer),
            };
            let response = app.call(request).await;
            assert_eq!(
                (response.status().as_u16(), code(&response).as_str()),
                (409, "INVALID_STATE"),
                "{action} from {state}"
            );
            let (status,): (String,) = sqlx::query_as("SELECT status FROM orders WHERE id = ?")
                .bind(order)
                .fetch_one(&app.ctx.platform.db)
                .await
                .unwrap();
            assert_eq!(status, *state, "nothing changed");
        }
    }
}

#[tokio::test]
async fn two_overlapping_expiries_return_units_once() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 10, 1).await;
    for n in 0..6 {
        let (_, buyer) = app.ctx.user(Role::Buyer).await;
        placed_order(&app, &buyer, product, &format!("expire-{n:04}")).await;
    }
    sqlx::query("UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND")
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();
    let lifecycle = &app.deps.lifecycle;
    let now = Utc::now();
    let (a, b) = tokio::join!(lifecycle.expire_due(now, 2), lifecycle.expire_due(now, 2));
    assert_eq!(
        a.unwrap() + b.unwrap(),
        6,
        "each order expired by exactly one sweep"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders WHERE status = 'EXPIRED'")
            .await,
        6
    );
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (10, Some(10))
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM payments WHERE status = 'EXPIRED'")
            .await,
        6
    );
    assert_eq!(
        app.scalar("SELECT CAST(SUM(quantity) AS SIGNED) FROM buyer_product_purchases")
            .await,
        0
    );
}

#[tokio::test]
async fn every_orders_route_in_the_table_is_handled() {
    let app = App::new().await;
    for route in shared::routes::routes_of(shared::routes::ORDERS) {
        let response = app.call(ApiRequest::new(&route.key())).await;
        assert_ne!(code(&response), "ROUTE_NOT_FOUND", "{}", route.key());
    }
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

#[tokio::test]
async fn an_api_gateway_checkout_event_flows_through_the_handler() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 5, 1).await;
    assert_eq!(product, 1, "the sample event buys product 1");
    let (_, token) = app.ctx.user(Role::Buyer).await;
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/orders/checkout.json")).unwrap();
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(&app.deps, request).await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    assert_eq!(
        body_json(&response)["orders"][0]["items"][0]["product_id"],
        1
    );
}
