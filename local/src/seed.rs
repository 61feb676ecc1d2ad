//! Demo data for a local stack, safe to apply any number of times.
//!
//! - the admin from `ADMIN_EMAIL` / `ADMIN_PASSWORD` (left alone if the email exists);
//! - two partners with their business profiles and a buyer, all with [`DEMO_PASSWORD`];
//! - six products per partner, released from three days ago to two days ahead, inserted only
//!   when that partner has no products yet (so a re-run never duplicates them, and products a
//!   partner created by hand are never joined by demo ones).
//!
//! Accounts that exist are never touched: their password stays whatever it was.

use chrono::{DateTime, TimeDelta, Utc};
use shared::{
    Platform,
    adapters::redis::ProductPageCache,
    domain::auth::{HashError, MIN_PASSWORD_CHARS, Role, hash_password, normalize_email},
};
use sqlx::MySqlPool;

/// The password of every seeded account except the admin.
pub const DEMO_PASSWORD: &str = "kicksync-demo-1";
/// Used when `ADMIN_EMAIL` is not set.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@kicksync.local";
pub const BUYER_EMAIL: &str = "buyer@kicksync.local";

/// A seeded partner and its catalogue.
struct DemoPartner {
    email: &'static str,
    name: &'static str,
    business_name: &'static str,
    products: &'static [DemoProduct],
}

struct DemoProduct {
    name: &'static str,
    brand: &'static str,
    /// KRW.
    price: i64,
    stock: i32,
    max_per_buyer: i32,
    /// Relative to the time of seeding; negative is already released.
    release_in_hours: i64,
}

const fn product(
    name: &'static str,
    brand: &'static str,
    price: i64,
    stock: i32,
    max_per_buyer: i32,
    release_in_hours: i64,
) -> DemoProduct {
    DemoProduct {
        name,
        brand,
        price,
        stock,
        max_per_buyer,
        release_in_hours,
    }
}

const PARTNERS: &[DemoPartner] = &[
    DemoPartner {
        email: "partner-nike@kicksync.local",
        name: "Nike Korea",
        business_name: "Nike Korea Official Store",
        products: &[
            product(
                "Air Jordan 1 Retro High OG 'Chicago Lost & Found'",
                "Jordan",
                219_000,
                120,
                1,
                -72,
            ),
            product("Nike Dunk Low Retro 'Panda'", "Nike", 129_000, 500, 2, -60),
            product(
                "Nike Air Max 1 '86 OG 'Big Bubble'",
                "Nike",
                189_000,
                80,
                1,
                -30,
            ),
            product(
                "Air Jordan 4 Retro 'Military Blue'",
                "Jordan",
                239_000,
                60,
                1,
                -6,
            ),
            product(
                "Nike Air Force 1 '07 'Triple White'",
                "Nike",
                139_000,
                300,
                2,
                12,
            ),
            product(
                "Air Jordan 11 Retro 'Gamma Blue'",
                "Jordan",
                259_000,
                5,
                1,
                48,
            ),
        ],
    },
    DemoPartner {
        email: "partner-seoul@kicksync.local",
        name: "Seoul Sneaker Lab",
        business_name: "Seoul Sneaker Lab Co., Ltd.",
        products: &[
            product(
                "adidas Samba OG 'Cloud White'",
                "adidas",
                139_000,
                250,
                2,
                -66,
            ),
            product(
                "New Balance 990v6 'Grey'",
                "New Balance",
                259_000,
                40,
                1,
                -48,
            ),
            product(
                "ASICS GEL-Kayano 14 'Cream Black'",
                "ASICS",
                189_000,
                150,
                2,
                -24,
            ),
            product(
                "New Balance 2002R 'Protection Pack Rain Cloud'",
                "New Balance",
                199_000,
                30,
                1,
                -2,
            ),
            product(
                "adidas Yeezy Boost 350 V2 'Onyx'",
                "adidas",
                299_000,
                10,
                1,
                24,
            ),
            product(
                "Salomon XT-6 'Black Phantom'",
                "Salomon",
                229_000,
                70,
                2,
                40,
            ),
        ],
    },
];

/// The admin account to make sure of.
#[derive(Debug, Clone)]
pub struct AdminAccount {
    pub email: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("ADMIN_PASSWORD must be at least {MIN_PASSWORD_CHARS} characters")]
    AdminPasswordTooShort,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("password hashing task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What the seed did, for printing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// `(email, role, created)`: every seeded account, whether it was created now or existed.
    pub accounts: Vec<(String, Role, bool)>,
    pub products_created: usize,
}

