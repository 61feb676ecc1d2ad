//! KickSync's benchmarks, run as `scripts/bench <name>` (which builds this crate and the local
//! runner in release mode and makes sure MariaDB, Redis and wrk are there).
//!
//! Every benchmark measures its own baseline in the same run on the same machine, writes its
//! figures to `bench/results/<name>.json` (DESIGN.md section 6; the README's table is made from
//! those files) and reports only what it measured. Missing a target is reported as FAIL, not
//! an error: the process exits non-zero only when it could not measure (a runner that did not
//! start, a configuration that answered something other than the page it should).
//!
//! # How this crate is laid out
//!
//! - [`cli`]: the `bench` command line, one subcommand per benchmark.
//! - [`products_list`]: `bench products-list`, page 1 of `GET /products` with no index, with the
//!   index, with the index and the Redis page cache, and the floor (`GET /_bench/floor`).
//! - [`catalogue`]: the bench database: a fresh, migrated `kicksync_bench` with generated
//!   partners and products.
//! - [`settlement`]: `bench settlement`, the nightly settlement end to end against its floor.
//! - [`timeline`]: where the time of one settlement run goes, from the functions' step timings.
//! - [`drop`]: `bench drop`, a drop raced by buyers: the reservation strategy, the replaced
//!   system's lock and the floor (`POST /_bench/drop-floor`), with a MySQL audit of every sale.
//! - [`runner`]: the release `kicksync-local` as a child process, one per configuration.
//! - [`wrk`]: runs `wrk --latency` and parses its report.
//! - [`report`]: the machine description, table formatting and the results file.

pub mod catalogue;
pub mod cli;
pub mod drop;
pub mod products_list;
pub mod report;
pub mod runner;
pub mod settlement;
pub mod timeline;
pub mod wrk;
