//! The stored procedures that end a sale, called directly.

use shared::domain::order::PricedItem;

use super::*;
use crate::store::{LineToTake, OneLineSold, RowRefusal, Taken};

fn line(product_id: i64, partner_id: i64, quantity: i32) -> PricedItem {
    PricedItem {
        product_id,
        partner_id,
        quantity,
        unit_price: 100_000,
    }
}

#[tokio::test]
async fn the_last_stock_update_ends_the_transaction_both_ways() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 2, 5).await;
    let db = &app.ctx.platform.db;
    let name = || async {
        let (name,): (String,) = sqlx::query_as("SELECT name FROM products WHERE id = ?")
            .bind(product)
            .fetch_one(db)
            .await
            .unwrap();
        name
    };
    let sell = |product_id: i64, quantity: i32, new_name: &'static str| async move {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("UPDATE products SET name = ? WHERE id = ?")
            .bind(new_name)
            .bind(product)
            .execute(&mut *tx)
            .await
            .unwrap();
        let item = line(product_id, partner, quantity);
        let taken = LineToTake {
            item: &item,
            now: Utc::now(),
            holding: quantity,
        };
        let sold = store::sell_and_commit(&mut tx, "pay_missing", b"{}", taken)
            .await
            .unwrap();
        // Seen from another connection before the transaction object is finished with.
        (sold, tx)
    };

    // Three units of two: nothing taken, and the earlier write rolled back with it
    let (short, _tx) = sell(product, 3, "rolled back").await;
    assert_eq!(short, Taken::Refused(RowRefusal::Short { left: 2 }));
    assert_eq!(name().await, "Travis Scott x Air Jordan 1 Low");

    // Two of two: taken, and the earlier write committed with it
    let (sold, _tx) = sell(product, 2, "committed").await;
    assert_eq!(sold, Taken::Sold { left: 0 });
    assert_eq!(name().await, "committed");
    assert_eq!(app.stock_in_mysql(product).await, 0);

    // A product that is gone: nothing to take
    let (gone, _tx) = sell(product + 1000, 1, "gone").await;
    assert_eq!(gone, Taken::Refused(RowRefusal::Short { left: 0 }));
    assert_eq!(name().await, "committed");
}

#[tokio::test]
async fn the_product_row_judges_a_line_by_its_own_facts() {
    // GIVEN a product of five units at 100,000 KRW, up to two per buyer, released a minute ago
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let release_at = Utc::now() - ChronoDuration::minutes(1);
    let product = app.product_releasing(partner, 5, 2, release_at).await;
    let db = &app.ctx.platform.db;
    let take = |quantity: i32, unit_price: i64, now: DateTime<Utc>, holding: i32| async move {
        let item = PricedItem {
            unit_price,
            ..line(product, partner, quantity)
        };
        let mut tx = db.begin().await.unwrap();
        let taken = store::take_units(
            &mut tx,
            LineToTake {
                item: &item,
                now,
                holding,
            },
        )
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        taken
    };
    let now = Utc::now();

    // THEN each of its facts refuses what it must, in the stock rule's order, then the price
    let cases = [
        (1, 100_000, now, 1, Taken::Sold { left: 4 }),
        (2, 100_000, now, 2, Taken::Sold { left: 3 }),
        (1, 100_000, release_at, 1, Taken::Sold { left: 4 }),
        (
            1,
            100_000,
            release_at - ChronoDuration::microseconds(1),
            1,
            Taken::Refused(RowRefusal::NotOnSale),
        ),
        (
            1,
            90_000,
            release_at - ChronoDuration::seconds(1),
            3,
            Taken::Refused(RowRefusal::NotOnSale),
        ),
        (
            1,
            90_000,
            now,
            3,
            Taken::Refused(RowRefusal::OverLimit { max_per_buyer: 2 }),
        ),
        (
            6,
            90_000,
            now,
            2,
            Taken::Refused(RowRefusal::Short { left: 5 }),
        ),
        (
            1,
            90_000,
            now,
            1,
            Taken::Refused(RowRefusal::PriceChanged { price: 100_000 }),
        ),
        (
            1,
            110_000,
            now,
            1,
            Taken::Refused(RowRefusal::PriceChanged { price: 100_000 }),
        ),
    ];
    for (quantity, unit_price, at, holding, expected) in cases {
        assert_eq!(
            take(quantity, unit_price, at, holding).await,
            expected,
            "{quantity} at {unit_price} at {at} holding {holding}"
        );
    }
    // Every one of them was rolled back.
    assert_eq!(app.stock_in_mysql(product).await, 5);
}