pub async fn seed(platform: &Platform, admin: &AdminAccount) -> Result<SeedReport, SeedError> {
    let db = &platform.db;
    if admin.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(SeedError::AdminPasswordTooShort);
    }
    let mut report = SeedReport::default();
    let admin_email = normalize_email(&admin.email);
    let (_, created) = ensure_user(db, &admin_email, "Admin", Role::Admin, &admin.password).await?;
    report.accounts.push((admin_email, Role::Admin, created));

    let now = Utc::now();
    for partner in PARTNERS {
        let (partner_id, created) = ensure_user(
            db,
            partner.email,
            partner.name,
            Role::Partner,
            DEMO_PASSWORD,
        )
        .await?;
        report
            .accounts
            .push((partner.email.to_owned(), Role::Partner, created));
        sqlx::query(
            "INSERT IGNORE INTO partner_profiles (partner_id, business_name) VALUES (?, ?)",
        )
        .bind(partner_id)
        .bind(partner.business_name)
        .execute(db)
        .await?;
        report.products_created += ensure_products(db, partner_id, partner.products, now).await?;
    }

    let (_, created) =
        ensure_user(db, BUYER_EMAIL, "Demo Buyer", Role::Buyer, DEMO_PASSWORD).await?;
    report
        .accounts
        .push((BUYER_EMAIL.to_owned(), Role::Buyer, created));

    if report.products_created > 0 {
        // The products bypassed the products function, so evict its cached page 1 as it would.
        let cache = ProductPageCache::new(
            platform.redis.clone(),
            platform.config.products.list_cache_ttl,
        );
        if let Err(err) = cache.evict().await {
            tracing::warn!(%err, "could not evict the cached product list; it expires on its own");
        }
    }
    Ok(report)
}

/// The user's id, and whether it was created now. An existing account is left as it is.
async fn ensure_user(
    db: &MySqlPool,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<(i64, bool), SeedError> {
    if let Some(id) = user_id(db, email).await? {
        return Ok((id, false));
    }
    let password = password.to_owned();
    // Argon2 is CPU-heavy: off the async workers, as in the handlers.
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    // IGNORE: if a concurrent seed inserted the same email meanwhile, theirs stands.
    let inserted = sqlx::query(
        "INSERT IGNORE INTO users (email, password_hash, name, role) VALUES (?, ?, ?, ?)",
    )
    .bind(email)
    .bind(&hash)
    .bind(name)
    .bind(role.as_str())
    .execute(db)
    .await?;
    let id = user_id(db, email).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok((id, inserted.rows_affected() == 1))
}

async fn user_id(db: &MySqlPool, email: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(db)
        .await
}

/// Inserts the partner's demo products unless it has any products; returns how many it inserted.
async fn ensure_products(
    db: &MySqlPool,
    partner_id: i64,
    products: &[DemoProduct],
    now: DateTime<Utc>,
) -> Result<usize, SeedError> {
    let mut tx = db.begin().await?;
    // Locks the partner's profile row so two seeds cannot both find "no products".
    sqlx::query("SELECT partner_id FROM partner_profiles WHERE partner_id = ? FOR UPDATE")
        .bind(partner_id)
        .execute(&mut *tx)
        .await?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE partner_id = ?")
        .bind(partner_id)
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Ok(0);
    }
    for product in products {
        sqlx::query(
            "INSERT INTO products \
             (partner_id, name, brand, price, release_at, stock, stock_remaining, max_per_buyer) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(partner_id)
        .bind(product.name)
        .bind(product.brand)
        .bind(product.price)
        .bind(now + TimeDelta::hours(product.release_in_hours))
        .bind(product.stock)
        .bind(product.stock)
        .bind(product.max_per_buyer)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(products.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_fits_the_contract() {
        let products: Vec<&DemoProduct> = PARTNERS.iter().flat_map(|p| p.products).collect();
        assert_eq!(products.len(), 12);
        for product in products {
            assert!((5..=500).contains(&product.stock), "{}", product.name);
            assert!((1..=2).contains(&product.max_per_buyer), "{}", product.name);
            assert!(
                (-72..=48).contains(&product.release_in_hours),
                "{}",
                product.name
            );
            assert_eq!(product.price % 1000, 0, "{}", product.name);
        }
        assert!(DEMO_PASSWORD.chars().count() >= MIN_PASSWORD_CHARS);
    }
}
