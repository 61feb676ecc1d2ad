//! MySQL alone (Redis down, or the lock strategy): check the products as MySQL has them, then
//! the same transaction as with Redis, whose guarded updates keep it exact.

use shared::domain::order::PricedItem;

use super::{Attempt, Refusal, WriteError, Written, write::write};
use crate::{Deps, store};

pub(super) async fn with_mysql_only(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<Written, WriteError> {
    let mut priced = Vec::with_capacity(attempt.items.len());
    let mut limits = Vec::with_capacity(attempt.items.len());
    for item in &attempt.items {
        // Read without a lock: the stock check here only spares a doomed transaction, and the
        // guarded update inside it is the one that counts.
        let product = store::product_facts(&deps.platform.db, item.product_id)
            .await?
            .ok_or(WriteError::Refused(Refusal::ProductNotFound))?;
        product
            .offer()
            .check_take(item.quantity, attempt.now)
            .map_err(WriteError::stock)?;
        priced.push(PricedItem {
            product_id: item.product_id,
            partner_id: product.partner_id,
            quantity: item.quantity,
            unit_price: product.price,
        });
        limits.push(i64::from(product.max_per_buyer));
    }

    let body = write(deps, attempt, &priced, &limits).await?;
    let sold_out = sold_out_now(deps, &priced).await;
    // Keep a loaded Redis counter in step (it was not consulted, so it still counts these units).
    for item in &priced {
        if let Err(err) = deps.reservations.forget(item.product_id).await {
            tracing::debug!(%err, "Redis still unavailable");
        }
    }
    Ok((body, sold_out))
}

/// Whether a product of a committed checkout has no units left. Read after the commit, so it may
/// count later sales too, and a failure only means no eviction: it decides nothing but whether
/// page 1 of the catalogue is evicted, and the order stands either way.
async fn sold_out_now(deps: &Deps, priced: &[PricedItem]) -> bool {
    let ids: Vec<i64> = priced.iter().map(|item| item.product_id).collect();
    let left = async {
        let mut connection = deps.platform.db.acquire().await?;
        store::stock_left(&mut connection, &ids).await
    }
    .await;
    match left {
        Ok(left) => left.iter().any(|(_, left)| *left == 0),
        Err(err) => {
            tracing::warn!(%err, "could not read the units left; page 1 not evicted");
            false
        }
    }
}
