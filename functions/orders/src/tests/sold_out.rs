//! A hot sold-out product is refused from this process's memory for a moment (the `sold_out`
//! module): never a sale from memory, never a unit lost, and units that come back are offered
//! again within one memo period (at once when they came back through this process).

use std::time::{Duration, Instant};

use futures::future::join_all;

use super::*;
use crate::sold_out::HOT_REFUSALS;

/// Long enough for the steps between the flood and the look under CI's load.
const MEMO_MS: u64 = 3_000;

/// An app remembering hot sold-out products for `memo_ms`, and a second process of the same
/// deployment (its own memory, the same stores).
async fn two_processes(memo_ms: u64) -> (App, Deps) {
    let memo = memo_ms.to_string();
    let app = App::with_vars(&[
        ("SOLD_OUT_MEMO_MS", memo.as_str()),
        ("CHECKOUT_LIMIT_PER_MINUTE", "1000"),
        ("REBUY_COOLDOWN_SECONDS", "0"),
    ])
    .await;
    let other = Deps::new(&app.ctx.platform, portone_gateway(&app.ctx.platform));
    (app, other)
}

/// `buyer` tries `times` checkouts of the sold-out `product` at once; each must be SOLD_OUT.
async fn refused(app: &App, buyer: &str, product: i64, times: u32, tag: &str) {
    let attempts = (0..times).map(|n| app.checkout(buyer, format!("{tag}-{n:04}"), one(product)));
    for response in join_all(attempts).await {
        assert_eq!(problem_code(&response), "SOLD_OUT");
    }
}

fn cancel(order: i64, token: &str) -> ApiRequest {
    ApiRequest::new("POST /orders/{id}/cancel")
        .path_param("id", &order.to_string())
        .bearer(token)
}

async fn bought(app: &App, buyer: &str, product: i64, key: &str) -> i64 {
    let response = app.checkout(buyer, key, one(product)).await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    body_json(&response)["orders"][0]["id"].as_i64().unwrap()
}

/// The one unit is held by exactly one unpaid order, its first order cancelled.
async fn sold_once_after_a_cancel(app: &App, product: i64) {
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders WHERE status = 'PENDING_PAYMENT'")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders WHERE status = 'CANCELLED'")
            .await,
        1
    );
    assert_eq!(app.stock_in_mysql(product).await, 0, "MySQL");
    assert_eq!(app.stock_in_redis(product).await, Some(0), "Redis");
}

/// One unit, sold to `first` (its `order`, unpaid), in the first of two processes.
struct OneUnitSold {
    app: App,
    other: Deps,
    first: String,
    second: String,
    product: i64,
    order: i64,
}

async fn one_unit_sold(memo_ms: u64) -> OneUnitSold {
    let (app, other) = two_processes(memo_ms).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, first) = app.ctx.user(Role::Buyer).await;
    let (_, second) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let order = bought(&app, &first, product, "memo-first-1").await;
    OneUnitSold {
        app,
        other,
        first,
        second,
        product,
        order,
    }
}

/// `buyer` cancels `order` through the other process.
async fn cancelled_elsewhere(other: &Deps, order: i64, buyer: &str) {
    assert_eq!(
        handle(other, cancel(order, buyer).build()).await.status(),
        200
    );
}

#[tokio::test]
async fn a_hot_sold_out_product_is_refused_from_memory_until_the_period_ends() {
    let OneUnitSold {
        app,
        other,
        first,
        second,
        product,
        order,
    } = one_unit_sold(MEMO_MS).await;
    refused(&app, &second, product, HOT_REFUSALS, "memo-flood").await;
    let remembered_at = Instant::now();

    // The unit comes back through another process: this one does not know yet.
    cancelled_elsewhere(&other, order, &first).await;
    assert_eq!(
        app.stock_in_redis(product).await,
        Some(1),
        "the unit is back"
    );
    let answer = app.checkout(&second, "memo-second-1", one(product)).await;
    assert!(
        remembered_at.elapsed() < Duration::from_millis(MEMO_MS),
        "the machine was too slow for this test's memo period"
    );
    assert_eq!(problem_code(&answer), "SOLD_OUT", "answered from memory");
    assert_eq!(app.stock_in_redis(product).await, Some(1), "nothing taken");

    // After the period the counter is asked again, and the unit is sold.
    tokio::time::sleep(Duration::from_millis(MEMO_MS).saturating_sub(remembered_at.elapsed()))
        .await;
    bought(&app, &second, product, "memo-second-2").await;
    sold_once_after_a_cancel(&app, product).await;
}

#[tokio::test]
async fn units_cancelled_through_this_process_are_offered_at_once() {
    let OneUnitSold {
        app,
        other: _,
        first,
        second,
        product,
        order,
    } = one_unit_sold(MEMO_MS).await;
    refused(&app, &second, product, HOT_REFUSALS, "memo-flood").await;

    assert_eq!(app.call(cancel(order, &first)).await.status(), 200);
    bought(&app, &second, product, "memo-second-1").await;
    sold_once_after_a_cancel(&app, product).await;
}

#[tokio::test]
async fn a_few_sold_out_answers_are_never_remembered() {
    // The sale of the last unit is the first sold-out answer: one short of hot in all.
    let OneUnitSold {
        app,
        other,
        first,
        second,
        product,
        order,
    } = one_unit_sold(MEMO_MS).await;
    refused(&app, &second, product, HOT_REFUSALS - 2, "memo-few").await;

    cancelled_elsewhere(&other, order, &first).await;
    bought(&app, &second, product, "memo-second-1").await;
    sold_once_after_a_cancel(&app, product).await;
}

#[tokio::test]
async fn without_a_memo_period_every_answer_is_the_counters() {
    let OneUnitSold {
        app,
        other,
        first,
        second,
        product,
        order,
    } = one_unit_sold(0).await;
    refused(&app, &second, product, HOT_REFUSALS * 2, "memo-flood").await;

    cancelled_elsewhere(&other, order, &first).await;
    bought(&app, &second, product, "memo-second-1").await;
    sold_once_after_a_cancel(&app, product).await;
}
