//! The `admin` function: commission policies, settlement runs and settlement results.
//!
//! - `PUT /admin/partners/{id}/commission` sets a partner's policy from `effective_from` on
//!   (setting one for the same date again replaces it).
//! - `POST /admin/settlements/runs` starts a run through [`start_run`], as the nightly schedule
//!   does (202; 409 `RUN_IN_PROGRESS` while a live run holds the day; 422 for a day that has not
//!   ended in Asia/Seoul, see [`check_run_date`]). An admin may re-run a settled day; its
//!   settlements are then recomputed and replaced.
//! - `GET /admin/settlements/runs/{run_id}` and `GET /admin/settlements?date=` for admins,
//!   `GET /partner/settlements?from=&to=` for a partner's own payouts.
//!
//! Checks run authentication → role → validation → existence, as everywhere. Dates are checked to
//! be ones MySQL can hold ([`dates`]) before any query sees them.

mod store;

use aws_config::SdkConfig;
use chrono::{Duration, NaiveDate, Utc};
use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    ApiError, Platform,
    adapters::settlements::{self, SettlementRow},
    domain::{
        auth::Role,
        dates,
        settlement::{CommissionPolicy, RunStatus, Trigger, check_run_date, default_date},
    },
    error::{Problem, ProblemCode},
    http::{json, json_body, optional_json_body, path_param, query_param, respond, route_key},
    services::settlement_run::{RunStarted, RunStarter, StartOutcome, start_run},
};
use utoipa::{OpenApi, ToSchema};

/// The longest range a partner may ask for at once.
const MAX_PARTNER_RANGE_DAYS: i64 = 366;
/// The range a partner gets without `from`: the last 30 days.
const DEFAULT_PARTNER_RANGE_DAYS: i64 = 30;

#[derive(Debug)]
pub struct Deps {
    platform: Platform,
    run_starter: RunStarter,
}

impl Deps {
    pub fn new(platform: &Platform, sdk: &SdkConfig) -> Self {
        Self {
            platform: platform.clone(),
            run_starter: RunStarter::new(platform, sdk),
        }
    }
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let result = match route_key(&req) {
        Some("PUT /admin/partners/{id}/commission") => set_commission(deps, &req).await,
        Some("POST /admin/settlements/runs") => start(deps, &req).await,
        Some("GET /admin/settlements/runs/{run_id}") => run_detail(deps, &req).await,
        Some("GET /admin/settlements") => day_settlements(deps, &req).await,
        Some("GET /partner/settlements") => partner_settlements(deps, &req).await,
        other => Err(ApiError::RouteNotFound(
            other.unwrap_or_default().to_owned(),
        )),
    };
    respond(result)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommissionRequest {
    /// Basis points of the day's gross, 0 to 10000.
    rate_bps: i64,
    /// KRW per order, ≥ 0.
    fixed_fee: i64,
    /// YYYY-MM-DD (Asia/Seoul), years 1 to 9999: the first day the policy applies to.
    effective_from: NaiveDate,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Commission {
    partner_id: i64,
    rate_bps: i64,
    fixed_fee: i64,
    effective_from: NaiveDate,
}

#[utoipa::path(put, path = "/admin/partners/{id}/commission", tag = "settlements",
    params(("id" = i64, Path, description = "the partner's user id")), request_body = CommissionRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Commission), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "PARTNER_NOT_FOUND", body = Problem), (status = 422, body = Problem)))]
async fn set_commission(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Admin])?;
    let body: CommissionRequest = json_body(req)?;
    let policy = CommissionPolicy {
        rate_bps: body.rate_bps,
        fixed_fee: body.fixed_fee,
    }
    .validate();
    let effective_from = dates::check_date("effective_from", body.effective_from);
    let (policy, effective_from) = match (policy, effective_from) {
        (Ok(policy), Ok(effective_from)) => (policy, effective_from),
        (policy, effective_from) => {
            let mut errors = policy.err().unwrap_or_default();
            errors.extend(effective_from.err());
            return Err(ApiError::Validation(errors));
        }
    };
    let partner_not_found = ApiError::NotFound {
        code: ProblemCode::PartnerNotFound,
    };
    let Some(partner_id) = path_param(req, "id").and_then(|id| id.parse::<i64>().ok()) else {
        return Err(partner_not_found);
    };
    if !store::partner_exists(&deps.platform.db, partner_id).await? {
        return Err(partner_not_found);
    }
    settlements::upsert_policy(&deps.platform.db, partner_id, policy, effective_from).await?;
    tracing::info!(partner_id, rate_bps = policy.rate_bps, fixed_fee = policy.fixed_fee,
        %effective_from, admin = principal.user_id, "commission policy set");
    Ok(json(
        StatusCode::OK,
        &Commission {
            partner_id,
            rate_bps: policy.rate_bps,
            fixed_fee: policy.fixed_fee,
            effective_from,
        },
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// YYYY-MM-DD (Asia/Seoul), a day that has ended there (422 otherwise); default yesterday.
    date: Option<NaiveDate>,
}

#[utoipa::path(post, path = "/admin/settlements/runs", tag = "settlements", request_body = Option<RunRequest>,
    security(("bearer" = [])),
    responses((status = 202, body = RunStarted), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "RUN_IN_PROGRESS", body = Problem), (status = 422, body = Problem)))]