#[tokio::test]
async fn a_one_line_sale_commits_whole_or_leaves_nothing() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (buyer, _) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 3, 2).await;
    let db = &app.ctx.platform.db;
    let rows = || async {
        (
            app.scalar("SELECT COUNT(*) FROM payments").await,
            app.scalar("SELECT COUNT(*) FROM orders").await,
            app.scalar("SELECT COUNT(*) FROM order_items").await,
            app.scalar(
                "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM buyer_product_purchases",
            )
            .await,
            app.stock_in_mysql(product).await,
        )
    };
    let sell_at = |buyer_id: i64,
                   key: &'static str,
                   product_id: i64,
                   quantity: i32,
                   unit_price: i64| async move {
        let payment_id = format!("pay_{key}");
        let payment = store::NewPayment {
            id: &payment_id,
            buyer_id,
            amount: i64::from(quantity) * unit_price,
            idempotency_key: key,
            request_hash: &"0".repeat(64),
            expires_at: Utc::now(),
        };
        let item = PricedItem {
            unit_price,
            ..line(product_id, partner, quantity)
        };
        let sale = store::OneLineSale {
            payment: &payment,
            item: &item,
            now: Utc::now(),
            limits: store::HoardingLimits {
                max_unpaid_orders: 10,
                rebuy_cooldown_secs: 300,
            },
        };
        store::sell_one_line(db, &sale).await
    };
    let sell = |buyer_id: i64, key: &'static str, product_id: i64, quantity: i32| {
        sell_at(buyer_id, key, product_id, quantity, 100_000)
    };

    let Ok(OneLineSold::Sold { order_id, left: 2 }) = sell(buyer, "key-0001", product, 1).await
    else {
        panic!("the first unit sells");
    };
    assert!(order_id > 0);
    assert_eq!(rows().await, (1, 1, 1, 1, 2));

    // Over the buyer's limit (1 held + 2 > 2): nothing written.
    assert_eq!(
        sell(buyer, "key-0002", product, 2).await.unwrap(),
        OneLineSold::Refused(RowRefusal::OverLimit { max_per_buyer: 2 })
    );
    assert_eq!(rows().await, (1, 1, 1, 1, 2));

    // At a price that is not the row's: nothing written.
    let (other, _) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        sell_at(other, "key-0003", product, 2, 80_000)
            .await
            .unwrap(),
        OneLineSold::Refused(RowRefusal::PriceChanged { price: 100_000 })
    );
    assert_eq!(rows().await, (1, 1, 1, 1, 2));

    // More units than are left: nothing written.
    assert!(matches!(
        sell(other, "key-0004", product, 2).await.unwrap(),
        OneLineSold::Sold { order_id: next, left: 0 } if next > order_id
    ));
    let (third, _) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        sell(third, "key-0005", product, 1).await.unwrap(),
        OneLineSold::Refused(RowRefusal::Short { left: 0 })
    );
    assert_eq!(rows().await, (2, 2, 2, 3, 0));

    // The key again: a unique violation, and nothing written.
    let again = sell(buyer, "key-0001", product, 1).await.unwrap_err();
    assert!(again.as_database_error().unwrap().is_unique_violation());
    assert_eq!(rows().await, (2, 2, 2, 3, 0));

    // A product that is gone: short, nothing written.
    assert_eq!(
        sell(third, "key-0006", product + 1000, 1).await.unwrap(),
        OneLineSold::Refused(RowRefusal::Short { left: 0 })
    );
    assert_eq!(rows().await, (2, 2, 2, 3, 0));

    // Before the row's release time: nothing written.
    let later = app
        .product_releasing(partner, 3, 2, Utc::now() + ChronoDuration::minutes(1))
        .await;
    assert_eq!(
        sell(third, "key-0007", later, 1).await.unwrap(),
        OneLineSold::Refused(RowRefusal::NotOnSale)
    );
    assert_eq!(rows().await, (2, 2, 2, 3, 0));
}
