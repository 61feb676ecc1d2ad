//! Our strategy: reserve in Redis, then write in MySQL; Redis trouble falls back to MySQL alone.
//! How the reservations work is [`StockReservations`](shared::adapters::stock::StockReservations)'s
//! story.

use std::time::Instant;

use chrono::{DateTime, Utc};
use shared::{
    adapters::stock::{Reservation, StockFacts},
    domain::order::{CheckoutItem, PricedItem},
};

use super::{Attempt, Refusal, WriteError, Written, mysql_only::with_mysql_only, write::write};
use crate::{Deps, store};

pub(super) async fn with_reservations(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<Written, WriteError> {
    let reserved = match reserve_all(deps, attempt).await {
        Ok(reserved) => reserved,
        Err(Reserve::Failed(err)) => return Err(err),
        Err(Reserve::RedisDown(err)) => {
            tracing::warn!(%err, "Redis unavailable; checkout through MySQL alone");
            return with_mysql_only(deps, attempt).await;
        }
        Err(Reserve::NoCounter) => {
            tracing::warn!("a stock counter would not stay loaded; checkout through MySQL alone");
            return with_mysql_only(deps, attempt).await;
        }
        Err(Reserve::BuyerBusy) => {
            tracing::debug!("the buyer's checkouts in flight hold the limit; MySQL decides");
            return with_mysql_only(deps, attempt).await;
        }
    };
    let priced: Vec<PricedItem> = reserved
        .iter()
        .map(|(item, facts)| PricedItem {
            product_id: item.product_id,
            partner_id: facts.partner_id,
            quantity: item.quantity,
            unit_price: facts.price,
        })
        .collect();
    let limits: Vec<i64> = reserved
        .iter()
        .map(|(_, facts)| facts.max_per_buyer)
        .collect();

    // Redis counted the units: it knows whether this sale took the last one.
    let sold_out = reserved.iter().any(|(_, facts)| facts.remaining == 0);

    let committed = write(deps, attempt, &priced, &limits)
        .await
        .map(|body| (body, sold_out));
    // Nothing kept: the units go back. Where MySQL's row disagreed with Redis (its units, or a
    // fact), the caller also drops that product's counter, which is then reloaded. Kept: they
    // are MySQL's now, and no longer count as the buyer's units in flight.
    if committed.is_err() {
        give_back(deps, attempt.buyer_id, &reserved).await;
    } else {
        for (item, _) in &reserved {
            deps.reservations
                .written(item.product_id, attempt.buyer_id, item.quantity)
                .await;
        }
    }
    committed
}

/// Why nothing was reserved.
enum Reserve {
    /// Answered as it is.
    Failed(WriteError),
    /// Redis could not be asked: MySQL alone decides.
    RedisDown(redis::RedisError),
    /// A counter vanished after each of [`LOADS`] loads: MySQL alone decides.
    NoCounter,
    /// The buyer's other checkouts in flight hold the limit of a product: MySQL alone decides
    /// (and replays a retry of one of them).
    BuyerBusy,
}

/// How often a checkout loads a product's counter that keeps vanishing before it goes to MySQL
/// alone.
const LOADS: usize = 3;

/// Takes every item's units in Redis, in product id order, or none of them.
async fn reserve_all(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<Vec<(CheckoutItem, StockFacts)>, Reserve> {
    let mut taken: Vec<(CheckoutItem, StockFacts)> = Vec::with_capacity(attempt.items.len());
    for item in &attempt.items {
        match reserve_one(deps, attempt.buyer_id, *item, attempt.now).await {
            Ok(facts) => taken.push((*item, facts)),
            Err(err) => {
                give_back(deps, attempt.buyer_id, &taken).await;
                return Err(err);
            }
        }
    }
    Ok(taken)
}

async fn reserve_one(
    deps: &Deps,
    buyer_id: i64,
    item: CheckoutItem,
    now: DateTime<Utc>,
) -> Result<StockFacts, Reserve> {
    let reservations = &deps.reservations;
    let mut outcome = reservations
        .reserve(item.product_id, buyer_id, item.quantity, now)
        .await
        .map_err(Reserve::RedisDown)?;
    // A counter may be dropped between a load and the reservation after it (a refusal that
    // found its facts stale, an edit, a MySQL-only sale): load again, a few times.
    for _ in 0..LOADS {
        if outcome != Reservation::NotLoaded {
            break;
        }
        let facts = store::product_facts(&deps.platform.db, item.product_id)
            .await
            .map_err(|err| Reserve::Failed(err.into()))?
            .ok_or(Reserve::Failed(WriteError::Refused(
                Refusal::ProductNotFound,
            )))?;
        // Stored only if still absent, so a late loader never overwrites a counter in use.
        reservations
            .load(item.product_id, &facts.stock_facts())
            .await
            .map_err(Reserve::RedisDown)?;
        outcome = reservations
            .reserve(item.product_id, buyer_id, item.quantity, now)
            .await
            .map_err(Reserve::RedisDown)?;
    }
    let sold_out = match outcome {
        Reservation::Reserved(facts) => facts.remaining <= 0,
        Reservation::Refused(refusal) => refusal.is_sold_out(),
        Reservation::NotLoaded | Reservation::BuyerBusy => false,
    };
    if sold_out {
        deps.sold_out.saw_sold_out(item.product_id, Instant::now());
    }
    match outcome {
        Reservation::Reserved(facts) => Ok(facts),
        Reservation::Refused(refusal) => Err(Reserve::Failed(WriteError::stock(refusal))),
        Reservation::NotLoaded => Err(Reserve::NoCounter),
        Reservation::BuyerBusy => Err(Reserve::BuyerBusy),
    }
}

async fn give_back(deps: &Deps, buyer_id: i64, taken: &[(CheckoutItem, StockFacts)]) {
    for (item, _) in taken {
        deps.reservations
            .give_back_reserved(item.product_id, buyer_id, item.quantity)
            .await;
        deps.sold_out.forget(item.product_id);
    }
}
