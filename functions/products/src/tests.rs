//! The products function against real MariaDB and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use chrono::{Duration as ChronoDuration, Utc};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::{
    adapters::redis::RedisStore,
    domain::auth::Role,
    testing::{ApiRequest, ProductFixture, TestContext, body_json, problem_code},
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

    async fn list(&self, size: Option<&str>, cursor: Option<&str>) -> Response<Body> {
        let mut req = ApiRequest::new("GET /products");
        if let Some(size) = size {
            req = req.query("size", size);
        }
        if let Some(cursor) = cursor {
            req = req.query("cursor", cursor);
        }
        self.call(req).await
    }

    async fn create(&self, token: &str, body: &Value) -> Response<Body> {
        self.call(ApiRequest::new("POST /products").bearer(token).json(body))
            .await
    }

    /// Inserts products straight into MySQL, `release_at` spaced `spacing_secs` apart going back
    /// from `newest` (several share one release time when spacing is 0).
    async fn seed(
        &self,
        partner_id: i64,
        count: usize,
        newest: DateTime<Utc>,
        spacing_secs: i64,
    ) -> Vec<i64> {
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let release_at =
                newest - ChronoDuration::seconds(spacing_secs * i64::try_from(n).unwrap());
            let product = ProductFixture {
                name: format!("Dunk Low #{n}"),
                brand: "Nike".to_owned(),
                price: 199_000,
                release_at,
                stock: 10,
                max_per_buyer: 1,
                ..ProductFixture::new(partner_id)
            };
            ids.push(product.insert(&self.ctx.platform.db).await);
        }
        ids
    }
}

fn new_product() -> Value {
    json!({
        "name": "Air Jordan 1 Retro High OG 'Chicago'",
        "brand": "Nike",
        "price": 219000,
        "release_at": (Utc::now() + ChronoDuration::hours(3)).to_rfc3339(),
        "stock": 100,
        "max_per_buyer": 1
    })
}

fn cache_header(response: &Response<Body>) -> &str {
    response.headers()["x-cache"].to_str().unwrap()
}

fn ids_of(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

// --- listing and pagination -----------------------------------------------------------------

#[tokio::test]
async fn an_empty_catalogue_lists_nothing() {
    let app = App::new().await;
    let response = app.list(None, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body_json(&response),
        json!({"items": [], "next_cursor": null})
    );
}

#[tokio::test]
async fn pages_walk_newest_first_without_gaps_or_repeats() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    // Groups of products share a release time, so the id breaks ties.
    let mut all = app.seed(partner, 50, Utc::now(), 60).await;
    all.extend(
        app.seed(partner, 45, Utc::now() - ChronoDuration::days(3), 0)
            .await,
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let response = app.list(Some("40"), cursor.as_deref()).await;
        assert_eq!(response.status(), 200);
        let page = body_json(&response);
        seen.extend(ids_of(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), all.len());
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        all.len(),
        "no repeats"
    );

    let (order,): (String,) =
        sqlx::query_as("SELECT GROUP_CONCAT(id ORDER BY release_at DESC, id DESC) FROM products")
            .fetch_one(&app.ctx.platform.db)
            .await
            .unwrap();
    let expected: Vec<i64> = order.split(',').map(|id| id.parse().unwrap()).collect();
    assert_eq!(seen, expected, "newest release first, then highest id");
}

#[tokio::test]
async fn products_added_during_a_walk_cause_no_skips_or_repeats() {
    let app = App::new().await;
    let (partner, token) = app.ctx.user(Role::Partner).await;
    let original: HashSet<i64> = app
        .seed(partner, 60, Utc::now(), 30)
        .await
        .into_iter()
        .collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = body_json(&app.list(Some("7"), cursor.as_deref()).await);
        seen.extend(ids_of(&page));
        // Between pages, new drops are listed, newer and older than the walk's position.
        let mut newer = new_product();
        newer["release_at"] = json!((Utc::now() + ChronoDuration::days(2)).to_rfc3339());
        assert_eq!(app.create(&token, &newer).await.status(), 201);
        app.seed(partner, 1, Utc::now() - ChronoDuration::hours(20), 0)
            .await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no product appears twice");
    assert!(
        original.is_subset(&unique),
        "every product present at the start was seen"
    );
}

