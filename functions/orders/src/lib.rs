//! The `orders` function: the drop (checkout), order history, and each order's life after it.
//!
//! - `POST /orders`: see the `checkout` module. One payment, one order per partner, all or nothing.
//! - `GET /orders`, `GET /orders/{id}`: the buyer's own orders, newest first.
//! - `GET /partner/orders?status=`: the partner's own orders.
//! - `POST /orders/{id}/cancel` (buyer): an unpaid order is cancelled and its units return; a
//!   paid, unshipped one is refunded through PortOne first (that order's amount only).
//! - `POST /partner/orders/{id}/ship` (partner): PAID → SHIPPED.
//! - `POST /orders/{id}/confirm` (buyer): SHIPPED → CONFIRMED; settlement counts it on that day.
//!
//! Acting on someone else's order answers 404, never 403, so order ids reveal nothing. An
//! impossible status change is 409 `INVALID_STATE`. The stock-returning transitions (cancel here,
//! expiry in `order-sweeper`) are [`OrderLifecycle`]'s.

mod checkout;
mod gate;
mod sold_out;
mod store;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::Serialize;
use shared::{
    ApiError, Platform,
    adapters::{
        mysql::finish,
        orders::transition,
        redis::{KeyMarkers, ProductPageCache, RateLimiter},
        stock::{ProductLocks, StockReservations},
    },
    domain::{
        auth::Role,
        cursor::invalid_cursor,
        order::{OrderCursor, OrderStatus},
    },
    error::{Problem, ProblemCode},
    http::{json, path_param, query_param, respond, route_key},
    ports::PaymentGateway,
    services::{
        order_lifecycle::OrderLifecycle,
        payments::{Payments, RefundError},
    },
};
use utoipa::{OpenApi, ToSchema};

pub use checkout::{CheckoutLine, CheckoutOrder, CheckoutRequest, CheckoutResponse};
pub use shared::adapters::orders::{Order, OrderItem};

use crate::{sold_out::SoldOutMemo, store::Owner};

/// Checkout attempts are counted per buyer in windows of this length.
pub(crate) const CHECKOUT_WINDOW: Duration = Duration::from_secs(60);
/// Orders per page of a history.
const PAGE_SIZE: i64 = 20;

#[derive(Debug)]
pub struct Deps {
    platform: Platform,
    reservations: StockReservations,
    locks: ProductLocks,
    limiter: RateLimiter,
    page_cache: ProductPageCache,
    markers: KeyMarkers,
    sold_out: SoldOutMemo,
    lifecycle: OrderLifecycle,
    payments: Payments,
}

impl Deps {
    /// `gateway` is PortOne, which refunds cancelled paid orders.
    pub fn new(platform: &Platform, gateway: Arc<dyn PaymentGateway>) -> Self {
        let redis = platform.redis.clone();
        let reservations = StockReservations::new(redis.clone());
        let page_cache =
            ProductPageCache::new(redis.clone(), platform.config.products.list_cache_ttl);
        Self {
            platform: platform.clone(),
            lifecycle: OrderLifecycle::new(
                platform.db.clone(),
                reservations.clone(),
                page_cache.clone(),
            ),
            reservations,
            locks: ProductLocks::new(redis.clone()),
            limiter: RateLimiter::new(redis.clone()),
            page_cache,
            markers: KeyMarkers::new(redis, platform.db.clone()),
            sold_out: SoldOutMemo::new(platform.config.orders.sold_out_memo),
            payments: Payments::new(platform, gateway),
        }
    }
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let result = match route_key(&req) {
        Some("POST /orders") => checkout::checkout(deps, &req).await,
        Some("GET /orders") => my_orders(deps, &req).await,
        Some("GET /orders/{id}") => my_order(deps, &req).await,
        Some("GET /partner/orders") => partner_orders(deps, &req).await,
        Some("POST /orders/{id}/cancel") => cancel(deps, &req).await,
        Some("POST /partner/orders/{id}/ship") => ship(deps, &req).await,
        Some("POST /orders/{id}/confirm") => confirm(deps, &req).await,
        other => Err(ApiError::RouteNotFound(
            other.unwrap_or_default().to_owned(),
        )),
    };
    respond(result)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// Pass as `cursor` for older orders; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An absent or empty `cursor` is the first page; one this API did not return is a 422.
fn parse_cursor(req: &Request) -> Result<Option<OrderCursor>, ApiError> {
    let Some(text) = query_param(req, "cursor").filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    OrderCursor::decode(&text)
        .map(Some)
        .ok_or_else(|| ApiError::Validation(vec![invalid_cursor()]))
}

async fn page(
    deps: &Deps,
    req: &Request,
    owner: Owner,
    status: Option<OrderStatus>,
) -> Result<Response<Body>, ApiError> {
    let before = parse_cursor(req)?.map(|cursor| cursor.before_id);
    let mut items =
        store::list_orders(&deps.platform.db, owner, status, before, PAGE_SIZE + 1).await?;
    let more = items.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
    let next_cursor = items
        .last()
        .filter(|_| more)
        .map(|last| OrderCursor { before_id: last.id }.encode());
    Ok(json(StatusCode::OK, &OrderPage { items, next_cursor }))
}

#[utoipa::path(get, path = "/orders", tag = "orders", security(("bearer" = [])),
    params(("cursor" = Option<String>, Query)),
    responses((status = 200, body = OrderPage), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn my_orders(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Buyer])?;
    page(deps, req, Owner::Buyer(principal.user_id), None).await
}

