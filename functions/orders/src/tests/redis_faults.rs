//! Redis forgetting, refusing writes, down, or restarting mid-drop: MySQL keeps every sale exact.

use shared::{
    adapters::stock::{Reservation, StockReservations},
    testing::PrivateRedis,
};

use super::*;

#[tokio::test]
async fn checkouts_and_replays_survive_redis_forgetting_its_scripts() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 1, 1).await;
    let forget_scripts = || async {
        let mut connection = app.ctx.platform.redis.connection().await.unwrap();
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut connection)
            .await
            .unwrap();
    };

    forget_scripts().await;
    let first = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(first.status(), 201);
    forget_scripts().await;
    let replay = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(body_json(&replay), body_json(&first));
    let (_, other) = app.ctx.user(Role::Buyer).await;
    forget_scripts().await;
    assert_eq!(
        problem_code(&app.checkout(&other, "checkout-0001", one(product)).await),
        "SOLD_OUT"
    );
}

#[tokio::test]
async fn with_redis_down_checkout_goes_through_mysql_exactly() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 3, 1).await;
    let dead = RedisStore::with_prefix("redis://127.0.0.1:1", &app.ctx.redis_prefix).unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        dead,
    );
    let deps = Deps::new(&platform, portone_gateway(&platform));
    let mut created = 0;
    for n in 0..5 {
        let (_, token) = app.ctx.user(Role::Buyer).await;
        let response = handle(
            &deps,
            ApiRequest::new("POST /orders")
                .bearer(&token)
                .header("idempotency-key", &format!("offline-{n:04}"))
                .json(&json!({"items": one(product)}))
                .build(),
        )
        .await;
        if response.status() == 201 {
            created += 1;
        } else {
            assert_eq!(problem_code(&response), "SOLD_OUT");
        }
    }
    assert_eq!(created, 3);
    assert_exactly_sold(&app, product, 3).await;
}

