//! `Authorization: Bearer …` to [`Principal`]: the token's signature and claims, then the logout
//! blacklist (Redis first, MySQL when Redis cannot answer); and logout itself.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use lambda_http::{Request, http::header};
use sqlx::MySqlPool;

use super::{Principal, TokenCodec};
use crate::{
    adapters::{
        accounts,
        redis::{BlacklistAnswer, BlacklistCache, RedisStore},
    },
    error::ApiError,
    http::header_str,
};

/// An access token whose signature, expiry and subject checked out, not yet checked against the
/// logout blacklist: [`Authenticator::admit`] turns it into a [`Principal`].
#[derive(Debug)]
pub struct SignedToken {
    principal: Principal,
}

impl SignedToken {
    /// Who the token says the caller is; not to be trusted before [`Authenticator::admit`].
    pub fn claimed(&self) -> &Principal {
        &self.principal
    }
}

/// Turns `Authorization: Bearer …` into a [`Principal`], honouring the logout blacklist.
#[derive(Debug, Clone)]
pub struct Authenticator {
    codec: Arc<TokenCodec>,
    blacklist: BlacklistCache,
    db: MySqlPool,
}

impl Authenticator {
    pub fn new(codec: Arc<TokenCodec>, redis: RedisStore, db: MySqlPool) -> Self {
        Self {
            codec,
            blacklist: BlacklistCache::new(redis),
            db,
        }
    }

    pub async fn authenticate(&self, req: &Request) -> Result<Principal, ApiError> {
        let token = self.verify(req)?;
        let principal = &token.principal;
        let answer = match self
            .blacklist
            .check(principal.user_id, &principal.jti)
            .await
        {
            Ok(answer) => Some(answer),
            Err(err) => {
                tracing::warn!(%err, "Redis unavailable; checking the token blacklist in MySQL");
                None
            }
        };
        self.admit(token, answer).await
    }

