//! A fake PortOne V2 server, so KickSync's payment code can be tested, scripted and demonstrated
//! without PortOne's sandbox: no network, no account, and failures on demand.
//!
//! It serves the two API calls KickSync makes (look a payment up, cancel it) with PortOne's JSON
//! shapes, error types and status codes, and sends Standard Webhooks signed like PortOne's.
//! What it answers is set by the test: payments are recorded ([`FakePortOne::record`] or
//! `POST /_fake/payments`), faults injected ([`FakePortOne::fault`] or `POST /_fake/faults`),
//! and what the code under test did is read back ([`FakePortOne::cancels`],
//! [`FakePortOne::requests`]).
//!
//! - `api`: the PortOne routes, behind a gate that logs, injects faults and checks the secret.
//! - `control`: the `/_fake/*` routes.
//! - `state`, `faults`, `webhooks`, `view`: what is remembered, the failures, the signed
//!   webhooks and the JSON shapes.
//!
//! In-process use from a test:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use fake_portone::{FakeConfig, FakePayment, FakePortOne};
//! let fake = FakePortOne::start("127.0.0.1:0", FakeConfig::local()).await?;
//! fake.record(FakePayment::paid("pay-1", 150_000));
//! // point PORTONE_API_BASE at fake.base_url(), run the code, then:
//! assert_eq!(fake.lookups("pay-1"), 1);
//! # Ok(()) }
//! ```

mod api;
mod config;
mod control;
mod faults;
mod state;
mod view;
mod webhooks;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use anyhow::Context;
use axum::{Json, Router, http::StatusCode};
use shared::domain::webhook::WebhookSecret;
use tokio::{sync::oneshot, task::JoinHandle};

pub use config::FakeConfig;
pub use faults::{Fault, FaultTarget};
pub use state::{CancelRecord, FakePayment, FakeStatus, RequestRecord};
pub use webhooks::SignedWebhook;

use state::{State, StoredPayment};
use webhooks::Delivery;

/// How long [`FakePortOne::stop`] lets requests in flight finish before cutting them off.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the routes share: the configuration, the signing key and the remembered state.
#[derive(Debug)]
pub(crate) struct Fake {
    config: FakeConfig,
    key: WebhookSecret,
    http: reqwest::Client,
    state: Mutex<State>,
}

impl Fake {
    /// The state; a panic elsewhere while it was held leaves it usable (it is only test data).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, payment: FakePayment) -> StoredPayment {
        let stored = StoredPayment::new(payment, &self.config.store_id, chrono::Utc::now());
        self.lock()
            .payments
            .insert(stored.id.clone(), stored.clone());
        tracing::info!(payment_id = %stored.id, status = stored.api_status(), "payment recorded");
        stored
    }

    fn sign(&self, kind: &str, payment_id: &str) -> SignedWebhook {
        let state = self.lock();
        let payment = state.payments.get(payment_id);
        webhooks::sign(&self.key, kind, payment_id, payment, &self.config.store_id)
    }

    /// Delivers to the configured URL; without one, nothing is sent.
    async fn deliver(&self, webhook: &SignedWebhook, copies: u32) -> Vec<Delivery> {
        match &self.config.webhook_url {
            Some(url) => webhooks::deliver(&self.http, url, webhook, copies).await,
            None => Vec::new(),
        }
    }
}

fn router(fake: Arc<Fake>) -> Router {
    Router::new()
        .merge(api::routes(Arc::clone(&fake)))
        .merge(control::routes())
        .fallback(|| async {
            let body = view::error("NOT_FOUND", "fake PortOne has no such route");
            (StatusCode::NOT_FOUND, Json(body))
        })
        .with_state(fake)
}

/// A running fake. Dropping it (or [`FakePortOne::stop`]) shuts the server down.
#[derive(Debug)]
pub struct FakePortOne {
    addr: SocketAddr,
    fake: Arc<Fake>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl FakePortOne {
    /// Listens on `listen` (`"127.0.0.1:0"` picks a free port) and serves on the current tokio
    /// runtime, so the server also stops when that runtime ends.
    pub async fn start(listen: &str, config: FakeConfig) -> anyhow::Result<FakePortOne> {
        let key = config.webhook_key().context("the webhook secret")?;
        let http = reqwest::Client::builder()
            .timeout(webhooks::DELIVERY_TIMEOUT)
            .build()
            .context("building the webhook client")?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr().context("the listening address")?;
        let fake = Arc::new(Fake {
            config,
            key,
            http,
            state: Mutex::new(State::default()),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(Arc::clone(&fake));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender stops the server as surely as a sent value.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(FakePortOne {
            addr,
            fake,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }

    /// `http://HOST:PORT`, for `PORTONE_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets those in flight finish (up to five seconds), and returns.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(STOP_GRACE, &mut server).await.is_err()
        {
            server.abort();
        }
    }

    /// Records (or replaces) a payment, as `POST /_fake/payments` does, without a webhook.
    pub fn record(&self, payment: FakePayment) {
        self.fake.record(payment);
    }

    /// Injects a fault into the following API calls, as `POST /_fake/faults` does.
    pub fn fault(&self, fault: Fault) {
        self.fake
            .lock()
            .faults
            .push(faults::ActiveFault::new(fault));
    }

    pub fn clear_faults(&self) {
        self.fake.lock().faults.clear();
    }

    /// Every cancel the fake accepted, oldest first.
    pub fn cancels(&self) -> Vec<CancelRecord> {
        let state = self.fake.lock();
        state.cancels.iter().map(|c| c.record.clone()).collect()
    }

    /// Every PortOne API request received (refused and faulted ones too), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let state = self.fake.lock();
        state.requests.iter().map(|r| r.record.clone()).collect()
    }

    /// How many `GET /payments/{payment_id}` requests arrived, however they were answered.
    pub fn lookups(&self, payment_id: &str) -> usize {
        let state = self.fake.lock();
        let asked = |r: &&state::LoggedRequest| r.lookup_of.as_deref() == Some(payment_id);
        state.requests.iter().filter(asked).count()
    }

    /// The payment as `GET /payments/{payment_id}` would answer it now.
    pub fn payment(&self, payment_id: &str) -> Option<serde_json::Value> {
        let state = self.fake.lock();
        state.payments.get(payment_id).map(view::payment)
    }

    /// A correctly signed webhook for this payment (type e.g. "Transaction.Paid"), signed now.
    pub fn webhook(&self, kind: &str, payment_id: &str) -> SignedWebhook {
        self.fake.sign(kind, payment_id)
    }
}

impl Drop for FakePortOne {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
