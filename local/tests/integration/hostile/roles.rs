//! Roles crossed: a buyer on partner and admin routes, a partner on buyer and admin routes, an
//! admin on the routes of those who sell and buy. Each is 403 `FORBIDDEN`, before the body or
//! the path is looked at (the bodies below are invalid, the ids made up), and changes nothing.

use reqwest::RequestBuilder;
use serde_json::json;
use shared::domain::auth::Role;

use super::{Hostile, answered, refused};

/// Requests a role may not make, each with a body or path that would be 422 or 404 if the role
/// check did not come first.
fn partner_routes(h: &Hostile, product: i64, order: i64) -> Vec<RequestBuilder> {
    vec![
        h.post("/products").json(&json!({"name": ""})),
        h.request(reqwest::Method::PATCH, &format!("/products/{product}"))
            .json(&json!({"price": -1})),
        h.request(reqwest::Method::DELETE, &format!("/products/{product}")),
        h.get("/partner/orders?status=NOT_A_STATUS"),
        h.post(&format!("/partner/orders/{order}/ship")),
        h.post("/partner/orders/987654/ship"),
        h.get("/partner/settlements?from=garbage"),
    ]
}

fn admin_routes(h: &Hostile, partner: i64) -> Vec<RequestBuilder> {
    vec![
        h.request(
            reqwest::Method::PUT,
            &format!("/admin/partners/{partner}/commission"),
        )
        .json(&json!({"rate_bps": 0, "fixed_fee": 0, "effective_from": "2026-01-01"})),
        h.request(reqwest::Method::PUT, "/admin/partners/987654/commission")
            .json(&json!({"rate_bps": -1})),
        h.post("/admin/settlements/runs")
            .json(&json!({"date": "2020-01-01"})),
        h.post("/admin/settlements/runs")
            .json(&json!({"date": "not a date"})),
        h.get("/admin/settlements/runs/no-such-run"),
        h.get("/admin/settlements?date=2020-01-01"),
        h.get("/admin/settlements?date=garbage"),
    ]
}

fn buyer_routes(h: &Hostile, product: i64, order: i64, payment: &str) -> Vec<RequestBuilder> {
    vec![
        h.post("/orders")
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"items": [{"product_id": product, "quantity": 1}]})),
        // No Idempotency-Key and no items: still 403 first.
        h.post("/orders").json(&json!({"items": []})),
        h.get("/orders"),
        h.get("/orders?cursor=garbage"),
        h.get(&format!("/orders/{order}")),
        h.post(&format!("/orders/{order}/cancel")),
        h.post(&format!("/orders/{order}/confirm")),
        h.post(&format!("/payments/{payment}/complete")),
        h.post("/payments/pay_nope/complete"),
    ]
}

async fn all_forbidden(requests: Vec<RequestBuilder>, token: &str) {
    for request in requests {
        refused(request.bearer_auth(token), 403, "FORBIDDEN").await;
    }
}

#[tokio::test]
async fn each_role_is_forbidden_the_routes_of_the_others_before_anything_else() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let buyer = h.user(Role::Buyer).await;
    let admin = h.user(Role::Admin).await;
    let product = h.product(&partner).await;
    let product_id = product["id"].as_i64().unwrap();
    let checkout = h.checkout(&buyer, product_id).await;
    let order = checkout["orders"][0]["id"].as_i64().unwrap();
    let payment = checkout["payment_id"].as_str().unwrap().to_owned();
    let before = h.state().await;

    // A buyer on the partner's and the admin's routes.
    all_forbidden(partner_routes(&h, product_id, order), &buyer.token).await;
    all_forbidden(admin_routes(&h, partner.id), &buyer.token).await;
    // A partner on the buyer's and the admin's routes.
    all_forbidden(
        buyer_routes(&h, product_id, order, &payment),
        &partner.token,
    )
    .await;
    all_forbidden(admin_routes(&h, partner.id), &partner.token).await;
    // An admin neither sells nor buys, nor ships.
    all_forbidden(
        vec![
            h.post("/products")
                .json(&super::product_body("Listed by an admin")),
            h.post("/products").json(&json!([])),
            h.get("/partner/orders"),
            h.post(&format!("/partner/orders/{order}/ship")),
            h.get("/partner/settlements"),
        ],
        &admin.token,
    )
    .await;
    all_forbidden(buyer_routes(&h, product_id, order, &payment), &admin.token).await;

    assert_eq!(
        h.state().await,
        before,
        "a forbidden request changed something"
    );
    let after = answered(h.get(&format!("/products/{product_id}")), 200).await;
    assert_eq!(after["price"], product["price"]);
    assert_eq!(after["stock_remaining"], 9);
    let order_now = answered(
        h.get(&format!("/orders/{order}")).bearer_auth(&buyer.token),
        200,
    )
    .await;
    assert_eq!(order_now["status"], "PENDING_PAYMENT");
    h.assert_no_secret_logged();
}
