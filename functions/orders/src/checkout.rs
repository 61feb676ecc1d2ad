//! `POST /orders`: the drop.
//!
//! Thousands of buyers hit one product in the same second. The answer to "is there a unit?" comes
//! from one Redis script per product ([`StockReservations`]); only buyers who got units go on to
//! MySQL, where a guarded update (never below zero) and the purchase-limit row make it exact, and
//! one transaction writes the payment, one order per partner, their lines and the idempotency key
//! (one round trip for a one-line checkout, a drop's). The hot product row is locked last and
//! released inside MariaDB, so sales queue on it for one statement only (see [`write`]).
//! Anything failing after a reservation gives the units back. With Redis down, the same
//! transaction runs after a plain read of the products: slower, still exact.
//!
//! The comparison strategy (`STOCK_STRATEGY=lock`) does what the system we replace did: a
//! per-product Redis lock around that MySQL transaction.

use chrono::{DateTime, SubsecRound, Utc};
use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    ApiError,
    adapters::{
        redis::RateDecision,
        stock::{HeldLock, Reservation, StockFacts},
    },
    config::StockStrategy,
    domain::{
        auth::Role,
        order::{
            CheckoutItem, PricedItem, is_valid_idempotency_key, request_fingerprint,
            split_by_partner, validate_items,
        },
    },
    error::{ProblemCode, is_unique_violation},
    http::{header_str, json_body, json_bytes, json_raw},
};
use sqlx::{MySql, Transaction};
use utoipa::ToSchema;

use crate::{Deps, gate, store};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    items: Vec<CheckoutItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckoutResponse {
    /// The PortOne paymentId to pay with; one payment covers every order below.
    pub payment_id: String,
    pub amount: i64,
    /// Unpaid orders expire then, and their units return to stock.
    pub expires_at: DateTime<Utc>,
    pub orders: Vec<CheckoutOrder>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckoutOrder {
    pub id: i64,
    pub partner_id: i64,
    pub status: String,
    pub amount: i64,
    pub items: Vec<CheckoutLine>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckoutLine {
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: i64,
}

impl From<&PricedItem> for CheckoutLine {
    fn from(item: &PricedItem) -> Self {
        Self {
            product_id: item.product_id,
            quantity: item.quantity,
            unit_price: item.unit_price,
        }
    }
}

/// Why the order transaction did not commit.
enum WriteError {
    Refused(ApiError),
    /// Another request of this buyer committed the same idempotency key first.
    KeyTaken,
}

impl From<sqlx::Error> for WriteError {
    fn from(err: sqlx::Error) -> Self {
        Self::Refused(ApiError::Database(err))
    }
}

impl From<ApiError> for WriteError {
    fn from(err: ApiError) -> Self {
        Self::Refused(err)
    }
}

/// A validated checkout request.
struct Attempt<'a> {
    buyer_id: i64,
    key: &'a str,
    items: Vec<CheckoutItem>,
    now: DateTime<Utc>,
}

impl Attempt<'_> {
    /// What the idempotency key is stored with and compared against. Computed when needed: most
    /// attempts of a drop are refused before either happens.
    fn fingerprint(&self) -> String {
        request_fingerprint(&self.items)
    }
}

#[utoipa::path(post, path = "/orders", tag = "orders", request_body = CheckoutRequest,
    params(("Idempotency-Key" = String, Header, description = "8 to 128 printable ASCII characters, unique per checkout")),
    security(("bearer" = [])),
    responses((status = 201, body = CheckoutResponse),
        (status = 400, description = "IDEMPOTENCY_KEY_REQUIRED", body = shared::error::Problem),
        (status = 404, description = "PRODUCT_NOT_FOUND", body = shared::error::Problem),
        (status = 409, description = "SOLD_OUT, INSUFFICIENT_STOCK, PURCHASE_LIMIT or NOT_ON_SALE", body = shared::error::Problem),
        (status = 422, description = "VALIDATION, or IDEMPOTENCY_KEY_REUSED with another body", body = shared::error::Problem),
        (status = 429, description = "RATE_LIMITED", body = shared::error::Problem)))]
