//! `POST /orders`: the drop.
//!
//! Thousands of buyers hit one product in the same second. The answer to "is there a unit?" comes
//! from one Redis script per product ([`reserve`]); only buyers who got units go on to MySQL,
//! where a guarded update (never below zero) and the purchase-limit row make it exact, and one
//! transaction writes the payment, one order per partner, their lines and the idempotency key
//! ([`write`](mod@write), which owns why the product row is locked last). Anything failing after
//! a reservation gives the units back. With Redis down, the same transaction runs after a plain
//! read of the products ([`mysql_only`]): slower, still exact.
//!
//! The comparison strategy (`STOCK_STRATEGY=lock`) does what the system we replace did: a
//! per-product Redis lock around that MySQL transaction ([`product_locks`]).
//!
//! Inside, outcomes are typed ([`WriteError`], [`Refusal`]); they become an [`ApiError`] here,
//! at the edge, and nowhere else.

mod mysql_only;
mod product_locks;
mod replay;
mod reserve;
mod write;

use chrono::{DateTime, SubsecRound, Utc};
use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    ApiError,
    adapters::redis::RateDecision,
    config::StockStrategy,
    domain::{
        auth::Role,
        order::{
            CheckoutItem, OrderStatus, PricedItem, is_valid_idempotency_key, request_fingerprint,
            validate_items,
        },
        stock::StockRefusal,
    },
    error::ProblemCode,
    http::{header_str, json_body, json_bytes, json_raw},
    services::catalogue::evict_page_one,
};
use utoipa::ToSchema;

use crate::{Deps, gate};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// 1 to 20 distinct products.
    #[schema(min_items = 1, max_items = 20)]
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
    #[schema(value_type = String)]
    pub status: OrderStatus,
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

/// Why a checkout took nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The stock rule said no (in Redis or in MySQL).
    Stock(StockRefusal),
    ProductNotFound,
    /// The comparison strategy's product lock stayed busy.
    LockTimeout,
    /// The product's price (MySQL's, `price`) is not the one the checkout charged.
    PriceChanged {
        product_id: i64,
        price: i64,
    },
    /// The buyer holds as many unpaid orders as one may (`max`), or this checkout's would be
    /// more.
    TooManyUnpaidOrders {
        max: u32,
    },
    /// The buyer gave up an order of the product within the cooldown; `wait_secs` are left.
    RebuyCooldown {
        product_id: i64,
        wait_secs: i64,
    },
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Stock(refusal) if refusal.is_sold_out() => {
                ApiError::conflict(ProblemCode::SoldOut, "this product is sold out")
            }
            Refusal::Stock(StockRefusal::Insufficient { remaining }) => ApiError::conflict(
                ProblemCode::InsufficientStock,
                format!("only {remaining} units are left"),
            ),
            Refusal::Stock(StockRefusal::NotOnSale) => {
                ApiError::conflict(ProblemCode::NotOnSale, "this product is not released yet")
            }
            Refusal::Stock(StockRefusal::OverLimit { max_per_buyer }) => ApiError::conflict(
                ProblemCode::PurchaseLimit,
                format!("at most {max_per_buyer} units of this product per buyer"),
            ),
            Refusal::ProductNotFound => ApiError::NotFound {
                code: ProblemCode::ProductNotFound,
            },
            Refusal::LockTimeout => ApiError::conflict(
                ProblemCode::LockTimeout,
                "too many buyers at once; please retry",
            ),
            Refusal::TooManyUnpaidOrders { max } => ApiError::conflict(
                ProblemCode::TooManyUnpaidOrders,
                format!(
                    "a buyer may hold at most {max} unpaid orders at once; pay or cancel one first"
                ),
            ),
            Refusal::RebuyCooldown {
                product_id,
                wait_secs,
            } => ApiError::conflict_until(
                ProblemCode::RebuyCooldown,
                format!(
                    "an order of product {product_id} was recently cancelled or left to expire; \
                     it can be bought again in {wait_secs} s"
                ),
                u64::try_from(wait_secs).unwrap_or(1).max(1),
            ),
            Refusal::PriceChanged { product_id, price } => ApiError::conflict(
                ProblemCode::PriceChanged,
                format!("the price of product {product_id} is now {price} KRW; check it and retry"),
            ),
        }
    }
}

