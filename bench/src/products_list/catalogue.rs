//! The database of `bench products-list`: `kicksync_bench`, dropped and created fresh, migrated
//! with the project's own migrations, then filled with partners and products generated from a
//! fixed seed (the same names, brands, prices and stock every run; release times relative to
//! now).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use sqlx::{
    Connection, Executor, MySqlConnection, MySqlPool, QueryBuilder, mysql::MySqlPoolOptions,
};

use crate::progress;

/// The database `bench products-list` uses; dropped and re-created by each run.
pub const DATABASE: &str = "kicksync_bench";
pub const PARTNERS: usize = 20;
/// Rows per multi-row INSERT: 2,000 rows × 8 values stays far below MySQL's 65,535
/// placeholders per statement and its default 16 MiB packet.
const INSERT_BATCH_ROWS: usize = 2_000;
/// Products are released from this many days ago to this many days ahead.
const RELEASE_SPREAD_DAYS: i64 = 90;
/// Drops start on the quarter hour, so many products share a release time and the list's
/// `id` tie-break is exercised.
const RELEASE_SLOT_MINUTES: i64 = 15;
/// Share of released products that are sold out.
const SOLD_OUT_SHARE: f64 = 0.3;
const SEED: u64 = 0x4b69_636b_5379_6e63;
/// The bench's connections (generation and index changes), not the runner's.
const POOL_CONNECTIONS: u32 = 4;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// `mysql://user@host:port` + `/kicksync_bench`.
pub fn database_url(server_url: &str) -> String {
    format!("{}/{DATABASE}", server_url.trim_end_matches('/'))
}

