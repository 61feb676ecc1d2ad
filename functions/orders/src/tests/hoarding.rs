//! Hoarding a drop: how many unpaid orders one buyer may hold at once, and the wait before a
//! buyer who gave an order up may buy that product again.

use super::*;

async fn cancel(app: &App, buyer: &str, order: i64) {
    let response = app
        .call(
            ApiRequest::new("POST /orders/{id}/cancel")
                .path_param("id", &order.to_string())
                .bearer(buyer),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", body_json(&response));
}

fn order_id(response: &Response<Body>) -> i64 {
    assert_eq!(response.status(), 201, "{:?}", body_json(response));
    body_json(response)["orders"][0]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_buyer_holds_at_most_the_configured_unpaid_orders() {
    // GIVEN at most two unpaid orders per buyer, and a buyer holding two
    let app = App::with_vars(&[("MAX_UNPAID_ORDERS_PER_BUYER", "2")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let products = [
        app.product(partner, 5, 1).await,
        app.product(partner, 5, 1).await,
        app.product(partner, 5, 1).await,
    ];
    let first = order_id(&app.checkout(&buyer, "hoard-0001", one(products[0])).await);
    order_id(&app.checkout(&buyer, "hoard-0002", one(products[1])).await);

    // WHEN the buyer checks out a third product
    let third = app.checkout(&buyer, "hoard-0003", one(products[2])).await;

    // THEN it is refused, nothing is written, and its reserved unit is back
    assert_eq!(
        (third.status().as_u16(), problem_code(&third).as_str()),
        (409, "TOO_MANY_UNPAID_ORDERS")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 2);
    assert_eq!(
        (
            app.stock_in_mysql(products[2]).await,
            app.stock_in_redis(products[2]).await
        ),
        (5, Some(5))
    );
    // The same key later is a new attempt, not a replay of the refusal.
    assert_eq!(
        problem_code(&app.checkout(&buyer, "hoard-0003", one(products[2])).await),
        "TOO_MANY_UNPAID_ORDERS"
    );

    // AND once one of them is paid (no longer unpaid), the third sells; other buyers never
    // counted
    app.set_status(first, "PAID").await;
    order_id(&app.checkout(&buyer, "hoard-0004", one(products[2])).await);
    let (_, other) = app.ctx.user(Role::Buyer).await;
    order_id(&app.checkout(&other, "hoard-0001", one(products[2])).await);
}

#[tokio::test]
async fn an_unpaid_order_past_its_expiry_no_longer_counts() {
    let app = App::with_vars(&[("MAX_UNPAID_ORDERS_PER_BUYER", "1")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let a = app.product(partner, 5, 1).await;
    let b = app.product(partner, 5, 1).await;
    order_id(&app.checkout(&buyer, "hoard-0001", one(a)).await);
    assert_eq!(
        problem_code(&app.checkout(&buyer, "hoard-0002", one(b)).await),
        "TOO_MANY_UNPAID_ORDERS"
    );
    // Expired but not swept yet: it cannot be paid any more, so it holds nothing back.
    sqlx::query("UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND")
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();
    order_id(&app.checkout(&buyer, "hoard-0003", one(b)).await);
}

#[tokio::test]
async fn a_several_partner_checkout_counts_each_of_its_orders() {
    let app = App::with_vars(&[("MAX_UNPAID_ORDERS_PER_BUYER", "2")]).await;
    let (nike, _) = app.ctx.user(Role::Partner).await;
    let (shop, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let a = app.product(nike, 5, 1).await;
    let b = app.product(shop, 5, 1).await;
    let c = app.product(shop, 5, 1).await;
    order_id(&app.checkout(&buyer, "hoard-0001", one(c)).await);
    let two_orders = json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}]);
    let refused = app.checkout(&buyer, "hoard-0002", two_orders.clone()).await;
    assert_eq!(
        (refused.status().as_u16(), problem_code(&refused).as_str()),
        (409, "TOO_MANY_UNPAID_ORDERS")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(
        (app.stock_in_redis(a).await, app.stock_in_redis(b).await),
        (Some(5), Some(5))
    );
    let (_, other) = app.ctx.user(Role::Buyer).await;
    let sold = app.checkout(&other, "hoard-0001", two_orders).await;
    assert_eq!(sold.status(), 201, "{:?}", body_json(&sold));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_buyers_concurrent_checkouts_of_different_products_respect_the_cap() {
    // GIVEN the default cap of three and twelve products
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let mut products = Vec::new();
    for _ in 0..12 {
        products.push(app.product(partner, 5, 1).await);
    }

    // WHEN the buyer checks out all twelve at once
    let responses = futures::future::join_all(
        products
            .iter()
            .enumerate()
            .map(|(n, product)| app.checkout(&buyer, format!("hoard-{n:04}"), one(*product))),
    )
    .await;

    // THEN exactly three sell, the others are refused, and every refused unit is back
    assert_eq!(responses.iter().filter(|r| r.status() == 201).count(), 3);
    assert!(
        responses
            .iter()
            .filter(|r| r.status() != 201)
            .all(|r| problem_code(r) == "TOO_MANY_UNPAID_ORDERS"),
        "{:?}",
        responses.iter().map(problem_code).collect::<Vec<_>>()
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders WHERE status = 'PENDING_PAYMENT'")
            .await,
        3
    );
    let mut left = 0;
    for product in &products {
        let (mysql, redis) = (
            app.stock_in_mysql(*product).await,
            app.stock_in_redis(*product).await,
        );
        assert_eq!(Some(mysql), redis, "product {product}");
        left += mysql;
    }
    assert_eq!(left, 12 * 5 - 3);
}

#[tokio::test]
async fn a_cancelled_product_can_be_bought_again_only_after_the_cooldown() {
    // GIVEN a cooldown of two seconds, and a buyer who cancelled an order of a product
    let app = App::with_vars(&[("REBUY_COOLDOWN_SECONDS", "2")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    let other_product = app.product(partner, 5, 1).await;
    let order = order_id(&app.checkout(&buyer, "rebuy-0001", one(product)).await);
    cancel(&app, &buyer, order).await;

    // WHEN the buyer checks it out again at once
    let again = app.checkout(&buyer, "rebuy-0002", one(product)).await;

    // THEN it is refused, nothing is written, and the reserved unit is back
    assert_eq!(
        (again.status().as_u16(), problem_code(&again).as_str()),
        (409, "REBUY_COOLDOWN")
    );
    let retry_after: u64 = again.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (5, Some(5))
    );
    // Other products, and other buyers of this one, are not held back.
    order_id(&app.checkout(&buyer, "rebuy-0003", one(other_product)).await);
    let (_, other) = app.ctx.user(Role::Buyer).await;
    order_id(&app.checkout(&other, "rebuy-0001", one(product)).await);

    // AND after the cooldown the buyer may buy it again
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    order_id(&app.checkout(&buyer, "rebuy-0004", one(product)).await);
}

#[tokio::test]
async fn an_expired_order_starts_the_cooldown_too() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 2).await;
    order_id(&app.checkout(&buyer, "rebuy-0001", one(product)).await);
    sqlx::query("UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND")
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(
        app.deps.lifecycle.expire_due(Utc::now(), 10).await.unwrap(),
        1
    );

    let again = app.checkout(&buyer, "rebuy-0002", one(product)).await;
    assert_eq!(
        (again.status().as_u16(), problem_code(&again).as_str()),
        (409, "REBUY_COOLDOWN")
    );
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (5, Some(5))
    );
}

#[tokio::test]
async fn a_cooldown_of_zero_lets_a_buyer_buy_again_at_once() {
    let app = App::with_vars(&[("REBUY_COOLDOWN_SECONDS", "0")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    let order = order_id(&app.checkout(&buyer, "rebuy-0001", one(product)).await);
    cancel(&app, &buyer, order).await;
    order_id(&app.checkout(&buyer, "rebuy-0002", one(product)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_a_rebuy_of_the_same_product_waits_instead_of_deadlocking() {
    // GIVEN buyers each holding one unit of a product of up to two per buyer
    let app = App::with_vars(&[("MAX_UNPAID_ORDERS_PER_BUYER", "10")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    for round in 0..8 {
        let (_, buyer) = app.ctx.user(Role::Buyer).await;
        let product = app.product(partner, 5, 2).await;
        let order = order_id(&app.checkout(&buyer, "rebuy-0001", one(product)).await);

        // WHEN the buyer cancels it and checks the product out again at the same moment
        let (_, again) = tokio::join!(
            cancel(&app, &buyer, order),
            app.checkout(&buyer, "rebuy-0002", one(product))
        );

        // THEN the checkout either came first (and sold) or saw the cancel (and was refused);
        // never an error, and the counters agree
        match again.status().as_u16() {
            201 => assert_eq!(app.stock_in_mysql(product).await, 4, "round {round}"),
            _ => {
                assert_eq!(problem_code(&again), "REBUY_COOLDOWN", "round {round}");
                assert_eq!(app.stock_in_mysql(product).await, 5, "round {round}");
            }
        }
        assert_eq!(
            Some(app.stock_in_mysql(product).await),
            app.stock_in_redis(product).await,
            "round {round}"
        );
    }
}
