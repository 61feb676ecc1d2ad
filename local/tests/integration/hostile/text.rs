//! SQL metacharacters and odd Unicode in every text the API takes: stored and read back verbatim
//! where the field allows them, 4xx where it does not, never a 5xx; and the tables they name are
//! still there afterwards.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::auth::Role;

use super::{Actor, Hostile, answered, invalid, not_a_server_error, refused};

/// `e` with 99 combining marks: 100 code points, one grapheme.
fn zalgo() -> String {
    let marks: String = ('\u{0300}'..='\u{036F}').cycle().take(99).collect();
    format!("e{marks}")
}

/// Product names the field takes (1 to 200 characters once trimmed), each to come back verbatim.
fn storable_names() -> Vec<String> {
    vec![
        "'; DROP TABLE products; --".to_owned(),
        "Robert'); DROP TABLE users;--".to_owned(),
        r#"" OR ""=""#.to_owned(),
        "1' OR '1'='1' /*".to_owned(),
        "%' OR 1=1 #".to_owned(),
        r#"100% _cotton_ \' \" \\ \0 \n"#.to_owned(),
        "nul\u{0}byte".to_owned(),
        "%00 and %27".to_owned(),
        "\u{202E}kcajih\u{202C} Jordan".to_owned(),
        "👟🔥 Air Max 1 '86 👟".to_owned(),
        "👩\u{200D}👩\u{200D}👧\u{200D}👦 family pack".to_owned(),
        zalgo(),
        "나이키 에어 조던 1 레트로 하이".to_owned(),
        "<script>alert(1)</script>".to_owned(),
        "${jndi:ldap://example.com/a}".to_owned(),
        "\u{FEFF}BOM first".to_owned(),
        "𝕂𝕚𝕔𝕜𝕊𝕪𝕟𝕔".to_owned(),
        "tab\tand\nnewline inside".to_owned(),
        "\u{200B}".to_owned(),
        "👟".repeat(200),
        "e\u{301}".repeat(100),
        "\u{FFFF}\u{FFFE}\u{10FFFF}\u{E000} noncharacters and private use".to_owned(),
    ]
}

/// Percent-encodes every byte but unreserved ones, for a path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Path segments that are no id of ours, already percent-encoded where needed.
fn hostile_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "1 OR 1=1",
        "1' OR '1'='1",
        "1; DROP TABLE orders",
        "\u{0}",
        "1\u{0}",
        "\u{202E}1",
        "👟",
        "-1",
        "0",
        "99999999999999999999",
        "1e3",
        "0x1",
        "%",
        "*",
    ]
    .iter()
    .map(|id| encode(id))
    .collect();
    ids.push("%00".to_owned());
    ids.push("x".repeat(10_000));
    ids
}

