//! The sweeper against real MariaDB and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shared::{
    adapters::stock::{StockFacts, StockReservations},
    domain::auth::Role,
    testing::{ProductFixture, TestContext},
};

use super::*;

fn scheduled_event() -> EventBridgeEvent {
    serde_json::from_str(include_str!("../../../events/order-sweeper/scheduled.json")).unwrap()
}

/// An order of one unit of `product`, written as checkout writes it (stock taken, limit counted).
async fn order(
    ctx: &TestContext,
    product: i64,
    partner: i64,
    status: &str,
    expires_in_secs: i64,
    shipped_days_ago: i64,
) -> i64 {
    let db = &ctx.platform.db;
    let (buyer, _) = ctx.user(Role::Buyer).await;
    let payment = format!("pay_{}", uuid_like(buyer));
    sqlx::query("INSERT INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, expires_at) \
                 VALUES (?, ?, 100000, 'PENDING', 'sweeper-key-1', REPEAT('0', 64), UTC_TIMESTAMP(6))")
        .bind(&payment).bind(buyer).execute(db).await.unwrap();
    let inserted = sqlx::query("INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, expires_at, shipped_at) \
                 VALUES (?, ?, ?, ?, 100000, UTC_TIMESTAMP(6) + INTERVAL ? SECOND, UTC_TIMESTAMP(6) - INTERVAL ? DAY)")
        .bind(&payment).bind(buyer).bind(partner).bind(status).bind(expires_in_secs).bind(shipped_days_ago)
        .execute(db).await.unwrap();
    let id = i64::try_from(inserted.last_insert_id()).unwrap();
    sqlx::query("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, 1, 100000)")
        .bind(id).bind(product).execute(db).await.unwrap();
    sqlx::query("UPDATE products SET stock_remaining = stock_remaining - 1 WHERE id = ?")
        .bind(product)
        .execute(db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO buyer_product_purchases (buyer_id, product_id, quantity) VALUES (?, ?, 1)",
    )
    .bind(buyer)
    .bind(product)
    .execute(db)
    .await
    .unwrap();
    id
}

fn uuid_like(seed: i64) -> String {
    format!("{seed:032}")
}

async fn status_of(ctx: &TestContext, order: i64) -> String {
    let (status,): (String,) = sqlx::query_as("SELECT status FROM orders WHERE id = ?")
        .bind(order)
        .fetch_one(&ctx.platform.db)
        .await
        .unwrap();
    status
}

async fn setup() -> (TestContext, i64, i64) {
    let ctx = TestContext::new().await;
    let (partner, _) = ctx.user(Role::Partner).await;
    let product = ProductFixture {
        name: "Yeezy Boost 350 V2".to_owned(),
        brand: "adidas".to_owned(),
        ..ProductFixture::new(partner)
    }
    .insert(&ctx.platform.db)
    .await;
    (ctx, partner, product)
}

