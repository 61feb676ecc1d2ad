//! Owners crossed, within one role: another partner's product is 403 (products are public, so
//! their ids reveal nothing); another buyer's order or payment, or another partner's order, is
//! 404, as if it did not exist. Nothing changes, and the owners can still do what others could not.

use reqwest::Method;
use serde_json::json;
use shared::domain::auth::Role;

use super::{Hostile, answered, refused};

#[tokio::test]
async fn another_owners_products_orders_and_payments_are_out_of_reach() {
    let h = Hostile::new().await;
    let seller = h.user(Role::Partner).await;
    let rival = h.user(Role::Partner).await;
    let buyer = h.user(Role::Buyer).await;
    let stranger = h.user(Role::Buyer).await;
    let product = h.product(&seller).await;
    let product_id = product["id"].as_i64().unwrap();
    let checkout = h.checkout(&buyer, product_id).await;
    let order = checkout["orders"][0]["id"].as_i64().unwrap();
    let payment = checkout["payment_id"].as_str().unwrap().to_owned();
    let db = &h.app.ctx.platform.db;

    // Another partner's product: 403 for a real one, 404 for one that does not exist.
    let before = h.state().await;
    let product_path = format!("/products/{product_id}");
    refused(
        h.request(Method::PATCH, &product_path)
            .bearer_auth(&rival.token)
            .json(&json!({"price": 1, "name": "Hijacked"})),
        403,
        "FORBIDDEN",
    )
    .await;
    refused(
        h.request(Method::DELETE, &product_path)
            .bearer_auth(&rival.token),
        403,
        "FORBIDDEN",
    )
    .await;
    refused(
        h.request(Method::PATCH, "/products/987654321")
            .bearer_auth(&rival.token)
            .json(&json!({"price": 1})),
        404,
        "PRODUCT_NOT_FOUND",
    )
    .await;

    // Another buyer's order and payment, while unpaid.
    let order_path = format!("/orders/{order}");
    for request in [
        h.get(&order_path),
        h.post(&format!("{order_path}/cancel")),
        h.post(&format!("{order_path}/confirm")),
    ] {
        refused(request.bearer_auth(&stranger.token), 404, "ORDER_NOT_FOUND").await;
    }
    refused(
        h.post(&format!("/payments/{payment}/complete"))
            .bearer_auth(&stranger.token),
        404,
        "PAYMENT_NOT_FOUND",
    )
    .await;
    let theirs = answered(h.get("/orders").bearer_auth(&stranger.token), 200).await;
    assert_eq!(theirs["items"], json!([]));
    let rivals = answered(h.get("/partner/orders").bearer_auth(&rival.token), 200).await;
    assert_eq!(rivals["items"], json!([]));
    assert_eq!(h.state().await, before);

    // Paid, it could be shipped, but not by another partner.
    sqlx::query("UPDATE orders SET status = 'PAID', paid_at = NOW(6) WHERE id = ?")
        .bind(order)
        .execute(db)
        .await
        .unwrap();
    let before = h.state().await;
    refused(
        h.post(&format!("/partner/orders/{order}/ship"))
            .bearer_auth(&rival.token),
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
    refused(
        h.post(&format!("{order_path}/cancel"))
            .bearer_auth(&stranger.token),
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
    assert_eq!(h.state().await, before);
    let shipped = answered(
        h.post(&format!("/partner/orders/{order}/ship"))
            .bearer_auth(&seller.token),
        200,
    )
    .await;
    assert_eq!(shipped["status"], "SHIPPED");
    assert_ne!(h.state().await, before, "the checksums do not see a write");

    // Shipped, it could be confirmed, but not by another buyer.
    let before = h.state().await;
    refused(
        h.post(&format!("{order_path}/confirm"))
            .bearer_auth(&stranger.token),
        404,
        "ORDER_NOT_FOUND",
    )
    .await;
    assert_eq!(h.state().await, before);
    let confirmed = answered(
        h.post(&format!("{order_path}/confirm"))
            .bearer_auth(&buyer.token),
        200,
    )
    .await;
    assert_eq!(confirmed["status"], "CONFIRMED");

    // The product is as its partner left it, and its partner may still change it.
    let now = answered(h.get(&product_path), 200).await;
    assert_eq!(now["name"], product["name"]);
    assert_eq!(now["price"], product["price"]);
    let renamed = answered(
        h.request(Method::PATCH, &product_path)
            .bearer_auth(&seller.token)
            .json(&json!({"name": "Air Jordan 1 Retro High OG 'Chicago'"})),
        200,
    )
    .await;
    assert_eq!(renamed["name"], "Air Jordan 1 Retro High OG 'Chicago'");
    h.assert_no_secret_logged();
}
