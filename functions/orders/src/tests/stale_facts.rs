//! A product edited while Redis kept its old facts (an eviction that failed, or a first load that
//! raced the edit): MySQL's row decides the price, the release time and the purchase limit, the
//! stale facts are dropped, and the next attempt sells at the new ones.

use super::*;

/// Changes a product row behind the cache's back, as an edit whose eviction failed leaves it.
async fn edit_in_mysql_only(app: &App, product: i64, assignment: &str) {
    sqlx::query(&format!("UPDATE products SET {assignment} WHERE id = ?"))
        .bind(product)
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();
}

async fn orders_of(app: &App, product: i64) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM order_items WHERE product_id = ?")
        .bind(product)
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn a_price_changed_behind_the_cache_is_refused_then_sold_at_the_new_price() {
    // GIVEN a product whose facts Redis loaded at 100,000 KRW, then repriced in MySQL alone
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, first) = app.ctx.user(Role::Buyer).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    let loaded = app.checkout(&first, "stale-0001", one(product)).await;
    assert_eq!(loaded.status(), 201);
    edit_in_mysql_only(&app, product, "price = 120000").await;

    // WHEN a buyer checks out at the price Redis remembers
    let refused = app.checkout(&buyer, "stale-0002", one(product)).await;

    // THEN the sale is refused, nothing is written, and the stale facts are gone
    assert_eq!(
        (refused.status().as_u16(), problem_code(&refused).as_str()),
        (409, "PRICE_CHANGED")
    );
    assert_eq!(orders_of(&app, product).await, 1);
    assert_eq!(app.stock_in_mysql(product).await, 4);
    assert_eq!(
        app.stock_in_redis(product).await,
        None,
        "reloaded next time"
    );

    // AND the next attempt reloads them and sells at MySQL's price
    let sold = app.checkout(&buyer, "stale-0003", one(product)).await;
    assert_eq!(sold.status(), 201, "{:?}", body_json(&sold));
    let sold = body_json(&sold);
    assert_eq!(sold["amount"], 120_000);
    assert_eq!(sold["orders"][0]["items"][0]["unit_price"], 120_000);
    assert_eq!(
        app.scalar("SELECT CAST(MAX(unit_price) AS SIGNED) FROM order_items")
            .await,
        120_000
    );
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (3, Some(3))
    );
}

#[tokio::test]
async fn a_release_postponed_behind_the_cache_sells_nothing_before_it() {
    // GIVEN a product on sale whose facts Redis loaded, then postponed in MySQL alone
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, first) = app.ctx.user(Role::Buyer).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    assert_eq!(
        app.checkout(&first, "stale-0001", one(product))
            .await
            .status(),
        201
    );
    let release_at = Utc::now() + ChronoDuration::seconds(3);
    sqlx::query("UPDATE products SET release_at = ? WHERE id = ?")
        .bind(release_at)
        .bind(product)
        .execute(&app.ctx.platform.db)
        .await
        .unwrap();

    // WHEN a buyer checks out before the new release time
    let refused = app.checkout(&buyer, "stale-0002", one(product)).await;

    // THEN MySQL refuses it, nothing is written, and the stale facts are gone
    assert_eq!(
        (refused.status().as_u16(), problem_code(&refused).as_str()),
        (409, "NOT_ON_SALE")
    );
    assert_eq!(orders_of(&app, product).await, 1);
    assert_eq!(app.stock_in_mysql(product).await, 4);
    assert_eq!(app.stock_in_redis(product).await, None);

    // AND the next attempt, still early, is refused by the reloaded facts with the unit back
    let early = app.checkout(&buyer, "stale-0003", one(product)).await;
    assert_eq!(problem_code(&early), "NOT_ON_SALE");
    assert_eq!(app.stock_in_redis(product).await, Some(4));
    assert!(
        Utc::now() < release_at,
        "the machine was too slow for this test"
    );

    // AND once the new release time has come, the product sells
    let wait = (release_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    let sold = app.checkout(&buyer, "stale-0004", one(product)).await;
    assert_eq!(sold.status(), 201, "{:?}", body_json(&sold));
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (3, Some(3))
    );
}