#[tokio::test]
async fn with_redis_down_the_checkout_limit_still_holds() {
    let app = App::with_vars(&[("CHECKOUT_LIMIT_PER_MINUTE", "3")]).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 50, 50).await;
    let dead = RedisStore::with_prefix("redis://127.0.0.1:1", &app.ctx.redis_prefix).unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        dead,
    );
    let deps = Deps::new(&platform, portone_gateway(&platform));
    let (_, token) = app.ctx.user(Role::Buyer).await;
    let mut codes = Vec::new();
    for n in 0..5 {
        let response = handle(
            &deps,
            ApiRequest::new("POST /orders")
                .bearer(&token)
                .header("idempotency-key", &format!("limited-{n:04}"))
                .json(&json!({"items": one(product)}))
                .build(),
        )
        .await;
        codes.push(response.status().as_u16());
    }
    // Three attempts counted by this process, then refused: never "no limit" without Redis.
    assert_eq!(&codes[3..], [429, 429], "{codes:?}");
    assert!(codes[..3].iter().all(|code| *code != 429), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_drop_sells_neither_more_nor_less() {
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let product = app.product(partner, 100, 1).await;
    let mut redis = PrivateRedis::start();
    let store = RedisStore::with_prefix(&redis.url(), "drop:").unwrap();
    let platform = Platform::from_parts(
        (*app.ctx.platform.config).clone(),
        app.ctx.platform.db.clone(),
        store,
    );
    let deps = Deps::new(&platform, portone_gateway(&platform));
    let tokens = buyers(&app, 600).await;
    let attempt = |n: usize| {
        handle(
            &deps,
            ApiRequest::new("POST /orders")
                .bearer(&tokens[n])
                .header("idempotency-key", &format!("restart-{n:06}"))
                .json(&json!({"items": one(product)}))
                .build(),
        )
    };

    let before = futures::future::join_all((0..40).map(attempt)).await;
    redis.stop();
    let during = futures::future::join_all((40..120).map(attempt)).await;
    redis.restart();
    // Once the connection is re-established and the window in which a failed Redis is left
    // alone has passed, requests use Redis again.
    wait_until_redis_answers(&platform).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = futures::future::join_all((120..600).map(attempt)).await;

    let created = before
        .iter()
        .chain(&during)
        .chain(&after)
        .filter(|r| r.status() == 201)
        .count();
    assert_eq!(created, 100);
    assert!(
        during.iter().filter(|r| r.status() == 201).count() > 0,
        "sold while Redis was down"
    );
    assert_exactly_sold(&app, product, 100).await;
    // The restarted Redis was rebuilt from MySQL before it was trusted.
    assert_eq!(deps.reservations.remaining(product).await.unwrap(), Some(0));
}

async fn wait_until_redis_answers(platform: &Platform) {
    for _ in 0..100 {
        if let Ok(mut connection) = platform.redis.connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the restarted Redis never answered");
}

#[tokio::test]
async fn a_counter_that_will_not_stay_loaded_sends_the_checkout_through_mysql() {
    // GIVEN a product whose Redis hash exists without its counter, so every load leaves it
    // absent (as a counter dropped after each load would)
    let app = App::new().await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let product = app.product(partner, 3, 1).await;
    let redis = &app.ctx.platform.redis;
    let mut connection = redis.connection().await.unwrap();
    let () = redis::cmd("HSET")
        .arg(redis.key(&format!("stock:{{p{product}}}")))
        .arg("differs")
        .arg("1:2")
        .query_async(&mut connection)
        .await
        .unwrap();

    // WHEN a buyer checks out, THEN MySQL alone sells the unit, and the broken hash is gone
    let response = app.checkout(&buyer, "checkout-0001", one(product)).await;
    assert_eq!(response.status(), 201, "{:?}", body_json(&response));
    assert_eq!(app.stock_in_mysql(product).await, 2);
    assert_eq!(app.stock_in_redis(product).await, None);
}

/// One unit of a five-unit product reserved for [`ReservedUnit::BUYER`] in a Redis of the
/// test's own (its counter loaded from MySQL first), as a checkout holds it while it writes.
struct ReservedUnit {
    app: App,
    redis: PrivateRedis,
    reservations: StockReservations,
    product: i64,
}

impl ReservedUnit {
    const BUYER: i64 = 7;

    async fn new(max_per_buyer: i32) -> Self {
        let app = App::new().await;
        let (partner, _) = app.ctx.user(Role::Partner).await;
        let product = app.product(partner, 5, max_per_buyer).await;
        let redis = PrivateRedis::start();
        let store = RedisStore::with_prefix(&redis.url(), "reserved:").unwrap();
        let unit = Self {
            app,
            redis,
            reservations: StockReservations::new(store),
            product,
        };
        unit.load_counter().await;
        let reserved = unit.reserve(1).await;
        assert!(matches!(reserved, Reservation::Reserved(_)), "{reserved:?}");
        unit
    }

    async fn load_counter(&self) {
        let facts = store::product_facts(&self.app.ctx.platform.db, self.product)
            .await
            .unwrap()
            .unwrap();
        self.reservations
            .load(self.product, &facts.stock_facts())
            .await
            .unwrap();
    }

    async fn reserve(&self, quantity: i32) -> Reservation {
        self.reservations
            .reserve(self.product, Self::BUYER, quantity, Utc::now())
            .await
            .unwrap()
    }

    /// Out of memory, Redis refuses every script's first write, and still lets a delete through.
    fn out_of_memory(&self) {
        self.redis
            .command(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
        self.redis.command(&["CONFIG", "SET", "maxmemory", "1"]);
    }

    fn memory_again(&self) {
        self.redis.command(&["CONFIG", "SET", "maxmemory", "0"]);
    }
}

#[tokio::test]
async fn a_give_back_redis_refuses_leaves_neither_the_buyer_busy_nor_units_missing() {
    // GIVEN a unit reserved for a buyer who may hold one
    let unit = ReservedUnit::new(1).await;
    let (reservations, product) = (&unit.reservations, unit.product);

    // WHEN the checkout's write failed and Redis refuses the give-back
    unit.out_of_memory();
    reservations
        .give_back_reserved(product, ReservedUnit::BUYER, 1)
        .await;
    unit.memory_again();

    // THEN the counter short of that unit is gone, reloaded whole from MySQL, and the buyer's
    // next reservation is judged on the counter, not sent away as busy
    assert_eq!(reservations.remaining(product).await.unwrap(), None);
    unit.load_counter().await;
    assert_eq!(reservations.remaining(product).await.unwrap(), Some(5));
    let again = unit.reserve(1).await;
    assert!(matches!(again, Reservation::Reserved(_)), "{again:?}");
}

#[tokio::test]
async fn a_written_unit_redis_cannot_count_down_leaves_the_buyer_not_busy() {
    // GIVEN a unit reserved for a buyer who may hold two
    let unit = ReservedUnit::new(2).await;

    // WHEN its checkout was written but Redis refuses to take it off the units in flight
    unit.out_of_memory();
    unit.reservations
        .written(unit.product, ReservedUnit::BUYER, 1)
        .await;
    unit.memory_again();

    // THEN the written unit no longer counts as in flight: two more may be reserved at once
    let again = unit.reserve(2).await;
    assert!(matches!(again, Reservation::Reserved(_)), "{again:?}");
}
