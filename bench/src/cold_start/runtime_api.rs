//! The least of the Lambda Runtime API a function needs to start and answer one invocation,
//! served by the bench on 127.0.0.1 (the function finds it through `AWS_LAMBDA_RUNTIME_API`):
//!
//! - `GET /2018-06-01/runtime/invocation/next`: the armed event, once, with the headers Lambda
//!   sends (`Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`,
//!   `-Trace-Id`); with nothing armed the call waits, as Lambda's does between invocations,
//!   until the bench arms the next one;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../{id}/error`: 202;
//! - `POST /2018-06-01/runtime/init/error`: 202.
//!
//! Each call is reported to the bench with the instant it arrived.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::sync::{Notify, mpsc};

/// How long the invocation may run, as the deadline header tells the function.
const INVOCATION_DEADLINE: Duration = Duration::from_secs(30);
const ACCOUNT: &str = "123456789012";
const REGION: &str = "ap-northeast-2";

/// What a function told the Runtime API, and when.
#[derive(Debug)]
pub(super) enum Report {
    /// It asked for its next invocation and was handed the armed event.
    Delivered {
        request_id: String,
        at: Instant,
    },
    Response {
        request_id: String,
        at: Instant,
        body: Bytes,
    },
    Error {
        request_id: String,
        at: Instant,
        body: Bytes,
    },
    InitError {
        body: Bytes,
    },
}

/// The one invocation waiting for a function to ask for it.
#[derive(Debug)]
struct Armed {
    request_id: String,
    function: String,
    event: Bytes,
}

#[derive(Debug)]
struct Shared {
    armed: Mutex<Option<Armed>>,
    /// Wakes the `next` calls waiting for an invocation.
    armed_now: Notify,
    reports: mpsc::UnboundedSender<Report>,
}

/// The server, running until dropped.
#[derive(Debug)]
pub(super) struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    reports: mpsc::UnboundedReceiver<Report>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub(super) async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the Runtime API")?;
        let addr = listener.local_addr()?;
        let (sender, reports) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            armed: Mutex::new(None),
            armed_now: Notify::new(),
            reports: sender,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "the Runtime API stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            reports,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub(super) fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Makes `event` the next invocation of `function`, forgetting anything reported so far.
    pub(super) fn arm(&mut self, request_id: &str, function: &str, event: Bytes) {
        while self.reports.try_recv().is_ok() {}
        let armed = Armed {
            request_id: request_id.to_owned(),
            function: function.to_owned(),
            event,
        };
        if let Ok(mut slot) = self.shared.armed.lock() {
            *slot = Some(armed);
        }
        self.shared.armed_now.notify_waiters();
    }

    /// The next report, or `None` once `deadline` has passed.
    pub(super) async fn report(&mut self, deadline: Instant) -> Option<Report> {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, self.reports.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    // Between invocations Lambda holds this call open; so does the bench, until it arms one.
    let armed = loop {
        let armed_now = shared.armed_now.notified();
        tokio::pin!(armed_now);
        // Registered before looking, so an invocation armed in between is not missed.
        armed_now.as_mut().enable();
        if let Some(armed) = shared.armed.lock().ok().and_then(|mut slot| slot.take()) {
            break armed;
        }
        armed_now.await;
    };
    let _ = shared.reports.send(Report::Delivered {
        request_id: armed.request_id.clone(),
        at: Instant::now(),
    });
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(INVOCATION_DEADLINE)
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", armed.request_id.clone());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
            armed.function
        ),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-67500000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
    );
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, armed.event).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = shared.reports.send(Report::Response {
        request_id,
        at: Instant::now(),
        body,
    });
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = shared.reports.send(Report::Error {
        request_id,
        at: Instant::now(),
        body,
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.reports.send(Report::InitError { body });
    StatusCode::ACCEPTED
}

/// The account and region the invoked function's ARN names, for the function's environment.
pub(super) const fn region() -> &'static str {
    REGION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_invocation_is_handed_out_and_its_answer_reported() {
        let mut api = RuntimeApi::start().await.unwrap();
        api.arm("req-1", "orders", Bytes::from_static(b"{\"a\":1}"));
        let base = format!("http://{}/2018-06-01/runtime", api.address());
        let client = reqwest::Client::new();

        let next = client
            .get(format!("{base}/invocation/next"))
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), 200);
        assert_eq!(next.headers()["lambda-runtime-aws-request-id"], "req-1");
        assert!(
            next.headers()["lambda-runtime-invoked-function-arn"]
                .to_str()
                .unwrap()
                .ends_with(":function:orders")
        );
        let deadline: u128 = next.headers()["lambda-runtime-deadline-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(deadline > 0);
        assert_eq!(next.text().await.unwrap(), "{\"a\":1}");

        let answered = client
            .post(format!("{base}/invocation/req-1/response"))
            .body("{\"statusCode\":200}")
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 202);

        let until = Instant::now() + Duration::from_secs(5);
        assert!(matches!(
            api.report(until).await,
            Some(Report::Delivered { request_id, .. }) if request_id == "req-1"
        ));
        assert!(matches!(
            api.report(until).await,
            Some(Report::Response { request_id, body, .. })
                if request_id == "req-1" && body.as_ref() == b"{\"statusCode\":200}"
        ));

        // The next call waits while nothing is armed, and gets what is armed then.
        let waiting = client
            .get(format!("{base}/invocation/next"))
            .timeout(Duration::from_millis(200))
            .send()
            .await;
        assert!(waiting.is_err(), "a second next must wait");
        let waiting = tokio::spawn({
            let client = client.clone();
            async move { client.get(format!("{base}/invocation/next")).send().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        api.arm("req-2", "orders", Bytes::from_static(b"{}"));
        let next = waiting.await.unwrap().unwrap();
        assert_eq!(next.headers()["lambda-runtime-aws-request-id"], "req-2");
    }

    #[tokio::test]
    async fn errors_are_reported() {
        let mut api = RuntimeApi::start().await.unwrap();
        let base = format!("http://{}/2018-06-01/runtime", api.address());
        let client = reqwest::Client::new();
        let status = client
            .post(format!("{base}/init/error"))
            .body("{\"errorMessage\":\"boom\"}")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
        let status = client
            .post(format!("{base}/invocation/req-9/error"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
        let until = Instant::now() + Duration::from_secs(5);
        assert!(matches!(
            api.report(until).await,
            Some(Report::InitError { .. })
        ));
        assert!(matches!(
            api.report(until).await,
            Some(Report::Error { request_id, .. }) if request_id == "req-9"
        ));
    }
}