#[tokio::test]
async fn bad_sizes_and_cursors_are_422() {
    let app = App::new().await;
    for (size, cursor, field) in [
        (Some("0"), None, "size"),
        (Some("101"), None, "size"),
        (Some("abc"), None, "size"),
        (None, Some("not-a-cursor"), "cursor"),
        (None, Some("djE6YWJjOjE"), "cursor"),
    ] {
        let response = app.list(size, cursor).await;
        assert_eq!(response.status(), 422, "{size:?} {cursor:?}");
        assert_eq!(problem_code(&response), "VALIDATION");
        assert_eq!(body_json(&response)["errors"][0]["field"], field);
    }
}

/// A cursor we could have issued, but for a release time MySQL's DATETIME cannot hold.
fn cursor_at(release_at: DateTime<Utc>) -> String {
    shared::domain::product::Cursor { release_at, id: 1 }.encode()
}

#[tokio::test]
async fn a_cursor_of_a_time_mysql_cannot_hold_is_422() {
    let app = App::new().await;
    // The first microsecond of a year, or (`last`) the last one of the year before.
    let at = |year: i32, last: bool| {
        let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        if last {
            start - ChronoDuration::microseconds(1)
        } else {
            start
        }
    };
    for release_at in [
        at(-1, false),
        at(0, false),
        at(1000, true),
        at(10_000, false),
        at(99_999, false),
    ] {
        let response = app.list(None, Some(&cursor_at(release_at))).await;
        assert_eq!(
            response.status(),
            422,
            "{release_at}: {:?}",
            body_json(&response)
        );
        assert_eq!(problem_code(&response), "VALIDATION");
        assert_eq!(body_json(&response)["errors"][0]["field"], "cursor");
    }
    for release_at in [at(1000, false), at(10_000, true)] {
        let response = app.list(None, Some(&cursor_at(release_at))).await;
        assert_eq!(
            response.status(),
            200,
            "{release_at}: {:?}",
            body_json(&response)
        );
    }
}

#[tokio::test]
async fn list_items_have_the_contract_fields() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let ids = app.seed(partner, 2, Utc::now(), 10).await;
    sqlx::query("UPDATE products SET stock_remaining = 0 WHERE id = ?")
        .bind(ids[1])
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();
    let page = body_json(&app.list(None, None).await);
    let first = &page["items"][0];
    let keys: HashSet<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "id",
            "name",
            "brand",
            "price",
            "release_at",
            "partner_id",
            "sold_out"
        ])
    );
    assert_eq!(page["items"][0]["sold_out"], false);
    assert_eq!(page["items"][1]["sold_out"], true);
    assert_eq!(page["items"][0]["partner_id"], partner);
}

// --- the page-1 cache -----------------------------------------------------------------------

#[tokio::test]
async fn page_one_is_cached_and_every_write_evicts_it() {
    let app = App::new().await;
    let (_, token) = app.ctx.user(Role::Partner).await;
    let first = app.list(None, None).await;
    assert_eq!(cache_header(&first), "miss");
    let second = app.list(None, Some("")).await;
    assert_eq!(cache_header(&second), "hit");
    assert_eq!(first.body().as_ref(), second.body().as_ref());

    // Other sizes and later pages never touch the cache.
    assert_eq!(cache_header(&app.list(Some("10"), None).await), "bypass");

    let created = body_json(&app.create(&token, &new_product()).await);
    let id = created["id"].as_i64().unwrap().to_string();
    let after_create = app.list(None, None).await;
    assert_eq!(cache_header(&after_create), "miss");
    assert_eq!(
        ids_of(&body_json(&after_create)),
        vec![created["id"].as_i64().unwrap()]
    );

    let patch = ApiRequest::new("PATCH /products/{id}")
        .path_param("id", &id)
        .bearer(&token);
    assert_eq!(
        app.call(patch.json(&json!({"price": 259000})))
            .await
            .status(),
        200
    );
    let after_update = app.list(None, None).await;
    assert_eq!(cache_header(&after_update), "miss");
    assert_eq!(body_json(&after_update)["items"][0]["price"], 259000);

    let delete = ApiRequest::new("DELETE /products/{id}")
        .path_param("id", &id)
        .bearer(&token);
    assert_eq!(app.call(delete).await.status(), 204);
    let after_delete = app.list(None, None).await;
    assert_eq!(cache_header(&after_delete), "miss");
    assert_eq!(body_json(&after_delete)["items"], json!([]));
}

