//! `spawn_app()`: a real runner on an ephemeral port, on a database and Redis prefix of its own.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use kicksync_local::{Functions, schedules::ScheduleBinding, serve::Server};
use reqwest::{Response, header::CONTENT_TYPE};
use serde_json::Value;
use shared::testing::TestContext;
use tokio_util::sync::CancellationToken;

/// A hung request fails its test with a message instead of running into nextest's timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The database and Redis prefix this app runs on; dropped (and removed) with it.
    pub ctx: TestContext,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Vec::new()).await
}

/// A runner whose only schedules are `schedules` (tests bind their own handlers).
pub async fn spawn_app_with(schedules: Vec<ScheduleBinding>) -> TestApp {
    spawn_on(TestContext::new().await, schedules).await
}

/// A runner with some configuration variables set (e.g. other limits or a fake PortOne).
pub async fn spawn_app_with_vars(vars: &[(&str, &str)]) -> TestApp {
    spawn_on(TestContext::with_vars(vars).await, Vec::new()).await
}

async fn spawn_on(ctx: TestContext, schedules: Vec<ScheduleBinding>) -> TestApp {
    let functions = Arc::new(Functions::new(&ctx.platform).await.unwrap());
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind_with(
        functions,
        schedules,
        Vec::new(),
        &ctx.platform.config.aws,
        addr,
    )
    .await
    .unwrap();
    let base = server.base_url().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    TestApp {
        base,
        client: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap(),
        ctx,
        shutdown,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts an RFC 9457 problem with `status` and `code`, and returns its body.
pub async fn expect_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status of {response:?}");
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    body
}

/// Asserts the status, showing the body when it differs, and returns the body as JSON
/// (`Null` when empty).
pub async fn expect_status(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}
