//! Integration tests of the local runner, against the real MariaDB, Redis and moto_server that
//! `scripts/test` starts (moto's address in `AWS_ENDPOINT_URL`).
//!
//! One test binary with modules, rather than one per file, so the workspace links it once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod bench_floor;
mod common;
mod events;
mod gateway;
mod hostile;
mod queues;
mod route_sets;
mod schedules;
mod seed;
mod template;
