//! Test support: each test gets its own MySQL database and Redis key prefix, both removed when
//! the [`TestContext`] drops, so tests run in parallel and leave nothing behind.
//!
//! `TEST_DATABASE_URL` (default `mysql://root@127.0.0.1:3306`) is the server tests create their
//! databases on; `REDIS_URL` (default `redis://127.0.0.1:6379`) the Redis they prefix keys in,
//! and with `REDIS_CLUSTER=true` the seed nodes of a Redis Cluster (`scripts/redis-cluster`).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod aws;
mod private_cluster;
mod private_redis;
mod test_certificates;

pub use private_cluster::PrivateCluster;
pub use private_redis::PrivateRedis;
pub use test_certificates::TestCertificates;

use std::collections::HashMap;

use lambda_http::{Body, Request, RequestExt, http};
use sqlx::{Connection, Executor, MySqlConnection};

use crate::{
    adapters::{mysql, redis::RedisStore},
    config::Config,
    http::api_gateway_context,
    platform::Platform,
};

/// The secret tests sign tokens with.
pub const TEST_JWT_SECRET: &str = "kicksync-test-secret-kicksync-test-secret";

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The pool of each test's platform: 20 (tests race many requests through one pool), or
/// `TEST_DATABASE_MAX_CONNECTIONS`, e.g. 1 to run a suite on a Lambda environment's pool.
fn pool_size() -> String {
    std::env::var("TEST_DATABASE_MAX_CONNECTIONS").unwrap_or_else(|_| "20".into())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn redis_cluster() -> String {
    std::env::var("REDIS_CLUSTER").unwrap_or_else(|_| "false".into())
}

/// Deletes every key under `prefix`, on one server or on every primary of a cluster.
fn delete_keys_under(prefix: &str) {
    let pattern = format!("{prefix}*");
    if redis_cluster() == "true" {
        let seeds: Vec<String> = redis_url().split(',').map(str::to_owned).collect();
        if let Ok(client) = redis::cluster::ClusterClient::new(seeds)
            && let Ok(mut connection) = client.get_connection()
        {
            // KEYS goes to every primary; each key is deleted in its own slot.
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut connection)
                .unwrap_or_default();
            for key in keys {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(key).query(&mut connection);
            }
        }
        return;
    }
    if let Ok(client) = redis::Client::open(redis_url())
        && let Ok(mut connection) = client.get_connection()
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query(&mut connection)
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut connection);
        }
    }
}

/// A migrated database and a Redis prefix of one's own, plus the [`Platform`] built on them.
#[derive(Debug)]
pub struct TestContext {
    pub platform: Platform,
    pub database: String,
    pub redis_prefix: String,
}

impl TestContext {
    pub async fn new() -> Self {
        Self::with_vars(&[]).await
    }

    /// Like [`TestContext::new`], with some configuration variables set (e.g. tighter limits).
    pub async fn with_vars(vars: &[(&str, &str)]) -> Self {
        // Failures log their cause; show it beside the failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .try_init();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("kst_{}", &unique[..16]);
        let redis_prefix = format!("kst:{}:", &unique[..16]);

        let mut admin = MySqlConnection::connect(&admin_url())
            .await
            .expect("connect to TEST_DATABASE_URL");
        admin
            .execute(format!("CREATE DATABASE `{database}`").as_str())
            .await
            .expect("create test database");
        admin.close().await.ok();

        let mut env: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), format!("{}/{database}", admin_url())),
            ("REDIS_URL".into(), redis_url()),
            ("REDIS_CLUSTER".into(), redis_cluster()),
            ("REDIS_KEY_PREFIX".into(), redis_prefix.clone()),
            ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
            ("DATABASE_MAX_CONNECTIONS".into(), pool_size()),
        ]);
        for (name, value) in vars {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let config = Config::from_vars(env).expect("test configuration");
        let db = mysql::pool(&config).expect("test pool");
        mysql::migrate(&db).await.expect("migrate test database");
        let redis = RedisStore::new(&config).expect("redis client");
        Self {
            platform: Platform::from_parts(config, db, redis),
            database,
            redis_prefix,
        }
    }
}