#[utoipa::path(get, path = "/partner/orders", tag = "orders", security(("bearer" = [])),
    params(("status" = Option<String>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = OrderPage), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn partner_orders(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Partner])?;
    let status = match query_param(req, "status").filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(
            OrderStatus::parse(&text)
                .ok_or_else(|| ApiError::validation("status", "is not an order status"))?,
        ),
    };
    page(deps, req, Owner::Partner(principal.user_id), status).await
}

fn order_id(req: &Request) -> Result<i64, ApiError> {
    path_param(req, "id")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or(order_not_found())
}

fn order_not_found() -> ApiError {
    ApiError::NotFound {
        code: ProblemCode::OrderNotFound,
    }
}

async fn find(deps: &Deps, id: i64, owner: Owner) -> Result<Order, ApiError> {
    store::find_order(&deps.platform.db, id, owner)
        .await?
        .ok_or(order_not_found())
}

#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Order), (status = 404, description = "ORDER_NOT_FOUND", body = Problem)))]
async fn my_order(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Buyer])?;
    let order = find(deps, order_id(req)?, Owner::Buyer(principal.user_id)).await?;
    Ok(json(StatusCode::OK, &order))
}

#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATE", body = Problem),
        (status = 503, description = "PortOne refused or did not answer the refund; nothing changed", body = Problem)))]
async fn cancel(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Buyer])?;
    let owner = Owner::Buyer(principal.user_id);
    let order = find(deps, order_id(req)?, owner).await?;
    if order.status == OrderStatus::Paid {
        deps.payments
            .refund_order(&order)
            .await
            .map_err(|err| refund_refused(&order, err))?;
    } else {
        let released = deps
            .lifecycle
            .release(&order, OrderStatus::Cancelled, Utc::now())
            .await?;
        if !released {
            return Err(invalid_state(&order, OrderStatus::Cancelled));
        }
    }
    // The units are back: this process offers them at once.
    for item in &order.items {
        deps.sold_out.forget(item.product_id);
    }
    Ok(json(StatusCode::OK, &find(deps, order.id, owner).await?))
}

/// A refund that did not happen: the order changed meanwhile (409), or PortOne refused, did not
/// answer, or disagrees with our record (503: nothing changed, a retry may succeed).
fn refund_refused(order: &Order, err: RefundError) -> ApiError {
    match err {
        RefundError::NotRefundable(status) => ApiError::conflict(
            ProblemCode::InvalidState,
            format!("order {} is {status}; it cannot become CANCELLED", order.id),
        ),
        RefundError::Database(err) => ApiError::Database(err),
        other => {
            tracing::warn!(order_id = order.id, error = %other, "refund not made");
            ApiError::Unavailable(other.to_string())
        }
    }
}

#[utoipa::path(post, path = "/partner/orders/{id}/ship", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATE", body = Problem)))]
async fn ship(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Partner])?;
    move_forward(
        deps,
        req,
        Owner::Partner(principal.user_id),
        OrderStatus::Paid,
        OrderStatus::Shipped,
    )
    .await
}

#[utoipa::path(post, path = "/orders/{id}/confirm", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem),
        (status = 409, description = "INVALID_STATE", body = Problem)))]
async fn confirm(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Buyer])?;
    move_forward(
        deps,
        req,
        Owner::Buyer(principal.user_id),
        OrderStatus::Shipped,
        OrderStatus::Confirmed,
    )
    .await
}

/// A transition that moves no stock: ship and confirm.
async fn move_forward(
    deps: &Deps,
    req: &Request,
    owner: Owner,
    from: OrderStatus,
    to: OrderStatus,
) -> Result<Response<Body>, ApiError> {
    let order = find(deps, order_id(req)?, owner).await?;
    let mut tx = deps.platform.db.begin().await?;
    let result = transition(&mut tx, order.id, from, to, Utc::now()).await;
    if !finish(tx, result).await? {
        return Err(invalid_state(&order, to));
    }
    Ok(json(StatusCode::OK, &find(deps, order.id, owner).await?))
}

fn invalid_state(order: &Order, to: OrderStatus) -> ApiError {
    ApiError::conflict(
        ProblemCode::InvalidState,
        format!(
            "order {} is {}; it cannot become {to}",
            order.id, order.status
        ),
    )
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        checkout::checkout,
        my_orders,
        my_order,
        partner_orders,
        cancel,
        ship,
        confirm
    ),
    components(schemas(
        CheckoutRequest,
        CheckoutResponse,
        CheckoutOrder,
        CheckoutLine,
        Order,
        OrderItem,
        OrderPage,
        Problem
    ))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests;
