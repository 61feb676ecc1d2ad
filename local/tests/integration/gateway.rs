//! The gateway over real HTTP: the auth flow end to end, the runner's own 404/405/413, the API
//! document, and what a handler receives (route key, path and query parameters, body, caller).

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use kicksync_local::{
    functions::{Dispatch, FUNCTION_NOT_REGISTERED, Functions},
    gateway::{self, MAX_BODY_BYTES, to_lambda_request},
    seed::{AdminAccount, seed},
};
use lambda_http::{Body, Request, RequestExt, Response, http::StatusCode};
use reqwest::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use shared::{
    Config, Platform,
    http::{client_ip, route_key},
    routes::{ROUTES, Route},
};

use crate::common::{expect_problem, expect_status, spawn_app};

#[tokio::test]
async fn a_buyer_signs_up_logs_in_refreshes_and_logs_out_over_http() {
    let app = spawn_app().await;
    let email = format!("buyer-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "correct-horse-battery";

    // GIVEN a new buyer
    let signup = app
        .post_json(
            "/auth/signup",
            &json!({"email": email, "password": password, "name": "Min-ji", "role": "buyer"}),
        )
        .await;
    let account = expect_status(signup, 201).await;
    assert_eq!(account["email"], email.as_str());
    assert_eq!(account["role"], "buyer");

    // WHEN they log in
    let login = app
        .post_json(
            "/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await;
    let tokens = expect_status(login, 200).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // THEN the access token identifies them
    let me = app
        .client
        .get(app.url("/auth/me"))
        .header(AUTHORIZATION, format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    let me = expect_status(me, 200).await;
    assert_eq!(me["id"], account["id"]);
    assert_eq!(me["name"], "Min-ji");

    // WHEN they refresh, the old refresh token is spent
    let refreshed = app
        .post_json("/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    let fresh = expect_status(refreshed, 200).await;
    let fresh_access = fresh["access_token"].as_str().unwrap().to_owned();
    let again = app
        .post_json("/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    expect_problem(again, 401, "REFRESH_TOKEN_REUSED").await;

    // WHEN they log out, that access token is refused from then on
    let logout = app
        .client
        .post(app.url("/auth/logout"))
        .header(AUTHORIZATION, format!("Bearer {fresh_access}"))
        .send()
        .await
        .unwrap();
    expect_status(logout, 204).await;
    let after = app
        .client
        .get(app.url("/auth/me"))
        .header(AUTHORIZATION, format!("Bearer {fresh_access}"))
        .send()
        .await
        .unwrap();
    expect_problem(after, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn path_parameters_reach_the_products_function_and_seeding_refreshes_its_list() {
    let app = spawn_app().await;
    let list = || async {
        let response = app.client.get(app.url("/products")).send().await.unwrap();
        expect_status(response, 200).await
    };

    // GIVEN the list was served (and cached) while empty
    assert_eq!(list().await["items"], json!([]));

    // WHEN the demo data is seeded
    let admin = AdminAccount {
        email: "admin@kicksync.local".to_owned(),
        password: "admin-password-1".to_owned(),
    };
    seed(&app.ctx.platform, &admin).await.unwrap();

    // THEN the list shows it at once
    let items = list().await["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 12);

    // AND a product is found by the id in its path
    let id = items[0]["id"].as_i64().unwrap();
    let detail = app
        .client
        .get(app.url(&format!("/products/{id}")))
        .send()
        .await
        .unwrap();
    let detail = expect_status(detail, 200).await;
    assert_eq!(detail["id"], id);
    assert_eq!(detail["name"], items[0]["name"]);
    assert!(detail["stock_remaining"].is_i64(), "{detail}");
    let missing = app
        .client
        .get(app.url("/products/987654321"))
        .send()
        .await
        .unwrap();
    expect_problem(missing, 404, "PRODUCT_NOT_FOUND").await;
}

#[tokio::test]
async fn health_answers_through_the_gateway() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    let body = expect_status(response, 200).await;
    assert_eq!(body["database"], "up");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_problems() {
    let app = spawn_app().await;

    let missing = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(missing, 404, "ROUTE_NOT_FOUND").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("GET /no/such/route")
    );

    let wrong = app.client.delete(app.url("/auth/me")).send().await.unwrap();
    assert_eq!(wrong.headers()[ALLOW], "GET");
    expect_problem(wrong, 405, "METHOD_NOT_ALLOWED").await;

    let mangled = app
        .client
        .get(app.url("/products/%FF"))
        .send()
        .await
        .unwrap();
    expect_problem(mangled, 400, "MALFORMED_PATH").await;

    // API Gateway does not answer HEAD on a GET route, and neither do we.
    let head = app.client.head(app.url("/health")).send().await.unwrap();
    assert_eq!(head.status(), 405);
}

#[tokio::test]
async fn bodies_over_a_mebibyte_are_refused_by_the_gateway_and_over_64_kib_by_the_handler() {
    let app = spawn_app().await;

    let huge = vec![b'x'; MAX_BODY_BYTES + 1];
    let response = app
        .client
        .post(app.url("/auth/signup"))
        .header(CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("1048576"),
        "{problem}"
    );

    let large = format!(r#"{{"email":"{}"}}"#, "a".repeat(100 * 1024));
    let response = app
        .client
        .post(app.url("/auth/signup"))
        .header(CONTENT_TYPE, "application/json")
        .body(large)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("65536"),
        "{problem}"
    );
}

#[tokio::test]
async fn the_api_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;

    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["info"]["title"], "KickSync");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let bearer = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");
    assert!(document["paths"]["/auth/me"]["get"].is_object());

    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let page = docs.text().await.unwrap();
    assert!(page.to_lowercase().contains("swagger"), "{page}");
}

/// A function that answers with what it was given, to see the request through its eyes.
struct Echo;

impl Dispatch for Echo {
    async fn dispatch(&self, function: &str, req: Request) -> Response<Body> {
        let query = req.query_string_parameters();
        let body = match req.body() {
            Body::Empty => json!({"kind": "empty"}),
            Body::Text(text) => json!({"kind": "text", "text": text}),
            Body::Binary(bytes) => json!({"kind": "binary", "len": bytes.len()}),
            _ => json!({"kind": "other"}),
        };
        let answer = json!({
            "function": function,
            "route_key": route_key(&req),
            "method": req.method().as_str(),
            "uri": req.uri().to_string(),
            "raw_path": req.raw_http_path(),
            "id": req.path_parameters().first("id"),
            "size": query.first("size"),
            "cursor": query.first("cursor"),
            "tags": query.all("tag"),
            "source_ip": client_ip(&req).map(|ip| ip.to_string()),
            "forwarded_for": req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()),
            "accept": req.headers().get("accept").and_then(|v| v.to_str().ok()),
            "body": body,
        });
        shared::http::json(StatusCode::OK, &answer)
    }
}

const ECHO_ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/x/{id}",
        function: "echo",
    },
    Route {
        method: "POST",
        path: "/x/{id}",
        function: "echo",
    },
];

async fn spawn_echo() -> String {
    let app: Router = gateway::router(ECHO_ROUTES, &Arc::new(Echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn handlers_see_the_request_api_gateway_would_deliver() {
    let base = spawn_echo().await;
    let client = reqwest::Client::new();

    let echoed: Value = client
        .get(format!("{base}/x/caf%C3%A9?size=40&cursor=&tag=a&tag=b"))
        .header("accept", "text/html")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["function"], "echo");
    assert_eq!(echoed["route_key"], "GET /x/{id}");
    assert_eq!(echoed["id"], "café");
    assert_eq!(echoed["raw_path"], "/x/caf%C3%A9");
    assert_eq!(echoed["size"], "40");
    assert_eq!(echoed["cursor"], "");
    assert_eq!(echoed["tags"], json!(["a", "b"]));
    assert_eq!(echoed["source_ip"], "127.0.0.1");
    assert_eq!(echoed["forwarded_for"], "127.0.0.1");
    assert_eq!(echoed["accept"], "text/html,application/json");
    assert_eq!(echoed["body"]["kind"], "empty");
    let uri = echoed["uri"].as_str().unwrap();
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    assert!(
        uri.ends_with("/x/caf%C3%A9?size=40&cursor=&tag=a&tag=b"),
        "{uri}"
    );

    let posted: Value = client
        .post(format!("{base}/x/42"))
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["route_key"], "POST /x/{id}");
    assert_eq!(posted["id"], "42");
    assert_eq!(
        posted["body"],
        json!({"kind": "text", "text": r#"{"quantity":1}"#})
    );

    let binary: Value = client
        .post(format!("{base}/x/42"))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(vec![0_u8, 159, 146, 150])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(binary["body"], json!({"kind": "binary", "len": 4}));
}

#[test]
fn the_conversion_fills_in_what_api_gateway_would() {
    let (parts, ()) = http::Request::builder()
        .method("POST")
        .uri("/x/7?size=2")
        .header("host", "localhost:3000")
        .header(CONTENT_TYPE, "application/json")
        .body(())
        .unwrap()
        .into_parts();
    let request = to_lambda_request(
        "POST /x/{id}",
        parts,
        [("id", "7")],
        br#"{"a":1}"#.to_vec(),
        Some("192.0.2.10".parse().unwrap()),
    );
    assert_eq!(route_key(&request), Some("POST /x/{id}"));
    assert_eq!(request.method(), "POST");
    assert_eq!(
        request.uri().to_string(),
        "http://localhost:3000/x/7?size=2"
    );
    assert_eq!(request.path_parameters().first("id"), Some("7"));
    assert_eq!(request.query_string_parameters().first("size"), Some("2"));
    assert_eq!(client_ip(&request), Some("192.0.2.10".parse().unwrap()));
    assert_eq!(request.headers()["x-forwarded-port"], "3000");
    assert_eq!(request.headers()["x-forwarded-proto"], "http");
    assert_eq!(request.body(), &Body::Text(r#"{"a":1}"#.to_owned()));
}

#[tokio::test]
async fn every_function_in_the_route_table_is_hosted_by_the_runner() {
    // No I/O happens: an unknown route key is refused before any store is touched.
    let config = Config::from_vars(
        [
            ("DATABASE_URL", "mysql://root@127.0.0.1:3306/unused"),
            ("JWT_SECRET", shared::testing::TEST_JWT_SECRET),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect(),
    )
    .unwrap();
    let functions = Functions::new(&Platform::new(config).unwrap())
        .await
        .unwrap();
    for route in ROUTES {
        let request = shared::testing::ApiRequest::new("GET /__probe").build();
        let response = functions.dispatch(route.function, request).await;
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_ne!(
            body["code"],
            FUNCTION_NOT_REGISTERED.as_str(),
            "{}: {body}",
            route.function
        );
        assert_eq!(
            body["code"], "ROUTE_NOT_FOUND",
            "{}: {body}",
            route.function
        );
    }
}
