//! Bodies on every route that takes one: over 64 KiB is 413 `PAYLOAD_TOO_LARGE`, not JSON is 415,
//! unparseable JSON is 400 `MALFORMED_JSON`, JSON that is not an object is 422, and an unknown
//! field is 422 where the body's type refuses them. Nothing changes, and the caller's tokens
//! still work afterwards (no refused logout logged anyone out).

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use shared::{domain::auth::Role, http::MAX_BODY_BYTES};

use super::{Hostile, answered, invalid, not_a_server_error, raw, refused};

/// One route that reads a body, how to call it, and what it does with one.
struct BodyRoute<'a> {
    name: &'static str,
    request: Box<dyn Fn() -> RequestBuilder + 'a>,
    /// Absent, empty or blank bodies mean "no body" here (logout, a settlement run): those are
    /// not sent, since they would be accepted.
    optional: bool,
    /// A valid body, for routes whose body type refuses unknown fields.
    strict: Option<Value>,
}

/// A JSON object of exactly `len` bytes.
fn object_of(len: usize) -> Vec<u8> {
    let frame = r#"{"pad":""}"#.len();
    let mut body = br#"{"pad":""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', len - frame));
    body.extend_from_slice(br#""}"#);
    assert_eq!(body.len(), len);
    body
}

fn malformed() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        r#"{"email":"#,
        "{'email': 'a@b.co'}",
        r#"{"email":"a@b.co",}"#,
        r#"{"email":"a@b.co"}}"#,
        r#"{"email":"a@b.co"} {}"#,
        r#"{email:"a@b.co"}"#,
        r#"{"email":"\x"}"#,
        "{\"email\":\"\u{1}\"}",
        r#"{"n":NaN}"#,
        "{",
        "}",
        "nul",
        "\u{FEFF}{}",
        "<xml/>",
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"email\":\"\xff\xfe\"}".to_vec());
    bodies.push("[".repeat(10_000).into_bytes());
    bodies.push(format!(r#"{{"a":{}"#, r#"{"a":"#.repeat(5_000)).into_bytes());
    bodies
}

const NOT_OBJECTS: &[&str] = &[
    "[]",
    "[1,2]",
    r#"["a@b.co","password1234"]"#,
    r#""a string""#,
    "42",
    "-1.5",
    "true",
    "null",
];

async fn check_route(route: &BodyRoute<'_>) {
    let name = route.name;
    let request = || (route.request)();

    // Too large: 413 whatever the body and its type say.
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        refused(
            raw(request(), content_type, object_of(MAX_BODY_BYTES + 1)),
            413,
            "PAYLOAD_TOO_LARGE",
        )
        .await;
    }
    refused(
        raw(
            request(),
            Some("application/json"),
            vec![b' '; MAX_BODY_BYTES + 1],
        ),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // Not JSON: 415.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("application/jsonp"),
        Some("json"),
        Some(""),
        None,
    ] {
        refused(
            raw(request(), content_type, br#"{"email":"a@b.co"}"#.to_vec()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .await;
    }

    // Unparseable: 400.
    let mut bodies = malformed();
    if !route.optional {
        bodies.push(Vec::new());
        bodies.push(b"  \n ".to_vec());
    }
    for body in bodies {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let problem = refused(
            raw(request(), Some("application/json"), body),
            400,
            "MALFORMED_JSON",
        )
        .await;
        assert!(problem["detail"].is_string(), "{name} {shown}: {problem}");
    }

    // A lone surrogate is JSON's grammar but no text: a 4xx where it must be read, and nothing
    // where it is ignored (an optional body's unknown field).
    if !route.optional {
        let (status, problem) = not_a_server_error(raw(
            request(),
            Some("application/json"),
            br#"{"email":"\ud800","name":"\udfff"}"#.to_vec(),
        ))
        .await;
        assert!((400..500).contains(&status), "{name}: {status} {problem}");
    }

    // JSON, but not an object: 422.
    for body in NOT_OBJECTS {
        refused(
            raw(
                request(),
                Some("application/json"),
                body.as_bytes().to_vec(),
            ),
            422,
            "VALIDATION",
        )
        .await;
    }

    // An unknown field, where the body refuses them: 422 naming it.
    if let Some(valid) = &route.strict {
        for unknown in [
            "is_admin",
            "partner_id",
            "stock_remaining",
            "' OR 1=1 --",
            "",
        ] {
            let mut body = valid.clone();
            body[unknown] = json!(true);
            let problem = refused(request().json(&body), 422, "VALIDATION").await;
            let errors = problem["errors"].to_string();
            assert!(
                errors.contains("unknown field"),
                "{name} {unknown}: {problem}"
            );
        }
    }
}

#[tokio::test]
async fn bodies_too_large_not_json_malformed_or_not_objects_are_refused_everywhere() {
    let h = Hostile::new().await;
    let partner = h.user(Role::Partner).await;
    let admin = h.user(Role::Admin).await;
    let email = format!("bodies-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let (_, buyer_token, refresh) = h
        .sign_up(&json!({"email": email, "password": password, "name": "Min-ji", "role": "buyer"}))
        .await;
    let product = h.product(&partner).await;
    let id = product["id"].as_i64().unwrap();
    let before = h.state().await;

    let routes = [
        BodyRoute {
            name: "POST /auth/signup",
            request: Box::new(|| h.post("/auth/signup")),
            optional: false,
            strict: None,
        },
        BodyRoute {
            name: "POST /auth/login",
            request: Box::new(|| h.post("/auth/login")),
            optional: false,
            strict: None,
        },
        BodyRoute {
            name: "POST /auth/refresh",
            request: Box::new(|| h.post("/auth/refresh")),
            optional: false,
            strict: None,
        },
        BodyRoute {
            name: "POST /auth/logout",
            request: Box::new(|| h.post("/auth/logout").bearer_auth(&buyer_token)),
            optional: true,
            strict: None,
        },
        BodyRoute {
            name: "POST /products",
            request: Box::new(|| h.post("/products").bearer_auth(&partner.token)),
            optional: false,
            strict: Some(super::product_body("Air Max 90")),
        },
        BodyRoute {
            name: "PATCH /products/{id}",
            request: Box::new(|| {
                h.request(Method::PATCH, &format!("/products/{id}"))
                    .bearer_auth(&partner.token)
            }),
            optional: false,
            strict: Some(json!({"price": 199_000})),
        },
        BodyRoute {
            name: "POST /orders",
            request: Box::new(|| {
                h.post("/orders")
                    .bearer_auth(&buyer_token)
                    .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            }),
            optional: false,
            strict: Some(json!({"items": [{"product_id": id, "quantity": 1}]})),
        },
        BodyRoute {
            name: "PUT /admin/partners/{id}/commission",
            request: Box::new(|| {
                h.request(
                    Method::PUT,
                    &format!("/admin/partners/{}/commission", partner.id),
                )
                .bearer_auth(&admin.token)
            }),
            optional: false,
            strict: Some(json!({"rate_bps": 500, "fixed_fee": 0, "effective_from": "2026-01-01"})),
        },
        BodyRoute {
            name: "POST /admin/settlements/runs",
            request: Box::new(|| h.post("/admin/settlements/runs").bearer_auth(&admin.token)),
            optional: true,
            // A valid run date would start a run; one that has not ended is refused only after
            // the body's shape is checked, so its unknown field is what is refused.
            strict: Some(json!({"date": "2999-01-01"})),
        },
    ];
    for route in &routes {
        check_route(route).await;
    }

    // At the limit is not too large: read, and refused for what it says.
    invalid(
        raw(
            h.post("/auth/signup"),
            Some("application/json"),
            object_of(MAX_BODY_BYTES),
        ),
        "email",
    )
    .await;
    // Types other than `application/json` that are JSON are read as JSON.
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/problem+json",
    ] {
        invalid(
            raw(
                h.post("/auth/signup"),
                Some(content_type),
                br#"{"email":"a@b","password":"sneakers-4-ever","name":"Min-ji","role":"buyer"}"#
                    .to_vec(),
            ),
            "email",
        )
        .await;
    }

    assert_eq!(h.state().await, before, "a refused body changed something");
    // No refused logout took: the buyer's tokens still work.
    answered(h.get("/auth/me").bearer_auth(&buyer_token), 200).await;
    let tokens = answered(
        h.post("/auth/refresh")
            .json(&json!({"refresh_token": refresh})),
        200,
    )
    .await;
    h.access_token(tokens["access_token"].as_str().unwrap());
    h.refresh_token(tokens["refresh_token"].as_str().unwrap());
    assert_eq!(
        answered(h.get(&format!("/products/{id}")), 200).await,
        product
    );
    h.assert_no_secret_logged();
}
