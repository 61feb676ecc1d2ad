//! The orders function's own MySQL queries: the checkout's reads and writes, the idempotency
//! keys, and the histories. The order row and the status changes several functions make are
//! shared: [`shared::adapters::orders`].

use chrono::{DateTime, Utc};
use shared::{
    adapters::{
        orders::{ORDER_COLUMNS, Order, with_items},
        stock::StockFacts,
    },
    domain::{
        order::{OrderStatus, PricedItem},
        stock::Offer,
    },
};
use sqlx::{MySql, MySqlConnection, MySqlPool, Transaction, mysql::MySqlArguments, query::QueryAs};

/// What the checkout and the stock checks need of a product, read from MySQL.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductFacts {
    pub partner_id: i64,
    pub price: i64,
    pub release_at: DateTime<Utc>,
    pub stock_remaining: i32,
    pub max_per_buyer: i32,
}

impl ProductFacts {
    /// What the stock rule judges.
    pub fn offer(&self) -> Offer {
        Offer {
            remaining: self.stock_remaining.into(),
            release_at: self.release_at,
            max_per_buyer: self.max_per_buyer.into(),
        }
    }

    /// What the product's Redis counter is loaded with.
    pub fn stock_facts(&self) -> StockFacts {
        StockFacts {
            remaining: self.stock_remaining.into(),
            release_at: self.release_at,
            max_per_buyer: self.max_per_buyer.into(),
            price: self.price,
            partner_id: self.partner_id,
        }
    }
}

const FACT_COLUMNS: &str = "partner_id, price, release_at, stock_remaining, max_per_buyer";

pub async fn product_facts(db: &MySqlPool, id: i64) -> Result<Option<ProductFacts>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {FACT_COLUMNS} FROM products WHERE id = ?"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Why the product row, locked, refused a line (the `take_units_checked` procedure: the row
/// decides the release time, the purchase limit, the units and the price, whatever the checkout
/// believed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowRefusal {
    /// Before the row's release time.
    NotOnSale,
    /// The buyer would hold more than the row's `max_per_buyer`.
    OverLimit { max_per_buyer: i32 },
    /// Fewer units left than asked for (`left`; 0 when the product is gone).
    Short { left: i32 },
    /// The row's price is not the one the checkout charged.
    PriceChanged { price: i64 },
}

/// What `take_units_checked` did with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The units were taken; `left` remain.
    Sold {
        left: i32,
    },
    Refused(RowRefusal),
}

/// The procedures' answer about a line: outcome, units left, the row's limit and price.
type TakenRow = (Option<String>, Option<i32>, Option<i32>, Option<i64>);

fn taken((outcome, left, max_per_buyer, price): TakenRow) -> Result<Taken, sqlx::Error> {
    let left = left.unwrap_or(0);
    Ok(match (outcome.as_deref(), max_per_buyer, price) {
        (Some("SOLD"), ..) => Taken::Sold { left },
        (Some("SHORT"), ..) => Taken::Refused(RowRefusal::Short { left }),
        (Some("NOT_ON_SALE"), ..) => Taken::Refused(RowRefusal::NotOnSale),
        (Some("PURCHASE_LIMIT"), Some(max_per_buyer), _) => {
            Taken::Refused(RowRefusal::OverLimit { max_per_buyer })
        }
        (Some("PRICE_CHANGED"), _, Some(price)) => {
            Taken::Refused(RowRefusal::PriceChanged { price })
        }
        (other, ..) => {
            return Err(sqlx::Error::Protocol(format!(
                "a sale's procedure answered {other:?}"
            )));
        }
    })
}

/// A line of a checkout as MySQL checks it: the units asked for at the price charged, at the
/// checkout's time, with what the buyer holds of the product once this line counts.
#[derive(Debug, Clone, Copy)]
pub struct LineToTake<'a> {
    pub item: &'a PricedItem,
    pub now: DateTime<Utc>,
    pub holding: i32,
}

/// Takes a line's units if the locked product row agrees (the `take_units` procedure); the row
/// stays locked to the end of the transaction, which this leaves open either way.
pub async fn take_units(
    tx: &mut Transaction<'static, MySql>,
    line: LineToTake<'_>,
) -> Result<Taken, sqlx::Error> {
    call_with_line(tx, sqlx::query_as("CALL take_units(?, ?, ?, ?, ?)"), line).await
}

