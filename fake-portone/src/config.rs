//! What the fake needs to know: the API secret it accepts, the store it answers for, the secret it
//! signs webhooks with and where it sends them. The defaults are the local stack's values, so the
//! fake and the functions agree without any set-up.

use std::fmt;

use anyhow::Context;
use shared::domain::webhook::WebhookSecret;

const LOCAL_API_SECRET: &str = "local-portone-secret";
const LOCAL_STORE_ID: &str = "store-local";
const LOCAL_WEBHOOK_SECRET: &str = "whsec_a1wPPpGi1HcI47Fcap8tQMjhezpfCdLm";

/// The fake's configuration. `Debug` hides both secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeConfig {
    /// Accepted in `Authorization: PortOne <api_secret>`.
    pub api_secret: String,
    /// The store payments belong to unless a test says otherwise.
    pub store_id: String,
    /// The `whsec_…` secret webhooks are signed with.
    pub webhook_secret: String,
    /// Where webhooks are POSTed; `None` skips delivery (the signed webhook is still returned).
    pub webhook_url: Option<String>,
}

impl fmt::Debug for FakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeConfig")
            .field("api_secret", &"<redacted>")
            .field("store_id", &self.store_id)
            .field("webhook_secret", &"<redacted>")
            .field("webhook_url", &self.webhook_url)
            .finish()
    }
}

impl FakeConfig {
    /// The local stack's values: api secret "local-portone-secret", store "store-local",
    /// webhook secret "whsec_a1wPPpGi1HcI47Fcap8tQMjhezpfCdLm", no webhook URL.
    pub fn local() -> Self {
        Self {
            api_secret: LOCAL_API_SECRET.to_owned(),
            store_id: LOCAL_STORE_ID.to_owned(),
            webhook_secret: LOCAL_WEBHOOK_SECRET.to_owned(),
            webhook_url: None,
        }
    }

    /// Reads PORTONE_API_SECRET, PORTONE_STORE_ID, PORTONE_WEBHOOK_SECRET and
    /// FAKE_PORTONE_WEBHOOK_URL; unset or empty variables keep the [`FakeConfig::local`] value.
    pub fn from_env() -> anyhow::Result<Self> {
        let local = Self::local();
        let config = Self {
            api_secret: env_or("PORTONE_API_SECRET", local.api_secret),
            store_id: env_or("PORTONE_STORE_ID", local.store_id),
            webhook_secret: env_or("PORTONE_WEBHOOK_SECRET", local.webhook_secret),
            webhook_url: env_var("FAKE_PORTONE_WEBHOOK_URL"),
        };
        config.webhook_key().context("PORTONE_WEBHOOK_SECRET")?;
        Ok(config)
    }

    /// The decoded signing key; fails when the secret is not (optionally `whsec_`-prefixed) base64.
    pub(crate) fn webhook_key(&self) -> anyhow::Result<WebhookSecret> {
        Ok(WebhookSecret::new(&self.webhook_secret)?)
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn env_or(name: &str, default: String) -> String {
    env_var(name).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_values_sign_and_debug_hides_the_secrets() {
        let config = FakeConfig::local();
        assert!(config.webhook_key().is_ok());
        let printed = format!("{config:?}");
        assert!(!printed.contains(LOCAL_API_SECRET));
        assert!(!printed.contains(LOCAL_WEBHOOK_SECRET));
        assert!(printed.contains(LOCAL_STORE_ID));
    }

    #[test]
    fn a_secret_that_is_not_base64_is_refused() {
        let config = FakeConfig {
            webhook_secret: "whsec_***".to_owned(),
            ..FakeConfig::local()
        };
        assert!(config.webhook_key().is_err());
    }
}
