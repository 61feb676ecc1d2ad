//! `serve --bench-floor` (bench only): `GET /_bench/floor` sends the stored bytes as JSON,
//! `POST /_bench/drop-floor` takes the stored units one at a time, and a runner started without
//! the flag serves neither.

use std::{net::SocketAddr, sync::Arc};

use kicksync_local::{
    Functions,
    bench_floor::{DROP_FLOOR_KEY, DROP_FLOOR_PATH, FLOOR_KEY, FLOOR_PATH},
    serve::Server,
};
use redis::AsyncCommands;
use reqwest::header::CONTENT_TYPE;
use shared::testing::TestContext;
use tokio_util::sync::CancellationToken;

use crate::common::{expect_problem, spawn_app};

/// A runner with the floor routes; returns its base URL.
async fn spawn_with_floor(ctx: &TestContext, shutdown: &CancellationToken) -> String {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind_with(
        Arc::new(Functions::new(&ctx.platform).await.unwrap()),
        Vec::new(),
        Vec::new(),
        &ctx.platform.config.aws,
        addr,
    )
    .await
    .unwrap()
    .with_bench_floor(ctx.platform.redis.clone());
    let base = server.base_url().unwrap();
    tokio::spawn(server.run(shutdown.clone()));
    base
}

#[tokio::test]
async fn the_floor_sends_the_stored_bytes_as_json() {
    // GIVEN bytes stored under the floor key and a runner started with the floor
    let ctx = TestContext::new().await;
    let page = br#"{"items":[{"id":1}],"next_cursor":null}"#;
    let mut redis = ctx.platform.redis.connection().await.unwrap();
    let () = redis
        .set(ctx.platform.redis.key(FLOOR_KEY), page.as_slice())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let url = format!("{}{FLOOR_PATH}", spawn_with_floor(&ctx, &shutdown).await);

    // WHEN the floor is asked
    let response = reqwest::get(&url).await.unwrap();

    // THEN it answers exactly those bytes, as JSON
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(response.bytes().await.unwrap().as_ref(), page.as_slice());
    shutdown.cancel();
}

#[tokio::test]
async fn the_drop_floor_takes_the_stored_units_one_at_a_time() {
    // GIVEN two units stored under the drop floor's key and a runner started with the floor
    let ctx = TestContext::new().await;
    let key = ctx.platform.redis.key(DROP_FLOOR_KEY);
    let mut redis = ctx.platform.redis.connection().await.unwrap();
    let () = redis.set(&key, 2).await.unwrap();
    let shutdown = CancellationToken::new();
    let url = format!(
        "{}{DROP_FLOOR_PATH}",
        spawn_with_floor(&ctx, &shutdown).await
    );

    // WHEN three attempts are made, with whatever body
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let response = client.post(&url).body("{}").send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        answers.push((status, response.text().await.unwrap()));
    }

    // THEN two units are sold, the third attempt is refused, and the counter stops at zero
    assert_eq!(
        answers,
        [
            (201, r#"{"sold":true}"#.to_owned()),
            (201, r#"{"sold":true}"#.to_owned()),
            (409, r#"{"sold":false}"#.to_owned()),
        ]
    );
    let left: i64 = redis.get(&key).await.unwrap();
    assert_eq!(left, 0);
    shutdown.cancel();
}

#[tokio::test]
async fn without_the_flag_there_is_no_floor() {
    let app = spawn_app().await;
    let response = app.client.get(app.url(FLOOR_PATH)).send().await.unwrap();
    expect_problem(response, 404, "ROUTE_NOT_FOUND").await;
    let response = app
        .client
        .post(app.url(DROP_FLOOR_PATH))
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "ROUTE_NOT_FOUND").await;
}
