//! The catalogue's MySQL queries.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::product::{Cursor, PageRequest, ProductFields};
use sqlx::{MySql, MySqlPool, Transaction};
use utoipa::ToSchema;

/// One entry of the list.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ProductSummary {
    pub id: i64,
    pub name: String,
    pub brand: String,
    pub price: i64,
    pub release_at: DateTime<Utc>,
    pub partner_id: i64,
    #[sqlx(skip)]
    pub sold_out: bool,
    #[serde(skip)]
    pub stock_remaining: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A product with its live stock.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Product {
    pub id: i64,
    pub partner_id: i64,
    pub name: String,
    pub brand: String,
    pub price: i64,
    pub release_at: DateTime<Utc>,
    pub stock: i32,
    pub stock_remaining: i32,
    pub max_per_buyer: i32,
    #[sqlx(skip)]
    pub sold_out: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Product {
    fn with_sold_out(mut self) -> Self {
        self.sold_out = self.stock_remaining == 0;
        self
    }
}

const SUMMARY_COLUMNS: &str = "id, name, brand, price, release_at, partner_id, stock_remaining";
const PRODUCT_COLUMNS: &str = "id, partner_id, name, brand, price, release_at, stock, \
     stock_remaining, max_per_buyer, created_at, updated_at";

/// Newest release first, keyset-paged. Reads one row more than asked to learn whether a next
/// page exists. The OR form (rather than a row comparison) is what both MySQL and MariaDB turn
/// into a range scan of `idx_products_newest_release`.
pub async fn list(db: &MySqlPool, page: PageRequest) -> Result<ProductPage, sqlx::Error> {
    let limit = i64::from(page.size) + 1;
    let mut rows: Vec<ProductSummary> =
        match page.after {
            None => sqlx::query_as(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM products ORDER BY release_at DESC, id DESC LIMIT ?"
            ))
            .bind(limit)
            .fetch_all(db)
            .await?,
            Some(after) => {
                sqlx::query_as(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM products \
                 WHERE release_at < ? OR (release_at = ? AND id < ?) \
                 ORDER BY release_at DESC, id DESC LIMIT ?"
                ))
                .bind(after.release_at)
                .bind(after.release_at)
                .bind(after.id)
                .bind(limit)
                .fetch_all(db)
                .await?
            }
        };
    let size = usize::try_from(page.size).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    for row in &mut rows {
        row.sold_out = row.stock_remaining == 0;
    }
    let next_cursor = rows.last().filter(|_| more).map(|last| {
        Cursor {
            release_at: last.release_at,
            id: last.id,
        }
        .encode()
    });
    Ok(ProductPage {
        items: rows,
        next_cursor,
    })
}

pub async fn find(db: &MySqlPool, id: i64) -> Result<Option<Product>, sqlx::Error> {
    let product: Option<Product> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(product.map(Product::with_sold_out))
}

pub async fn find_for_update(
    tx: &mut Transaction<'_, MySql>,
    id: i64,
) -> Result<Option<Product>, sqlx::Error> {
    let product: Option<Product> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ? FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(product.map(Product::with_sold_out))
}

pub async fn insert(
    db: &MySqlPool,
    partner_id: i64,
    fields: &ProductFields,
) -> Result<Product, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO products (partner_id, name, brand, price, release_at, stock, stock_remaining, max_per_buyer) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(partner_id)
    .bind(&fields.name)
    .bind(&fields.brand)
    .bind(fields.price)
    .bind(fields.release_at)
    .bind(fields.stock)
    .bind(fields.stock)
    .bind(fields.max_per_buyer)
    .execute(db)
    .await?;
    let id =
        i64::try_from(result.last_insert_id()).map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
    find(db, id).await?.ok_or(sqlx::Error::RowNotFound)
}

pub async fn update(
    tx: &mut Transaction<'_, MySql>,
    id: i64,
    fields: &ProductFields,
    stock_remaining: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE products SET name = ?, brand = ?, price = ?, release_at = ?, stock = ?, \
         stock_remaining = ?, max_per_buyer = ? WHERE id = ?",
    )
    .bind(&fields.name)
    .bind(&fields.brand)
    .bind(fields.price)
    .bind(fields.release_at)
    .bind(fields.stock)
    .bind(stock_remaining)
    .bind(fields.max_per_buyer)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn ever_ordered(tx: &mut Transaction<'_, MySql>, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM order_items WHERE product_id = ? LIMIT 1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

pub async fn delete(tx: &mut Transaction<'_, MySql>, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM products WHERE id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
