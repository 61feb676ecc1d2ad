//! Bench only: `GET /_bench/floor` and `POST /_bench/drop-floor`, mounted by
//! `serve --bench-floor` and by nothing else.
//!
//! `bench products-list` compares the cached `GET /products` against the least this HTTP stack
//! can do to send the same bytes: one Redis GET of `<REDIS_KEY_PREFIX>bench:floor` on the
//! process's one shared Redis connection ([`RedisStore`]), answered as `application/json`. No
//! API Gateway request conversion, no handler, nothing else. The benchmark stores the exact
//! page-1 bytes under that key first, so both endpoints send the same body.
//!
//! `bench drop` compares `POST /orders` against the least this HTTP stack can do to answer a drop
//! attempt: one script call (EVALSHA) that decrements `<REDIS_KEY_PREFIX>bench:drop-floor` if it
//! is above zero, on the same shared connection, answered with a tiny JSON body, 201 when a unit
//! was taken and 409 when none was left. No authentication, no rate limit, no idempotency key,
//! no body parsing, no MySQL. The benchmark stores the units under that key first.
//!
//! Neither is an API route: they are in neither the route table, template.yaml nor the API
//! document, and a runner started without the flag answers them with the usual 404.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::{HeaderValue, StatusCode, header};
use redis::{AsyncCommands, Script};
use shared::{adapters::redis::RedisStore, error::ProblemCode, http::APPLICATION_JSON};

use crate::gateway::{into_axum_response, problem};

pub const FLOOR_PATH: &str = "/_bench/floor";
/// The key (after the deployment's prefix) the benchmark stores the floor's body under.
pub const FLOOR_KEY: &str = "bench:floor";
pub const DROP_FLOOR_PATH: &str = "/_bench/drop-floor";
/// The key (after the deployment's prefix) holding the drop floor's units left.
pub const DROP_FLOOR_KEY: &str = "bench:drop-floor";
/// Takes one unit if there is one: returns the units left after it, or -1 when none was left.
const DROP_FLOOR_SCRIPT: &str = r"
    local left = tonumber(redis.call('GET', KEYS[1]) or '0')
    if left > 0 then return redis.call('DECR', KEYS[1]) end
    return -1
";

#[derive(Debug)]
struct Floor {
    redis: RedisStore,
    /// Prefixed once, at start-up.
    key: String,
    drop_key: String,
    drop_script: Script,
}

/// The router with the floor routes; merged into the app by [`crate::serve::Server`].
pub fn router(redis: RedisStore) -> Router {
    let key = redis.key(FLOOR_KEY);
    let drop_key = redis.key(DROP_FLOOR_KEY);
    Router::new()
        .route(FLOOR_PATH, get(floor))
        .route(DROP_FLOOR_PATH, post(drop_floor))
        .with_state(Arc::new(Floor {
            redis,
            key,
            drop_key,
            drop_script: Script::new(DROP_FLOOR_SCRIPT),
        }))
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
            ProblemCode::BenchFloorEmpty,
            &format!("nothing stored under {}", floor.key),
        )),
        Err(err) => into_axum_response(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            ProblemCode::Unavailable,
            &format!("Redis: {err}"),
        )),
    }
}

/// One script call, then 201 `{"sold":true}` or 409 `{"sold":false}`.
async fn drop_floor(State(floor): State<Arc<Floor>>) -> Response {
    let left: Result<i64, redis::RedisError> = async {
        let mut connection = floor.redis.connection().await?;
        floor
            .drop_script
            .key(&floor.drop_key)
            .invoke_async(&mut connection)
            .await
    }
    .await;
    let (status, body): (StatusCode, &'static [u8]) = match left {
        Ok(left) if left >= 0 => (StatusCode::CREATED, br#"{"sold":true}"#),
        Ok(_) => (StatusCode::CONFLICT, br#"{"sold":false}"#),
        Err(err) => {
            return into_axum_response(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemCode::Unavailable,
                &format!("Redis: {err}"),
            ));
        }
    };
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(APPLICATION_JSON),
        )],
        body,
    )
        .into_response()
}
