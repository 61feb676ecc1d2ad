//! The `auth` function: sign-up, login, token refresh, logout and the caller's profile, plus the
//! `/health` check.
//!
//! [`handle`] is what both the Lambda binary (`main.rs`) and the local runner call. It dispatches
//! on API Gateway's route key, and every route parses, authorizes, calls the domain and maps
//! errors to problem+json in that order.
//!
//! Decisions worth knowing:
//! - An unknown email costs the same Argon2 verification as a wrong password (against a dummy
//!   hash), so timing does not reveal which emails have accounts.
//! - Login attempts are counted per client address and per account (or, for an email of no
//!   account, per email as `users.email`'s collation compares it: case and accents ignored) in
//!   one-minute windows, whether they succeed or not; sign-ups per client address, before the
//!   password is hashed. If Redis cannot answer, the process's own count decides with the same
//!   limits: never no limit.
//! - Argon2 runs on at most as many blocking threads as there are cores, so a burst of sign-ups
//!   and logins queues for them instead of starving the threads that talk to Redis and MySQL.
//! - Refresh tokens rotate on every use; presenting a spent one revokes its whole family.

mod store;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    ApiError, Platform,
    adapters::mysql::finish,
    adapters::redis::{KeyMarkers, RateDecision, RateLimiter, RefreshTokenStore, Rotation},
    auth::Principal,
    domain::auth::{
        NewAccount, RefreshToken, Role, hash_password, normalize_email, validate_signup,
        verify_password,
    },
    error::{Problem, ProblemCode, UniqueViolation},
    http::{client_ip, json, json_body, no_content, optional_json_body, respond, route_key},
};
use sqlx::{MySql, Transaction};
use tokio::sync::{OnceCell, Semaphore};
use utoipa::{OpenApi, ToSchema};

/// Login and sign-up attempts are counted in windows of this length.
const LIMIT_WINDOW: Duration = Duration::from_secs(60);

/// What the auth handlers need; built once per process.
#[derive(Debug)]
pub struct Deps {
    platform: Platform,
    refresh_tokens: RefreshTokenStore,
    limiter: RateLimiter,
    markers: KeyMarkers,
    /// Verified against when the email is unknown, to equalize timing.
    dummy_hash: OnceCell<String>,
    /// One permit per Argon2 computation at a time (see [`argon2_permits`]).
    argon2: Arc<Semaphore>,
}

impl Deps {
    pub fn new(platform: &Platform) -> Self {
        Self {
            platform: platform.clone(),
            refresh_tokens: RefreshTokenStore::new(platform.redis.clone()),
            limiter: RateLimiter::new(platform.redis.clone()),
            markers: KeyMarkers::new(platform.redis.clone(), platform.db.clone()),
            dummy_hash: OnceCell::new(),
            argon2: Arc::new(Semaphore::new(argon2_permits())),
        }
    }
}

/// As many Argon2 computations at once as the machine has cores. Each takes tens of milliseconds
/// of CPU and 19 MiB; hundreds at once (a burst of sign-ups and logins) would take every core
/// from the async workers, so that Redis replies pass their timeout and pooled MySQL
/// connections are held for seconds. Queued, they make the burst slower instead of failing it.
/// A Lambda instance serves one request at a time, so this only ever binds a local runner.
fn argon2_permits() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The Lambda entry point: one request in, one response out; failures become problem+json.
pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let result = match route_key(&req) {
        Some("GET /health") => health(deps).await,
        Some("POST /auth/signup") => signup(deps, &req).await,
        Some("POST /auth/login") => login(deps, &req).await,
        Some("POST /auth/refresh") => refresh(deps, &req).await,
        Some("POST /auth/logout") => logout(deps, &req).await,
        Some("GET /auth/me") => me(deps, &req).await,
        other => Err(ApiError::RouteNotFound(
            other.unwrap_or_default().to_owned(),
        )),
    };
    respond(result)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `degraded` when Redis is unreachable (everything still works, slower).
    status: &'static str,
    database: &'static str,
    redis: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, body = HealthResponse), (status = 500, body = Problem)))]
async fn health(deps: &Deps) -> Result<Response<Body>, ApiError> {
    store::ping(&deps.platform.db).await?;
    let redis_up = match deps.platform.redis.connection().await {
        Ok(mut connection) => redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok(),
        Err(_) => false,
    };
    Ok(json(
        StatusCode::OK,
        &HealthResponse {
            status: if redis_up { "ok" } else { "degraded" },
            database: "up",
            redis: if redis_up { "up" } else { "down" },
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignupRequest {
    /// Case-insensitive; something@domain.tld, no spaces.
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$"
    )]
    email: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128)]
    password: String,
    /// 1 to 100 characters, not only spaces.
    #[schema(max_length = 100, pattern = r"\S")]
    name: String,
    /// `buyer` or `partner`.
    #[schema(pattern = "^(buyer|partner)$")]
    role: String,
    /// Partners only, optional (up to 200 characters, not only spaces); ignored for buyers.
    #[serde(default)]
    business_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignupResponse {
    id: i64,
    email: String,
    role: Role,
}

#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse),
        (status = 409, description = "EMAIL_TAKEN", body = Problem),
        (status = 422, description = "VALIDATION", body = Problem),
        (status = 429, description = "RATE_LIMITED, with Retry-After", body = Problem)))]
