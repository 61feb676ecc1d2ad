//! The index under test, `idx_products_newest_release`: its definition as the migration makes
//! it, dropped and re-created between configurations, and how MySQL reads page 1 with or
//! without it.

use anyhow::{Context, ensure};
use sqlx::{MySqlPool, Row};

use super::results::QueryPlan;

const INDEX: &str = "idx_products_newest_release";
/// Page 1 as the handler reads it (functions/products/src/store.rs), here only for EXPLAIN.
const PAGE_ONE_QUERY: &str = "SELECT id, name, brand, price, release_at, partner_id, \
     stock_remaining FROM products ORDER BY release_at DESC, id DESC LIMIT 41";

/// Drops the index (the `no-index` configuration).
pub(super) async fn drop(db: &MySqlPool) -> anyhow::Result<()> {
    sqlx::query(&format!("ALTER TABLE products DROP INDEX {INDEX}"))
        .execute(db)
        .await?;
    Ok(())
}

/// Re-creates the index and checks that it is exactly `migrated`, the migration's definition.
pub(super) async fn recreate(db: &MySqlPool, migrated: &str) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "ALTER TABLE products ADD INDEX {INDEX} (release_at DESC, id DESC)"
    ))
    .execute(db)
    .await?;
    let recreated = definition(db).await?;
    ensure!(
        recreated == migrated,
        "the re-created index differs from the migration's: {recreated:?} vs {migrated:?}"
    );
    Ok(())
}

/// The index's line of `SHOW CREATE TABLE products`, to check that the re-created index is
/// exactly the migration's.
pub(super) async fn definition(db: &MySqlPool) -> anyhow::Result<String> {
    let row = sqlx::query("SHOW CREATE TABLE products")
        .fetch_one(db)
        .await?;
    let ddl: String = row.try_get(1)?;
    ddl.lines()
        .map(|line| line.trim().trim_end_matches(',').to_owned())
        .find(|line| line.contains(INDEX))
        .with_context(|| format!("no {INDEX} in SHOW CREATE TABLE products"))
}

/// EXPLAIN of the page-1 query as the table is now.
pub(super) async fn explain(db: &MySqlPool) -> anyhow::Result<QueryPlan> {
    let row = sqlx::query(&format!("EXPLAIN {PAGE_ONE_QUERY}"))
        .fetch_one(db)
        .await?;
    Ok(QueryPlan {
        key: text_column(&row, "key"),
        extra: text_column(&row, "Extra"),
    })
}

/// EXPLAIN's text columns come back as text or as bytes depending on the server.
fn text_column(row: &sqlx::mysql::MySqlRow, name: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(name)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<Vec<u8>>, _>(name)
                .ok()
                .flatten()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        })
}