#[tokio::test]
async fn a_sweep_expires_due_orders_and_returns_their_units() {
    let (ctx, partner, product) = setup().await;
    let due = order(&ctx, product, partner, "PENDING_PAYMENT", -5, 0).await;
    let not_yet = order(&ctx, product, partner, "PENDING_PAYMENT", 300, 0).await;
    let paid = order(&ctx, product, partner, "PAID", -5, 0).await;
    let deps = Deps::new(&ctx.platform);

    let report = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            expired: 1,
            confirmed: 0,
            counters_reloaded: 0
        }
    );
    assert_eq!(status_of(&ctx, due).await, "EXPIRED");
    assert_eq!(status_of(&ctx, not_yet).await, "PENDING_PAYMENT");
    assert_eq!(status_of(&ctx, paid).await, "PAID");
    let (left,): (i32,) = sqlx::query_as("SELECT stock_remaining FROM products WHERE id = ?")
        .bind(product)
        .fetch_one(&ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(left, 8, "one of three units came back");

    // A second sweep finds nothing more to do: units come back once.
    let again = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(
        again,
        SweepReport {
            expired: 0,
            confirmed: 0,
            counters_reloaded: 0
        }
    );
    let (left,): (i32,) = sqlx::query_as("SELECT stock_remaining FROM products WHERE id = ?")
        .bind(product)
        .fetch_one(&ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(left, 8);
}

#[tokio::test]
async fn overlapping_sweeps_return_each_unit_once() {
    let (ctx, partner, product) = setup().await;
    for _ in 0..8 {
        order(&ctx, product, partner, "PENDING_PAYMENT", -5, 0).await;
    }
    let first = Deps::new(&ctx.platform);
    let second = Deps::new(&ctx.platform);
    let (a, b) = tokio::join!(
        handle(&first, scheduled_event()),
        handle(&second, scheduled_event())
    );
    assert_eq!(a.unwrap().expired + b.unwrap().expired, 8);
    let (left,): (i32,) = sqlx::query_as("SELECT stock_remaining FROM products WHERE id = ?")
        .bind(product)
        .fetch_one(&ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(left, 10);
}

#[tokio::test]
async fn shipped_orders_are_confirmed_after_a_week() {
    let (ctx, partner, product) = setup().await;
    let old = order(&ctx, product, partner, "SHIPPED", 0, 8).await;
    let recent = order(&ctx, product, partner, "SHIPPED", 0, 2).await;
    let deps = Deps::new(&ctx.platform);
    let report = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            expired: 0,
            confirmed: 1,
            counters_reloaded: 0
        }
    );
    assert_eq!(status_of(&ctx, old).await, "CONFIRMED");
    assert_eq!(status_of(&ctx, recent).await, "SHIPPED");
    let (confirmed_at,): (Option<DateTime<Utc>>,) =
        sqlx::query_as("SELECT confirmed_at FROM orders WHERE id = ?")
            .bind(old)
            .fetch_one(&ctx.platform.db)
            .await
            .unwrap();
    assert!(confirmed_at.is_some());
}

/// The product's facts as MySQL has them, as checkout loads them into Redis.
async fn facts_in_mysql(ctx: &TestContext, product: i64) -> StockFacts {
    let (remaining, release_at, max_per_buyer, price, partner_id): (
        i32,
        DateTime<Utc>,
        i32,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT stock_remaining, release_at, max_per_buyer, price, partner_id \
         FROM products WHERE id = ?",
    )
    .bind(product)
    .fetch_one(&ctx.platform.db)
    .await
    .unwrap();
    StockFacts {
        remaining: remaining.into(),
        release_at,
        max_per_buyer: max_per_buyer.into(),
        price,
        partner_id,
    }
}

/// The product's Redis counter, as checkout would have loaded it, then set to `remaining`.
async fn counter(ctx: &TestContext, product: i64, remaining: i64) {
    let reservations = StockReservations::new(ctx.platform.redis.clone());
    let facts = StockFacts {
        remaining,
        ..facts_in_mysql(ctx, product).await
    };
    reservations.forget(product).await.unwrap();
    reservations.load(product, &facts).await.unwrap();
}

