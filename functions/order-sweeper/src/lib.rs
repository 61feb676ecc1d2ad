//! The `order-sweeper` function, fired by EventBridge every minute:
//!
//! 1. unpaid orders past `expires_at` become EXPIRED and their units return to stock, exactly
//!    once even when two sweeps overlap (each order's release is a guarded update);
//! 2. orders SHIPPED longer ago than `AUTO_CONFIRM_AFTER_DAYS` become CONFIRMED, which is what
//!    settlement pays out on;
//! 3. the Redis stock counters of products released in the last [`RECONCILE_DAYS`] days (and
//!    upcoming ones) are compared with MySQL, and one that differed by the same figures at the
//!    previous sweep too is dropped, so the next checkout reloads it: a give-back to Redis that
//!    failed cannot keep units unsold, nor MySQL-only sales leave buyers sent on to refusals.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use serde::Serialize;
use shared::{ApiError, Platform};

/// Orders expired per query; the sweep loops until none are due.
const EXPIRY_BATCH: i64 = 500;
/// Products whose counters each sweep checks: released this many days ago at most.
pub const RECONCILE_DAYS: i64 = 30;
/// At most this many of them, newest first.
const RECONCILE_LIMIT: i64 = 5_000;

#[derive(Debug)]
pub struct Deps {
    platform: Platform,
    orders: orders::Deps,
}

impl Deps {
    pub fn new(platform: &Platform) -> Self {
        Self {
            platform: platform.clone(),
            orders: orders::Deps::new(platform),
        }
    }
}

/// What one sweep did; also the function's output, visible in `kicksync-local fire order-sweeper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub expired: u64,
    pub confirmed: u64,
    /// Redis stock counters dropped for a reload because they drifted from MySQL.
    pub counters_reloaded: u64,
}

pub async fn handle(deps: &Deps, _event: EventBridgeEvent) -> Result<SweepReport, ApiError> {
    let now = Utc::now();
    let lifecycle = deps.orders.lifecycle();
    let expired = lifecycle.expire_due(now, EXPIRY_BATCH).await?;
    let after = chrono::Duration::from_std(deps.platform.config.orders.auto_confirm_after)
        .map_err(ApiError::internal)?;
    let confirmed = lifecycle.auto_confirm(now, after).await?;
    let counters_reloaded = lifecycle
        .reconcile_counters(
            now - chrono::Duration::days(RECONCILE_DAYS),
            RECONCILE_LIMIT,
        )
        .await?;
    if expired > 0 || confirmed > 0 || counters_reloaded > 0 {
        tracing::info!(expired, confirmed, counters_reloaded, "orders swept");
    }
    Ok(SweepReport {
        expired,
        confirmed,
        counters_reloaded,
    })
}

#[cfg(test)]
mod tests;
