//! The replaced system's way, kept for comparison (`STOCK_STRATEGY=lock`): per-product locks
//! (ascending id), then the MySQL-only checkout.

use shared::adapters::stock::HeldLock;

use super::{Attempt, Refusal, WriteError, Written, mysql_only::with_mysql_only};
use crate::Deps;

pub(super) async fn with_product_locks(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<Written, WriteError> {
    let orders = &deps.platform.config.orders;
    let mut held: Vec<HeldLock> = Vec::with_capacity(attempt.items.len());
    let mut outcome = None;
    for item in &attempt.items {
        match deps
            .locks
            .acquire(item.product_id, orders.lock_wait, orders.lock_lease)
            .await
        {
            Ok(Some(lock)) => held.push(lock),
            Ok(None) => {
                outcome = Some(Err(WriteError::Refused(Refusal::LockTimeout)));
                break;
            }
            Err(err) => {
                outcome = Some(Err(WriteError::Failed(err.into())));
                break;
            }
        }
    }
    let outcome = match outcome {
        Some(refused) => refused,
        None => with_mysql_only(deps, attempt).await,
    };
    for lock in held {
        if let Err(err) = deps.locks.release(lock).await {
            tracing::warn!(%err, "could not release a product lock; its lease will");
        }
    }
    outcome
}
