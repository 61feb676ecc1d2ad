//! Checkout's answers: orders per partner, stock refusals, bad requests, tokens.

use super::*;

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
        (too_many.status().as_u16(), problem_code(&too_many).as_str()),
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
        (
            none_left.status().as_u16(),
            problem_code(&none_left).as_str()
        ),
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
        (response.status().as_u16(), problem_code(&response).as_str()),
        (409, "NOT_ON_SALE")
    );
    assert_eq!(app.stock_in_mysql(product).await, 5);
    assert_eq!(app.stock_in_redis(product).await, Some(5));
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
        (response.status().as_u16(), problem_code(&response).as_str()),
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
        (no_key.status().as_u16(), problem_code(&no_key).as_str()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );
    let short_key = app.checkout(&buyer, "short", one(product)).await;
    assert_eq!(
        (
            short_key.status().as_u16(),
            problem_code(&short_key).as_str()
        ),
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
            (response.status().as_u16(), problem_code(&response).as_str()),
            (422, "VALIDATION"),
            "{items}"
        );
    }
    let missing = app.checkout(&buyer, "checkout-0003", one(987_654)).await;
    assert_eq!(
        (missing.status().as_u16(), problem_code(&missing).as_str()),
        (404, "PRODUCT_NOT_FOUND")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(app.stock_in_mysql(product).await, 5);
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
        .del(redis.loaded_flag(shared::adapters::redis::LOADED_BLACKLIST, buyer_id))
        .query_async(&mut connection)
        .await
        .unwrap();
    let refused_after_restart = app.checkout(&buyer, "checkout-0002", one(product)).await;
    let reloaded: bool = redis::cmd("EXISTS")
        .arg(redis.loaded_flag(shared::adapters::redis::LOADED_BLACKLIST, buyer_id))
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
async fn every_orders_route_in_the_table_is_handled() {
    let app = App::new().await;
    for route in shared::routes::routes_of(shared::routes::ORDERS) {
        let response = app.call(ApiRequest::new(&route.key())).await;
        assert_ne!(
            problem_code(&response),
            "ROUTE_NOT_FOUND",
            "{}",
            route.key()
        );
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
        serde_json::from_str(include_str!("../../../../events/orders/checkout.json")).unwrap();
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(&app.deps, request).await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    assert_eq!(
        body_json(&response)["orders"][0]["items"][0]["product_id"],
        1
    );
}
