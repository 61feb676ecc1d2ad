//! After checkout: order histories and the status machine.

use super::*;

async fn placed_order(app: &App, buyer: &str, product: i64, key: &str) -> i64 {
    let response = app.checkout(buyer, key, one(product)).await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    body_json(&response)["orders"][0]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn buyers_see_only_their_own_orders() {
    // More unpaid orders than a buyer may hold by default, for pages of them.
    let app = App::with_vars(&[("MAX_UNPAID_ORDERS_PER_BUYER", "30")]).await;
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
        (theirs.status().as_u16(), problem_code(&theirs).as_str()),
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
    assert_eq!(
        problem_code(&ship(&partner_token, pending).await),
        "INVALID_STATE"
    );
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
    // Without a rebuy cooldown (see `hoarding` for it), the allowance is back at once.
    let app = App::with_vars(&[("REBUY_COOLDOWN_SECONDS", "0")]).await;
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
        problem_code(&cancel().await),
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
                (response.status().as_u16(), problem_code(&response).as_str()),
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
