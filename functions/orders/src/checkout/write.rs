//! Writing a checkout in MySQL: one transaction for the payment with the idempotency key, the
//! purchase counts, one order per partner with its lines, and the checked stock updates.
//!
//! # The product row decides
//!
//! The price, partner, release time and limit a checkout works with come from Redis (or a plain
//! read of MySQL), which may be stale: an edit whose eviction failed, a first load that raced
//! an edit. So each line's units are taken by the `take_units_checked` procedure, which locks
//! the product row and refuses the line unless the row agrees: released at the checkout's time,
//! the buyer's units (this line's included) within its limit, the units there, and its price the
//! one charged. A refusal the checkout's facts did not foresee is [`WriteError::Stale`]: the
//! caller drops the product's Redis facts, and the next attempt reloads them.
//!
//! # The product row is locked last
//!
//! Every sale of a product queues on its row lock, held from that locked read to the end of the
//! transaction. So the stock update comes last, after every other write, and the statement that
//! makes it also ends the transaction inside MariaDB: the `sell_and_commit` procedure (several
//! lines) commits, or rolls back when the row refused, so the lock is held for one statement
//! instead of round trips to us. A one-line checkout, a drop's, is the whole transaction in one
//! round trip: the `sell_one_line` procedure ([`write_one_line`]).
//!
//! Every path locks in the same order (the buyer's row, the buyer's key, the buyer's purchase
//! rows, then products by ascending id; releasing an order locks its purchase rows before its
//! products too), so two checkouts can wait on each other but never deadlock. Claiming the key
//! early also makes a concurrent duplicate of a request wait for its commit and then replay its
//! answer.
//!
//! # Hoarding
//!
//! The buyer's row is locked first (`open_payment_checked`), so one buyer's checkouts queue
//! there and each counts the buyer's unpaid orders exactly: more than `MAX_UNPAID_ORDERS_PER_BUYER`
//! is refused. The buyer's purchase row of a product, locked and read anyway
//! (`add_purchase_checked`), says when the buyer last gave up an order of it: within
//! `REBUY_COOLDOWN_SECONDS`, refused. Both run in the statements a sale makes anyway.

use chrono::{DateTime, Utc};
use shared::{
    ApiError,
    adapters::mysql::finish,
    domain::{
        order::{PricedItem, split_by_partner},
        stock::StockRefusal,
    },
    error::is_unique_violation,
};
use sqlx::{MySql, Transaction};

use super::{Attempt, CheckoutLine, Refusal, WriteError, answer, pending_order};
use crate::{
    Deps,
    store::{self, RowRefusal},
};

/// Writes the checkout in MySQL and returns its answer: a one-line checkout in one round trip
/// ([`write_one_line`]), any other in a transaction of several statements ([`write_checkout`]).
/// `limits` are the purchase limits the checkout believes (one per line): the product rows
/// decide, and a refusal by a limit that differs from the believed one is [`WriteError::Stale`].
pub(super) async fn write(
    deps: &Deps,
    attempt: &Attempt<'_>,
    priced: &[PricedItem],
    limits: &[i64],
) -> Result<Vec<u8>, WriteError> {
    if let ([item], [limit]) = (priced, limits) {
        return write_one_line(deps, attempt, item, *limit).await;
    }
    let mut tx = deps.platform.db.begin().await.map_err(WriteError::from)?;
    let result = write_checkout(&mut tx, deps, attempt, priced, limits).await;
    finish(tx, result).await
}

/// The same rows, locks and lock order as [`write_checkout`] for one line, written by the
/// `sell_one_line` procedure in one round trip. The answer is not stored: a replay rebuilds it
/// from the rows ([`replay`](super::replay)).
async fn write_one_line(
    deps: &Deps,
    attempt: &Attempt<'_>,
    item: &PricedItem,
    limit: i64,
) -> Result<Vec<u8>, WriteError> {
    let draft = PaymentDraft::new(deps, attempt);
    let amount = i64::from(item.quantity) * item.unit_price;
    let limits = hoarding_limits(deps);
    let sale = store::OneLineSale {
        payment: &draft.row(attempt, amount),
        item,
        now: attempt.now,
        limits,
    };
    match store::sell_one_line(&deps.platform.db, &sale).await {
        Ok(store::OneLineSold::Sold { order_id, .. }) => {
            let order = pending_order(order_id, item.partner_id, amount, vec![item.into()]);
            Ok(answer(&draft.id, amount, draft.expires_at, vec![order]))
        }
        Ok(store::OneLineSold::TooManyUnpaid) => Err(too_many_unpaid(limits)),
        Ok(store::OneLineSold::RebuyCooldown { wait_secs }) => {
            Err(rebuy_cooldown(item.product_id, wait_secs))
        }
        Ok(store::OneLineSold::Refused(refusal)) => Err(refused(item, limit, refusal)),
        Err(err) if is_unique_violation(&err) => Err(WriteError::KeyTaken),
        Err(err) => Err(WriteError::from(err)),
    }
}

/// The configured limits on hoarding.
fn hoarding_limits(deps: &Deps) -> store::HoardingLimits {
    let orders = &deps.platform.config.orders;
    store::HoardingLimits {
        max_unpaid_orders: orders.max_unpaid_orders_per_buyer,
        rebuy_cooldown_secs: orders.rebuy_cooldown.as_secs(),
    }
}

fn too_many_unpaid(limits: store::HoardingLimits) -> WriteError {
    WriteError::Refused(Refusal::TooManyUnpaidOrders {
        max: limits.max_unpaid_orders,
    })
}