pub(crate) async fn checkout(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let authenticator = &deps.platform.authenticator;
    let token = authenticator.verify(req)?;
    let key = header_str(req.headers(), IDEMPOTENCY_KEY_HEADER);
    let valid_key = key.filter(|key| is_valid_idempotency_key(key));
    // Read now, judged below in the order refusals have always come in.
    let items = json_body::<CheckoutRequest>(req)
        .and_then(|body| validate_items(&body.items).map_err(ApiError::Validation));
    // Microseconds, as MySQL keeps them: a replay rebuilt from the rows says the same expiry.
    let now = Utc::now().trunc_subsecs(6);
    let gate = gate::ask(deps, &token, valid_key, items.as_deref().ok(), now).await;

    let principal = authenticator.admit(token, gate.blacklist).await?;
    principal.require(&[Role::Buyer])?;
    if let RateDecision::Limited { retry_after_secs } = gate.rate {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let key = key.ok_or_else(|| {
        ApiError::bad_request(
            ProblemCode::IdempotencyKeyRequired,
            "send an Idempotency-Key header",
        )
    })?;
    if valid_key.is_none() {
        return Err(ApiError::bad_request(
            ProblemCode::IdempotencyKeyRequired,
            "Idempotency-Key must be 8 to 128 printable ASCII characters",
        ));
    }
    let items = items?;
    let attempt = Attempt {
        buyer_id: principal.user_id,
        key,
        items,
        now,
    };

    if let Some(replay) = replay_if_used(deps, &attempt, gate.markers).await? {
        return Ok(replay);
    }
    if let Some(refusal) = gate.refusal {
        return Err(refused(refusal));
    }
    let written = match deps.platform.config.orders.stock_strategy {
        StockStrategy::Reservation => with_reservations(deps, &attempt).await,
        StockStrategy::Lock => with_product_locks(deps, &attempt).await,
    };
    match written {
        Ok((response, sold_out)) => {
            deps.markers.remember(attempt.buyer_id, attempt.key).await;
            if sold_out {
                crate::evict_product_page(deps).await;
            }
            Ok(json_raw(StatusCode::CREATED, response))
        }
        Err(WriteError::KeyTaken) => replay_if_used_in_mysql(deps, &attempt)
            .await?
            .ok_or_else(|| ApiError::internal("idempotency key taken but no checkout found")),
        Err(WriteError::Refused(err)) => Err(err),
    }
}

/// The same key again: the first answer for the same items, 422 for different ones. `markers`
/// are the replies of the idempotency markers, asked along with the rate limit.
async fn replay_if_used(
    deps: &Deps,
    attempt: &Attempt<'_>,
    markers: Option<(bool, bool)>,
) -> Result<Option<Response<Body>>, ApiError> {
    if deps.markers.certainly_unused(markers).await {
        return Ok(None);
    }
    replay_if_used_in_mysql(deps, attempt).await
}

async fn replay_if_used_in_mysql(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<Option<Response<Body>>, ApiError> {
    let Some(prior) =
        store::prior_checkout(&deps.platform.db, attempt.buyer_id, attempt.key).await?
    else {
        return Ok(None);
    };
    if prior.request_hash != attempt.fingerprint() {
        return Err(ApiError::Validation(vec![shared::domain::FieldError::new(
            "Idempotency-Key",
            "was already used for a different checkout (IDEMPOTENCY_KEY_REUSED)",
        )]));
    }
    let body = match prior.response_body {
        Some(body) => body.into_bytes(),
        None => rebuilt_answer(deps, &prior).await?,
    };
    Ok(Some(json_raw(StatusCode::CREATED, body)))
}

/// The first answer of a checkout that did not store it (one line, [`write_one_line`]), rebuilt
/// from the rows it wrote: the same fields from the same values in the same order, so the same
/// bytes. Its orders were PENDING_PAYMENT then, whatever they are now.
async fn rebuilt_answer(deps: &Deps, payment: &store::PriorCheckout) -> Result<Vec<u8>, ApiError> {
    let mut orders: Vec<CheckoutOrder> = Vec::new();
    for line in store::written_lines(&deps.platform.db, &payment.id).await? {
        let item = CheckoutLine {
            product_id: line.product_id,
            quantity: line.quantity,
            unit_price: line.unit_price,
        };
        match orders.last_mut() {
            Some(order) if order.id == line.order_id => order.items.push(item),
            _ => orders.push(pending_order(
                line.order_id,
                line.partner_id,
                line.order_amount,
                vec![item],
            )),
        }
    }
    if orders.is_empty() {
        return Err(ApiError::internal(
            "a checkout's payment without its orders",
        ));
    }
    Ok(answer(
        &payment.id,
        payment.amount,
        payment.expires_at,
        orders,
    ))
}

fn pending_order(id: i64, partner_id: i64, amount: i64, items: Vec<CheckoutLine>) -> CheckoutOrder {
    CheckoutOrder {
        id,
        partner_id,
        status: "PENDING_PAYMENT".to_owned(),
        amount,
        items,
    }
}

/// The bytes of a checkout's answer (and of its replays).
fn answer(
    payment_id: &str,
    amount: i64,
    expires_at: DateTime<Utc>,
    orders: Vec<CheckoutOrder>,
) -> Vec<u8> {
    json_bytes(&CheckoutResponse {
        payment_id: payment_id.to_owned(),
        amount,
        expires_at,
        orders,
    })
}

/// Our strategy: reserve in Redis, then write in MySQL; Redis trouble falls back to MySQL alone.
async fn with_reservations(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<(Vec<u8>, bool), WriteError> {
    let reserved = match reserve_all(deps, attempt).await {
        Ok(reserved) => reserved,
        Err(Reserve::Refused(err)) => return Err(WriteError::Refused(err)),
        Err(Reserve::RedisDown(err)) => {
            tracing::warn!(%err, "Redis unavailable; checkout through MySQL alone");
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
    if committed.is_err() {
        give_back(deps, &reserved).await;
        if let Err(WriteError::Refused(ApiError::Conflict {
            code: ProblemCode::InsufficientStock | ProblemCode::SoldOut,
            ..
        })) = &committed
        {
            // Redis said yes where MySQL said no: its counters drifted; reload them next time.
            for (item, _) in &reserved {
                let _ = deps.reservations.forget(item.product_id).await;
            }
        }
    }
    committed
}

enum Reserve {
    Refused(ApiError),
    RedisDown(redis::RedisError),
}

/// Takes every item's units in Redis, in product id order, or none of them.
async fn reserve_all(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<Vec<(CheckoutItem, StockFacts)>, Reserve> {
    let mut taken: Vec<(CheckoutItem, StockFacts)> = Vec::with_capacity(attempt.items.len());
    for item in &attempt.items {
        match reserve_one(deps, *item, attempt.now).await {
            Ok(facts) => taken.push((*item, facts)),
            Err(err) => {
                give_back(deps, &taken).await;
                return Err(err);
            }
        }
    }
    Ok(taken)
}

async fn reserve_one(
    deps: &Deps,
    item: CheckoutItem,
    now: DateTime<Utc>,
) -> Result<StockFacts, Reserve> {
    let reservations = &deps.reservations;
    let mut outcome = reservations
        .reserve(item.product_id, item.quantity, now)
        .await
        .map_err(Reserve::RedisDown)?;
    if outcome == Reservation::NotLoaded {
        let facts = store::product_facts(&deps.platform.db, item.product_id)
            .await
            .map_err(|err| Reserve::Refused(err.into()))?
            .ok_or(Reserve::Refused(product_not_found()))?;
        // Stored only if still absent, so a late loader never overwrites a counter in use.
        reservations
            .load(item.product_id, &stock_facts(&facts))
            .await
            .map_err(Reserve::RedisDown)?;
        outcome = reservations
            .reserve(item.product_id, item.quantity, now)
            .await
            .map_err(Reserve::RedisDown)?;
    }
    match outcome {
        Reservation::Reserved(facts) => Ok(facts),
        refusal => Err(Reserve::Refused(refused(refusal))),
    }
}

/// The answer to a reservation that took nothing.
fn refused(outcome: Reservation) -> ApiError {
    match outcome {
        Reservation::Insufficient { remaining } => out_of_stock(remaining),
        Reservation::NotOnSale => not_on_sale(),
        Reservation::OverLimit { max_per_buyer } => over_limit(max_per_buyer),
        Reservation::NotLoaded | Reservation::Reserved(_) => {
            ApiError::internal("stock counter would not load")
        }
    }
}

async fn give_back(deps: &Deps, taken: &[(CheckoutItem, StockFacts)]) {
    for (item, _) in taken {
        if let Err(err) = deps
            .reservations
            .release(item.product_id, item.quantity)
            .await
        {
            // The counter is now lower than MySQL's; forgetting it makes the next checkout reload it.
            tracing::warn!(%err, product_id = item.product_id, "could not give units back to Redis");
            let _ = deps.reservations.forget(item.product_id).await;
        }
    }
}

/// MySQL alone: check the products as MySQL has them, then the same transaction as with Redis,
/// whose guarded updates keep it exact.
async fn with_mysql_only(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<(Vec<u8>, bool), WriteError> {
    let mut priced = Vec::with_capacity(attempt.items.len());
    let mut limits = Vec::with_capacity(attempt.items.len());
    for item in &attempt.items {
        // Read without a lock: the stock check here only spares a doomed transaction, and the
        // guarded update inside it is the one that counts.
        let product = store::product_facts(&deps.platform.db, item.product_id)
            .await?
            .ok_or(WriteError::Refused(product_not_found()))?;
        if attempt.now < product.release_at {
            return Err(WriteError::Refused(not_on_sale()));
        }
        if item.quantity > product.max_per_buyer {
            return Err(WriteError::Refused(over_limit(
                product.max_per_buyer.into(),
            )));
        }
        if product.stock_remaining < item.quantity {
            return Err(WriteError::Refused(out_of_stock(
                product.stock_remaining.into(),
            )));
        }
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

/// Commits on success, rolls back (before we answer) on a refusal.
async fn end<T>(
    tx: Transaction<'static, MySql>,
    result: Result<T, WriteError>,
) -> Result<T, WriteError> {
    match result {
        Ok(value) => tx.commit().await.map(|()| value).map_err(WriteError::from),
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(%rollback, "rollback failed; the connection will be discarded");
            }
            Err(err)
        }
    }
}

/// The replaced system's way: per-product locks (ascending id), then the MySQL-only checkout.
async fn with_product_locks(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<(Vec<u8>, bool), WriteError> {
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
                outcome = Some(Err(WriteError::Refused(ApiError::conflict(
                    ProblemCode::LockTimeout,
                    "too many buyers at once; please retry",
                ))));
                break;
            }
            Err(err) => {
                outcome = Some(Err(WriteError::Refused(err.into())));
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

/// Writes the checkout in MySQL and returns its answer: a one-line checkout (a drop's) in one
/// round trip ([`write_one_line`]), any other in a transaction of several statements
/// ([`write_checkout`]).
async fn write(
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
    end(tx, result).await
}

/// The same rows, locks and lock order as [`write_checkout`] for one line, written by the
/// `sell_one_line` procedure in one round trip. The answer is not stored: a replay rebuilds it
/// from the rows ([`rebuilt_answer`]).
async fn write_one_line(
    deps: &Deps,
    attempt: &Attempt<'_>,
    item: &PricedItem,
    limit: i64,
) -> Result<Vec<u8>, WriteError> {
    let draft = PaymentDraft::new(deps, attempt);
    let amount = i64::from(item.quantity) * item.unit_price;
    let sale = store::OneLineSale {
        payment: &draft.row(attempt, amount),
        item,
        max_per_buyer: limit,
    };
    match store::sell_one_line(&deps.platform.db, &sale).await {
        Ok(store::OneLineSold::Sold { order_id, .. }) => {
            let order = pending_order(order_id, item.partner_id, amount, vec![item.into()]);
            Ok(answer(&draft.id, amount, draft.expires_at, vec![order]))
        }
        Ok(store::OneLineSold::OverLimit) => Err(WriteError::Refused(over_limit(limit))),
        Ok(store::OneLineSold::Short { left }) => {
            Err(WriteError::Refused(out_of_stock(left.into())))
        }
        Err(err) if is_unique_violation(&err) => Err(WriteError::KeyTaken),
        Err(err) => Err(WriteError::from(err)),
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

/// One transaction: the payment with the idempotency key, the purchase limits, one order per
/// partner with its lines, and last the stored answer with the guarded stock updates, the final
/// one of which ends the transaction. Returns the answer's bytes.
///
/// Every sale of a product queues on its row lock, held from the stock update to the end of the
/// transaction; taking it last, in `sell_and_commit`, makes that one statement inside MariaDB
/// instead of round trips to us. (A one-line checkout, a drop's, goes the same way in one round
/// trip: [`write_one_line`].) Every path locks in the
/// same order (the buyer's key, the buyer's purchase rows, then products by ascending id), so two
/// checkouts can wait on each other but never deadlock. Claiming the key first also makes a
/// concurrent duplicate of this request wait for our commit and then replay our answer.
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
    match store::insert_payment(tx, &draft.row(attempt, amount)).await {
        Ok(()) => {}
        Err(err) if is_unique_violation(&err) => return Err(WriteError::KeyTaken),
        Err(err) => return Err(WriteError::from(err)),
    }
    for (item, limit) in priced.iter().zip(limits) {
        let holding =
            store::add_to_purchases(tx, attempt.buyer_id, item.product_id, item.quantity).await?;
        if i64::from(holding) > *limit {
            return Err(WriteError::Refused(over_limit(*limit)));
        }
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
    // update ends the transaction in the same round trip.
    let Some((last, earlier)) = priced.split_last() else {
        return Err(WriteError::Refused(ApiError::internal(
            "a checkout without items",
        )));
    };
    for item in earlier {
        if !store::take_stock(tx, item.product_id, item.quantity).await? {
            let left = store::stock_left(tx, &[item.product_id]).await?;
            let remaining = left.first().map_or(0, |(_, left)| i64::from(*left));
            return Err(WriteError::Refused(out_of_stock(remaining)));
        }
    }
    match store::sell_and_commit(tx, payment_id, &body, last.product_id, last.quantity).await? {
        store::Sold::Committed { .. } => Ok(body),
        store::Sold::RolledBack { left } => Err(WriteError::Refused(out_of_stock(left.into()))),
    }
}

fn stock_facts(facts: &store::ProductFacts) -> StockFacts {
    StockFacts {
        remaining: facts.stock_remaining.into(),
        release_at: facts.release_at,
        max_per_buyer: facts.max_per_buyer.into(),
        price: facts.price,
        partner_id: facts.partner_id,
    }
}

fn product_not_found() -> ApiError {
    ApiError::NotFound {
        code: ProblemCode::ProductNotFound,
    }
}

fn out_of_stock(remaining: i64) -> ApiError {
    if remaining <= 0 {
        ApiError::conflict(ProblemCode::SoldOut, "this product is sold out")
    } else {
        ApiError::conflict(
            ProblemCode::InsufficientStock,
            format!("only {remaining} units are left"),
        )
    }
}

fn not_on_sale() -> ApiError {
    ApiError::conflict(ProblemCode::NotOnSale, "this product is not released yet")
}

fn over_limit(max_per_buyer: i64) -> ApiError {
    ApiError::conflict(
        ProblemCode::PurchaseLimit,
        format!("at most {max_per_buyer} units of this product per buyer"),
    )
}
