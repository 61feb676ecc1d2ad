//! Numbers out of range or not numbers at all, in every numeric field: 422 `VALIDATION` naming
//! the field (400 `MALFORMED_JSON` for what JSON itself cannot hold), never a 5xx, nothing written.

use reqwest::{Method, RequestBuilder, header::CONTENT_TYPE};
use serde_json::{Value, json};
use shared::domain::auth::Role;

use super::{Hostile, answered, invalid, not_a_server_error, refused};

/// Where a template body holds the value under test.
const SLOT: &str = "\"__value__\"";

/// Not an integer, whatever the field's range: each is a 422 naming the field.
const NOT_INTEGERS: &[&str] = &[
    "1.5",
    "-0.5",
    "1.0",
    "1e2",
    "1e30",
    "-1e30",
    "\"10\"",
    "\"\"",
    "true",
    "false",
    "null",
    "[]",
    "[1]",
    "{}",
    "18446744073709551615",
    "9223372036854775808",
    "-9223372036854775809",
];

/// Integers no count or amount of ours can be.
const OUT_OF_RANGE: &[&str] = &[
    "-1",
    "0",
    "-0",
    "9223372036854775807",
    "-9223372036854775808",
];

/// Not JSON at all: 400.
const NOT_JSON: &[&str] = &[
    "1e400", "-1e400", "NaN", "Infinity", "0x10", "01", "+1", "1_000", ".5",
];

/// `template` (holding [`SLOT`] once) with the value's raw JSON text in its place.
fn with_value(template: &Value, raw: &str) -> String {
    let text = template.to_string();
    assert!(text.contains(SLOT), "{text}");
    text.replacen(SLOT, raw, 1)
}

/// Sends `template` with each of `raws` in its slot: 422 naming `field`.
async fn each_invalid(
    request: &dyn Fn() -> RequestBuilder,
    template: &Value,
    field: &str,
    raws: &[&str],
) {
    for raw in raws {
        let body = with_value(template, raw);
        let problem = invalid(
            request()
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone()),
            field,
        )
        .await;
        assert!(problem["detail"].is_string(), "{body}: {problem}");
    }
}

/// Sends `template` with each of [`NOT_JSON`] in its slot: 400 `MALFORMED_JSON`.
async fn each_malformed(request: &dyn Fn() -> RequestBuilder, template: &Value) {
    for raw in NOT_JSON {
        refused(
            request()
                .header(CONTENT_TYPE, "application/json")
                .body(with_value(template, raw)),
            400,
            "MALFORMED_JSON",
        )
        .await;
    }
}

/// A template: `body` with `field` (a top-level key) in the slot.
fn slotted(body: &Value, field: &str) -> Value {
    let mut template = body.clone();
    template[field] = json!("__value__");
    template
}

