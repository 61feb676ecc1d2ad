//! Redis: hot state. Nothing here is the only copy of anything that matters; Redis keeps
//! nothing on disk in our deployments, and every reader copes with it being empty or down.
//!
//! Keys carry the deployment's prefix (`REDIS_KEY_PREFIX`, tests use their own). Keys that must
//! be touched together by one script share a `{hash tag}` so they stay in one Redis Cluster slot.
//!
//! One file per concern, all reached through this module's paths:
//! [`RedisStore`] (connection, keys, breaker, loaded flags), [`RateLimiter`],
//! [`RefreshTokenStore`], [`BlacklistCache`], [`KeyMarkers`] (the checkout's idempotency
//! markers) and [`ProductPageCache`].

mod blacklist;
#[cfg(all(test, feature = "testing"))]
mod cluster_tests;
mod key_markers;
mod product_page;
mod rate_limit;
mod refresh_tokens;
mod store;
#[cfg(all(test, feature = "testing"))]
mod tls_tests;

pub use blacklist::{BlacklistAnswer, BlacklistCache};
pub use key_markers::{KeyMarkers, LOADED_MARKERS};
pub use product_page::ProductPageCache;
pub use rate_limit::{RateDecision, RateLimiter};
pub use refresh_tokens::{RefreshTokenStore, Rotation};
#[cfg(feature = "testing")]
pub(crate) use store::install_crypto_provider;
pub use store::{
    LOADED_BLACKLIST, LOADED_TTL, RedisConnection, RedisStore, cross_slot_errors, key_slot,
};