async fn counter_left(ctx: &TestContext, product: i64) -> Option<i64> {
    StockReservations::new(ctx.platform.redis.clone())
        .remaining(product)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_counter_that_leaked_is_dropped_at_the_second_sweep_that_sees_it() {
    // GIVEN 10 units in MySQL and a counter that lost 2 (a give-back to Redis failed)
    let (ctx, _, product) = setup().await;
    counter(&ctx, product, 8).await;
    let deps = Deps::new(&ctx.platform);

    // WHEN one sweep sees it, THEN it could be sales in flight: kept
    let first = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(first.counters_reloaded, 0);
    assert_eq!(counter_left(&ctx, product).await, Some(8));

    // WHEN the next sweep sees the same figures, THEN nothing sold in between: dropped
    let second = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(second.counters_reloaded, 1);
    assert_eq!(counter_left(&ctx, product).await, None);
}

#[tokio::test]
async fn a_counter_that_moved_between_sweeps_or_agrees_is_kept() {
    let (ctx, _, product) = setup().await;
    let deps = Deps::new(&ctx.platform);

    // Differs, then differs by other figures (a sale in between): kept both times
    counter(&ctx, product, 8).await;
    handle(&deps, scheduled_event()).await.unwrap();
    StockReservations::new(ctx.platform.redis.clone())
        .reserve(product, 1, 1, Utc::now())
        .await
        .unwrap();
    let moved = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(moved.counters_reloaded, 0);
    assert_eq!(counter_left(&ctx, product).await, Some(7));

    // Agrees with MySQL: never touched
    counter(&ctx, product, 10).await;
    for _ in 0..2 {
        let report = handle(&deps, scheduled_event()).await.unwrap();
        assert_eq!(report.counters_reloaded, 0);
    }
    assert_eq!(counter_left(&ctx, product).await, Some(10));
}

#[tokio::test]
async fn a_counter_above_mysql_is_dropped_too() {
    // GIVEN a counter that still offers 3 units MySQL sold while Redis was thought down
    let (ctx, _, product) = setup().await;
    counter(&ctx, product, 13).await;
    let deps = Deps::new(&ctx.platform);
    handle(&deps, scheduled_event()).await.unwrap();
    let report = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(report.counters_reloaded, 1);
    assert_eq!(counter_left(&ctx, product).await, None);
}

#[tokio::test]
async fn a_counter_whose_facts_are_not_mysql_s_is_dropped_at_the_first_sweep() {
    // GIVEN counters loaded before edits whose evictions failed: a release brought forward (Redis
    // refuses NOT_ON_SALE), a limit raised, a price changed
    let (ctx, partner, _) = setup().await;
    let reservations = StockReservations::new(ctx.platform.redis.clone());
    let mut products = Vec::new();
    for stale in [
        |facts: StockFacts| StockFacts {
            release_at: facts.release_at + chrono::Duration::hours(1),
            ..facts
        },
        |facts: StockFacts| StockFacts {
            max_per_buyer: facts.max_per_buyer - 1,
            ..facts
        },
        |facts: StockFacts| StockFacts {
            price: facts.price + 1_000,
            ..facts
        },
    ] {
        let product = ProductFixture {
            max_per_buyer: 2,
            ..ProductFixture::new(partner)
        }
        .insert(&ctx.platform.db)
        .await;
        let facts = stale(facts_in_mysql(&ctx, product).await);
        reservations.load(product, &facts).await.unwrap();
        products.push(product);
    }
    let deps = Deps::new(&ctx.platform);

    // WHEN one sweep runs, THEN each is dropped at once (facts change in no sale, so no
    // reservation in flight explains them), and the next checkout reloads MySQL's
    let report = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(report.counters_reloaded, 3);
    for product in products {
        assert_eq!(counter_left(&ctx, product).await, None, "product {product}");
    }
}

#[tokio::test]
async fn an_old_product_sold_lately_is_reconciled_and_one_untouched_for_long_is_not_read() {
    // GIVEN two products released 60 days ago whose counters lost 2 units: one sold lately (its
    // row changed now), one unchanged since its release
    let (ctx, partner, _) = setup().await;
    let long_ago = Utc::now() - chrono::Duration::days(60);
    let old = ProductFixture {
        release_at: long_ago,
        ..ProductFixture::new(partner)
    };
    let (sold_lately, untouched) = (
        old.insert(&ctx.platform.db).await,
        old.insert(&ctx.platform.db).await,
    );
    sqlx::query("UPDATE products SET updated_at = ? WHERE id = ?")
        .bind(long_ago)
        .bind(untouched)
        .execute(&ctx.platform.db)
        .await
        .unwrap();
    counter(&ctx, sold_lately, 8).await;
    counter(&ctx, untouched, 8).await;
    let deps = Deps::new(&ctx.platform);

    // WHEN two sweeps run, THEN the product that sells is reloaded; the other one is not read
    handle(&deps, scheduled_event()).await.unwrap();
    let report = handle(&deps, scheduled_event()).await.unwrap();
    assert_eq!(report.counters_reloaded, 1);
    assert_eq!(counter_left(&ctx, sold_lately).await, None);
    assert_eq!(counter_left(&ctx, untouched).await, Some(8));
}