fn rebuy_cooldown(product_id: i64, wait_secs: i64) -> WriteError {
    WriteError::Refused(Refusal::RebuyCooldown {
        product_id,
        wait_secs,
    })
}

/// A line the product row refused, as the checkout answers it: stale facts when the row says
/// other than what the checkout believed, which had let the line through (its units, its
/// release time, its price; its limit when it is not the believed one).
fn refused(item: &PricedItem, believed_limit: i64, refusal: RowRefusal) -> WriteError {
    let stale = |refusal| WriteError::Stale {
        product_id: item.product_id,
        refusal,
    };
    match refusal {
        RowRefusal::Short { left } => stale(Refusal::Stock(StockRefusal::Insufficient {
            remaining: left.into(),
        })),
        RowRefusal::NotOnSale => stale(Refusal::Stock(StockRefusal::NotOnSale)),
        RowRefusal::PriceChanged { price } => stale(Refusal::PriceChanged {
            product_id: item.product_id,
            price,
        }),
        RowRefusal::OverLimit { max_per_buyer } => {
            let max_per_buyer = i64::from(max_per_buyer);
            let refusal = Refusal::Stock(StockRefusal::OverLimit { max_per_buyer });
            if max_per_buyer == believed_limit {
                WriteError::Refused(refusal)
            } else {
                stale(refusal)
            }
        }
    }
}

/// What a checkout's payment row is made of besides its amount: the PortOne paymentId, the
/// request's fingerprint stored with the idempotency key, and when the unpaid orders expire.
struct PaymentDraft {
    id: String,
    request_hash: String,
    expires_at: DateTime<Utc>,
}

impl PaymentDraft {
    fn new(deps: &Deps, attempt: &Attempt<'_>) -> Self {
        Self {
            id: format!("pay_{}", uuid::Uuid::now_v7().simple()),
            request_hash: attempt.fingerprint(),
            expires_at: attempt.now
                + chrono::Duration::from_std(deps.platform.config.orders.payment_timeout)
                    .unwrap_or_else(|_| chrono::Duration::minutes(10)),
        }
    }

    /// The row, which claims the buyer's idempotency key.
    fn row<'a>(&'a self, attempt: &'a Attempt<'_>, amount: i64) -> store::NewPayment<'a> {
        store::NewPayment {
            id: &self.id,
            buyer_id: attempt.buyer_id,
            amount,
            idempotency_key: attempt.key,
            request_hash: &self.request_hash,
            expires_at: self.expires_at,
        }
    }
}

/// One transaction of several lines, in the lock order above, ended by the last line's units
/// (`sell_and_commit`), which also stores the answer. Returns the answer's bytes.
async fn write_checkout(
    tx: &mut Transaction<'static, MySql>,
    deps: &Deps,
    attempt: &Attempt<'_>,
    priced: &[PricedItem],
    limits: &[i64],
) -> Result<Vec<u8>, WriteError> {
    let draft = PaymentDraft::new(deps, attempt);
    let (payment_id, expires_at) = (draft.id.as_str(), draft.expires_at);
    let partner_orders = split_by_partner(priced);
    let amount: i64 = partner_orders.iter().map(|order| order.amount).sum();
    let hoarding = hoarding_limits(deps);
    let payment = draft.row(attempt, amount);
    match store::open_payment(tx, &payment, attempt.now, partner_orders.len(), hoarding).await {
        Ok(true) => {}
        Ok(false) => return Err(too_many_unpaid(hoarding)),
        Err(err) if is_unique_violation(&err) => return Err(WriteError::KeyTaken),
        Err(err) => return Err(WriteError::from(err)),
    }
    // What the buyer holds of each product with this checkout; each product row judges it
    // against its own limit below.
    let mut lines = Vec::with_capacity(priced.len());
    for (item, limit) in priced.iter().zip(limits) {
        let holding =
            match store::add_purchase(tx, attempt.buyer_id, item, attempt.now, hoarding).await? {
                store::Added::Holding(holding) => holding,
                store::Added::RebuyCooldown { wait_secs } => {
                    return Err(rebuy_cooldown(item.product_id, wait_secs));
                }
            };
        let line = store::LineToTake {
            item,
            now: attempt.now,
            holding,
        };
        lines.push((line, *limit));
    }
    let mut orders = Vec::with_capacity(partner_orders.len());
    for order in &partner_orders {
        let id = store::insert_order(
            tx,
            payment_id,
            attempt.buyer_id,
            order.partner_id,
            order.amount,
            expires_at,
            &order.items,
        )
        .await?;
        let lines = order.items.iter().map(CheckoutLine::from).collect();
        orders.push(pending_order(id, order.partner_id, order.amount, lines));
    }
    let body = answer(payment_id, amount, expires_at, orders);
    // `priced` is in ascending product id, the order every path locks products in. The last
    // line ends the transaction in the same round trip.
    let Some(((last, last_limit), earlier)) = lines.split_last() else {
        return Err(WriteError::Failed(ApiError::internal(
            "a checkout without items",
        )));
    };
    for (line, limit) in earlier {
        if let store::Taken::Refused(refusal) = store::take_units(tx, *line).await? {
            return Err(refused(line.item, *limit, refusal));
        }
    }
    match store::sell_and_commit(tx, payment_id, &body, *last).await? {
        store::Taken::Sold { .. } => Ok(body),
        store::Taken::Refused(refusal) => Err(refused(last.item, *last_limit, refusal)),
    }
}
