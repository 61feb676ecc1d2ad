//! The account tables' SQL that several functions share: the durable logout blacklist
//! (`revoked_access_tokens`), which every authenticated route may consult through
//! [`Authenticator`](crate::auth::Authenticator). Each function's own account queries (sign-up,
//! login, profile) live in its `store.rs`.

use chrono::{DateTime, Utc};
use sqlx::MySqlPool;

/// Whether the token `jti` was logged out and has not expired yet.
pub async fn is_token_revoked(db: &MySqlPool, jti: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM revoked_access_tokens WHERE jti = ? AND expires_at > UTC_TIMESTAMP(6)",
    )
    .bind(jti)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// One logged-out token of a user that has not expired yet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevokedToken {
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

/// Every logged-out token of `user_id` that has not expired yet
/// (`idx_revoked_access_tokens_user`).
pub async fn unexpired_revocations(
    db: &MySqlPool,
    user_id: i64,
) -> Result<Vec<RevokedToken>, sqlx::Error> {
    sqlx::query_as(
        "SELECT jti, expires_at FROM revoked_access_tokens \
         WHERE user_id = ? AND expires_at > UTC_TIMESTAMP(6)",
    )
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Records a logout until `expires_at`; recording the same token again keeps one row.
pub async fn revoke_token(
    db: &MySqlPool,
    jti: &str,
    user_id: i64,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO revoked_access_tokens (jti, user_id, expires_at) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE expires_at = VALUES(expires_at)",
    )
    .bind(jti)
    .bind(user_id)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}