/// Why the order transaction did not commit.
#[derive(Debug)]
enum WriteError {
    Refused(Refusal),
    /// Refused because MySQL's product row disagreed with what the checkout believed of it (its
    /// units, release time, limit or price): the facts kept in Redis are stale.
    Stale {
        product_id: i64,
        refusal: Refusal,
    },
    /// Another request of this buyer committed the same idempotency key first.
    KeyTaken,
    /// A store failed; answered as it is.
    Failed(ApiError),
}

impl WriteError {
    fn stock(refusal: StockRefusal) -> Self {
        Self::Refused(Refusal::Stock(refusal))
    }
}

impl From<sqlx::Error> for WriteError {
    fn from(err: sqlx::Error) -> Self {
        Self::Failed(ApiError::Database(err))
    }
}

impl From<ApiError> for WriteError {
    fn from(err: ApiError) -> Self {
        Self::Failed(err)
    }
}

/// The bytes of the answer to a committed checkout, and whether it took a product's last unit.
type Written = (Vec<u8>, bool);

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
        (status = 409, description = "SOLD_OUT, INSUFFICIENT_STOCK, PURCHASE_LIMIT, NOT_ON_SALE, PRICE_CHANGED, TOO_MANY_UNPAID_ORDERS or REBUY_COOLDOWN", body = shared::error::Problem),
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

    if let Some(replay) = replay::if_used(deps, &attempt, gate.markers).await? {
        return Ok(replay);
    }
    if let Some(refusal) = gate.refusal {
        return Err(Refusal::Stock(refusal).into());
    }
    let written = match deps.platform.config.orders.stock_strategy {
        StockStrategy::Reservation => reserve::with_reservations(deps, &attempt).await,
        StockStrategy::Lock => product_locks::with_product_locks(deps, &attempt).await,
    };
    match written {
        Ok((response, sold_out)) => {
            deps.markers.remember(attempt.buyer_id, attempt.key).await;
            if sold_out {
                evict_page_one(&deps.page_cache).await;
            }
            Ok(json_raw(StatusCode::CREATED, response))
        }
        Err(WriteError::KeyTaken) => replay::if_used_in_mysql(deps, &attempt)
            .await?
            .ok_or_else(|| ApiError::internal("idempotency key taken but no checkout found")),
        Err(WriteError::Refused(refusal)) => Err(refusal.into()),
        Err(WriteError::Stale {
            product_id,
            refusal,
        }) => {
            // Whatever gave the facts (a failed eviction after an edit, a load that raced it),
            // the next attempt reloads them from MySQL.
            if let Err(err) = deps.reservations.forget(product_id).await {
                tracing::warn!(%err, product_id, "could not drop a product's stale checkout facts");
            }
            deps.sold_out.forget(product_id);
            Err(refusal.into())
        }
        Err(WriteError::Failed(err)) => {
            // The write may have committed before its answer was lost (a connection dropped
            // after the COMMIT): the key's marker sends a retry to MySQL, which replays the
            // checkout if it was written, instead of the markers vouching the key unused and
            // the retry being answered SOLD_OUT for the units it holds.
            deps.markers.remember(attempt.buyer_id, attempt.key).await;
            Err(err)
        }
    }
}

/// One order of a checkout's answer: PENDING_PAYMENT, as every order is when checkout writes it.
fn pending_order(id: i64, partner_id: i64, amount: i64, items: Vec<CheckoutLine>) -> CheckoutOrder {
    CheckoutOrder {
        id,
        partner_id,
        status: OrderStatus::PendingPayment,
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