#[tokio::test]
async fn a_rebuild_that_raced_an_eviction_is_not_stored() {
    let app = App::new().await;
    let cache = &app.deps.cache;
    let version = cache.try_lock().await.unwrap().expect("lock");
    // A write lands while the page is being rebuilt from MySQL...
    cache.evict().await.unwrap();
    // ...so the rebuilt (now outdated) page must not be cached.
    assert!(!cache.fill(version, b"{\"items\":[]}").await.unwrap());
    assert_eq!(cache.fresh().await.unwrap(), None);
    let version = cache.try_lock().await.unwrap().expect("unlocked by fill");
    assert!(cache.fill(version, b"{\"items\":[]}").await.unwrap());
    assert!(cache.fresh().await.unwrap().is_some());
}

#[tokio::test]
async fn a_cold_cache_is_rebuilt_by_one_request() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    app.seed(partner, 50, Utc::now(), 10).await;
    let responses = futures::future::join_all((0..24).map(|_| app.list(None, None))).await;
    let misses = responses
        .iter()
        .filter(|r| cache_header(r) == "miss")
        .count();
    assert_eq!(misses, 1, "exactly one request rebuilds page 1");
    let bodies: HashSet<&[u8]> = responses.iter().map(|r| r.body().as_ref()).collect();
    assert_eq!(bodies.len(), 1, "everyone gets the same page");
}

#[tokio::test]
async fn while_rebuilding_others_get_the_previous_copy() {
    let app = App::new().await;
    let (_, token) = app.ctx.user(Role::Partner).await;
    app.list(None, None).await; // builds page 1 (and its stale copy)
    app.create(&token, &new_product()).await; // evicts the fresh copy only
    let _lock = app
        .deps
        .cache
        .try_lock()
        .await
        .unwrap()
        .expect("we are the rebuilder now");
    let response = app.list(None, None).await;
    assert_eq!(cache_header(&response), "stale");
    assert_eq!(body_json(&response)["items"], json!([]));
}

#[tokio::test]
async fn with_redis_down_the_list_comes_from_mysql() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    app.seed(partner, 3, Utc::now(), 10).await;
    let dead_redis = RedisStore::with_prefix("redis://127.0.0.1:1", &app.ctx.redis_prefix).unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        dead_redis,
    );
    let deps = Deps::new(&platform);
    let response = handle(&deps, ApiRequest::new("GET /products").build()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(cache_header(&response), "bypass");
    assert_eq!(ids_of(&body_json(&response)).len(), 3);
}

#[tokio::test]
async fn the_cache_can_be_switched_off() {
    let app = App::with_vars(&[("PRODUCT_LIST_CACHE", "false")]).await;
    assert_eq!(cache_header(&app.list(None, None).await), "bypass");
    assert_eq!(cache_header(&app.list(None, None).await), "bypass");
}

// --- detail ---------------------------------------------------------------------------------

