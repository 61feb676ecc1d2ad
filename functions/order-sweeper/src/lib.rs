//! The `order-sweeper` function, fired by EventBridge every minute:
//!
//! 1. unpaid orders past `expires_at` become EXPIRED and their units return to stock, exactly
//!    once even when two sweeps overlap (each order's release is a guarded update);
//! 2. orders SHIPPED longer ago than `AUTO_CONFIRM_AFTER_DAYS` become CONFIRMED, which is what
//!    settlement pays out on;
//! 3. the Redis stock counters of products released or changed (sold, given back, edited) in
//!    the last [`RECONCILE_DAYS`] days (and upcoming ones) are compared with MySQL, and one that differed by the same figures at the
//!    previous sweep too is dropped, so the next checkout reloads it: a give-back to Redis that
//!    failed cannot keep units unsold, nor MySQL-only sales leave buyers sent on to refusals.
//!    One whose facts (release time, limit, price) are not MySQL's is dropped at once: an edit
//!    whose eviction failed cannot keep a drop closed that was brought forward, nor a raised
//!    limit refused.

mod store;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    ApiError, Platform, adapters::stock::StockReservations,
    services::order_lifecycle::OrderLifecycle,
};

/// Orders expired per query; the sweep loops until none are due.
const EXPIRY_BATCH: i64 = 500;
/// Products whose counters each sweep checks: released or changed this many days ago at most.
pub const RECONCILE_DAYS: i64 = 30;
/// At most this many of them, newest first.
const RECONCILE_LIMIT: i64 = 5_000;

#[derive(Debug)]
pub struct Deps {
    platform: Platform,
    lifecycle: OrderLifecycle,
    reservations: StockReservations,
}

impl Deps {
    pub fn new(platform: &Platform) -> Self {
        Self {
            platform: platform.clone(),
            lifecycle: OrderLifecycle::of(platform),
            reservations: StockReservations::new(platform.redis.clone()),
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
    let expired = deps.lifecycle.expire_due(now, EXPIRY_BATCH).await?;
    let after = chrono::Duration::from_std(deps.platform.config.orders.auto_confirm_after)
        .map_err(ApiError::internal)?;
    let confirmed = store::auto_confirm(&deps.platform.db, now - after, now).await?;
    let counters_reloaded = reconcile_counters(
        deps,
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

/// Compares the Redis counters of the products released or changed since `since` with MySQL and drops
/// the ones that leaked (see [`StockReservations::reconcile`]); returns how many it dropped.
/// Redis trouble ends the pass quietly: the next sweep tries again.
async fn reconcile_counters(
    deps: &Deps,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<u64, ApiError> {
    let mut dropped = 0;
    for (product_id, facts) in store::recent_stock(&deps.platform.db, since, limit).await? {
        match deps.reservations.reconcile(product_id, &facts).await {
            Ok(true) => {
                tracing::warn!(
                    product_id,
                    "stock counter or facts drifted from MySQL; dropped for a reload"
                );
                dropped += 1;
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(%err, "Redis unavailable; counters not reconciled this time");
                break;
            }
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests;