async fn start(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Admin])?;
    let body: RunRequest = optional_json_body(req)?.unwrap_or_default();
    let now = Utc::now();
    let date = check_run_date(body.date.unwrap_or_else(|| default_date(now)), now)
        .map_err(|error| ApiError::Validation(vec![error]))?;
    match start_run(&deps.run_starter, date, Trigger::Admin, now).await {
        Ok(StartOutcome::Started(run)) => {
            tracing::info!(run_id = run.run_id, %date, admin = principal.user_id, "settlement run requested");
            Ok(json(StatusCode::ACCEPTED, &run))
        }
        Ok(StartOutcome::Busy { run_id } | StartOutcome::AlreadySettled { run_id }) => {
            Err(ApiError::conflict(
                ProblemCode::RunInProgress,
                format!("run {run_id} is settling {date}; wait for it to finish"),
            ))
        }
        Err(err) => Err(ApiError::internal(err)),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    run_id: String,
    date: NaiveDate,
    status: RunStatus,
    partitions: i32,
    partitions_done: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[utoipa::path(get, path = "/admin/settlements/runs/{run_id}", tag = "settlements",
    params(("run_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Run), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "RUN_NOT_FOUND", body = Problem)))]
async fn run_detail(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Admin])?;
    let not_found = || ApiError::NotFound {
        code: ProblemCode::RunNotFound,
    };
    let run_id = path_param(req, "run_id").ok_or_else(not_found)?;
    let run = settlements::find_run(&deps.platform.db, &run_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(json(
        StatusCode::OK,
        &Run {
            run_id: run.id,
            date: run.settlement_date,
            status: run.status,
            partitions: run.partitions,
            partitions_done: run.partitions_done,
            error: run.error,
        },
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Settlements {
    items: Vec<SettlementRow>,
}

/// A `YYYY-MM-DD` query parameter of years 1 to 9999 (see [`dates`]); absent when empty.
fn date_param(req: &Request, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    query_param(req, name)
        .filter(|raw| !raw.is_empty())
        .map(|raw| dates::parse_date(name, &raw).map_err(|error| ApiError::Validation(vec![error])))
        .transpose()
}

#[utoipa::path(get, path = "/admin/settlements", tag = "settlements",
    params(("date" = String, Query, description = "YYYY-MM-DD (Asia/Seoul), years 1 to 9999")), security(("bearer" = [])),
    responses((status = 200, body = Settlements), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn day_settlements(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Admin])?;
    let date = date_param(req, "date")?
        .ok_or_else(|| ApiError::validation("date", "is required, YYYY-MM-DD"))?;
    let items = settlements::settlements_of_date(&deps.platform.db, date).await?;
    Ok(json(StatusCode::OK, &Settlements { items }))
}

#[utoipa::path(get, path = "/partner/settlements", tag = "settlements",
    params(("from" = Option<String>, Query, description = "YYYY-MM-DD (years 1 to 9999), default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD, default yesterday (Asia/Seoul); at most 366 days after `from`")),
    security(("bearer" = [])),
    responses((status = 200, body = Settlements), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn partner_settlements(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Partner])?;
    let to = date_param(req, "to")?.unwrap_or_else(|| default_date(Utc::now()));
    let from = date_param(req, "from")?.unwrap_or_else(|| {
        (to - Duration::days(DEFAULT_PARTNER_RANGE_DAYS)).max(dates::min_date())
    });
    if from > to {
        return Err(ApiError::validation("from", "must not be after `to`"));
    }
    if (to - from).num_days() > MAX_PARTNER_RANGE_DAYS {
        return Err(ApiError::validation(
            "to",
            format!("at most {MAX_PARTNER_RANGE_DAYS} days after `from`"),
        ));
    }
    let items =
        settlements::settlements_of_partner(&deps.platform.db, principal.user_id, from, to).await?;
    Ok(json(StatusCode::OK, &Settlements { items }))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        set_commission,
        start,
        run_detail,
        day_settlements,
        partner_settlements
    ),
    components(schemas(
        CommissionRequest,
        Commission,
        RunRequest,
        RunStarted,
        Run,
        RunStatus,
        Settlements,
        SettlementRow,
        Problem
    ))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests;