#[tokio::test]
async fn product_names_and_brands_round_trip_verbatim_or_are_refused() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let mut listed: Vec<(i64, String)> = Vec::new();
    for name in storable_names() {
        let mut body = super::product_body(&name);
        body["brand"] = json!("Nike'; --\u{202E}");
        let created = answered(
            h.post("/products").bearer_auth(&partner.token).json(&body),
            201,
        )
        .await;
        assert_eq!(created["name"], name.as_str(), "{created}");
        assert_eq!(created["brand"], "Nike'; --\u{202E}");
        let id = created["id"].as_i64().unwrap();
        let read = answered(h.get(&format!("/products/{id}")), 200).await;
        assert_eq!(read["name"], name.as_str());
        assert_eq!(read["brand"], "Nike'; --\u{202E}");
        listed.push((id, name));
    }
    // Read back through both paths of the list: MySQL (size 100) and page 1 (Redis).
    for path in ["/products?size=100", "/products", "/products"] {
        let page = answered(h.get(path), 200).await;
        for (id, name) in &listed {
            let item = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|item| item["id"] == *id)
                .unwrap_or_else(|| panic!("product {id} not listed by {path}"));
            assert_eq!(item["name"], name.as_str(), "{path}");
        }
    }

    let before = h.state().await;
    for (field, value) in [
        ("name", "x".repeat(201)),
        ("name", "x".repeat(10_000)),
        ("name", "👟".repeat(201)),
        ("name", String::new()),
        ("name", " \t\n ".to_owned()),
        ("name", "\u{00A0}\u{2003}\u{3000}".to_owned()),
        ("brand", "x".repeat(101)),
        ("brand", "e\u{301}".repeat(51)),
        ("brand", "\u{2028}".to_owned()),
    ] {
        let mut body = super::product_body("Air Max 1");
        body[field] = json!(value);
        invalid(
            h.post("/products").bearer_auth(&partner.token).json(&body),
            field,
        )
        .await;
    }
    assert_eq!(h.state().await, before);

    // An update takes the same text.
    let (id, _) = listed[0];
    let renamed = answered(
        h.request(Method::PATCH, &format!("/products/{id}"))
            .bearer_auth(&partner.token)
            .json(&json!({"name": "x'; DELETE FROM products WHERE '1'='1", "brand": "\u{0}"})),
        200,
    )
    .await;
    assert_eq!(renamed["name"], "x'; DELETE FROM products WHERE '1'='1");
    assert_eq!(renamed["brand"], "\u{0}");
    invalid(
        h.request(Method::PATCH, &format!("/products/{id}"))
            .bearer_auth(&partner.token)
            .json(&json!({"name": "x".repeat(10_000)})),
        "name",
    )
    .await;

    let count = i64::try_from(listed.len()).unwrap();
    assert_eq!(h.count("products").await, count);
    h.assert_no_secret_logged();
}