#[tokio::test]
async fn product_numbers_out_of_range_or_mistyped_are_422_and_write_nothing() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let product = h.product(&partner).await;
    let id = product["id"].as_i64().unwrap();
    let before = h.state().await;

    let create = || h.post("/products").bearer_auth(&partner.token);
    let update = || {
        h.request(Method::PATCH, &format!("/products/{id}"))
            .bearer_auth(&partner.token)
    };
    let valid = super::product_body("Air Max 1");
    let ranges: &[(&str, &[&str])] = &[
        ("price", &["100000001", "2147483648"]),
        (
            "stock",
            &["1000001", "2147483647", "2147483648", "4294967296"],
        ),
        // A per-buyer cap may exceed the stock; it must fit the column.
        ("max_per_buyer", &["2147483648", "9223372036854775808"]),
    ];
    for (field, too_big) in ranges {
        let template = slotted(&valid, field);
        each_invalid(&create, &template, field, NOT_INTEGERS).await;
        each_invalid(&create, &template, field, OUT_OF_RANGE).await;
        each_invalid(&create, &template, field, too_big).await;
        each_malformed(&create, &template).await;

        // An update: the same, except that `null` leaves a field as it is.
        let template = slotted(&json!({}), field);
        let not_null: Vec<&str> = NOT_INTEGERS
            .iter()
            .copied()
            .filter(|raw| *raw != "null")
            .collect();
        each_invalid(&update, &template, field, &not_null).await;
        each_invalid(&update, &template, field, OUT_OF_RANGE).await;
        each_invalid(&update, &template, field, too_big).await;
        each_malformed(&update, &template).await;
        let (status, _) = not_a_server_error(
            update()
                .header(CONTENT_TYPE, "application/json")
                .body(with_value(&template, "null")),
        )
        .await;
        assert!(
            status == 200 || status == 422,
            "{field}: null answered {status}"
        );
    }
    let release_at = slotted(&valid, "release_at");
    let dates = [
        "0",
        "1767225600",
        "\"0\"",
        "\"\"",
        "null",
        "\"+275760-09-13T00:00:00Z\"",
        "\"+10000-01-01T00:00:00Z\"",
        "\"-0001-01-01T00:00:00Z\"",
        "\"0000-01-01T00:00:00Z\"",
        "\"9999-12-31T23:59:59Z\"",
        "\"1970-01-01T00:00:00Z\"",
        "\"2026-13-01T00:00:00Z\"",
        "\"2026-02-30T00:00:00Z\"",
        "\"2026-01-01T24:00:01Z\"",
        "\"2026-01-01 00:00:00\"",
        "\"' OR 1=1 --\"",
    ];
    each_invalid(&create, &release_at, "release_at", &dates).await;
    let update_release = slotted(&json!({}), "release_at");
    each_invalid(&update, &update_release, "release_at", &dates[..3]).await;
    each_invalid(&update, &update_release, "release_at", &dates[5..]).await;

    assert_eq!(
        h.state().await,
        before,
        "a refused product changed something"
    );
    let after = answered(h.get(&format!("/products/{id}")), 200).await;
    assert_eq!(after, product);
    assert_eq!(h.count("products").await, 1);

    // Page sizes in the query string.
    for size in [
        "-1",
        "0",
        "101",
        "9223372036854775807",
        "18446744073709551616",
        "1e30",
        "1.5",
        "40.0",
        "true",
        "null",
        "NaN",
        "0x10",
    ] {
        invalid(h.get("/products").query(&[("size", size)]), "size").await;
    }
    h.assert_no_secret_logged();
}

#[tokio::test]
async fn checkout_numbers_out_of_range_or_mistyped_are_422_and_sell_nothing() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let buyer = h.user(Role::Buyer).await;
    let product = h.product(&partner).await["id"].as_i64().unwrap();
    let before = h.state().await;

    // A fresh key each time, so that no answer is a replay of an earlier one.
    let checkout = || {
        h.post("/orders")
            .bearer_auth(&buyer.token)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
    };
    let quantity = json!({"items": [{"product_id": product, "quantity": "__value__"}]});
    each_invalid(&checkout, &quantity, "items[0].quantity", NOT_INTEGERS).await;
    each_invalid(&checkout, &quantity, "items[0].quantity", OUT_OF_RANGE).await;
    each_invalid(
        &checkout,
        &quantity,
        "items[0].quantity",
        &["101", "2147483647", "2147483648"],
    )
    .await;
    each_malformed(&checkout, &quantity).await;

    let product_id = json!({"items": [{"product_id": "__value__", "quantity": 1}]});
    each_invalid(&checkout, &product_id, "items[0].product_id", NOT_INTEGERS).await;
    each_invalid(
        &checkout,
        &product_id,
        "items[0].product_id",
        &["-1", "0", "-0", "-9223372036854775808"],
    )
    .await;
    each_malformed(&checkout, &product_id).await;
    // A valid id of no product.
    refused(
        checkout()
            .header(CONTENT_TYPE, "application/json")
            .body(with_value(&product_id, "9223372036854775807")),
        404,
        "PRODUCT_NOT_FOUND",
    )
    .await;

    let items = json!({"items": "__value__"});
    let many: Vec<Value> = (1..=21)
        .map(|id| json!({"product_id": id, "quantity": 1}))
        .collect();
    let many = Value::Array(many).to_string();
    let twice =
        json!([{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 1}])
            .to_string();
    each_invalid(
        &checkout,
        &items,
        "items",
        &["null", "{}", "5", "\"x\"", "[]", &many, &twice],
    )
    .await;
    invalid(checkout().json(&json!({"items": [null]})), "items[0]").await;

    assert_eq!(
        h.state().await,
        before,
        "a refused checkout changed something"
    );
    let after = answered(h.get(&format!("/products/{product}")), 200).await;
    assert_eq!(after["stock_remaining"], 10);
    // Nothing was reserved or counted against the buyer either: the whole allowance is left.
    let bought = answered(
        checkout().json(&json!({"items": [{"product_id": product, "quantity": 2}]})),
        201,
    )
    .await;
    assert_eq!(bought["orders"][0]["items"][0]["quantity"], 2);
    let after = answered(h.get(&format!("/products/{product}")), 200).await;
    assert_eq!(after["stock_remaining"], 8);
    h.assert_no_secret_logged();
}