/// The end of a sale in one round trip (the `sell_and_commit` procedure): stores the checkout's
/// answer on its payment, takes the line's units as [`take_units`] does, and ends the
/// transaction: COMMIT when they were taken, ROLLBACK otherwise (why: `checkout::write`, "The
/// product row is locked last").
pub async fn sell_and_commit(
    tx: &mut Transaction<'static, MySql>,
    payment_id: &str,
    answer: &[u8],
    line: LineToTake<'_>,
) -> Result<Taken, sqlx::Error> {
    let answer = String::from_utf8_lossy(answer);
    let call = sqlx::query_as("CALL sell_and_commit(?, ?, ?, ?, ?, ?, ?)")
        .bind(payment_id)
        .bind(answer.as_ref());
    call_with_line(tx, call, line).await
}

/// Calls a procedure that takes a line's units (`take_units`, `sell_and_commit`): `call` with
/// its own arguments bound, the line's five last, and its answer about the line read.
async fn call_with_line<'q>(
    tx: &mut Transaction<'static, MySql>,
    call: QueryAs<'q, MySql, TakenRow, MySqlArguments>,
    line: LineToTake<'_>,
) -> Result<Taken, sqlx::Error> {
    let row = call
        .bind(line.item.product_id)
        .bind(line.item.quantity)
        .bind(line.item.unit_price)
        .bind(line.now)
        .bind(line.holding)
        .fetch_one(&mut **tx)
        .await?;
    taken(row)
}

/// The limits on hoarding a checkout is written under (`MAX_UNPAID_ORDERS_PER_BUYER`,
/// `REBUY_COOLDOWN_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct HoardingLimits {
    pub max_unpaid_orders: u32,
    pub rebuy_cooldown_secs: u64,
}

impl HoardingLimits {
    fn max_unpaid(self) -> i64 {
        i64::from(self.max_unpaid_orders)
    }

    fn cooldown_secs(self) -> i64 {
        i64::try_from(self.rebuy_cooldown_secs).unwrap_or(i64::MAX)
    }
}

/// A one-line checkout to write with [`sell_one_line`].
pub struct OneLineSale<'a> {
    pub payment: &'a NewPayment<'a>,
    pub item: &'a PricedItem,
    /// The checkout's time, which the row's release time and the buyer's orders are compared
    /// with.
    pub now: DateTime<Utc>,
    pub limits: HoardingLimits,
}

/// What [`sell_one_line`] did; its transaction has ended either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneLineSold {
    /// Committed: the order's id, and the units left after it.
    Sold { order_id: i64, left: i32 },
    /// Rolled back: the buyer holds as many unpaid orders as allowed.
    TooManyUnpaid,
    /// Rolled back: the buyer gave up an order of the product less than the cooldown ago, and
    /// may buy it again in `wait_secs`.
    RebuyCooldown { wait_secs: i64 },
    /// Rolled back: the product row refused the line.
    Refused(RowRefusal),
}

/// `sell_one_line`'s answer: outcome, order id, units left, the row's limit and price, and the
/// seconds to wait on a cooldown.
type OneLineRow = (
    Option<String>,
    Option<i64>,
    Option<i32>,
    Option<i32>,
    Option<i64>,
    Option<i64>,
);

