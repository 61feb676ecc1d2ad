//! Idempotency: the same key replays the first answer, whatever Redis remembers.

use super::*;

#[tokio::test]
async fn the_same_key_replays_the_first_answer() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let first = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(first.status(), 201);
    // Even after the product sold out, the retry gets the original answer.
    let replay = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(replay.status(), 201);
    // A one-line checkout's answer is rebuilt from its rows, byte for byte.
    assert_eq!(replay.body().as_ref(), first.body().as_ref());
    // Even once the order has moved on, the replay is the first answer.
    let order = body_json(&first)["orders"][0]["id"].as_i64().unwrap();
    app.set_status(order, "PAID").await;
    let later = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(later.body().as_ref(), first.body().as_ref());
    let other_body = app
        .checkout(
            &buyer,
            "checkout-0001",
            json!([{"product_id": product, "quantity": 2}]),
        )
        .await;
    assert_eq!(other_body.status(), 422);
    // Keys belong to buyers: another buyer's identical key is a new checkout (sold out here).
    let (_, other) = app.ctx.user(Role::Buyer).await;
    assert_eq!(
        problem_code(&app.checkout(&other, "checkout-0001", one(product)).await),
        "SOLD_OUT"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 1);
}

/// A write can commit and still fail (the connection lost after the COMMIT, before the answer):
/// the buyer's retry with the same key must then replay that checkout, even once the product is
/// sold out, rather than be told SOLD_OUT about the unit it holds.
#[tokio::test]
async fn a_retry_after_a_failed_write_is_replayed_if_the_write_committed() {
    use shared::domain::order::{CheckoutItem, PricedItem, request_fingerprint};

    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (buyer_id, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let db = &app.ctx.platform.db;

    // The first attempt's write fails (in this test's own database, every payment insert does).
    sqlx::raw_sql(
        "CREATE TRIGGER payments_refused BEFORE INSERT ON payments FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the write fails'",
    )
    .execute(db)
    .await
    .unwrap();
    let failed = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(failed.status(), 500);
    sqlx::raw_sql("DROP TRIGGER payments_refused")
        .execute(db)
        .await
        .unwrap();

    // What it would have left had it committed before its answer was lost: the checkout's rows,
    // the last unit taken in MySQL, and (once repaired) a Redis counter that agrees.
    let items = [CheckoutItem {
        product_id: product,
        quantity: 1,
    }];
    let payment = store::NewPayment {
        id: "pay_committed_unanswered",
        buyer_id,
        amount: 100_000,
        idempotency_key: "checkout-0001",
        request_hash: &request_fingerprint(&items),
        expires_at: Utc::now() + ChronoDuration::minutes(10),
    };
    let item = PricedItem {
        product_id: product,
        partner_id: partner,
        quantity: 1,
        unit_price: 100_000,
    };
    let sale = store::OneLineSale {
        payment: &payment,
        item: &item,
        now: Utc::now(),
        limits: store::HoardingLimits {
            max_unpaid_orders: 3,
            rebuy_cooldown_secs: 300,
        },
    };
    assert!(matches!(
        store::sell_one_line(db, &sale).await.unwrap(),
        store::OneLineSold::Sold { left: 0, .. }
    ));
    app.deps.reservations.forget(product).await.unwrap();

    let retry = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(retry.status(), 201, "{}", body_json(&retry));
    assert_eq!(body_json(&retry)["payment_id"], "pay_committed_unanswered");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(app.stock_in_mysql(product).await, 0);
}

#[tokio::test]
async fn a_replay_is_recognised_after_redis_lost_everything() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let first = app.checkout(&buyer, "checkout-0001", one(product)).await;
    flush_prefix(&app).await;
    let replay = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(body_json(&replay), body_json(&first));
    assert_eq!(app.stock_in_mysql(product).await, 0);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_make_one_checkout() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 10, 5).await;
    let responses = futures::future::join_all(
        (0..8).map(|_| app.checkout(&buyer, "checkout-0001", one(product))),
    )
    .await;
    let bodies: HashSet<String> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status(), 201, "{:?}", body_json(r));
            body_json(r).to_string()
        })
        .collect();
    assert_eq!(bodies.len(), 1, "every retry got the same answer");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(app.stock_in_mysql(product).await, 9);
    races::assert_counter_agrees_or_dropped(&app, product).await;
}

#[tokio::test]
async fn concurrent_retries_at_the_unpaid_orders_cap_replay_instead_of_being_refused() {
    // GIVEN a buyer allowed one unpaid order, retrying one checkout of one line and of two
    let app = App::with_vars(&[("MAX_UNPAID_ORDERS_PER_BUYER", "1")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    for (key, items) in [("checkout-0001", 1), ("checkout-0002", 2)] {
        let (_, buyer) = app.ctx.user(Role::Buyer).await;
        let mut lines = Vec::new();
        for _ in 0..items {
            lines.push(json!({"product_id": app.product(partner, 10, 5).await, "quantity": 1}));
        }

        // WHEN the retries arrive at once, THEN the first order fills the buyer's allowance and
        // every retry replays it (the key is claimed before the orders are counted)
        let responses = futures::future::join_all(
            (0..6).map(|_| app.checkout(&buyer, key, Value::Array(lines.clone()))),
        )
        .await;
        let bodies: HashSet<String> = responses
            .iter()
            .map(|r| {
                assert_eq!(r.status(), 201, "{key}: {:?}", body_json(r));
                body_json(r).to_string()
            })
            .collect();
        assert_eq!(bodies.len(), 1, "{key}: every retry got the same answer");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 2);
}

/// On a Redis Cluster one shard can restart empty while the others keep their keys. The buyer's
/// markers and the flag saying they are loaded share the buyer's slot, so they are lost together:
/// the retry of a finished checkout asks MySQL and replays it, instead of a flag on another shard
/// vouching that the key was never used (and the retry being told SOLD_OUT).
#[tokio::test]
async fn a_buyer_whose_slot_lost_its_keys_is_still_replayed() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (buyer_id, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let first = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(first.status(), 201);
    let replay = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(
        replay.status(),
        201,
        "the buyer's markers are loaded by now"
    );

    // The buyer's slot forgets everything (its shard restarted); the product's does not, so
    // the product stays sold out in Redis.
    let mut connection = app.ctx.platform.redis.connection().await.unwrap();
    let lost: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*{{u{buyer_id}}}*", app.ctx.redis_prefix))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!lost.is_empty());
    for key in &lost {
        let () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
    }

    let after_loss = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(after_loss.status(), 201, "{:?}", body_json(&after_loss));
    assert_eq!(after_loss.body().as_ref(), first.body().as_ref());
    // The buyer's markers were reloaded from MySQL along the way.
    let reloaded: bool = redis::cmd("EXISTS")
        .arg(
            app.ctx
                .platform
                .redis
                .loaded_flag(shared::adapters::redis::LOADED_MARKERS, buyer_id),
        )
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(reloaded);
}