async fn signup(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: SignupRequest = json_body(req)?;
    let account = validate_signup(
        &body.email,
        &body.password,
        &body.name,
        &body.role,
        body.business_name.as_deref(),
    )
    .map_err(ApiError::Validation)?;
    // Before the hash, so that a flood of sign-ups is refused without costing Argon2's CPU.
    if let Some(ip) = client_ip(req) {
        let limit = deps.platform.config.auth.signup_limit_per_address;
        enforce_limits(deps, &[(format!("signup:ip:{ip}"), limit)]).await?;
    }
    let password_hash = hash_blocking(deps, account.password.clone()).await?;

    let mut tx = deps.platform.db.begin().await?;
    let result = insert_account(&mut tx, &account, &password_hash).await;
    let id = finish(tx, result).await?;
    tracing::info!(user_id = id, role = %account.role, "account created");
    Ok(json(
        StatusCode::CREATED,
        &SignupResponse {
            id,
            email: account.email,
            role: account.role,
        },
    ))
}

/// The user row, and the partner profile for partners, in one transaction.
async fn insert_account(
    tx: &mut Transaction<'static, MySql>,
    account: &NewAccount,
    password_hash: &str,
) -> Result<i64, ApiError> {
    let id = store::insert_user(tx, account, password_hash)
        .await
        .on_unique_violation(|| {
            ApiError::conflict(
                ProblemCode::EmailTaken,
                "an account with this email already exists",
            )
        })?;
    if account.role == Role::Partner {
        store::insert_partner_profile(tx, id, account.business_name.as_deref()).await?;
    }
    Ok(id)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    access_token: String,
    /// Opaque; send it to `/auth/refresh` for a new pair. Each one works once.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair),
        (status = 401, description = "INVALID_CREDENTIALS", body = Problem),
        (status = 429, description = "RATE_LIMITED, with Retry-After", body = Problem)))]
async fn login(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: LoginRequest = json_body(req)?;
    let email = normalize_email(&body.email);
    let limits = &deps.platform.config.auth;
    // The address first: a flood from one address stops before it reaches MySQL.
    if let Some(ip) = client_ip(req) {
        enforce_limits(
            deps,
            &[(format!("login:ip:{ip}"), limits.login_limit_per_address)],
        )
        .await?;
    }
    let lookup = store::login_lookup(&deps.platform.db, &email).await?;
    // Counted per account: every spelling the lookup takes for this account's email shares one
    // counter. An email of no account is counted under its collation key.
    let counter = match &lookup.account {
        Some(account) => format!("login:user:{}", account.id),
        None => format!("login:email:{}", lookup.email_key),
    };
    enforce_limits(deps, &[(counter, limits.login_limit_per_email)]).await?;

    let user = lookup.account;
    let stored_hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => dummy_hash(deps).await?,
    };
    let password_matches = verify_blocking(deps, body.password, stored_hash).await?;
    let Some(user) = user.filter(|_| password_matches) else {
        return Err(ApiError::InvalidCredentials);
    };
    let (user_id, role) = (user.id, stored_role(&user.role)?);

    let refresh = RefreshToken::new_family();
    deps.refresh_tokens
        .issue(
            &refresh.family,
            &refresh.secret_hash(),
            user_id,
            deps.platform.config.auth.refresh_token_ttl,
        )
        .await?;
    warm(deps, user_id, role).await;
    Ok(json(
        StatusCode::OK,
        &token_pair(deps, user_id, role, &refresh)?,
    ))
}

/// Loads what the user's slot in Redis must hold before their first authenticated request (the
/// user's blacklist entries and, for a buyer, the checkout's idempotency markers) unless it is
/// loaded, so that the first checkout of a drop does not wait on MySQL for it. Each set's
/// loaded flag lives beside the set in the user's hash slot and is kept a day; a slot that
/// lost them (its Redis restarted) is reloaded here or by the first request that finds them
/// missing. Failures are only logged: the requests that follow ask MySQL themselves.
async fn warm(deps: &Deps, user_id: i64, role: Role) {
    let blacklist = deps.platform.authenticator.warm(user_id);
    let markers = async {
        match role {
            Role::Buyer => deps.markers.warm(user_id).await,
            _ => Ok(()),
        }
    };
    let (blacklist, markers) = tokio::join!(blacklist, markers);
    if let Err(err) = blacklist.and(markers) {
        tracing::warn!(%err, user_id, "could not load the user's blacklist or markers into Redis");
    }
}

/// Counts one attempt under each `(name, limit per minute)`; 429 at the first that is spent.
async fn enforce_limits(deps: &Deps, checks: &[(String, u32)]) -> Result<(), ApiError> {
    for (name, limit) in checks {
        if let RateDecision::Limited { retry_after_secs } =
            deps.limiter.hit(name, *limit, LIMIT_WINDOW).await
        {
            return Err(ApiError::RateLimited { retry_after_secs });
        }
    }
    Ok(())
}

