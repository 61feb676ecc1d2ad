//! The local runner: KickSync on a laptop, without AWS.
//!
//! In AWS, API Gateway turns HTTP requests into Lambda events, the SQS event source mapping feeds
//! the settlement worker, and EventBridge fires the scheduled functions. This crate plays those
//! three parts in one process and calls the very same `handle` functions, with the very same
//! `Deps`, that the Lambda binaries call. What it adds is only the plumbing AWS would provide.
//!
//! # How this crate is laid out
//!
//! - [`cli`]: the `kicksync-local` command line (`serve`, `migrate`, `seed`, `fire`).
//! - [`serve`]: puts the pieces below together into one server and stops them on ctrl-C.
//! - [`gateway`]: the API Gateway stand-in. An axum router with every route of
//!   [`shared::routes::ROUTES`]; each HTTP request becomes the `lambda_http::Request` API Gateway's
//!   HTTP API (payload v2) would deliver, and the handler's response goes back unchanged.
//! - [`functions`]: the registry of Lambda functions: each function's `Deps`, built once from one
//!   [`shared::Platform`], and `dispatch` by function name. Adding a function starts here.
//! - [`queues`]: the SQS event source mapping stand-in: long-polls a queue, delivers real
//!   `SqsEvent`s and deletes what the handler did not report as failed.
//! - [`schedules`]: the EventBridge stand-in: `rate(...)` and `cron(...)` expressions, fired on
//!   time and on demand.
//! - [`seed`]: idempotent demo data (an admin, two partners, a buyer, a dozen products).
//! - [`docs`]: the merged OpenAPI document and Swagger UI.
//! - [`bench_floor`]: bench only, `GET /_bench/floor` and `POST /_bench/drop-floor` for
//!   `serve --bench-floor`: one Redis GET, and one Lua decrement, the baselines of the
//!   product-list and drop benchmarks.

pub mod bench_floor;
pub mod cli;
pub mod docs;
pub mod functions;
pub mod gateway;
pub mod queues;
pub mod schedules;
pub mod seed;
pub mod serve;

pub use functions::Functions;