#[tokio::test]
async fn sign_up_and_login_take_metacharacters_as_text() {
    let h = Hostile::new().await;
    let tag = || uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let long_name = "ñ".repeat(100);

    // Emails, names and business names that the rules allow come back as given (emails trimmed
    // and lower-cased, names trimmed), and log in.
    let accounts = [
        (
            format!("o'hara+{}--@example.com", tag()),
            "O'Hara; DROP TABLE users;--",
            None,
        ),
        (
            format!("';drop/**/table/**/users;--{}@example.com", tag()),
            "Robert'); DROP TABLE users;--",
            None,
        ),
        (format!("\"{}\"@example.com", tag()), "\" OR \"\"=\"", None),
        (
            format!("nul\u{0}{}@example.com", tag()),
            "nul\u{0}name",
            None,
        ),
        (
            format!("\u{202E}{}@example.com", tag()),
            "\u{202E}ij-niM",
            None,
        ),
        (
            format!("{}%00@example.com", tag()),
            "👟🔥 Sneakerhead 👟",
            None,
        ),
        (format!("e\u{301}{}@example.com", tag()), "Zoe\u{308}", None),
        (format!("{}@例え.jp", tag()), "김민지", None),
        (
            format!("{}@partner.example.com", tag()),
            "Partner",
            Some("Kim's Kicks'); DELETE FROM partner_profiles;--"),
        ),
        (format!("{}@example.com", tag()), long_name.as_str(), None),
    ];
    for (email, name, business_name) in &accounts {
        let password = format!("' OR '1'='1' -- {}", tag());
        let mut body = json!({"email": email, "password": password, "name": name,
            "role": if business_name.is_some() { "partner" } else { "buyer" }});
        if let Some(business_name) = business_name {
            body["business_name"] = json!(business_name);
        }
        let (account, access, _) = h.sign_up(&body).await;
        assert_eq!(account["email"], email.to_lowercase().as_str());
        let me = answered(h.get("/auth/me").bearer_auth(&access), 200).await;
        assert_eq!(me["email"], email.to_lowercase().as_str());
        assert_eq!(me["name"], *name);
        if let Some(business_name) = business_name {
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT business_name FROM partner_profiles WHERE partner_id = ?",
            )
            .bind(me["id"].as_i64().unwrap())
            .fetch_one(&h.app.ctx.platform.db)
            .await
            .unwrap();
            assert_eq!(stored.as_deref(), Some(*business_name));
        }
    }

    // Fields the rules refuse.
    let before = h.state().await;
    let valid = || {
        json!({"email": format!("{}@example.com", tag()), "password": "sneakers-4-ever",
            "name": "Min-ji", "role": "buyer"})
    };
    for (field, value) in [
        (
            "email",
            json!(format!("{}@example.com", "x".repeat(10_000))),
        ),
        ("email", json!("' OR 1=1 --")),
        ("email", json!("admin@kicksync.local' --")),
        ("email", json!("\u{0}")),
        ("email", json!("a@b")),
        ("password", json!("x".repeat(10_000))),
        ("password", json!("short")),
        ("name", json!("x".repeat(10_000))),
        ("name", json!("\u{00A0}\u{2003}")),
        ("role", json!("admin")),
        ("role", json!("buyer' OR '1'='1")),
        ("role", json!("BUYER\u{0}")),
    ] {
        let mut body = valid();
        body[field] = value;
        invalid(h.post("/auth/signup").json(&body), field).await;
    }
    let mut partner = valid();
    partner["role"] = json!("partner");
    partner["business_name"] = json!("x".repeat(10_000));
    invalid(h.post("/auth/signup").json(&partner), "business_name").await;
    assert_eq!(h.state().await, before);

    // Fields signup does not take are ignored: no one becomes an admin by asking.
    let mut sneaky = valid();
    sneaky["role_override"] = json!("admin");
    sneaky["is_admin"] = json!(true);
    sneaky["id"] = json!(1);
    let (account, access, _) = h.sign_up(&sneaky).await;
    assert_eq!(account["role"], "buyer");
    let me = answered(h.get("/auth/me").bearer_auth(&access), 200).await;
    assert_eq!(me["role"], "buyer");
    assert_ne!(me["id"], 1);

    // Emails compare under `users.email`'s collation, which ignores case, accents and
    // characters of no weight (NUL, zero-width and direction marks): another spelling of a
    // taken email is that email, 409, never a second account or a 5xx.
    let before = h.state().await;
    let known = accounts[0].0.clone();
    for spelling in [
        known.to_uppercase(),
        format!(" {known}\t"),
        known.replacen('o', "\u{200B}o", 1),
        known.replacen('o', "\u{0}o", 1),
        known.replacen('o', "\u{202E}o", 1),
        known.replacen('o', "ó", 1),
    ] {
        refused(
            h.post("/auth/signup").json(&json!({"email": spelling,
                "password": "sneakers-4-ever", "name": "Copycat", "role": "buyer"})),
            409,
            "EMAIL_TAKEN",
        )
        .await;
    }
    assert_eq!(h.state().await, before);

    // Logins with metacharacters are wrong credentials, nothing more.
    let long_password = "x".repeat(10_000);
    for (email, password) in [
        ("' OR '1'='1".to_owned(), "' OR '1'='1"),
        ("' OR 1=1 --".to_owned(), "anything-at-all"),
        (format!("{known}' --"), "anything-at-all"),
        (known.clone(), "' OR '1'='1' --"),
        ("%".to_owned(), "anything-at-all"),
        ("_@_._".to_owned(), "anything-at-all"),
        ("\u{0}".to_owned(), "\u{0}"),
        ("x".repeat(10_000), "anything-at-all"),
        (known.clone(), long_password.as_str()),
        ("👟".to_owned(), "👟"),
    ] {
        refused(
            h.post("/auth/login")
                .json(&json!({"email": email, "password": password})),
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    assert_eq!(h.state().await, before);
    assert_eq!(h.count("users").await, 11);
    h.assert_no_secret_logged();
}

#[tokio::test]
async fn query_parameters_and_path_ids_are_4xx_whatever_they_hold() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let buyer = h.user(Role::Buyer).await;
    let admin = h.user(Role::Admin).await;
    let product = h.product(&partner).await["id"].as_i64().unwrap();
    h.checkout(&buyer, product).await;
    let before = h.state().await;

    let texts = [
        "' OR 1=1 --",
        "1; DROP TABLE orders",
        "\u{0}",
        "%00",
        "\u{202E}1",
        "👟",
        "٤٠",
        "４０",
        "1e1",
        "0x10",
        "e\u{301}",
    ];
    let long = "x".repeat(10_000);
    let texts: Vec<&str> = texts.iter().copied().chain([long.as_str()]).collect();
    for text in &texts {
        invalid(h.get("/products").query(&[("size", text)]), "size").await;
        invalid(h.get("/products").query(&[("cursor", text)]), "cursor").await;
        invalid(
            h.get("/orders")
                .query(&[("cursor", text)])
                .bearer_auth(&buyer.token),
            "cursor",
        )
        .await;
        for name in ["status", "cursor"] {
            invalid(
                h.get("/partner/orders")
                    .query(&[(name, text)])
                    .bearer_auth(&partner.token),
                name,
            )
            .await;
        }
        for name in ["from", "to"] {
            invalid(
                h.get("/partner/settlements")
                    .query(&[(name, text)])
                    .bearer_auth(&partner.token),
                name,
            )
            .await;
        }
        invalid(
            h.get("/admin/settlements")
                .query(&[("date", text)])
                .bearer_auth(&admin.token),
            "date",
        )
        .await;
    }
    for status in ["PAID' OR '1'='1", "paid", "PAID\u{0}", "PAİD", "PAID "] {
        invalid(
            h.get("/partner/orders")
                .query(&[("status", status)])
                .bearer_auth(&partner.token),
            "status",
        )
        .await;
    }
    for date in [
        "2026-01-01' OR '1'='1",
        "２０２６-０１-０１",
        "2026-02-30",
        "0000-01-01",
        "+10000-01-01",
        "-0001-01-01",
        "2026-01-01\u{202E}",
    ] {
        invalid(
            h.get("/admin/settlements")
                .query(&[("date", date)])
                .bearer_auth(&admin.token),
            "date",
        )
        .await;
    }

    for id in hostile_ids() {
        let product_path = format!("/products/{id}");
        refused(h.get(&product_path), 404, "PRODUCT_NOT_FOUND").await;
        refused(
            h.request(Method::PATCH, &product_path)
                .bearer_auth(&partner.token)
                .json(&json!({"price": 1000})),
            404,
            "PRODUCT_NOT_FOUND",
        )
        .await;
        refused(
            h.request(Method::DELETE, &product_path)
                .bearer_auth(&partner.token),
            404,
            "PRODUCT_NOT_FOUND",
        )
        .await;
        for (method, path) in [
            (Method::GET, format!("/orders/{id}")),
            (Method::POST, format!("/orders/{id}/cancel")),
            (Method::POST, format!("/orders/{id}/confirm")),
        ] {
            refused(
                h.request(method, &path).bearer_auth(&buyer.token),
                404,
                "ORDER_NOT_FOUND",
            )
            .await;
        }
        refused(
            h.post(&format!("/partner/orders/{id}/ship"))
                .bearer_auth(&partner.token),
            404,
            "ORDER_NOT_FOUND",
        )
        .await;
        refused(
            h.post(&format!("/payments/{id}/complete"))
                .bearer_auth(&buyer.token),
            404,
            "PAYMENT_NOT_FOUND",
        )
        .await;
        refused(
            h.get(&format!("/admin/settlements/runs/{id}"))
                .bearer_auth(&admin.token),
            404,
            "RUN_NOT_FOUND",
        )
        .await;
        refused(
            h.request(Method::PUT, &format!("/admin/partners/{id}/commission"))
                .bearer_auth(&admin.token)
                .json(&json!({"rate_bps": 500, "fixed_fee": 0, "effective_from": "2026-01-01"})),
            404,
            "PARTNER_NOT_FOUND",
        )
        .await;
    }
    assert_eq!(
        h.state().await,
        before,
        "a hostile id or parameter changed something"
    );

    // A cursor is valid only where it was issued.
    h.product(&partner).await;
    let page = answered(h.get("/products?size=1"), 200).await;
    let products_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let orders_cursor = URL_SAFE_NO_PAD.encode("o1:1");
    for (path, cursor, token) in [
        ("/orders", &products_cursor, &buyer.token),
        ("/partner/orders", &products_cursor, &partner.token),
        ("/products", &orders_cursor, &buyer.token),
    ] {
        invalid(
            h.get(path).query(&[("cursor", cursor)]).bearer_auth(token),
            "cursor",
        )
        .await;
    }
    let before = h.state().await;

    // Query strings and paths no client library would write: never a 5xx.
    for raw in [
        "/products?size=%FF",
        "/products?size=%",
        "/products?size=%%30",
        "/products?cursor=%C0%AF",
        "/products?%00=%00",
        "/products?size[]=1&cursor[$ne]=",
        "/products?size=1&size=1000",
        "/products/1/",
        "//products/1",
        "/products/./1",
        "/products/1%2F2",
        "/products/%2e%2e/orders",
        "/PRODUCTS/1",
    ] {
        let (status, answer) = not_a_server_error(h.get(raw)).await;
        assert!(status < 500, "{raw}: {status} {answer}");
    }
    for raw in [
        "/orders?cursor=%FF",
        "/partner/orders?status=%FF",
        "/admin/settlements?date=%FF",
        "/partner/settlements?from=%FF",
    ] {
        let token = if raw.starts_with("/orders") {
            &buyer.token
        } else if raw.starts_with("/admin") {
            &admin.token
        } else {
            &partner.token
        };
        refused(h.get(raw).bearer_auth(token), 422, "VALIDATION").await;
    }
    assert_eq!(
        h.state().await,
        before,
        "a hostile id or parameter changed something"
    );
    h.assert_no_secret_logged();
}

