//! Bench only: `GET /_bench/floor`, mounted by `serve --bench-floor` and by nothing else.
//!
//! `bench products-list` compares the cached `GET /products` against the least this HTTP stack
//! can do to send the same bytes: one Redis GET of `<REDIS_KEY_PREFIX>bench:floor` on the
//! process's one shared Redis connection ([`RedisStore`]), answered as `application/json`. No
//! API Gateway request conversion, no handler, nothing else. The benchmark stores the exact
//! page-1 bytes under that key first, so both endpoints send the same body.
//!
//! It is not an API route: it is in neither the route table, template.yaml nor the API document,
//! and a runner started without the flag answers it with the usual 404.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, StatusCode, header};
use redis::AsyncCommands;
use shared::{adapters::redis::RedisStore, http::APPLICATION_JSON};

use crate::gateway::{into_axum_response, problem};

pub const FLOOR_PATH: &str = "/_bench/floor";
/// The key (after the deployment's prefix) the benchmark stores the floor's body under.
pub const FLOOR_KEY: &str = "bench:floor";

#[derive(Debug)]
struct Floor {
    redis: RedisStore,
    /// Prefixed once, at start-up.
    key: String,
}

/// The router with the one floor route; merged into the app by [`crate::serve::Server`].
pub fn router(redis: RedisStore) -> Router {
    let key = redis.key(FLOOR_KEY);
    Router::new()
        .route(FLOOR_PATH, get(floor))
        .with_state(Arc::new(Floor { redis, key }))
}

async fn floor(State(floor): State<Arc<Floor>>) -> Response {
    let bytes: Result<Option<Vec<u8>>, redis::RedisError> = async {
        let mut connection = floor.redis.connection().await?;
        connection.get(&floor.key).await
    }
    .await;
    match bytes {
        Ok(Some(bytes)) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(APPLICATION_JSON),
            )],
            bytes,
        )
            .into_response(),
        Ok(None) => into_axum_response(problem(
            StatusCode::NOT_FOUND,
            "BENCH_FLOOR_EMPTY",
            &format!("nothing stored under {}", floor.key),
        )),
        Err(err) => into_axum_response(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            &format!("Redis: {err}"),
        )),
    }
}
