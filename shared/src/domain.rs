//! Pure rules: no I/O, no HTTP, no Lambda. Each module is unit-tested on its own.

pub mod auth;
pub mod order;
pub mod product;
pub mod settlement;
