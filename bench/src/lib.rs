//! KickSync's benchmarks, run as `scripts/bench <name>` (which builds the workspace's binaries,
//! this crate's and the local runner's among them, in release mode and makes sure MariaDB, Redis
//! and wrk are there).
//!
//! Every benchmark measures its own baseline in the same run on the same machine, writes its
//! figures to `bench/results/<name>.json` (their shape: docs/contract.md, "Benchmark results";
//! the README's table is made from those files) and reports only what it measured. Missing a target is reported as FAIL, not
//! an error: the process exits non-zero only when it could not measure (a runner that did not
//! start, a configuration that answered something other than the page it should).
//!
//! # How this crate is laid out
//!
//! Dependencies go one way: [`cli`] → the benchmarks → the shared modules, and [`args`] imports
//! no other module of the crate.
//!
//! - [`cli`]: the `bench` command line: assembles one subcommand per benchmark and dispatches.
//! - [`args`]: the options every benchmark shares: [`args::Environment`] (services, binary,
//!   output folders) and [`args::Seconds`].
//! - [`products_list`]: `bench products-list`, page 1 of `GET /products` with no index, with the
//!   index, with the index and the Redis page cache, and the floor (`GET /_bench/floor`); its
//!   `catalogue` (a fresh, migrated `kicksync_bench` with generated partners and products),
//!   `index` (the index under test and EXPLAIN) and `results`.
//! - [`settlement`]: `bench settlement`, the nightly settlement end to end against its floor;
//!   its `data` (generated orders), `end_to_end` (one timed run through SQS), `baselines` (the
//!   floor, the naive approach, row-by-row inserts) and `timeline` (where the time of one run
//!   goes, from the functions' step timings).
//! - [`drop`]: `bench drop`, a drop raced by buyers: the reservation strategy, the replaced
//!   system's lock and the floor (`POST /_bench/drop-floor`), with a MySQL audit of every sale;
//!   its `database` (bench database, runner user, statement counting, data), `configuration`
//!   (one configuration from scratch), `phase` (one wrk phase through `bench/scripts/drop.lua`),
//!   `usage` (CPU and Redis counters around a phase), `shard` and `slots` (the Redis work per
//!   attempt on the product's hash slot, from a MONITOR sample), `audit`, `figures` and `table`.
//! - [`cold_start`]: `bench cold-start`, each function's release binary from process start to
//!   its first invocation answered against the floor (`bench/floor-lambda`, a hello-world
//!   `lambda_runtime` function), through a Lambda Runtime API the bench serves itself
//!   (`runtime_api`), one start at a time (`launch`) in `rounds`, each deployment package's
//!   size (`package`), and the figures, targets and table (`figures`).
//! - [`runner`]: the release `kicksync-local` as a child process, one per configuration.
//! - [`redis_server`]: a Redis server of the bench's own, so Redis's counters are the run's.
//! - [`wrk`]: runs `wrk --latency` and parses its report.
//! - [`keys`]: the bench's Redis keys, flushed by prefix.
//! - [`machine`]: the machine the figures were measured on, and everything read from `/proc`
//!   (CPU model, busy ticks, a process's CPU time).
//! - [`report`]: the results file, figures formatted for people, and rounding.
//! - [`progress`]: progress bars for the slow steps.

pub mod args;
pub mod cli;
pub mod cold_start;
pub mod drop;
pub mod keys;
pub mod machine;
pub mod products_list;
pub mod progress;
pub mod redis_server;
pub mod report;
pub mod runner;
pub mod settlement;
pub mod wrk;