#[tokio::test]
async fn commission_numbers_out_of_range_or_mistyped_are_422_and_write_nothing() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let admin = h.user(Role::Admin).await;
    let before = h.state().await;

    let put = || {
        h.request(
            Method::PUT,
            &format!("/admin/partners/{}/commission", partner.id),
        )
        .bearer_auth(&admin.token)
    };
    let valid = json!({"rate_bps": 500, "fixed_fee": 0, "effective_from": "2026-01-01"});
    let rate = slotted(&valid, "rate_bps");
    each_invalid(&put, &rate, "rate_bps", NOT_INTEGERS).await;
    each_invalid(
        &put,
        &rate,
        "rate_bps",
        &["-1", "10001", "9223372036854775807", "-9223372036854775808"],
    )
    .await;
    each_malformed(&put, &rate).await;
    let fee = slotted(&valid, "fixed_fee");
    each_invalid(&put, &fee, "fixed_fee", NOT_INTEGERS).await;
    each_invalid(&put, &fee, "fixed_fee", &["-1", "-9223372036854775808"]).await;
    each_malformed(&put, &fee).await;
    let from = slotted(&valid, "effective_from");
    each_invalid(
        &put,
        &from,
        "effective_from",
        &[
            "20260101",
            "null",
            "true",
            "\"\"",
            "\"2026-02-30\"",
            "\"0000-01-01\"",
            "\"+10000-01-01\"",
            "\"-0001-01-01\"",
            "\"2026-01-01' OR '1'='1\"",
        ],
    )
    .await;

    // The run's date likewise (only dates that would never start a run).
    let start = || h.post("/admin/settlements/runs").bearer_auth(&admin.token);
    let date = json!({"date": "__value__"});
    each_invalid(
        &start,
        &date,
        "date",
        &[
            "20260101",
            "true",
            "\"\"",
            "\"2026-02-30\"",
            "\"0000-01-01\"",
            "\"+10000-01-01\"",
            "\"9999-12-31\"",
            "\"2999-01-01\"",
            "\"1000-01-01\"",
            "\"0001-01-01\"",
        ],
    )
    .await;
    // The edges of what a date may be, read back (empty) rather than failing in MySQL.
    for (path, token) in [
        ("/admin/settlements?date=0001-01-01", &admin.token),
        ("/admin/settlements?date=9999-12-31", &admin.token),
        (
            "/partner/settlements?from=0001-01-01&to=0001-12-31",
            &partner.token,
        ),
        (
            "/partner/settlements?from=9999-01-01&to=9999-12-31",
            &partner.token,
        ),
    ] {
        let page = answered(h.get(path).bearer_auth(token), 200).await;
        assert_eq!(page["items"], json!([]), "{path}");
    }
    each_malformed(&start, &date).await;

    assert_eq!(
        h.state().await,
        before,
        "a refused policy or run changed something"
    );

    // The fee has no upper bound in the contract (KRW per order, at least 0): the largest one
    // is stored as it is (a day's commission saturates; see the settlement's rule).
    let largest = put()
        .header(CONTENT_TYPE, "application/json")
        .body(with_value(&fee, "9223372036854775807"));
    let policy = answered(largest, 200).await;
    assert_eq!(policy["fixed_fee"], i64::MAX);
    let stored: i64 =
        sqlx::query_scalar("SELECT fixed_fee FROM commission_policies WHERE partner_id = ?")
            .bind(partner.id)
            .fetch_one(&h.app.ctx.platform.db)
            .await
            .unwrap();
    assert_eq!(stored, i64::MAX);
    for edge in ["0001-01-01", "9999-12-31"] {
        let policy = answered(
            put().json(&json!({"rate_bps": 0, "fixed_fee": 0, "effective_from": edge})),
            200,
        )
        .await;
        assert_eq!(policy["effective_from"], edge);
    }
    h.assert_no_secret_logged();
}
