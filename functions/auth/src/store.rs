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

/// The account registered under `email` (already normalized).
pub async fn credentials_by_email(
    db: &MySqlPool,
    email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as("SELECT id, password_hash, role FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(db)
        .await
}

pub async fn profile(db: &MySqlPool, user_id: i64) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, name, role FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(db)
        .await
}