#[tokio::test]
async fn detail_shows_live_stock() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let id = app.seed(partner, 1, Utc::now(), 0).await[0];
    sqlx::query("UPDATE products SET stock_remaining = 3 WHERE id = ?")
        .bind(id)
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();
    let response = app
        .call(ApiRequest::new("GET /products/{id}").path_param("id", &id.to_string()))
        .await;
    assert_eq!(response.status(), 200);
    let body = body_json(&response);
    assert_eq!(body["stock_remaining"], 3);
    assert_eq!(body["stock"], 10);
    assert_eq!(body["sold_out"], false);
}

#[tokio::test]
async fn unknown_products_are_404() {
    let app = App::new().await;
    for id in ["999999", "abc", "-1", "0"] {
        let response = app
            .call(ApiRequest::new("GET /products/{id}").path_param("id", id))
            .await;
        assert_eq!(response.status(), 404, "{id}");
        assert_eq!(problem_code(&response), "PRODUCT_NOT_FOUND");
    }
}

// --- writes: roles, ownership, validation ---------------------------------------------------

#[tokio::test]
async fn only_partners_list_products() {
    let app = App::new().await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let anonymous = app
        .call(ApiRequest::new("POST /products").json(&new_product()))
        .await;
    assert_eq!(
        (
            anonymous.status().as_u16(),
            problem_code(&anonymous).as_str()
        ),
        (401, "UNAUTHENTICATED")
    );
    for token in [buyer, admin] {
        let response = app.create(&token, &new_product()).await;
        assert_eq!(
            (response.status().as_u16(), problem_code(&response).as_str()),
            (403, "FORBIDDEN")
        );
    }
    // Role is checked before the body: a buyer with a bad body still gets 403.
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    assert_eq!(app.create(&buyer, &json!({})).await.status(), 403);
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products")
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_partner_creates_a_product_with_full_stock() {
    let app = App::new().await;
    let (partner, token) = app.ctx.user(Role::Partner).await;
    let response = app.create(&token, &new_product()).await;
    assert_eq!(response.status(), 201);
    let body = body_json(&response);
    assert_eq!(body["partner_id"], partner);
    assert_eq!(body["stock"], 100);
    assert_eq!(body["stock_remaining"], 100);
    assert_eq!(body["max_per_buyer"], 1);
}

#[tokio::test]
async fn invalid_products_are_422_and_write_nothing() {
    let app = App::new().await;
    let (_, token) = app.ctx.user(Role::Partner).await;
    let with = |field: &str, value: Value| {
        let mut body = new_product();
        body[field] = value;
        body
    };
    let mut missing = new_product();
    missing.as_object_mut().unwrap().remove("price");
    let cases = [
        (with("name", json!("")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("brand", json!(" ")), "brand"),
        (with("price", json!(0)), "price"),
        (with("price", json!(-5)), "price"),
        (with("price", json!("expensive")), "price"),
        (with("stock", json!(0)), "stock"),
        (with("stock", json!(1.5)), "stock"),
        (with("max_per_buyer", json!(0)), "max_per_buyer"),
        (with("max_per_buyer", json!(-1)), "max_per_buyer"),
        (with("release_at", json!("tomorrow")), "release_at"),
        (
            with(
                "release_at",
                json!((Utc::now() + ChronoDuration::days(400)).to_rfc3339()),
            ),
            "release_at",
        ),
        (
            with(
                "release_at",
                json!((Utc::now() - ChronoDuration::days(3)).to_rfc3339()),
            ),
            "release_at",
        ),
        (with("colour", json!("red")), "colour"),
        (missing, "price"),
    ];
    for (body, field) in cases {
        let response = app.create(&token, &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let errors = body_json(&response)["errors"].clone();
        assert!(
            errors
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"].as_str().unwrap().contains(field)),
            "{body} → {errors}"
        );
    }
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products")
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn partners_edit_only_their_own_products_and_admins_any() {
    let app = App::new().await;
    let (_, owner) = app.ctx.user(Role::Partner).await;
    let (_, other) = app.ctx.user(Role::Partner).await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let id = body_json(&app.create(&owner, &new_product()).await)["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let patch = |token: &str| {
        ApiRequest::new("PATCH /products/{id}")
            .path_param("id", &id)
            .bearer(token)
            .json(&json!({"name": "Renamed"}))
    };
    assert_eq!(app.call(patch(&other)).await.status(), 403);
    assert_eq!(app.call(patch(&buyer)).await.status(), 403);
    assert_eq!(app.call(patch(&owner)).await.status(), 200);
    assert_eq!(app.call(patch(&admin)).await.status(), 200);
    let missing = ApiRequest::new("PATCH /products/{id}")
        .path_param("id", "987654")
        .bearer(&owner)
        .json(&json!({}));
    assert_eq!(app.call(missing).await.status(), 404);
    let delete = |token: &str| {
        ApiRequest::new("DELETE /products/{id}")
            .path_param("id", &id)
            .bearer(token)
    };
    assert_eq!(app.call(delete(&other)).await.status(), 403);
    assert_eq!(app.call(delete(&admin)).await.status(), 204);
    assert_eq!(app.call(delete(&owner)).await.status(), 404);
}

#[tokio::test]
async fn stock_changes_keep_sold_units() {
    let app = App::new().await;
    let (_, token) = app.ctx.user(Role::Partner).await;
    let id = body_json(&app.create(&token, &new_product()).await)["id"]
        .as_i64()
        .unwrap();
    // 30 of 100 units sold.
    sqlx::query("UPDATE products SET stock_remaining = 70 WHERE id = ?")
        .bind(id)
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();
    let patch = |body: Value| {
        ApiRequest::new("PATCH /products/{id}")
            .path_param("id", &id.to_string())
            .bearer(&token)
            .json(&body)
    };
    let too_low = app.call(patch(json!({"stock": 29}))).await;
    assert_eq!(too_low.status(), 422);
    assert_eq!(body_json(&too_low)["errors"][0]["field"], "stock");
    let raised = body_json(&app.call(patch(json!({"stock": 150}))).await);
    assert_eq!(
        (raised["stock"].as_i64(), raised["stock_remaining"].as_i64()),
        (Some(150), Some(120))
    );
    let lowered = body_json(&app.call(patch(json!({"stock": 30}))).await);
    assert_eq!(
        (
            lowered["stock"].as_i64(),
            lowered["stock_remaining"].as_i64(),
            lowered["sold_out"].as_bool()
        ),
        (Some(30), Some(0), Some(true))
    );
    let bad = app
        .call(patch(json!({"price": 0, "max_per_buyer": 0})))
        .await;
    assert_eq!(bad.status(), 422);
    assert_eq!(body_json(&bad)["errors"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_purchase_limit_may_exceed_the_stock() {
    // GIVEN a partner listing the last three pairs of a drop, at most five per buyer
    let app = App::new().await;
    let (_, token) = app.ctx.user(Role::Partner).await;
    let mut body = new_product();
    body["stock"] = json!(3);
    body["max_per_buyer"] = json!(5);

    // WHEN it is created, THEN the limit is kept as listed
    let created = app.create(&token, &body).await;
    assert_eq!(created.status(), 201, "{:?}", body_json(&created));
    let created = body_json(&created);
    assert_eq!(
        (created["stock"].as_i64(), created["max_per_buyer"].as_i64()),
        (Some(3), Some(5))
    );
    let id = created["id"].as_i64().unwrap();
    let patch = |body: Value| {
        ApiRequest::new("PATCH /products/{id}")
            .path_param("id", &id.to_string())
            .bearer(&token)
            .json(&body)
    };

    // WHEN the limit is raised further, or the stock lowered below it, THEN both are accepted
    let raised = app.call(patch(json!({"max_per_buyer": 10}))).await;
    assert_eq!(raised.status(), 200, "{:?}", body_json(&raised));
    assert_eq!(body_json(&raised)["max_per_buyer"], 10);
    let lowered = app.call(patch(json!({"stock": 1}))).await;
    assert_eq!(lowered.status(), 200, "{:?}", body_json(&lowered));
    let lowered = body_json(&lowered);
    assert_eq!(
        (lowered["stock"].as_i64(), lowered["max_per_buyer"].as_i64()),
        (Some(1), Some(10))
    );

    // AND a limit below one is still refused, changing nothing
    let zero = app.call(patch(json!({"max_per_buyer": 0}))).await;
    assert_eq!(zero.status(), 422);
    assert_eq!(body_json(&zero)["errors"][0]["field"], "max_per_buyer");
    let (stock, limit): (i32, i32) =
        sqlx::query_as("SELECT stock, max_per_buyer FROM products WHERE id = ?")
            .bind(id)
            .fetch_one(&app.ctx.platform.db)
            .await
            .unwrap();
    assert_eq!((stock, limit), (1, 10));
}

#[tokio::test]
async fn an_ordered_product_cannot_be_deleted() {
    let app = App::new().await;
    let (partner, token) = app.ctx.user(Role::Partner).await;
    let (buyer, _) = app.ctx.user(Role::Buyer).await;
    let id = body_json(&app.create(&token, &new_product()).await)["id"]
        .as_i64()
        .unwrap();
    let db = &app.ctx.platform.db;
    sqlx::query("INSERT INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, expires_at) VALUES ('pay_1', ?, 219000, 'PENDING', 'key-0001', REPEAT('0', 64), UTC_TIMESTAMP())")
        .bind(buyer).execute(db).await.unwrap();
    let order = sqlx::query("INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, expires_at) VALUES ('pay_1', ?, ?, 'EXPIRED', 219000, UTC_TIMESTAMP())")
        .bind(buyer).bind(partner).execute(db).await.unwrap();
    sqlx::query("INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, 1, 219000)")
        .bind(i64::try_from(order.last_insert_id()).unwrap()).bind(id).execute(db).await.unwrap();
    let response = app
        .call(
            ApiRequest::new("DELETE /products/{id}")
                .path_param("id", &id.to_string())
                .bearer(&token),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem_code(&response), "PRODUCT_IN_USE");
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn every_products_route_in_the_table_is_handled() {
    let app = App::new().await;
    for route in shared::routes::routes_of(shared::routes::PRODUCTS) {
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
async fn api_gateway_sample_events_flow_through_the_handler() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let ids = app.seed(partner, 3, Utc::now(), 10).await;
    let event = |json: &str| lambda_http::request::from_str(json).expect("API Gateway v2 event");

    let list = handle(
        &app.deps,
        event(include_str!("../../../events/products/list-size-2.json")),
    )
    .await;
    assert_eq!(list.status(), 200);
    let page = body_json(&list);
    assert_eq!(ids_of(&page), vec![ids[0], ids[1]]);
    assert!(page["next_cursor"].is_string());

    let detail = handle(
        &app.deps,
        event(include_str!("../../../events/products/detail-1.json")),
    )
    .await;
    assert_eq!(detail.status(), 200);
    assert_eq!(body_json(&detail)["id"], 1);
}

#[tokio::test]
async fn an_edit_makes_checkout_reload_the_products_facts() {
    let app = App::new().await;
    let (_, token) = app.ctx.user(Role::Partner).await;
    let id = body_json(&app.create(&token, &new_product()).await)["id"]
        .as_i64()
        .unwrap();
    let reservations = StockReservations::new(app.ctx.platform.redis.clone());
    let facts = shared::adapters::stock::StockFacts {
        remaining: 100,
        release_at: Utc::now(),
        max_per_buyer: 1,
        price: 219_000,
        partner_id: 1,
    };
    reservations.load(id, &facts).await.unwrap();
    let patch = ApiRequest::new("PATCH /products/{id}")
        .path_param("id", &id.to_string())
        .bearer(&token);
    assert_eq!(
        app.call(patch.json(&json!({"price": 189000})))
            .await
            .status(),
        200
    );
    assert_eq!(
        reservations.remaining(id).await.unwrap(),
        None,
        "checkout facts dropped"
    );
}
