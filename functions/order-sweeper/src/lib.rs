//! The `order-sweeper` function, fired by EventBridge every minute:
//!
//! 1. unpaid orders past `expires_at` become EXPIRED and their units return to stock, exactly
//!    once even when two sweeps overlap (each order's release is a guarded update);
//! 2. orders SHIPPED longer ago than `AUTO_CONFIRM_AFTER_DAYS` become CONFIRMED, which is what
//!    settlement pays out on.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use serde::Serialize;
use shared::{ApiError, Platform};

/// Orders expired per query; the sweep loops until none are due.
const EXPIRY_BATCH: i64 = 500;

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
}

pub async fn handle(deps: &Deps, _event: EventBridgeEvent) -> Result<SweepReport, ApiError> {
    let now = Utc::now();
    let lifecycle = deps.orders.lifecycle();
    let expired = lifecycle.expire_due(now, EXPIRY_BATCH).await?;
    let after = chrono::Duration::from_std(deps.platform.config.orders.auto_confirm_after)
        .map_err(ApiError::internal)?;
    let confirmed = lifecycle.auto_confirm(now, after).await?;
    if expired > 0 || confirmed > 0 {
        tracing::info!(expired, confirmed, "orders swept");
    }
    Ok(SweepReport { expired, confirmed })
}

#[cfg(test)]
mod tests;
