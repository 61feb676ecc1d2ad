//! The auth function's MySQL queries: accounts (`users`, `partner_profiles`). The logout
//! blacklist, which every function consults, is [`shared::adapters::accounts`].

use shared::domain::auth::NewAccount;
use sqlx::{MySql, MySqlPool, Transaction};

/// What login checks a password against.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: i64,
    pub password_hash: String,
    /// As stored; [`shared::domain::auth::Role::parse`] reads it.
    pub role: String,
}

/// The caller's account as `GET /auth/me` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Profile {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// As stored; [`shared::domain::auth::Role::parse`] reads it.
    pub role: String,
}

/// One round trip that proves the database answers.
pub async fn ping(db: &MySqlPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(db).await?;
    Ok(())
}

/// Inserts the user row and returns its id. A taken email is a unique violation.
pub async fn insert_user(
    tx: &mut Transaction<'static, MySql>,
    account: &NewAccount,
    password_hash: &str,
) -> Result<i64, sqlx::Error> {
    let inserted =
        sqlx::query("INSERT INTO users (email, password_hash, name, role) VALUES (?, ?, ?, ?)")
            .bind(&account.email)
            .bind(password_hash)
            .bind(&account.name)
            .bind(account.role.as_str())
            .execute(&mut **tx)
            .await?;
    i64::try_from(inserted.last_insert_id()).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

/// Every partner has a profile (products, orders and commission policies refer to it); the
/// business name is optional.
pub async fn insert_partner_profile(
    tx: &mut Transaction<'static, MySql>,
    partner_id: i64,
    business_name: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO partner_profiles (partner_id, business_name) VALUES (?, ?)")
        .bind(partner_id)
        .bind(business_name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What login learns about an email in one round trip: the account it resolves to, if any, and
/// the key its attempts are counted under when it resolves to none.
#[derive(Debug, Clone)]
pub struct LoginLookup {
    pub account: Option<Credentials>,
    /// SHA-256 (hex) of the email's weights under `users.email`'s collation: equal for every
    /// spelling that collation cannot tell apart by its letters (case, accents).
    pub email_key: String,
}

#[derive(sqlx::FromRow)]
struct LookupRow {
    email_key: String,
    id: Option<i64>,
    password_hash: Option<String>,
    role: Option<String>,
}

/// The account registered under `email` (trimmed and lower-cased), found through `users.email`'s
/// collation (`utf8mb4_unicode_ci`, which ignores case and accents), and the email's key.
///
/// The collation named here must be the column's; a test checks that it is.
pub async fn login_lookup(db: &MySqlPool, email: &str) -> Result<LoginLookup, sqlx::Error> {
    let row: LookupRow = sqlx::query_as(
        "SELECT probe.email_key, u.id, u.password_hash, u.role \
         FROM (SELECT SHA2(WEIGHT_STRING(CONVERT(? USING utf8mb4) COLLATE utf8mb4_unicode_ci), 256) \
               AS email_key) AS probe \
         LEFT JOIN users u ON u.email = ?",
    )
    .bind(email)
    .bind(email)
    .fetch_one(db)
    .await?;
    let account = match (row.id, row.password_hash, row.role) {
        (Some(id), Some(password_hash), Some(role)) => Some(Credentials {
            id,
            password_hash,
            role,
        }),
        _ => None,
    };
    Ok(LoginLookup {
        account,
        email_key: row.email_key,
    })
}

pub async fn profile(db: &MySqlPool, user_id: i64) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, name, role FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(db)
        .await
}
