//! The `products` function: the catalogue.
//!
//! - `GET /products` lists newest release first with keyset pagination on `(release_at, id)`
//!   and an opaque cursor, so no page skips or repeats a product while products are added.
//!   Page 1 at the default size is served from Redis as ready-to-send bytes (see
//!   [`ProductPageCache`]); when Redis is down the list comes from MySQL, slower but never an error.
//! - `GET /products/{id}` adds the live `stock_remaining`.
//! - Partners create products and update or delete their own; admins may update or delete any.
//!   A product that was ever ordered cannot be deleted (409 `PRODUCT_IN_USE`).
//!
//! Every write evicts page 1. The `x-cache` response header says how the list was served:
//! `hit`, `miss` (this request rebuilt it), `stale` (another request is rebuilding), `bypass`.

mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_http::{
    Body, Request, Response,
    http::{HeaderValue, StatusCode},
};
use serde::Deserialize;
use shared::{
    ApiError, Platform,
    adapters::{mysql::finish, redis::ProductPageCache, stock::StockReservations},
    auth::Principal,
    domain::{
        auth::Role,
        product::{PageRequest, ProductFields, parse_page, validate_fields},
    },
    error::{Problem, ProblemCode},
    http::{
        json, json_body, json_bytes, json_raw, no_content, path_param, query_param, respond,
        route_key,
    },
    services::catalogue::evict_page_one,
};
use sqlx::{MySql, Transaction};
use utoipa::{OpenApi, ToSchema};

pub use store::{Product, ProductPage, ProductSummary};

/// How often, and how long, a request polls for a page another request is rebuilding before
/// it reads MySQL itself.
const REBUILD_POLLS: u32 = 10;
const REBUILD_POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub struct Deps {
    platform: Platform,
    cache: ProductPageCache,
    reservations: StockReservations,
}

impl Deps {
    pub fn new(platform: &Platform) -> Self {
        let ttl = platform.config.products.list_cache_ttl;
        Self {
            platform: platform.clone(),
            cache: ProductPageCache::new(platform.redis.clone(), ttl),
            reservations: StockReservations::new(platform.redis.clone()),
        }
    }
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let result = match route_key(&req) {
        Some("GET /products") => list(deps, &req).await,
        Some("GET /products/{id}") => detail(deps, &req).await,
        Some("POST /products") => create(deps, &req).await,
        Some("PATCH /products/{id}") => update(deps, &req).await,
        Some("DELETE /products/{id}") => delete(deps, &req).await,
        other => Err(ApiError::RouteNotFound(
            other.unwrap_or_default().to_owned(),
        )),
    };
    respond(result)
}

#[utoipa::path(get, path = "/products", tag = "products",
    params(("size" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 40"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page; empty for the first")),
    responses((status = 200, body = ProductPage), (status = 422, body = Problem)))]
async fn list(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let page = parse_page(
        query_param(req, "size").as_deref(),
        query_param(req, "cursor").as_deref(),
    )
    .map_err(ApiError::Validation)?;
    if !(deps.platform.config.products.list_cache && page.is_cached_first_page()) {
        return Ok(with_cache_header(page_from_db(deps, page).await?, "bypass"));
    }
    let (bytes, how) = cached_first_page(deps, page).await?;
    Ok(with_cache_header(json_raw(StatusCode::OK, bytes), how))
}

/// Page 1 through the cache: one request rebuilds a missing page while the others get the
/// previous copy or wait briefly; with Redis down everyone reads MySQL.
async fn cached_first_page(
    deps: &Deps,
    page: PageRequest,
) -> Result<(Vec<u8>, &'static str), ApiError> {
    let cache = &deps.cache;
    match cache.fresh().await {
        Ok(Some(bytes)) => return Ok((bytes, "hit")),
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(%err, "Redis unavailable; serving the product list from MySQL");
            return Ok((page_bytes(deps, page).await?, "bypass"));
        }
    }
    match cache.try_lock().await {
        Ok(Some(version)) => {
            let bytes = page_bytes(deps, page).await?;
            if let Err(err) = cache.fill(version, &bytes).await {
                tracing::warn!(%err, "could not store the product list page");
            }
            Ok((bytes, "miss"))
        }
        Ok(None) => {
            if let Ok(Some(stale)) = cache.stale().await {
                return Ok((stale, "stale"));
            }
            for _ in 0..REBUILD_POLLS {
                tokio::time::sleep(REBUILD_POLL_INTERVAL).await;
                if let Ok(Some(bytes)) = cache.fresh().await {
                    return Ok((bytes, "hit"));
                }
            }
            Ok((page_bytes(deps, page).await?, "bypass"))
        }
        Err(_) => Ok((page_bytes(deps, page).await?, "bypass")),
    }
}

async fn page_bytes(deps: &Deps, page: PageRequest) -> Result<Vec<u8>, ApiError> {
    Ok(json_bytes(&store::list(&deps.platform.db, page).await?))
}

async fn page_from_db(deps: &Deps, page: PageRequest) -> Result<Response<Body>, ApiError> {
    Ok(json_raw(StatusCode::OK, page_bytes(deps, page).await?))
}

fn with_cache_header(mut response: Response<Body>, how: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(how));
    response
}

fn product_id(req: &Request) -> Result<i64, ApiError> {
    path_param(req, "id")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound {
            code: ProblemCode::ProductNotFound,
        })
}

#[utoipa::path(get, path = "/products/{id}", tag = "products",
    params(("id" = i64, Path)),
    responses((status = 200, body = Product), (status = 404, description = "PRODUCT_NOT_FOUND", body = Problem)))]
async fn detail(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let product = find_product(deps, product_id(req)?).await?;
    Ok(json(StatusCode::OK, &product))
}