    /// The first half of [`Authenticator::authenticate`]: the token's signature, expiry and
    /// subject, without the blacklist. A handler that sends its Redis reads in one round trip asks
    /// about the token's entry ([`Authenticator::blacklist_key`]) along with them, then calls
    /// [`Authenticator::admit`] with the answer.
    pub fn verify(&self, req: &Request) -> Result<SignedToken, ApiError> {
        let token = bearer_token(req)?;
        let claims = self.codec.verify(token)?;
        let user_id = claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthenticated("invalid access token subject"))?;
        Ok(SignedToken {
            principal: Principal {
                user_id,
                role: claims.role,
                jti: claims.jti,
                expires_at: claims.exp,
            },
        })
    }

    /// The key of `token`'s blacklist entry, in its user's hash slot (`{u<id>}`), for a handler
    /// that asks whether it exists along with its own commands.
    pub fn blacklist_key(&self, token: &SignedToken) -> String {
        self.blacklist
            .entry_key(token.principal.user_id, &token.principal.jti)
    }

    /// The key of the flag saying that `token`'s user's blacklist entries are loaded
    /// ([`RedisStore::loaded_flag`]), in the same slot as [`Authenticator::blacklist_key`].
    pub fn blacklist_loaded_key(&self, token: &SignedToken) -> String {
        self.blacklist.loaded_key(token.principal.user_id)
    }

    /// The second half of [`Authenticator::authenticate`]: refuses a logged-out token. `answer` is
    /// what Redis said, `None` when it could not be asked; MySQL decides then, and when Redis
    /// restarted empty (after which the list is reloaded).
    pub async fn admit(
        &self,
        token: SignedToken,
        answer: Option<BlacklistAnswer>,
    ) -> Result<Principal, ApiError> {
        let jti = &token.principal.jti;
        let revoked = match answer {
            Some(BlacklistAnswer::Listed) => true,
            Some(BlacklistAnswer::NotListed) => false,
            // The user's list is read from MySQL once, and answers this request too.
            Some(BlacklistAnswer::NotLoaded) => self
                .reload_blacklist(token.principal.user_id)
                .await?
                .iter()
                .any(|(listed, _)| listed == jti),
            None => self.revoked_in_mysql(jti).await?,
        };
        if revoked {
            return Err(ApiError::Unauthenticated(
                "this access token was logged out",
            ));
        }
        Ok(token.principal)
    }

    async fn revoked_in_mysql(&self, jti: &str) -> Result<bool, ApiError> {
        Ok(accounts::is_token_revoked(&self.db, jti).await?)
    }

    /// Loads the user's blacklist entries unless they are loaded: called at login and refresh,
    /// so that the user's first requests with the new token find them (one `EXISTS` when they
    /// are).
    pub async fn warm(&self, user_id: i64) -> Result<(), ApiError> {
        if !self.blacklist.is_loaded(user_id).await? {
            self.reload_blacklist(user_id).await?;
        }
        Ok(())
    }

    /// Reads the user's unexpired part of the MySQL blacklist and copies it into Redis, marked
    /// loaded; returns it (jti, seconds left), so that the request that found the user's
    /// entries missing answers from it. A MySQL failure fails the request; a Redis failure is
    /// only logged (the next request tries again). Concurrent reloads of one user write the same
    /// entries, so none is claimed: each costs the one indexed query its request needs anyway.
    async fn reload_blacklist(&self, user_id: i64) -> Result<Vec<(String, u64)>, ApiError> {
        let rows = accounts::unexpired_revocations(&self.db, user_id).await?;
        let entries: Vec<(String, u64)> = rows
            .into_iter()
            .map(|row| (row.jti, seconds_until(row.expires_at)))
            .collect();
        match self.blacklist.add(user_id, &entries, true).await {
            Ok(()) => tracing::debug!(
                user_id,
                tokens = entries.len(),
                "user's token blacklist loaded into Redis"
            ),
            Err(err) => {
                tracing::warn!(%err, user_id, "could not load the user's token blacklist into Redis");
            }
        }
        Ok(entries)
    }

    /// Logout: the token is refused from now until it expires. MySQL first, so that a Redis
    /// failure cannot leave a logged-out token working.
    ///
    /// When Redis does not take the entry (down, out of memory, read-only), the user's blacklist
    /// loaded flag is dropped, so that every check of the user's tokens asks MySQL until they are
    /// reloaded. If Redis takes
    /// neither, it would go on vouching for the token: the logout is refused (503), and the
    /// caller may try again.
    pub async fn revoke(&self, principal: &Principal) -> Result<(), ApiError> {
        // Refused for as long as the token verifies: its expiry plus the clock leeway.
        let refused_until = Utc
            .timestamp_opt(principal.accepted_until(), 0)
            .single()
            .unwrap_or_else(Utc::now);
        accounts::revoke_token(&self.db, &principal.jti, principal.user_id, refused_until).await?;
        let seconds_left = seconds_until(refused_until);
        let Err(err) = self
            .blacklist
            .add(
                principal.user_id,
                &[(principal.jti.clone(), seconds_left)],
                false,
            )
            .await
        else {
            return Ok(());
        };
        match self.blacklist.forget_loaded(principal.user_id).await {
            Ok(()) => {
                tracing::warn!(%err, "logout not recorded in Redis; its blacklist is read from MySQL until reloaded");
                Ok(())
            }
            Err(flag_err) => {
                tracing::error!(%err, %flag_err, "logout recorded in MySQL only, and Redis still vouches for the token");
                Err(flag_err.into())
            }
        }
    }
}

/// Whole seconds from now until `until`, rounded up (an entry must not expire before its
/// token), at least 1 (Redis refuses a zero expiry).
fn seconds_until(until: chrono::DateTime<Utc>) -> u64 {
    let millis = (until - Utc::now()).num_milliseconds();
    u64::try_from(millis).unwrap_or(0).div_ceil(1000).max(1)
}

fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let value = header_str(req.headers(), header::AUTHORIZATION.as_str())
        .ok_or(ApiError::Unauthenticated("missing Authorization header"))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthenticated(
        "Authorization must be `Bearer <token>`",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthenticated(
            "Authorization must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}