/// The whole transaction of a one-line checkout in one round trip (the `sell_one_line`
/// procedure): the buyer's row locked and unpaid orders counted, payment with the idempotency
/// key, purchase count and cooldown, order, line, the units taken if the locked product row
/// agrees, COMMIT or ROLLBACK. A taken key is a unique violation, as from [`open_payment`].
pub async fn sell_one_line(
    db: &MySqlPool,
    sale: &OneLineSale<'_>,
) -> Result<OneLineSold, sqlx::Error> {
    let payment = sale.payment;
    let (outcome, order_id, left, max_per_buyer, price, wait_secs): OneLineRow =
        sqlx::query_as("CALL sell_one_line(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(payment.id)
            .bind(payment.buyer_id)
            .bind(payment.idempotency_key.as_bytes())
            .bind(payment.request_hash)
            .bind(payment.expires_at)
            .bind(sale.item.partner_id)
            .bind(sale.item.product_id)
            .bind(sale.item.quantity)
            .bind(sale.item.unit_price)
            .bind(sale.now)
            .bind(sale.limits.max_unpaid())
            .bind(sale.limits.cooldown_secs())
            .fetch_one(db)
            .await?;
    match (outcome.as_deref(), wait_secs) {
        (Some("TOO_MANY_UNPAID"), _) => return Ok(OneLineSold::TooManyUnpaid),
        (Some("REBUY_COOLDOWN"), Some(wait_secs)) => {
            return Ok(OneLineSold::RebuyCooldown { wait_secs });
        }
        _ => {}
    }
    match (taken((outcome, left, max_per_buyer, price))?, order_id) {
        (Taken::Sold { left }, Some(order_id)) => Ok(OneLineSold::Sold { order_id, left }),
        (Taken::Refused(refusal), _) => Ok(OneLineSold::Refused(refusal)),
        (Taken::Sold { .. }, None) => Err(sqlx::Error::Protocol(
            "sell_one_line sold without an order".to_owned(),
        )),
    }
}

/// One line of a written checkout with its order, as [`written_lines`] reads them.
#[derive(Debug, sqlx::FromRow)]
pub struct WrittenLine {
    pub order_id: i64,
    pub partner_id: i64,
    pub order_amount: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: i64,
}

/// The lines of a payment's orders, with their orders, in the order they were written: with the
/// payment's row ([`prior_checkout`]), what a replay needs to rebuild the answer the checkout got.
pub async fn written_lines(
    db: &MySqlPool,
    payment_id: &str,
) -> Result<Vec<WrittenLine>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id AS order_id, o.partner_id, o.amount AS order_amount, i.product_id, \
         i.quantity, i.unit_price \
         FROM orders o JOIN order_items i ON i.order_id = o.id \
         WHERE o.payment_id = ? ORDER BY o.id, i.id",
    )
    .bind(payment_id)
    .fetch_all(db)
    .await
}

/// What [`add_purchase`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The units the buyer holds of the product with this line's.
    Holding(i32),
    /// The buyer gave up an order of the product less than the cooldown ago, and may buy it
    /// again in `wait_secs`; the transaction must roll back.
    RebuyCooldown { wait_secs: i64 },
}

/// Adds a line's units to what the buyer holds of the product (the `add_purchase` procedure).
/// The row stays locked until the transaction ends, so concurrent checkouts of one buyer queue
/// here and each sees the others' units.
pub async fn add_purchase(
    tx: &mut Transaction<'static, MySql>,
    buyer_id: i64,
    line: &PricedItem,
    now: DateTime<Utc>,
    limits: HoardingLimits,
) -> Result<Added, sqlx::Error> {
    let (holding, wait_secs): (Option<i32>, Option<i64>) =
        sqlx::query_as("CALL add_purchase(?, ?, ?, ?, ?)")
            .bind(buyer_id)
            .bind(line.product_id)
            .bind(line.quantity)
            .bind(now)
            .bind(limits.cooldown_secs())
            .fetch_one(&mut **tx)
            .await?;
    match (holding, wait_secs) {
        (_, Some(wait_secs)) => Ok(Added::RebuyCooldown { wait_secs }),
        (Some(holding), None) => Ok(Added::Holding(holding)),
        (None, None) => Err(sqlx::Error::Protocol(
            "add_purchase answered no holding".to_owned(),
        )),
    }
}

pub struct NewPayment<'a> {
    pub id: &'a str,
    pub buyer_id: i64,
    pub amount: i64,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Opens a checkout of several lines (the `open_payment` procedure): locks the buyer's row,
