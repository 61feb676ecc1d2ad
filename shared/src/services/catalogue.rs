//! What a write elsewhere owes the catalogue.

use crate::adapters::redis::ProductPageCache;

/// Evicts page 1 of the catalogue after a change it shows (a product written, sold out, or
/// back in stock). A failure is logged, not returned: the change is committed, and the page
/// expires within its TTL anyway.
pub async fn evict_page_one(page_cache: &ProductPageCache) {
    if let Err(err) = page_cache.evict().await {
        tracing::warn!(%err, "could not evict the product list page; it expires within its TTL");
    }
}