/// The product with its live stock, or 404 `PRODUCT_NOT_FOUND`.
async fn find_product(deps: &Deps, id: i64) -> Result<Product, ApiError> {
    store::find(&deps.platform.db, id)
        .await?
        .ok_or(ApiError::NotFound {
            code: ProblemCode::ProductNotFound,
        })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    name: String,
    brand: String,
    /// KRW, 1 to 100,000,000.
    price: i64,
    /// RFC 3339; from a day ago to a year ahead.
    release_at: DateTime<Utc>,
    stock: i32,
    /// Units one buyer may hold, at least 1; a per-buyer cap, so it may exceed `stock`.
    max_per_buyer: i32,
}

#[utoipa::path(post, path = "/products", tag = "products", request_body = NewProduct,
    security(("bearer" = [])),
    responses((status = 201, body = Product), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Partner])?;
    let body: NewProduct = json_body(req)?;
    let fields = validate_fields(
        &ProductFields {
            name: body.name,
            brand: body.brand,
            price: body.price,
            release_at: body.release_at,
            stock: body.stock,
            max_per_buyer: body.max_per_buyer,
        },
        Utc::now(),
        None,
    )
    .map_err(ApiError::Validation)?;
    let product = store::insert(&deps.platform.db, principal.user_id, &fields).await?;
    evict(deps).await;
    tracing::info!(
        product_id = product.id,
        partner_id = principal.user_id,
        "product listed"
    );
    Ok(json(StatusCode::CREATED, &product))
}

/// Only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    name: Option<String>,
    brand: Option<String>,
    price: Option<i64>,
    release_at: Option<DateTime<Utc>>,
    /// Total units; may not drop below the units already sold.
    stock: Option<i32>,
    max_per_buyer: Option<i32>,
}

#[utoipa::path(patch, path = "/products/{id}", tag = "products", request_body = ProductUpdate,
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Product), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Partner, Role::Admin])?;
    let id = product_id(req)?;
    let patch: ProductUpdate = json_body(req)?;

    let mut tx = deps.platform.db.begin().await?;
    let result = apply_update(&mut tx, &principal, id, patch).await;
    finish(tx, result).await?;
    forget_stock_facts(deps, id).await;
    evict(deps).await;
    Ok(json(StatusCode::OK, &find_product(deps, id).await?))
}

#[utoipa::path(delete, path = "/products/{id}", tag = "products",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "PRODUCT_IN_USE", body = Problem)))]
async fn delete(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Partner, Role::Admin])?;
    let id = product_id(req)?;
    let mut tx = deps.platform.db.begin().await?;
    let result = apply_delete(&mut tx, &principal, id).await;
    finish(tx, result).await?;
    forget_stock_facts(deps, id).await;
    evict(deps).await;
    Ok(no_content())
}

async fn apply_update(
    tx: &mut Transaction<'static, MySql>,
    principal: &Principal,
    id: i64,
    patch: ProductUpdate,
) -> Result<(), ApiError> {
    let current = lock_editable(tx, principal, id).await?;
    let merged = ProductFields {
        name: patch.name.unwrap_or_else(|| current.name.clone()),
        brand: patch.brand.unwrap_or_else(|| current.brand.clone()),
        price: patch.price.unwrap_or(current.price),
        release_at: patch.release_at.unwrap_or(current.release_at),
        stock: patch.stock.unwrap_or(current.stock),
        max_per_buyer: patch.max_per_buyer.unwrap_or(current.max_per_buyer),
    };
    let fields = validate_fields(&merged, Utc::now(), Some(current.release_at))
        .map_err(ApiError::Validation)?;
    let sold = current.stock - current.stock_remaining;
    if fields.stock < sold {
        return Err(ApiError::validation(
            "stock",
            format!("{sold} units are already sold; stock cannot be lower"),
        ));
    }
    store::update(tx, id, &fields, fields.stock - sold).await?;
    Ok(())
}

async fn apply_delete(
    tx: &mut Transaction<'static, MySql>,
    principal: &Principal,
    id: i64,
) -> Result<(), ApiError> {
    // Holding the row's lock settles every race with a sale: a sale commits only with its guarded
    // stock update of this row, so it either committed before we got the lock (and is seen
    // below) or will find no row once we delete it, and roll back.
    lock_editable(tx, principal, id).await?;
    if store::ever_ordered(tx, id).await? {
        return Err(product_in_use());
    }
    store::delete(tx, id).await?;
    Ok(())
}

fn product_in_use() -> ApiError {
    ApiError::conflict(
        ProblemCode::ProductInUse,
        "this product has been ordered and cannot be deleted",
    )
}

/// Locks the product for the rest of the transaction: 404 if it does not exist, 403 unless the
/// caller owns it (partners) or is an admin.
async fn lock_editable(
    tx: &mut Transaction<'static, MySql>,
    principal: &Principal,
    id: i64,
) -> Result<Product, ApiError> {
    let product = store::find_for_update(tx, id)
        .await?
        .ok_or(ApiError::NotFound {
            code: ProblemCode::ProductNotFound,
        })?;
    if principal.role == Role::Admin || product.partner_id == principal.user_id {
        Ok(product)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The orders function keeps a product's price, release time, limit and stock in Redis for
/// checkout; after an edit it must read them afresh from MySQL.
async fn forget_stock_facts(deps: &Deps, id: i64) {
    if let Err(err) = deps.reservations.forget(id).await {
        tracing::warn!(%err, product_id = id, "could not drop the product's checkout facts from Redis");
    }
}

async fn evict(deps: &Deps) {
    evict_page_one(&deps.cache).await;
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(list, detail, create, update, delete),
    components(schemas(
        ProductPage,
        ProductSummary,
        Product,
        NewProduct,
        ProductUpdate,
        Problem
    ))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests;