fn token_pair(
    deps: &Deps,
    user_id: i64,
    role: Role,
    refresh: &RefreshToken,
) -> Result<TokenPair, ApiError> {
    let tokens = &deps.platform.tokens;
    Ok(TokenPair {
        access_token: tokens.issue(user_id, role, Utc::now())?,
        refresh_token: refresh.to_token_string(),
        token_type: "Bearer",
        expires_in: tokens.access_ttl_secs(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair),
        (status = 401, description = "INVALID_REFRESH_TOKEN, or REFRESH_TOKEN_REUSED (the family is now revoked)", body = Problem)))]
async fn refresh(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: RefreshRequest = json_body(req)?;
    let presented =
        RefreshToken::parse(&body.refresh_token).ok_or(ApiError::InvalidRefreshToken)?;
    let next = presented.rotate();
    let rotation = deps
        .refresh_tokens
        .rotate(
            &presented.family,
            &presented.secret_hash(),
            &next.secret_hash(),
            deps.platform.config.auth.refresh_token_ttl,
        )
        .await?;
    let user_id = match rotation {
        Rotation::Rotated { user_id } => user_id,
        Rotation::Invalid => return Err(ApiError::InvalidRefreshToken),
        Rotation::Reused => {
            tracing::warn!(family = %presented.family, "spent refresh token presented; family revoked");
            return Err(ApiError::RefreshTokenReused);
        }
    };
    // The role is read afresh so that a changed role takes effect at the next refresh.
    let Some(user) = find_user(deps, user_id).await? else {
        deps.refresh_tokens.revoke_family(&presented.family).await?;
        return Err(ApiError::InvalidRefreshToken);
    };
    warm(deps, user_id, user.role).await;
    Ok(json(
        StatusCode::OK,
        &token_pair(deps, user_id, user.role, &next)?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// Optional: this refresh token's whole family is revoked too.
    #[serde(default)]
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>),
    security(("bearer" = [])),
    responses((status = 204, description = "the access token is refused from now on"),
        (status = 401, body = Problem),
        (status = 503, description = "UNAVAILABLE: Redis could not be told; try again", body = Problem)))]
async fn logout(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    let body: Option<LogoutRequest> = optional_json_body(req)?;
    deps.platform.authenticator.revoke(&principal).await?;
    if let Some(refresh) = body
        .and_then(|body| body.refresh_token)
        .and_then(|text| RefreshToken::parse(&text))
    {
        revoke_own_family(deps, &principal, &refresh).await?;
    }
    tracing::info!(user_id = principal.user_id, "logged out");
    Ok(no_content())
}

/// Someone else's refresh token is ignored rather than refused, so logout reveals nothing.
async fn revoke_own_family(
    deps: &Deps,
    principal: &Principal,
    refresh: &RefreshToken,
) -> Result<(), ApiError> {
    let owner = deps
        .refresh_tokens
        .owner(&refresh.family, &refresh.secret_hash())
        .await?;
    if owner == Some(principal.user_id) {
        deps.refresh_tokens.revoke_family(&refresh.family).await?;
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    id: i64,
    email: String,
    name: String,
    role: Role,
}

#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
async fn me(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    let user = find_user(deps, principal.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated("this account no longer exists"))?;
    Ok(json(StatusCode::OK, &user))
}

async fn find_user(deps: &Deps, user_id: i64) -> Result<Option<Me>, ApiError> {
    let profile = store::profile(&deps.platform.db, user_id).await?;
    profile
        .map(|profile| {
            Ok(Me {
                role: stored_role(&profile.role)?,
                id: profile.id,
                email: profile.email,
                name: profile.name,
            })
        })
        .transpose()
}

/// A role read from `users`; anything else there is our bug, not the caller's.
fn stored_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| ApiError::internal("unknown role in users"))
}

async fn dummy_hash(deps: &Deps) -> Result<String, ApiError> {
    deps.dummy_hash
        .get_or_try_init(|| hash_blocking(deps, uuid::Uuid::new_v4().to_string()))
        .await
        .cloned()
}

async fn hash_blocking(deps: &Deps, password: String) -> Result<String, ApiError> {
    on_argon2_thread(deps, move || hash_password(&password))
        .await?
        .map_err(ApiError::internal)
}

async fn verify_blocking(
    deps: &Deps,
    password: String,
    stored_hash: String,
) -> Result<bool, ApiError> {
    on_argon2_thread(deps, move || verify_password(&password, &stored_hash)).await
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async workers, and run no more of
/// it at once than there are cores.
async fn on_argon2_thread<T: Send + 'static>(
    deps: &Deps,
    argon2: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let permit = deps
        .argon2
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        argon2()
    })
    .await
    .map_err(ApiError::internal)
}

/// The OpenAPI description of this function's routes.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(health, signup, login, refresh, logout, me),
    components(schemas(Problem, shared::domain::FieldError))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests;