/// writes the payment, which claims the idempotency key (a taken key is a unique violation),
/// and counts the buyer's unpaid orders. False when `new_orders` more would be too many; the
/// transaction must then roll back.
pub async fn open_payment(
    tx: &mut Transaction<'static, MySql>,
    payment: &NewPayment<'_>,
    now: DateTime<Utc>,
    new_orders: usize,
    limits: HoardingLimits,
) -> Result<bool, sqlx::Error> {
    let (outcome,): (String,) = sqlx::query_as("CALL open_payment(?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(payment.id)
        .bind(payment.buyer_id)
        .bind(payment.idempotency_key.as_bytes())
        .bind(payment.request_hash)
        .bind(payment.amount)
        .bind(payment.expires_at)
        .bind(now)
        .bind(i64::try_from(new_orders).unwrap_or(i64::MAX))
        .bind(limits.max_unpaid())
        .fetch_one(&mut **tx)
        .await?;
    match outcome.as_str() {
        "OPEN" => Ok(true),
        "TOO_MANY_UNPAID" => Ok(false),
        other => Err(sqlx::Error::Protocol(format!(
            "open_payment answered {other:?}"
        ))),
    }
}

/// Inserts one partner's order and its lines; returns the order id.
pub async fn insert_order(
    tx: &mut Transaction<'static, MySql>,
    payment_id: &str,
    buyer_id: i64,
    partner_id: i64,
    amount: i64,
    expires_at: DateTime<Utc>,
    items: &[PricedItem],
) -> Result<i64, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(payment_id)
    .bind(buyer_id)
    .bind(partner_id)
    .bind(OrderStatus::PendingPayment.as_str())
    .bind(amount)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    let order_id = i64::try_from(inserted.last_insert_id())
        .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
    for item in items {
        sqlx::query(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, ?)",
        )
        .bind(order_id)
        .bind(item.product_id)
        .bind(item.quantity)
        .bind(item.unit_price)
        .execute(&mut **tx)
        .await?;
    }
    Ok(order_id)
}

/// The payment of a finished checkout under a buyer's idempotency key.
#[derive(Debug, sqlx::FromRow)]
pub struct PriorCheckout {
    pub id: String,
    pub request_hash: String,
    /// The answer, when it was stored; one-line checkouts rebuild theirs ([`written_lines`]).
    pub response_body: Option<String>,
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
}

pub async fn prior_checkout(
    db: &MySqlPool,
    buyer_id: i64,
    idempotency_key: &str,
) -> Result<Option<PriorCheckout>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, request_hash, response_body, amount, expires_at FROM payments \
         WHERE buyer_id = ? AND idempotency_key = ?",
    )
    .bind(buyer_id)
    .bind(idempotency_key.as_bytes())
    .fetch_optional(db)
    .await
}

/// The units left of each product (as the transaction sees them, on a transaction's connection).
pub async fn stock_left(
    connection: &mut MySqlConnection,
    product_ids: &[i64],
) -> Result<Vec<(i64, i32)>, sqlx::Error> {
    let mut left = Vec::with_capacity(product_ids.len());
    for id in product_ids {
        let (remaining,): (i32,) =
            sqlx::query_as("SELECT stock_remaining FROM products WHERE id = ?")
                .bind(id)
                .fetch_one(&mut *connection)
                .await?;
        left.push((*id, remaining));
    }
    Ok(left)
}

/// Which orders a query may see: a buyer's own, or a partner's own.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    Buyer(i64),
    Partner(i64),
}

impl Owner {
    fn column(self) -> (&'static str, i64) {
        match self {
            Owner::Buyer(id) => ("buyer_id", id),
            Owner::Partner(id) => ("partner_id", id),
        }
    }
}

pub async fn find_order(
    db: &MySqlPool,
    id: i64,
    owner: Owner,
) -> Result<Option<Order>, sqlx::Error> {
    let (column, owner_id) = owner.column();
    let order: Option<Order> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = ? AND {column} = ?"
    ))
    .bind(id)
    .bind(owner_id)
    .fetch_optional(db)
    .await?;
    match order {
        Some(order) => Ok(with_items(db, vec![order]).await?.pop()),
        None => Ok(None),
    }
}

/// Newest first, `size` at a time, keyset on id.
pub async fn list_orders(
    db: &MySqlPool,
    owner: Owner,
    status: Option<OrderStatus>,
    before_id: Option<i64>,
    size: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let (column, owner_id) = owner.column();
    let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {column} = ?");
    if status.is_some() {
        sql.push_str(" AND status = ?");
    }
    if before_id.is_some() {
        sql.push_str(" AND id < ?");
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    let mut query = sqlx::query_as::<_, Order>(&sql).bind(owner_id);
    if let Some(status) = status {
        query = query.bind(status.as_str());
    }
    if let Some(before_id) = before_id {
        query = query.bind(before_id);
    }
    let orders = query.bind(size).fetch_all(db).await?;
    with_items(db, orders).await
}