#[tokio::test]
async fn a_limit_lowered_behind_the_cache_is_enforced_from_the_row() {
    // GIVEN a product of up to three per buyer whose facts Redis loaded, then lowered to one in
    // MySQL alone
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, first) = app.ctx.user(Role::Buyer).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 10, 3).await;
    assert_eq!(
        app.checkout(&first, "stale-0001", one(product))
            .await
            .status(),
        201
    );
    edit_in_mysql_only(&app, product, "max_per_buyer = 1").await;
    let two = || json!([{"product_id": product, "quantity": 2}]);

    // WHEN a buyer asks for two, which Redis still allows, and one who holds one asks again
    let refused = app.checkout(&buyer, "stale-0002", two()).await;
    let again = app.checkout(&first, "stale-0003", one(product)).await;

    // THEN both are refused by the row's limit, and nothing is written
    for response in [&refused, &again] {
        assert_eq!(
            (response.status().as_u16(), problem_code(response).as_str()),
            (409, "PURCHASE_LIMIT")
        );
    }
    assert!(
        body_json(&refused)["detail"]
            .as_str()
            .unwrap()
            .contains("at most 1"),
        "{:?}",
        body_json(&refused)
    );
    assert_eq!(orders_of(&app, product).await, 1);
    assert_eq!(app.stock_in_mysql(product).await, 9);

    // AND the reloaded facts say the new limit, and one unit sells
    let still_two = app.checkout(&buyer, "stale-0004", two()).await;
    assert_eq!(problem_code(&still_two), "PURCHASE_LIMIT");
    let sold = app.checkout(&buyer, "stale-0005", one(product)).await;
    assert_eq!(sold.status(), 201, "{:?}", body_json(&sold));
    assert_eq!(
        (
            app.stock_in_mysql(product).await,
            app.stock_in_redis(product).await
        ),
        (8, Some(8))
    );
}

#[tokio::test]
async fn a_several_line_checkout_with_one_stale_price_writes_nothing() {
    // GIVEN two products of two partners, both loaded in Redis, one repriced in MySQL alone
    let app = App::new().await;
    let (nike, _) = app.ctx.user(Role::Partner).await;
    let (shop, _) = app.ctx.user(Role::Partner).await;
    let (_, first) = app.ctx.user(Role::Buyer).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let fresh = app.product(nike, 10, 2).await;
    let stale = app.product(shop, 10, 2).await;
    let both =
        || json!([{"product_id": fresh, "quantity": 1}, {"product_id": stale, "quantity": 1}]);
    assert_eq!(
        app.checkout(&first, "stale-0001", both()).await.status(),
        201
    );
    edit_in_mysql_only(&app, stale, "price = 90000").await;

    // WHEN a buyer checks out both
    let refused = app.checkout(&buyer, "stale-0002", both()).await;

    // THEN nothing is written, the fresh product's unit is back, the stale facts are gone
    assert_eq!(
        (refused.status().as_u16(), problem_code(&refused).as_str()),
        (409, "PRICE_CHANGED")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(
        (
            app.stock_in_mysql(fresh).await,
            app.stock_in_redis(fresh).await
        ),
        (9, Some(9))
    );
    assert_eq!(app.stock_in_mysql(stale).await, 9);
    assert_eq!(app.stock_in_redis(stale).await, None);

    // AND the retry sells both, the repriced one at MySQL's price
    let sold = app.checkout(&buyer, "stale-0003", both()).await;
    assert_eq!(sold.status(), 201, "{:?}", body_json(&sold));
    assert_eq!(body_json(&sold)["amount"], 100_000 + 90_000);
}

#[tokio::test]
async fn the_lock_strategy_sells_at_mysql_s_facts_whatever_redis_remembers() {
    use shared::adapters::stock::StockFacts;

    // GIVEN stale facts in Redis (100,000 KRW, released, three per buyer) for a product that
    // MySQL prices at 130,000 KRW with one per buyer
    let app = App::with_vars(&[("STOCK_STRATEGY", "lock")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    edit_in_mysql_only(&app, product, "price = 130000").await;
    let stale = StockFacts {
        remaining: 5,
        release_at: Utc::now() - ChronoDuration::hours(1),
        max_per_buyer: 3,
        price: 100_000,
        partner_id: partner,
    };
    app.deps.reservations.load(product, &stale).await.unwrap();

    // WHEN the buyer checks out, THEN MySQL's facts decide: its price, its limit
    let two = app
        .checkout(
            &buyer,
            "stale-0001",
            json!([{"product_id": product, "quantity": 2}]),
        )
        .await;
    assert_eq!(problem_code(&two), "PURCHASE_LIMIT");
    let sold = app.checkout(&buyer, "stale-0002", one(product)).await;
    assert_eq!(sold.status(), 201, "{:?}", body_json(&sold));
    assert_eq!(body_json(&sold)["amount"], 130_000);
    assert_eq!(app.stock_in_mysql(product).await, 4);
}
