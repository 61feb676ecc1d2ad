//! The limits on a checkout: the buyer's purchase limit, the rate limit, and the stock rule
//! as the reservation script and the look before it apply it.

use super::*;

/// The buyer the stock scripts reserve for, where only the product's facts are at stake.
const BUYER: i64 = 7;

#[tokio::test]
async fn the_purchase_limit_counts_earlier_orders() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 10, 1).await;
    let two = app
        .checkout(
            &buyer,
            "checkout-0001",
            json!([{"product_id": product, "quantity": 2}]),
        )
        .await;
    assert_eq!(
        (two.status().as_u16(), problem_code(&two).as_str()),
        (409, "PURCHASE_LIMIT")
    );
    assert_eq!(
        app.checkout(&buyer, "checkout-0002", one(product))
            .await
            .status(),
        201
    );
    let again = app.checkout(&buyer, "checkout-0003", one(product)).await;
    assert_eq!(
        (again.status().as_u16(), problem_code(&again).as_str()),
        (409, "PURCHASE_LIMIT")
    );
    assert_eq!(app.stock_in_mysql(product).await, 9);
    assert_eq!(
        app.stock_in_redis(product).await,
        Some(9),
        "the refused unit went back"
    );
}

#[tokio::test]
async fn checkout_is_rate_limited_per_buyer() {
    let app = App::with_vars(&[("CHECKOUT_LIMIT_PER_MINUTE", "2")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app
        .product_releasing(partner, 5, 1, Utc::now() + ChronoDuration::hours(1))
        .await;
    for key in ["checkout-0001", "checkout-0002"] {
        assert_eq!(app.checkout(&buyer, key, one(product)).await.status(), 409);
    }
    let limited = app.checkout(&buyer, "checkout-0003", one(product)).await;
    assert_eq!(
        (limited.status().as_u16(), problem_code(&limited).as_str()),
        (429, "RATE_LIMITED")
    );
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_limit_counts_attempts_without_a_key_and_answers_first() {
    // GIVEN a limit of one attempt per minute
    let app = App::with_vars(&[("CHECKOUT_LIMIT_PER_MINUTE", "1")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 5, 1).await;
    let without_key = || {
        app.call(
            ApiRequest::new("POST /orders")
                .bearer(&buyer)
                .json(&json!({"items": one(product)})),
        )
    };

    // WHEN the buyer tries twice without an Idempotency-Key, then once with one
    let first = without_key().await;
    let second = without_key().await;
    let keyed = app.checkout(&buyer, "checkout-0001", one(product)).await;

    // THEN the first is refused for its key, and the limit, counting it, refuses the others
    assert_eq!(
        (first.status().as_u16(), problem_code(&first).as_str()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );
    for limited in [second, keyed] {
        assert_eq!(
            (limited.status().as_u16(), problem_code(&limited).as_str()),
            (429, "RATE_LIMITED")
        );
    }
    assert_eq!(app.stock_in_mysql(product).await, 5);
}

#[tokio::test]
async fn the_look_before_reserving_refuses_exactly_what_the_script_refuses() {
    use shared::adapters::stock::{Reservation, StockFacts, StockReservations};

    let app = App::new().await;
    let reservations = StockReservations::new(app.ctx.platform.redis.clone());
    let now = Utc::now();
    let mut connection = app.ctx.platform.redis.connection().await.unwrap();
    let mut product_id = 0;
    for remaining in 0..=2 {
        for released in [true, false] {
            for max_per_buyer in 1..=2 {
                for quantity in 1..=3 {
                    // GIVEN a counter in this state
                    product_id += 1;
                    let release_at = if released {
                        now - ChronoDuration::minutes(1)
                    } else {
                        now + ChronoDuration::minutes(1)
                    };
                    let facts = StockFacts {
                        remaining,
                        release_at,
                        max_per_buyer,
                        price: 100_000,
                        partner_id: 1,
                    };
                    reservations.load(product_id, &facts).await.unwrap();

                    // WHEN the checkout looks first, then the script runs
                    let mut pipe = redis::pipe();
                    reservations.peek(&mut pipe, product_id);
                    let (peeked,): ((Option<i64>, Option<i64>, Option<i64>),) =
                        pipe.query_async(&mut connection).await.unwrap();
                    let looked = StockReservations::refusal(&peeked, quantity, now);
                    let reserved = reservations
                        .reserve(product_id, BUYER, quantity, now)
                        .await
                        .unwrap();

                    // THEN the look refuses what the script refuses, and nothing else
                    let case = format!(
                        "remaining {remaining}, released {released}, max {max_per_buyer}, quantity {quantity}"
                    );
                    match looked {
                        Some(refusal) => {
                            assert_eq!(Reservation::Refused(refusal), reserved, "{case}")
                        }
                        None => assert!(matches!(reserved, Reservation::Reserved(_)), "{case}"),
                    }
                }
            }
        }
    }
    let mut pipe = redis::pipe();
    reservations.peek(&mut pipe, product_id + 1);
    let (unloaded,): ((Option<i64>, Option<i64>, Option<i64>),) =
        pipe.query_async(&mut connection).await.unwrap();
    assert_eq!(StockReservations::refusal(&unloaded, 1, now), None);
}

#[tokio::test]
async fn the_reservation_script_decides_the_stock_rule_s_cases_as_the_rule_does() {
    use shared::{
        adapters::stock::{Reservation, StockFacts, StockReservations},
        domain::stock::cases::TAKE_CASES,
    };

    let app = App::new().await;
    let reservations = StockReservations::new(app.ctx.platform.redis.clone());
    let now = Utc::now();
    for (product_id, case) in (1..).zip(TAKE_CASES) {
        // GIVEN a counter holding the case's offer
        let offer = case.offer(now);
        let facts = StockFacts {
            remaining: offer.remaining,
            release_at: offer.release_at,
            max_per_buyer: offer.max_per_buyer,
            price: 100_000,
            partner_id: 1,
        };
        reservations.load(product_id, &facts).await.unwrap();

        // WHEN the script runs in Redis
        let by_script = match reservations
            .reserve(product_id, BUYER, case.quantity, now)
            .await
            .unwrap()
        {
            Reservation::Reserved(_) => Ok(()),
            Reservation::Refused(refusal) => Err(refusal),
            Reservation::NotLoaded => panic!("{case:?}: the counter was just loaded"),
            Reservation::BuyerBusy => panic!("{case:?}: nothing of the buyer is in flight"),
        };

        // THEN it decides what the Rust rule decides
        assert_eq!(by_script, case.expected, "{case:?}");
        assert_eq!(by_script, offer.check_take(case.quantity, now), "{case:?}");
    }
}
