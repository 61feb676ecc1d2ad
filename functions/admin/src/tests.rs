//! The admin function against real MariaDB and moto_server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shared::{
    adapters::settlements::SettlementRow,
    domain::settlement::Payout,
    testing::{ApiRequest, TestContext, aws::TestAws, body_json, problem_code},
};

use super::*;

struct App {
    ctx: TestContext,
    _aws: TestAws,
    deps: Deps,
}

impl App {
    async fn new() -> Self {
        let aws = TestAws::new(30).await;
        let ctx = TestContext::with_vars(&aws.vars()).await;
        let deps = Deps::new(&ctx.platform, &aws.sdk);
        Self {
            ctx,
            _aws: aws,
            deps,
        }
    }

    async fn call(&self, req: ApiRequest) -> Response<Body> {
        handle(&self.deps, req.build()).await
    }

    async fn settlement(&self, partner_id: i64, date: &str, gross: i64) {
        let row = SettlementRow::new(
            partner_id,
            date.parse().unwrap(),
            "run-x",
            Payout {
                order_count: 1,
                gross_amount: gross,
                commission: gross / 10,
                payout: gross - gross / 10,
            },
        );
        let mut conn = self.ctx.platform.db.acquire().await.unwrap();
        settlements::insert_settlements(&mut conn, &[row])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn settlement_routes_check_authentication_then_role() {
    let app = App::new().await;
    let (_, buyer) = app.ctx.user(Role::Buyer).await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let anonymous = app
        .call(ApiRequest::new("GET /admin/settlements").query("date", "2026-03-15"))
        .await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(problem_code(&anonymous), "UNAUTHENTICATED");
    // Role before validation: a buyer with a bad body is still 403.
    let buyer_put = app
        .call(
            ApiRequest::new("PUT /admin/partners/{id}/commission")
                .path_param("id", "1")
                .bearer(&buyer)
                .json(&json!({"rate_bps": -1})),
        )
        .await;
    assert_eq!(buyer_put.status(), 403);
    assert_eq!(problem_code(&buyer_put), "FORBIDDEN");
    let admin_as_partner = app
        .call(ApiRequest::new("GET /partner/settlements").bearer(&admin))
        .await;
    assert_eq!(admin_as_partner.status(), 403);
    assert_eq!(problem_code(&admin_as_partner), "FORBIDDEN");
}

#[tokio::test]
async fn admins_set_commission_policies() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let put = |id: String, body: Value| {
        ApiRequest::new("PUT /admin/partners/{id}/commission")
            .path_param("id", &id)
            .bearer(&admin)
            .json(&body)
    };
    let body = json!({"rate_bps": 1250, "fixed_fee": 300, "effective_from": "2026-03-15"});
    let ok = app.call(put(partner.to_string(), body.clone())).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(body_json(&ok)["rate_bps"], 1250);
    // Setting the same date again replaces the policy.
    let again = json!({"rate_bps": 900, "fixed_fee": 0, "effective_from": "2026-03-15"});
    assert_eq!(
        app.call(put(partner.to_string(), again)).await.status(),
        200
    );
    let mut conn = app.ctx.platform.db.acquire().await.unwrap();
    let policies = settlements::policies_in_force(&mut conn, "2026-03-20".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(policies[&partner].rate_bps, 900);

    let invalid = json!({"rate_bps": 10001, "fixed_fee": -5, "effective_from": "2026-03-15"});
    let refused = app.call(put(partner.to_string(), invalid.clone())).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(problem_code(&refused), "VALIDATION");
    // Validation before existence.
    assert_eq!(app.call(put("999999".into(), invalid)).await.status(), 422);
    let missing = app.call(put("999999".into(), body)).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(problem_code(&missing), "PARTNER_NOT_FOUND");
}

#[tokio::test]
async fn admins_start_a_run_once_and_follow_it() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let start = || {
        ApiRequest::new("POST /admin/settlements/runs")
            .bearer(&admin)
            .json(&json!({"date": "2026-03-15"}))
    };
    let accepted = app.call(start()).await;
    assert_eq!(accepted.status(), 202);
    let run = body_json(&accepted);
    assert_eq!(run["date"], "2026-03-15");
    assert_eq!(run["partitions"], 8);
    let conflict = app.call(start()).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(problem_code(&conflict), "RUN_IN_PROGRESS");

    let run_id = run["run_id"].as_str().unwrap();
    let detail = app
        .call(
            ApiRequest::new("GET /admin/settlements/runs/{run_id}")
                .path_param("run_id", run_id)
                .bearer(&admin),
        )
        .await;
    assert_eq!(detail.status(), 200);
    let detail = body_json(&detail);
    assert_eq!(detail["status"], "RUNNING");
    assert_eq!(detail["partitions_done"], 0);
    let unknown = app
        .call(
            ApiRequest::new("GET /admin/settlements/runs/{run_id}")
                .path_param("run_id", "nope")
                .bearer(&admin),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(problem_code(&unknown), "RUN_NOT_FOUND");

    // Without a body: yesterday in Seoul.
    let default = app
        .call(ApiRequest::new("POST /admin/settlements/runs").bearer(&admin))
        .await;
    assert_eq!(default.status(), 202);
    assert_eq!(
        body_json(&default)["date"],
        default_date(Utc::now()).to_string()
    );
}

#[tokio::test]
async fn settlements_are_listed_by_day_for_admins_and_by_range_for_their_partner() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let (partner, partner_token) = app.ctx.user(Role::Partner).await;
    let (other, _) = app.ctx.user(Role::Partner).await;
    app.settlement(partner, "2026-03-14", 10_000).await;
    app.settlement(partner, "2026-03-15", 20_000).await;
    app.settlement(other, "2026-03-15", 30_000).await;

    let day = app
        .call(
            ApiRequest::new("GET /admin/settlements")
                .query("date", "2026-03-15")
                .bearer(&admin),
        )
        .await;
    let items = body_json(&day)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["settlement_date"], "2026-03-15");
    assert_eq!(items[0]["payout"], 18_000);
    let no_date = app
        .call(ApiRequest::new("GET /admin/settlements").bearer(&admin))
        .await;
    assert_eq!(no_date.status(), 422);
    assert_eq!(problem_code(&no_date), "VALIDATION");

