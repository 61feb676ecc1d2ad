//! `serve --bench-floor` (bench only): `GET /_bench/floor` sends the stored bytes as JSON, and a
//! runner started without the flag does not serve it.

use std::{net::SocketAddr, sync::Arc};

use kicksync_local::{
    Functions,
    bench_floor::{FLOOR_KEY, FLOOR_PATH},
    serve::Server,
};
use redis::AsyncCommands;
use reqwest::header::CONTENT_TYPE;
use shared::testing::TestContext;
use tokio_util::sync::CancellationToken;

use crate::common::{expect_problem, spawn_app};

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
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind_with(
        Arc::new(Functions::new(&ctx.platform).await),
        Vec::new(),
        Vec::new(),
        &ctx.platform.config.aws,
        addr,
    )
    .await
    .unwrap()
    .with_bench_floor(ctx.platform.redis.clone());
    let url = format!("{}{FLOOR_PATH}", server.base_url().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));

    // WHEN the floor is asked
    let response = reqwest::get(&url).await.unwrap();

    // THEN it answers exactly those bytes, as JSON
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(response.bytes().await.unwrap().as_ref(), page.as_slice());
    shutdown.cancel();
}

#[tokio::test]
async fn without_the_flag_there_is_no_floor() {
    let app = spawn_app().await;
    let response = app.client.get(app.url(FLOOR_PATH)).send().await.unwrap();
    expect_problem(response, 404, "ROUTE_NOT_FOUND").await;
}
