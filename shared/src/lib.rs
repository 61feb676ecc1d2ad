//! KickSync's shared library: everything the Lambda functions and the local runner have in common.
//!
//! # How this crate is laid out
//!
//! - [`config`]: typed configuration read once from the environment; secrets never print.
//! - [`error`]: [`ApiError`](error::ApiError), the one error type at the HTTP boundary, rendered as
//!   RFC 9457 `application/problem+json` with a stable `code`.
//! - [`http`]: helpers every HTTP function uses: JSON bodies with a size limit, responses, path and
//!   query parameters, the caller's address and the API Gateway route key.
//! - [`auth`]: access-token issue and verification, the logout blacklist, and [`Principal`](auth::Principal)
//!   role checks that every authenticated route goes through.
//! - [`domain`]: pure rules (no I/O): roles, email and password policy, token formats, statuses,
//!   whether stock can be taken, paging cursors.
//! - [`adapters`]: the real MySQL, Redis, DynamoDB and SQS clients.
//! - [`services`]: use cases several functions run (starting a settlement run, an unpaid order's
//!   end, page-1 eviction), so no function depends on another.
//! - [`routes`]: the one table of HTTP routes; the local runner, `template.yaml` and the OpenAPI
//!   document are checked against it.
//! - [`telemetry`]: tracing set-up (JSON lines in Lambda, readable text locally).
//! - `testing` (feature `testing`): per-test databases and Redis key prefixes.

pub mod adapters;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod platform;
pub mod ports;
pub mod routes;
pub mod services;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::Config;
pub use error::ApiError;
pub use platform::Platform;