    let own = app
        .call(
            ApiRequest::new("GET /partner/settlements")
                .query("from", "2026-03-01")
                .query("to", "2026-03-31")
                .bearer(&partner_token),
        )
        .await;
    let items = body_json(&own)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|item| item["partner_id"] == partner));
    let backwards = app
        .call(
            ApiRequest::new("GET /partner/settlements")
                .query("from", "2026-03-31")
                .query("to", "2026-03-01")
                .bearer(&partner_token),
        )
        .await;
    assert_eq!(backwards.status(), 422);
    assert_eq!(problem_code(&backwards), "VALIDATION");
}

#[tokio::test]
async fn the_sample_api_gateway_event_starts_a_run() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/admin/start-run.json")).unwrap();
    event["headers"]["authorization"] = json!(format!("Bearer {admin}"));
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = handle(&app.deps, request).await;
    assert_eq!(response.status(), 202, "{:?}", body_json(&response));
    let run = body_json(&response);
    assert_eq!(run["date"], "2026-11-23");
    assert_eq!(run["partitions"], 8);
}

#[tokio::test]
async fn every_admin_route_in_the_table_is_handled() {
    let app = App::new().await;
    for route in shared::routes::routes_of(shared::routes::ADMIN) {
        let response = app.call(ApiRequest::new(&route.key())).await;
        assert_ne!(
            problem_code(&response),
            "ROUTE_NOT_FOUND",
            "{} is in the route table but not handled",
            route.key()
        );
    }
}

