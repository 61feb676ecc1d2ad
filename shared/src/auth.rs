//! Access tokens and the check every authenticated route goes through.
//!
//! Access tokens are HS256 JWTs (15 minutes by default) with `sub, role, jti, iat, exp, iss, aud`.
//! Verification accepts HS256 only, so `alg: none` and algorithm-confusion tokens fail. Tokens are
//! signed with `jsonwebtoken` and verified by [`TokenCodec`] itself, with the HMAC key prepared
//! once, because every request verifies a token. A token whose `jti` was logged out is refused:
//! Redis holds the hot blacklist, MySQL the durable one
//! ([`adapters::accounts`](crate::adapters::accounts)), and when Redis is down or restarted empty
//! the check asks MySQL instead of letting the token through.

mod authenticator;
mod principal;
mod tokens;

pub use authenticator::{Authenticator, SignedToken};
pub use principal::Principal;
pub use tokens::{LEEWAY_SECS, TokenCodec};
