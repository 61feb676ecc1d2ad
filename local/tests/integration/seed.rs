//! The demo data: complete on the first run, unchanged by the next.

use kicksync_local::seed::{AdminAccount, BUYER_EMAIL, DEMO_PASSWORD, seed};
use shared::{domain::auth::verify_password, testing::TestContext};

#[tokio::test]
async fn seeding_twice_creates_the_demo_data_once() {
    let ctx = TestContext::new().await;
    let db = &ctx.platform.db;
    let admin = AdminAccount {
        email: "Admin@KickSync.local".to_owned(),
        password: "admin-password-1".to_owned(),
    };

    let first = seed(&ctx.platform, &admin).await.unwrap();
    assert_eq!(first.accounts.len(), 4);
    assert!(first.accounts.iter().all(|(_, _, created)| *created));
    assert_eq!(first.products_created, 12);

    let second = seed(&ctx.platform, &admin).await.unwrap();
    assert!(second.accounts.iter().all(|(_, _, created)| !*created));
    assert_eq!(second.products_created, 0);

    let roles: Vec<(String, String)> =
        sqlx::query_as("SELECT email, role FROM users ORDER BY email")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        roles,
        [
            ("admin@kicksync.local", "admin"),
            ("buyer@kicksync.local", "buyer"),
            ("partner-nike@kicksync.local", "partner"),
            ("partner-seoul@kicksync.local", "partner"),
        ]
        .map(|(email, role)| (email.to_owned(), role.to_owned()))
    );
    let (admin_hash,): (String,) =
        sqlx::query_as("SELECT password_hash FROM users WHERE email = 'admin@kicksync.local'")
            .fetch_one(db)
            .await
            .unwrap();
    assert!(verify_password("admin-password-1", &admin_hash));
    let (buyer_hash,): (String,) =
        sqlx::query_as("SELECT password_hash FROM users WHERE email = ?")
            .bind(BUYER_EMAIL)
            .fetch_one(db)
            .await
            .unwrap();
    assert!(verify_password(DEMO_PASSWORD, &buyer_hash));

    let (profiles,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM partner_profiles")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(profiles, 2);
    let per_partner: Vec<(i64,)> =
        sqlx::query_as("SELECT COUNT(*) FROM products GROUP BY partner_id")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(per_partner, [(6,), (6,)]);
    let (mismatched, released, upcoming): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(stock_remaining <> stock) AS SIGNED), \
                CAST(SUM(release_at <= UTC_TIMESTAMP(6)) AS SIGNED), \
                CAST(SUM(release_at > UTC_TIMESTAMP(6)) AS SIGNED) FROM products",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    assert!(
        released > 0 && upcoming > 0,
        "{released} released, {upcoming} upcoming"
    );
}

#[tokio::test]
async fn an_existing_admin_is_left_alone() {
    let ctx = TestContext::new().await;
    let db = &ctx.platform.db;
    sqlx::query(
        "INSERT INTO users (email, password_hash, name, role) VALUES (?, 'x', 'Boss', 'admin')",
    )
    .bind("boss@kicksync.local")
    .execute(db)
    .await
    .unwrap();
    let admin = AdminAccount {
        email: "boss@kicksync.local".to_owned(),
        password: "a-new-password-1".to_owned(),
    };
    let report = seed(&ctx.platform, &admin).await.unwrap();
    assert!(!report.accounts[0].2);
    let (hash, name): (String, String) =
        sqlx::query_as("SELECT password_hash, name FROM users WHERE email = 'boss@kicksync.local'")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!((hash.as_str(), name.as_str()), ("x", "Boss"));
}

#[tokio::test]
async fn a_short_admin_password_is_refused() {
    let ctx = TestContext::new().await;
    let admin = AdminAccount {
        email: "admin@kicksync.local".to_owned(),
        password: "short".to_owned(),
    };
    assert!(seed(&ctx.platform, &admin).await.is_err());
}