/// The Seoul date `days` after today (negative: before), as the API writes it.
fn seoul_date(days: i64) -> String {
    (shared::domain::settlement::settlement_date_of(Utc::now()) + Duration::days(days)).to_string()
}

fn assert_invalid(response: &Response<Body>, field: &str, what: &str) {
    assert_eq!(response.status(), 422, "{what}: {:?}", body_json(response));
    assert_eq!(problem_code(response), "VALIDATION", "{what}");
    assert_eq!(body_json(response)["errors"][0]["field"], field, "{what}");
}

/// Dates that parse but that MySQL cannot hold are refused as input, never sent to the driver.
const UNSTORABLE_DATES: [&str; 6] = [
    "-1-01-01",
    "-0001-01-01",
    "0000-12-31",
    "+10000-01-01",
    "+99999-01-01",
    "99999-01-01",
];

#[tokio::test]
async fn a_date_of_a_year_mysql_cannot_hold_is_422_naming_the_parameter() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let (_, partner) = app.ctx.user(Role::Partner).await;
    for date in UNSTORABLE_DATES {
        let day = app
            .call(
                ApiRequest::new("GET /admin/settlements")
                    .query("date", date)
                    .bearer(&admin),
            )
            .await;
        assert_invalid(&day, "date", date);
        for (name, other, other_value) in
            [("from", "to", "2026-03-31"), ("to", "from", "2026-03-01")]
        {
            let range = app
                .call(
                    ApiRequest::new("GET /partner/settlements")
                        .query(name, date)
                        .query(other, other_value)
                        .bearer(&partner),
                )
                .await;
            assert_invalid(&range, name, &format!("{name}={date}"));
            let alone = app
                .call(
                    ApiRequest::new("GET /partner/settlements")
                        .query(name, date)
                        .bearer(&partner),
                )
                .await;
            assert_invalid(&alone, name, &format!("{name}={date} alone"));
        }
    }
    // The first and last days of years 1 and 9999 are fine, and so is a default `from` that
    // would fall before year 1.
    for (query, value) in [("date", "0001-01-01"), ("date", "9999-12-31")] {
        let ok = app
            .call(
                ApiRequest::new("GET /admin/settlements")
                    .query(query, value)
                    .bearer(&admin),
            )
            .await;
        assert_eq!(ok.status(), 200, "{value}: {:?}", body_json(&ok));
    }
    for query in [
        vec![("from", "0001-01-01"), ("to", "0001-12-31")],
        vec![("from", "9999-01-01"), ("to", "9999-12-31")],
        vec![("to", "0001-01-10")],
    ] {
        let mut req = ApiRequest::new("GET /partner/settlements").bearer(&partner);
        for (name, value) in &query {
            req = req.query(name, value);
        }
        let ok = app.call(req).await;
        assert_eq!(ok.status(), 200, "{query:?}: {:?}", body_json(&ok));
    }
}

#[tokio::test]
async fn a_commission_effective_from_a_year_mysql_cannot_hold_is_422_and_changes_nothing() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let (partner, _) = app.ctx.user(Role::Partner).await;
    let put = |effective_from: &str| {
        ApiRequest::new("PUT /admin/partners/{id}/commission")
            .path_param("id", &partner.to_string())
            .bearer(&admin)
            .json(&json!({"rate_bps": 500, "fixed_fee": 0, "effective_from": effective_from}))
    };
    for date in UNSTORABLE_DATES {
        assert_invalid(&app.call(put(date)).await, "effective_from", date);
    }
    let (policies,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM commission_policies")
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(policies, 0, "nothing was written");
    for date in ["0001-01-01", "9999-12-31"] {
        let ok = app.call(put(date)).await;
        assert_eq!(ok.status(), 200, "{date}: {:?}", body_json(&ok));
    }
}

