//! Use cases shared by several functions: each one orchestrates domain rules and adapters, so
//! that no function crate has to depend on another.

pub mod settlement_run;
