//! Use cases that more than one function runs: each composes the domain's rules with the
//! adapters' stores, so a function calls it instead of depending on another function.

pub mod catalogue;
pub mod order_lifecycle;
pub mod payments;
pub mod settlement_run;
