//! Hostile input over real HTTP, through the runner's gateway: forged and stale tokens, crossed
//! roles and owners, SQL metacharacters and odd Unicode, numbers out of range or of the wrong
//! type, bodies too large, not JSON or not objects. Every answer must be the contract's 4xx
//! problem (or a faithful round trip), never a 5xx, and nothing may change. Every test also reads
//! the runner's logs and checks that no password, token or secret it used appears in them.

mod bodies;
mod logs;
mod numbers;
mod owners;
mod roles;
mod text;
mod tokens;

use std::{
    io,
    sync::{Arc, Mutex, PoisonError},
};

use reqwest::{
    Method, RequestBuilder, Response,
    header::{AUTHORIZATION, CONTENT_TYPE},
};
use serde_json::{Value, json};
use shared::{config::local_portone, domain::auth::Role, testing::TEST_JWT_SECRET};
use sqlx::Row;
use tracing::subscriber::DefaultGuard;

use crate::common::{TestApp, expect_problem, expect_status, spawn_app_with_vars};

/// Limits high enough that no test of this suite is ever rate limited: it sends hundreds of
/// requests from one address and one buyer.
const NO_LIMITS: &[(&str, &str)] = &[
    ("SIGNUP_LIMIT_PER_ADDRESS", "10000"),
    ("LOGIN_LIMIT_PER_ADDRESS", "10000"),
    ("LOGIN_LIMIT_PER_EMAIL", "10000"),
    ("CHECKOUT_LIMIT_PER_MINUTE", "10000"),
    ("MAX_UNPAID_ORDERS_PER_BUYER", "1000"),
    ("REBUY_COOLDOWN_SECONDS", "0"),
];

/// Every table of the schema: "nothing changed" means each one's checksum is the same.
const TABLES: &[&str] = &[
    "users",
    "partner_profiles",
    "commission_policies",
    "revoked_access_tokens",
    "products",
    "payments",
    "orders",
    "order_items",
    "buyer_product_purchases",
    "settlement_runs",
    "settlement_partials",
    "settlements",
];

/// Someone with an account and an access token.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub token: String,
}

/// A runner on its own database and Redis prefix, the logs it writes, and the secrets that must
/// never appear in them.
pub struct Hostile {
    pub app: TestApp,
    logs: LogCapture,
    secrets: Mutex<Vec<(String, String)>>,
}

impl Hostile {
    pub async fn new() -> Self {
        Self::with_vars(&[]).await
    }

    pub async fn with_vars(vars: &[(&str, &str)]) -> Self {
        // Before the runner exists, so that everything it logs is captured.
        let logs = LogCapture::install();
        let mut all = NO_LIMITS.to_vec();
        all.extend_from_slice(vars);
        let app = spawn_app_with_vars(&all).await;
        let hostile = Self {
            app,
            logs,
            secrets: Mutex::new(Vec::new()),
        };
        hostile.secret("the JWT secret", TEST_JWT_SECRET);
        let portone = &[
            ("the PortOne API secret", local_portone::API_SECRET),
            ("the PortOne webhook secret", local_portone::WEBHOOK_SECRET),
        ];
        for (what, default) in portone {
            hostile.secret(what, default);
        }
        hostile
    }

    /// Remembers a value that must never be logged.
    pub fn secret(&self, what: &str, value: &str) {
        self.secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((what.to_owned(), value.to_owned()));
    }

    /// An access token must not be logged, nor its signature alone (which is what proves it).
    pub fn access_token(&self, token: &str) {
        self.secret("an access token", token);
        if let Some((_, signature)) = token.rsplit_once('.') {
            self.secret("an access token's signature", signature);
        }
    }

    /// A refresh token is `<family>.<secret>`: the family may be logged (it names a session to
    /// revoke), the secret part may not.
    pub fn refresh_token(&self, token: &str) {
        self.secret("a refresh token", token);
        if let Some((_, secret)) = token.split_once('.') {
            self.secret("a refresh token's secret", secret);
        }
    }

