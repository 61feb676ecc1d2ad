//! The admin function's own MySQL queries. The settlement tables, which the scheduler and the
//! worker share, are [`shared::adapters::settlements`].

use sqlx::MySqlPool;

/// Whether `partner_id` has a partner profile (is a partner at all).
pub async fn partner_exists(db: &MySqlPool, partner_id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT partner_id FROM partner_profiles WHERE partner_id = ?")
            .bind(partner_id)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}