fn run_request(admin: &str, date: &str) -> ApiRequest {
    ApiRequest::new("POST /admin/settlements/runs")
        .bearer(admin)
        .json(&json!({ "date": date }))
}

async fn runs_started(app: &App) -> i64 {
    let (runs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM settlement_runs")
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    runs
}

#[tokio::test]
async fn a_run_date_mysql_cannot_hold_whole_is_422_and_starts_nothing() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let mut refused: Vec<&str> = UNSTORABLE_DATES.to_vec();
    // Days whose first hours (Seoul is ahead of UTC) fall before the instants MySQL can store.
    refused.extend(["0001-01-01", "0999-06-01", "1000-01-01"]);
    for date in refused {
        assert_invalid(&app.call(run_request(&admin, date)).await, "date", date);
    }
    assert_eq!(runs_started(&app).await, 0, "no run was started");
    // The earliest day MySQL holds whole.
    let accepted = app.call(run_request(&admin, "1000-01-02")).await;
    assert_eq!(accepted.status(), 202, "{:?}", body_json(&accepted));
}

#[tokio::test]
async fn a_run_of_a_day_that_has_not_ended_in_seoul_is_422_and_starts_nothing() {
    let app = App::new().await;
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let today = seoul_date(0);
    for date in [today.clone(), seoul_date(1), "9999-12-31".to_owned()] {
        assert_invalid(&app.call(run_request(&admin, &date)).await, "date", &date);
    }
    assert_eq!(runs_started(&app).await, 0, "no run was started");
    assert_eq!(
        app.deps
            .run_starter
            .runs()
            .lock(today.parse().unwrap())
            .await
            .unwrap(),
        None,
        "today's lock was not taken"
    );
    // Yesterday in Seoul has ended.
    let yesterday = seoul_date(-1);
    let accepted = app.call(run_request(&admin, &yesterday)).await;
    assert_eq!(accepted.status(), 202, "{:?}", body_json(&accepted));
    assert_eq!(body_json(&accepted)["date"], yesterday);
}

#[tokio::test]
async fn a_run_that_could_not_start_tells_admins_a_generic_error_not_the_drivers() {
    let aws = TestAws::new(30).await;
    // A queue that does not exist: the run is recorded, then sending its partitions fails.
    let missing_queue = format!("{}-missing", aws.queue_url);
    let ctx = TestContext::with_vars(&[
        ("SETTLEMENT_RUNS_TABLE", aws.table.as_str()),
        ("SETTLEMENT_QUEUE_URL", missing_queue.as_str()),
    ])
    .await;
    let deps = Deps::new(&ctx.platform, &aws.sdk);
    let app = App {
        ctx,
        _aws: aws,
        deps,
    };
    let (_, admin) = app.ctx.user(Role::Admin).await;
    let started = app
        .call(
            ApiRequest::new("POST /admin/settlements/runs")
                .bearer(&admin)
                .json(&json!({"date": "2026-03-15"})),
        )
        .await;
    assert_eq!(started.status(), 500);
    assert_eq!(problem_code(&started), "INTERNAL");

    let (run_id,): (String,) = sqlx::query_as("SELECT id FROM settlement_runs")
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    let detail = app
        .call(
            ApiRequest::new("GET /admin/settlements/runs/{run_id}")
                .path_param("run_id", &run_id)
                .bearer(&admin),
        )
        .await;
    assert_eq!(detail.status(), 200);
    let detail = body_json(&detail);
    assert_eq!(detail["status"], "FAILED");
    let error = detail["error"].as_str().unwrap();
    assert_eq!(
        error,
        format!("the run failed to start; see the logs for run {run_id}")
    );
    for leak in [
        "SQS",
        "queue",
        "service error",
        "dispatch",
        "database",
        "127.0.0.1",
    ] {
        assert!(
            !error.to_lowercase().contains(&leak.to_lowercase()),
            "{leak} in {error}"
        );
    }
}