impl TestContext {
    /// A user of `role` written straight to the database (no Argon2 cost), with a live access
    /// token. Partners get a partner profile. Returns (user id, access token).
    pub async fn user(&self, role: crate::domain::auth::Role) -> (i64, String) {
        use crate::domain::auth::Role;
        let email = format!("{}-{}@kicksync.test", role, uuid::Uuid::new_v4().simple());
        let inserted = sqlx::query(
            "INSERT INTO users (email, password_hash, name, role) VALUES (?, 'not-a-hash', 'Test User', ?)",
        )
        .bind(&email)
        .bind(role.as_str())
        .execute(&self.platform.db)
        .await
        .expect("insert test user");
        let id = i64::try_from(inserted.last_insert_id()).expect("id");
        if role == Role::Partner {
            sqlx::query(
                "INSERT INTO partner_profiles (partner_id, business_name) VALUES (?, 'Test Shop')",
            )
            .bind(id)
            .execute(&self.platform.db)
            .await
            .expect("insert partner profile");
        }
        let token = self
            .platform
            .tokens
            .issue(id, role, chrono::Utc::now())
            .expect("token");
        (id, token)
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        let database = self.database.clone();
        let prefix = self.redis_prefix.clone();
        // Drop runs inside the test's runtime, which is blocked while we wait: clean up on a thread
        // with a runtime of its own, and leave the test's pool alone (closing it would need the
        // blocked runtime).
        let cleanup = std::thread::spawn(move || {
            delete_keys_under(&prefix);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = MySqlConnection::connect(&admin_url()).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS `{database}`").as_str())
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Builds the request API Gateway's HTTP API would hand a function for `route_key`
/// (e.g. `"GET /orders/{id}"`), with the concrete `path`, path parameters and source address.
#[derive(Debug)]
pub struct ApiRequest {
    route_key: String,
    path: String,
    headers: Vec<(String, String)>,
    path_parameters: HashMap<String, String>,
    query: HashMap<String, String>,
    body: Body,
    source_ip: String,
}

impl ApiRequest {
    /// `route_key` is `"METHOD /template"`; the concrete path defaults to the template.
    pub fn new(route_key: &str) -> Self {
        let path = route_key
            .split_once(' ')
            .map(|(_, p)| p)
            .unwrap_or("/")
            .to_owned();
        Self {
            route_key: route_key.to_owned(),
            path,
            headers: Vec::new(),
            path_parameters: HashMap::new(),
            query: HashMap::new(),
            body: Body::Empty,
            source_ip: "203.0.113.7".into(),
        }
    }

    pub fn path_param(mut self, name: &str, value: &str) -> Self {
        self.path = self.path.replace(&format!("{{{name}}}"), value);
        self.path_parameters.insert(name.into(), value.into());
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.insert(name.into(), value.into());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Body::Text(value.to_string());
        self.header("content-type", "application/json")
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = Body::Text(body.to_owned());
        self
    }

    pub fn source_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.into();
        self
    }

    pub fn build(self) -> Request {
        let method = self.route_key.split(' ').next().unwrap_or("GET").to_owned();
        let mut builder = http::request::Builder::new()
            .method(method.as_str())
            .uri(format!("https://api.kicksync.test{}", self.path));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let context = api_gateway_context(
            &self.route_key,
            method.parse().expect("method"),
            &self.path,
            Some(self.source_ip),
        );
        builder
            .body(self.body)
            .expect("request")
            .with_request_context(context)
            .with_path_parameters(self.path_parameters)
            .with_query_string_parameters(self.query)
    }
}

/// The JSON body of a response.
pub fn body_json(response: &lambda_http::Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or(serde_json::Value::Null)
}

/// The problem `code` of an error answer, after checking that it is problem+json; `""` when the
/// answer is not an error.
pub fn problem_code(response: &lambda_http::Response<Body>) -> String {
    if response.status().is_success() {
        return String::new();
    }
    assert_eq!(
        response.headers()["content-type"],
        crate::error::PROBLEM_JSON,
        "not a problem: {:?}",
        response.body()
    );
    body_json(response)["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A product row written straight into the test database, for tests that need one without
/// going through `POST /products`. Fields not set keep a drop's usual values.
#[derive(Debug, Clone)]
pub struct ProductFixture {
    pub partner_id: i64,
    pub name: String,
    pub brand: String,
    pub price: i64,
    pub release_at: chrono::DateTime<chrono::Utc>,
    pub stock: i32,
    pub max_per_buyer: i32,
}

impl ProductFixture {
    /// On sale now: ten units at 100,000 KRW, one per buyer.
    pub fn new(partner_id: i64) -> Self {
        Self {
            partner_id,
            name: "Travis Scott x Air Jordan 1 Low".to_owned(),
            brand: "Jordan".to_owned(),
            price: 100_000,
            release_at: chrono::Utc::now(),
            stock: 10,
            max_per_buyer: 1,
        }
    }

    /// Inserts the row (with all its stock remaining) and returns its id.
    pub async fn insert(&self, db: &sqlx::MySqlPool) -> i64 {
        let result = sqlx::query(
            "INSERT INTO products (partner_id, name, brand, price, release_at, stock, \
             stock_remaining, max_per_buyer) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.partner_id)
        .bind(&self.name)
        .bind(&self.brand)
        .bind(self.price)
        .bind(self.release_at)
        .bind(self.stock)
        .bind(self.stock)
        .bind(self.max_per_buyer)
        .execute(db)
        .await
        .expect("insert a product fixture");
        i64::try_from(result.last_insert_id()).expect("product id")
    }
}

/// An unpaid checkout written straight into the test database, as `POST /orders` leaves it:
/// the units taken from stock and counted against the buyer's limit, one order per partner,
/// one PENDING payment for all of them.
#[derive(Debug, Clone)]
pub struct CheckoutFixture {
    pub payment_id: String,
    pub amount: i64,
    /// One per partner, in the order the partners first appear in the lines.
    pub order_ids: Vec<i64>,
}

impl CheckoutFixture {
    /// `lines` are (product id, quantity); prices and partners come from the product rows.
    pub async fn insert(db: &sqlx::MySqlPool, buyer_id: i64, lines: &[(i64, i32)]) -> Self {
        let payment_id = format!("pay_{}", uuid::Uuid::new_v4().simple());
        // (partner id, its lines as (product id, quantity, unit price))
        type Lines = Vec<(i64, i32, i64)>;
        let mut by_partner: Vec<(i64, Lines)> = Vec::new();
        for &(product_id, quantity) in lines {
            let (partner_id, price): (i64, i64) =
                sqlx::query_as("SELECT partner_id, price FROM products WHERE id = ?")
                    .bind(product_id)
                    .fetch_one(db)
                    .await
                    .expect("the fixture's product exists");
            match by_partner
                .iter_mut()
                .find(|(partner, _)| *partner == partner_id)
            {
                Some((_, items)) => items.push((product_id, quantity, price)),
                None => by_partner.push((partner_id, vec![(product_id, quantity, price)])),
            }
        }
        let amount: i64 = by_partner
            .iter()
            .flat_map(|(_, items)| items)
            .map(|(_, quantity, price)| i64::from(*quantity) * price)
            .sum();
        let expires_at = chrono::Utc::now() + chrono::Duration::minutes(10);
        let mut tx = db.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, \
             expires_at) VALUES (?, ?, ?, 'PENDING', ?, REPEAT('0', 64), ?)",
        )
        .bind(&payment_id)
        .bind(buyer_id)
        .bind(amount)
        .bind(payment_id.as_bytes())
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .expect("insert the fixture's payment");
        let mut order_ids = Vec::new();
        for (partner_id, items) in &by_partner {
            let order_amount: i64 = items
                .iter()
                .map(|(_, quantity, price)| i64::from(*quantity) * price)
                .sum();
            let order = sqlx::query(
                "INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, expires_at) \
                 VALUES (?, ?, ?, 'PENDING_PAYMENT', ?, ?)",
            )
            .bind(&payment_id)
            .bind(buyer_id)
            .bind(partner_id)
            .bind(order_amount)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .expect("insert the fixture's order");
            let order_id = i64::try_from(order.last_insert_id()).expect("order id");
            for (product_id, quantity, price) in items {
                sqlx::query(
                    "INSERT INTO order_items (order_id, product_id, quantity, unit_price) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(order_id)
                .bind(product_id)
                .bind(quantity)
                .bind(price)
                .execute(&mut *tx)
                .await
                .expect("insert the fixture's order line");
                sqlx::query(
                    "UPDATE products SET stock_remaining = stock_remaining - ? WHERE id = ?",
                )
                .bind(quantity)
                .bind(product_id)
                .execute(&mut *tx)
                .await
                .expect("take the fixture's units");
                sqlx::query(
                    "INSERT INTO buyer_product_purchases (buyer_id, product_id, quantity) \
                     VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE quantity = quantity + VALUES(quantity)",
                )
                .bind(buyer_id)
                .bind(product_id)
                .bind(quantity)
                .execute(&mut *tx)
                .await
                .expect("count the fixture's units against the buyer");
            }
            order_ids.push(order_id);
        }
        tx.commit().await.expect("commit the fixture");
        Self {
            payment_id,
            amount,
            order_ids,
        }
    }
}

/// PortOne as the platform's configuration names it (`PORTONE_API_BASE`): for handlers that need
/// a gateway in tests that never reach it, or that point it at a fake PortOne.
pub fn portone_gateway(platform: &Platform) -> std::sync::Arc<dyn crate::ports::PaymentGateway> {
    std::sync::Arc::new(
        crate::adapters::portone::PortOneClient::new(&platform.config.portone)
            .expect("a PortOne client"),
    )
}