/// Drops and re-creates the bench database, migrates it and fills it with `products`
/// products of [`PARTNERS`] partners. Returns a pool on it.
pub async fn create(server_url: &str, products: u32) -> anyhow::Result<MySqlPool> {
    let mut server = MySqlConnection::connect(server_url)
        .await
        .with_context(|| format!("connecting to MySQL at {server_url}"))?;
    server
        .execute(format!("DROP DATABASE IF EXISTS `{DATABASE}`").as_str())
        .await?;
    server
        .execute(
            format!(
                "CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            .as_str(),
        )
        .await?;
    server.close().await?;

    let db = MySqlPoolOptions::new()
        .max_connections(POOL_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(&database_url(server_url))
        .await?;
    shared::adapters::mysql::migrate(&db)
        .await
        .context("migrating the bench database")?;

    let mut rng = StdRng::seed_from_u64(SEED);
    let partner_ids = insert_partners(&db).await?;
    insert_products(&db, &mut rng, &partner_ids, products).await?;
    sqlx::query("ANALYZE TABLE products").execute(&db).await?;
    Ok(db)
}

/// Drops the bench database.
pub async fn drop(server_url: &str) -> anyhow::Result<()> {
    let mut server = MySqlConnection::connect(server_url).await?;
    server
        .execute(format!("DROP DATABASE IF EXISTS `{DATABASE}`").as_str())
        .await?;
    server.close().await?;
    Ok(())
}

const SHOPS: [&str; 10] = [
    "Seoul Sole",
    "Hongdae Kicks",
    "Gangnam Sneaker Lab",
    "Busan Boost",
    "Itaewon Drop Shop",
    "Mapo Runners",
    "Seongsu Sneakers",
    "Jeju Laces",
    "Daegu Deadstock",
    "Incheon Heat",
];

async fn insert_partners(db: &MySqlPool) -> anyhow::Result<Vec<i64>> {
    let mut users = QueryBuilder::new("INSERT INTO users (email, password_hash, name, role) ");
    users.push_values(1..=PARTNERS, |mut row, n| {
        row.push_bind(format!("partner{n:02}@bench.kicksync.local"))
            // Nobody logs in as a bench partner; this is not a valid Argon2 hash on purpose.
            .push_bind("bench-partner-cannot-log-in")
            .push_bind(format!("Bench Partner {n:02}"))
            .push_bind("partner");
    });
    users.build().execute(db).await?;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'partner' ORDER BY id")
            .fetch_all(db)
            .await?;
    let mut profiles =
        QueryBuilder::new("INSERT INTO partner_profiles (partner_id, business_name) ");
    profiles.push_values(ids.iter().enumerate(), |mut row, (n, id)| {
        let shop = SHOPS[n % SHOPS.len()];
        let branch = n / SHOPS.len() + 1;
        row.push_bind(*id).push_bind(format!("{shop} #{branch}"));
    });
    profiles.build().execute(db).await?;
    Ok(ids)
}

/// Brands and a few of their models.
const MODELS: [(&str, &[&str]); 12] = [
    (
        "Nike",
        &[
            "Dunk Low",
            "Air Force 1 '07",
            "Air Max 1",
            "Air Max 95",
            "Vomero 5",
        ],
    ),
    (
        "Jordan",
        &[
            "Air Jordan 1 High OG",
            "Air Jordan 4 Retro",
            "Air Jordan 11",
        ],
    ),
    (
        "Adidas",
        &["Samba OG", "Gazelle Indoor", "Superstar", "Campus 00s"],
    ),
    ("New Balance", &["990v6", "2002R", "550", "1906R", "9060"]),
    (
        "Asics",
        &["Gel-Kayano 14", "Gel-1130", "GT-2160", "Gel-NYC"],
    ),
    ("Salomon", &["XT-6", "ACS Pro", "XT-4 OG"]),
    ("Hoka", &["Clifton 9", "Mafate Speed 2", "Bondi 8"]),
    ("Converse", &["Chuck 70 Hi", "Run Star Hike"]),
    ("Vans", &["Old Skool", "Sk8-Hi", "Knu Skool"]),
    ("Puma", &["Speedcat OG", "Palermo", "Suede Classic"]),
    ("Onitsuka Tiger", &["Mexico 66", "Tokuten"]),
    ("Mizuno", &["Wave Rider 10", "Contender S"]),
];

const COLOURWAYS: [&str; 16] = [
    "Panda",
    "Triple White",
    "Bred",
    "University Blue",
    "Sail",
    "Sea Salt",
    "Black Cement",
    "Grey Day",
    "Lucky Green",
    "Midnight Navy",
    "Cream Gum",
    "Volt",
    "Infrared",
    "Desert Sand",
    "Forest Green",
    "Pink Foam",
];

#[derive(Debug)]
struct NewProduct {
    partner_id: i64,
    name: String,
    brand: &'static str,
    price: i64,
    release_at: DateTime<Utc>,
    stock: i32,
    stock_remaining: i32,
    max_per_buyer: i32,
}

fn generate(rng: &mut StdRng, partner_ids: &[i64], now: DateTime<Utc>) -> NewProduct {
    let (brand, models) = MODELS[rng.gen_range(0..MODELS.len())];
    let model = models.choose(rng).copied().unwrap_or("Classic");
    let colourway = COLOURWAYS[rng.gen_range(0..COLOURWAYS.len())];
    let name = if rng.gen_bool(0.2) {
        format!("{model} '{colourway}' ({})", rng.gen_range(2019..=2026))
    } else {
        format!("{model} '{colourway}'")
    };
    // Most pairs retail between 89,000 and 450,000 KRW; one in twenty is a collector's pair.
    let price = if rng.gen_bool(0.05) {
        rng.gen_range(450..=2_500) * 1_000
    } else {
        rng.gen_range(89..=450) * 1_000
    };
    let slots = 2 * RELEASE_SPREAD_DAYS * 24 * 60 / RELEASE_SLOT_MINUTES;
    let slot = TimeDelta::minutes(RELEASE_SLOT_MINUTES);
    let start = (now - TimeDelta::days(RELEASE_SPREAD_DAYS))
        .duration_trunc(slot)
        .unwrap_or(now);
    let release_at = start + slot * i32::try_from(rng.gen_range(0..slots)).unwrap_or(0);
    let stock = if rng.gen_bool(0.1) {
        rng.gen_range(1..=20)
    } else {
        rng.gen_range(50..=500)
    };
    let stock_remaining = if release_at > now {
        stock
    } else if rng.gen_bool(SOLD_OUT_SHARE) {
        0
    } else {
        rng.gen_range(1..=stock)
    };
    NewProduct {
        partner_id: partner_ids[rng.gen_range(0..partner_ids.len())],
        name,
        brand,
        price,
        release_at,
        stock,
        stock_remaining,
        max_per_buyer: rng.gen_range(1..=2).min(stock),
    }
}

async fn insert_products(
    db: &MySqlPool,
    rng: &mut StdRng,
    partner_ids: &[i64],
    count: u32,
) -> anyhow::Result<()> {
    let bar = progress::bar(
        u64::from(count),
        "{msg:>12} [{bar:40}] {human_pos}/{human_len} products ({per_sec}, {eta} left)",
    );
    bar.set_message("generating");
    let now = Utc::now();
    let mut left = usize::try_from(count)?;
    while left > 0 {
        let rows: Vec<NewProduct> = (0..left.min(INSERT_BATCH_ROWS))
            .map(|_| generate(rng, partner_ids, now))
            .collect();
        let mut insert = QueryBuilder::new(
            "INSERT INTO products \
             (partner_id, name, brand, price, release_at, stock, stock_remaining, max_per_buyer) ",
        );
        insert.push_values(&rows, |mut row, product| {
            row.push_bind(product.partner_id)
                .push_bind(&product.name)
                .push_bind(product.brand)
                .push_bind(product.price)
                .push_bind(product.release_at)
                .push_bind(product.stock)
                .push_bind(product.stock_remaining)
                .push_bind(product.max_per_buyer);
        });
        insert.build().execute(db).await?;
        left -= rows.len();
        bar.inc(u64::try_from(rows.len())?);
    }
    bar.finish_and_clear();
    Ok(())
}