    /// Fails when a remembered secret appears in the runner's logs. Every test ends with it.
    pub fn assert_no_secret_logged(&self) {
        let logs = self.logs.text();
        for (what, value) in self
            .secrets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            assert!(
                !logs.contains(value.as_str()),
                "{what} ({value}) was logged:\n{}",
                lines_containing(&logs, value)
            );
        }
    }

    pub fn logs(&self) -> String {
        self.logs.text()
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.app.client.request(method, self.app.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// A user written straight to the database, with a live access token (no Argon2 cost).
    pub async fn user(&self, role: Role) -> Actor {
        let (id, token) = self.app.ctx.user(role).await;
        self.access_token(&token);
        Actor { id, token }
    }

    /// Signs up over HTTP and logs in: (account, access token, refresh token).
    pub async fn sign_up(&self, body: &Value) -> (Value, String, String) {
        let password = body["password"].as_str().unwrap_or_default().to_owned();
        self.secret("a password", &password);
        let account = expect_status(
            self.post("/auth/signup").json(body).send().await.unwrap(),
            201,
        )
        .await;
        let tokens = expect_status(
            self.post("/auth/login")
                .json(&json!({"email": body["email"], "password": password}))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        self.access_token(&access);
        self.refresh_token(&refresh);
        (account, access, refresh)
    }

    /// A product on sale now, listed by `partner` over HTTP.
    pub async fn product(&self, partner: &Actor) -> Value {
        let response = self
            .post("/products")
            .bearer_auth(&partner.token)
            .json(&product_body("Air Jordan 1 Retro High OG"))
            .send()
            .await
            .unwrap();
        expect_status(response, 201).await
    }

    /// A checkout of one unit of `product_id` by `buyer` over HTTP.
    pub async fn checkout(&self, buyer: &Actor, product_id: i64) -> Value {
        let response = self
            .post("/orders")
            .bearer_auth(&buyer.token)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"items": [{"product_id": product_id, "quantity": 1}]}))
            .send()
            .await
            .unwrap();
        expect_status(response, 201).await
    }

    /// Every table's checksum: equal before and after means no row was written.
    pub async fn state(&self) -> Vec<(String, Option<i64>)> {
        let sql = format!("CHECKSUM TABLE {}", TABLES.join(", "));
        sqlx::raw_sql(&sql)
            .fetch_all(&self.app.ctx.platform.db)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get::<String, _>(0), row.get::<Option<i64>, _>(1)))
            .collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.app.ctx.platform.db)
            .await
            .unwrap()
    }
}

/// A valid `POST /products` body.
pub fn product_body(name: &str) -> Value {
    json!({
        "name": name,
        "brand": "Nike",
        "price": 219_000,
        "release_at": chrono::Utc::now() - chrono::Duration::minutes(1),
        "stock": 10,
        "max_per_buyer": 2,
    })
}

/// Sends the request and asserts the problem (status and code); returns its body.
pub async fn refused(request: RequestBuilder, status: u16, code: &str) -> Value {
    let (client, request) = request.build_split();
    let request = request.unwrap();
    let what = format!("{} {}", request.method(), request.url());
    let response = client.execute(request).await.unwrap();
    if response.status().as_u16() != status {
        let actual = response.status();
        let body = response.text().await.unwrap_or_default();
        panic!("{what}: expected {status} {code}, got {actual}: {body}");
    }
    expect_problem(response, status, code).await
}

/// Like [`refused`], and the problem names `field` among its errors.
pub async fn invalid(request: RequestBuilder, field: &str) -> Value {
    let problem = refused(request, 422, "VALIDATION").await;
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|error| error["field"] == field),
        "{field} not named: {problem}"
    );
    problem
}

/// Sends the request and asserts the status; returns the body.
pub async fn answered(request: RequestBuilder, status: u16) -> Value {
    expect_status(request.send().await.unwrap(), status).await
}

/// A `Bearer` header with any value, however malformed.
pub fn with_authorization(request: RequestBuilder, value: &[u8]) -> RequestBuilder {
    match reqwest::header::HeaderValue::from_bytes(value) {
        Ok(value) => request.header(AUTHORIZATION, value),
        Err(_) => request,
    }
}

/// A body sent as raw bytes with the given content type (none when `None`).
pub fn raw(request: RequestBuilder, content_type: Option<&str>, body: Vec<u8>) -> RequestBuilder {
    let request = request.body(body);
    match content_type {
        Some(content_type) => request.header(CONTENT_TYPE, content_type),
        None => request,
    }
}

/// The status of an answer that must not be a 5xx, with its body.
pub async fn not_a_server_error(request: RequestBuilder) -> (u16, Value) {
    let response: Response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(status < 500, "{status}: {text}");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn lines_containing(logs: &str, value: &str) -> String {
    logs.lines()
        .filter(|line| line.contains(value))
        .take(5)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the runner logs, at every level, into memory.
///
/// Installed as the process's subscriber when it has none yet (nextest runs each test in a
/// process of its own), so that every thread is captured, blocking ones included; otherwise
/// (several tests in one process) for the test's own thread, on which `#[tokio::test]`'s
/// runtime runs the runner too.
struct LogCapture {
    buffer: Buffer,
    _thread: Option<DefaultGuard>,
}

impl LogCapture {
    fn install() -> Self {
        use tracing_subscriber::util::SubscriberInitExt;

        let buffer = Buffer::default();
        let subscriber = || {
            let writer = buffer.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .finish()
        };
        let thread = match subscriber().try_init() {
            Ok(()) => None,
            Err(_) => Some(tracing::subscriber::set_default(subscriber())),
        };
        Self {
            buffer,
            _thread: thread,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.0.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
