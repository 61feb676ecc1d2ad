//! The stored procedures that end a sale, called directly.

use super::*;

#[tokio::test]
async fn the_last_stock_update_ends_the_transaction_both_ways() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 2, 2).await;
    let db = &app.ctx.platform.db;
    let name = || async {
        let (name,): (String,) = sqlx::query_as("SELECT name FROM products WHERE id = ?")
            .bind(product)
            .fetch_one(db)
            .await
            .unwrap();
        name
    };
    let sell = |quantity: i32, new_name: &'static str| async move {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("UPDATE products SET name = ? WHERE id = ?")
            .bind(new_name)
            .bind(product)
            .execute(&mut *tx)
            .await
            .unwrap();
        let sold = store::sell_and_commit(&mut tx, "pay_missing", b"{}", product, quantity)
            .await
            .unwrap();
        // Seen from another connection before the transaction object is finished with.
        (sold, tx)
    };

    // Three units of two: nothing taken, and the earlier write rolled back with it
    let (short, _tx) = sell(3, "rolled back").await;
    assert_eq!(short, store::Sold::RolledBack { left: 2 });
    assert_eq!(name().await, "Travis Scott x Air Jordan 1 Low");

    // Two of two: taken, and the earlier write committed with it
    let (sold, _tx) = sell(2, "committed").await;
    assert_eq!(sold, store::Sold::Committed { left: 0 });
    assert_eq!(name().await, "committed");
    assert_eq!(app.stock_in_mysql(product).await, 0);

    // A product that is gone: nothing to take
    let mut tx = db.begin().await.unwrap();
    let gone = store::sell_and_commit(&mut tx, "pay_missing", b"{}", product + 1000, 1)
        .await
        .unwrap();
    assert_eq!(gone, store::Sold::RolledBack { left: 0 });
}

#[tokio::test]
async fn a_one_line_sale_commits_whole_or_leaves_nothing() {
    use shared::domain::order::PricedItem;

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
    let sell = |buyer_id: i64, key: &'static str, product_id: i64, quantity: i32| async move {
        let payment_id = format!("pay_{key}");
        let payment = store::NewPayment {
            id: &payment_id,
            buyer_id,
            amount: i64::from(quantity) * 100_000,
            idempotency_key: key,
            request_hash: &"0".repeat(64),
            expires_at: Utc::now(),
        };
        let item = PricedItem {
            product_id,
            partner_id: partner,
            quantity,
            unit_price: 100_000,
        };
        let sale = store::OneLineSale {
            payment: &payment,
            item: &item,
            max_per_buyer: 2,
        };
        store::sell_one_line(db, &sale).await
    };

    let Ok(store::OneLineSold::Sold { order_id, left: 2 }) =
        sell(buyer, "key-0001", product, 1).await
    else {
        panic!("the first unit sells");
    };
    assert!(order_id > 0);
    assert_eq!(rows().await, (1, 1, 1, 1, 2));

    // Over the buyer's limit (1 held + 2 > 2): nothing written.
    assert_eq!(
        sell(buyer, "key-0002", product, 2).await.unwrap(),
        store::OneLineSold::OverLimit
    );
    assert_eq!(rows().await, (1, 1, 1, 1, 2));

    // More units than are left: nothing written.
    let (other, _) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        sell(other, "key-0003", product, 2).await.unwrap(),
        store::OneLineSold::Sold {
            order_id: order_id + 1,
            left: 0
        }
    );
    let (third, _) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        sell(third, "key-0004", product, 1).await.unwrap(),
        store::OneLineSold::Short { left: 0 }
    );
    assert_eq!(rows().await, (2, 2, 2, 3, 0));

    // The key again: a unique violation, and nothing written.
    let again = sell(buyer, "key-0001", product, 1).await.unwrap_err();
    assert!(again.as_database_error().unwrap().is_unique_violation());
    assert_eq!(rows().await, (2, 2, 2, 3, 0));

    // A product that is gone: short, nothing written.
    assert_eq!(
        sell(third, "key-0005", product + 1000, 1).await.unwrap(),
        store::OneLineSold::Short { left: 0 }
    );
    assert_eq!(rows().await, (2, 2, 2, 3, 0));
}