/// A checkout of one unit with `key` as its Idempotency-Key header (raw bytes).
async fn checkout_with_key(h: &Hostile, buyer: &Actor, product: i64, key: &[u8]) -> (u16, Value) {
    let mut request = h
        .post("/orders")
        .bearer_auth(&buyer.token)
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}));
    if let Ok(value) = reqwest::header::HeaderValue::from_bytes(key) {
        request = request.header("idempotency-key", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn idempotency_keys_are_printable_ascii_compared_byte_for_byte() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let buyer = h.user(Role::Buyer).await;
    let mut body = super::product_body("Dunk Low 'Panda'");
    body["stock"] = json!(100);
    body["max_per_buyer"] = json!(100);
    let product = answered(
        h.post("/products").bearer_auth(&partner.token).json(&body),
        201,
    )
    .await["id"]
        .as_i64()
        .unwrap();

    // Keys with metacharacters are keys like any other: stored as they are, replayed by them.
    let keys = [
        "' OR 1=1 --",
        "'; DROP TABLE payments; --",
        "%00%00%00%00",
        "ck:{u1}:*\\\"",
    ];
    for key in keys {
        let (status, first) = checkout_with_key(&h, &buyer, product, key.as_bytes()).await;
        assert_eq!(status, 201, "{key}: {first}");
        let (status, replay) = checkout_with_key(&h, &buyer, product, key.as_bytes()).await;
        assert_eq!(status, 201, "{key}: {replay}");
        assert_eq!(replay, first, "{key}");
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT idempotency_key FROM payments WHERE id = ?")
                .bind(first["payment_id"].as_str().unwrap())
                .fetch_one(&h.app.ctx.platform.db)
                .await
                .unwrap();
        assert_eq!(stored, key.as_bytes(), "{key}");
    }
    assert_eq!(h.count("payments").await, 4);
    // The same key with other items is refused, and writes nothing.
    let before = h.state().await;
    let other = h
        .post("/orders")
        .bearer_auth(&buyer.token)
        .header("idempotency-key", keys[0])
        .json(&json!({"items": [{"product_id": product, "quantity": 2}]}));
    invalid(other, "Idempotency-Key").await;
    assert_eq!(h.state().await, before);

    let before = h.state().await;
    for key in [
        "\u{202E}abcdefgh".as_bytes(),
        "👟👟👟👟".as_bytes(),
        b"abc\tdefgh",
        b"\x80\x81\x82\x83\x84\x85\x86\x87",
        b"short",
        "x".repeat(129).as_bytes(),
        "x".repeat(10_000).as_bytes(),
    ] {
        let (status, problem) = checkout_with_key(&h, &buyer, product, key).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], "IDEMPOTENCY_KEY_REQUIRED");
    }
    assert_eq!(h.state().await, before);
    h.assert_no_secret_logged();
}
