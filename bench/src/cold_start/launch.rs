//! One cold start: a function's release binary started as Lambda starts it (its environment,
//! `AWS_LAMBDA_RUNTIME_API` pointing at the bench's [`RuntimeApi`]), timed from the spawn to the
//! first invocation answered; then the same event once more, warm (what the handler's own work
//! costs once everything is connected), and the process is stopped.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use axum::body::Bytes;
use serde::Serialize;
use tokio::process::Command;

use super::runtime_api::{Report, RuntimeApi};

/// How long one cold start may take before the bench gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One cold start's figures.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ColdStart {
    /// From the spawn to the first `GET .../invocation/next` (Lambda's Init phase).
    pub(super) ready_ms: f64,
    /// From the spawn to the first invocation's answer (`.../response` or `.../error`).
    pub(super) answered_ms: f64,
    /// The second invocation, the same event: from arming it to its answer.
    pub(super) warm_ms: f64,
    /// `response` or `error`, and the HTTP status in an API Gateway answer.
    pub(super) outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Outcome {
    pub(super) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) status: Option<u16>,
    /// The `errorType` of an error answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error_type: Option<String>,
}

impl Outcome {
    fn from_response(body: &[u8]) -> Self {
        let status = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|answer| answer.get("statusCode")?.as_u64())
            .and_then(|status| u16::try_from(status).ok());
        Self {
            kind: "response",
            status,
            error_type: None,
        }
    }

    fn from_error(body: &[u8]) -> Self {
        let error_type = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|error| Some(error.get("errorType")?.as_str()?.to_owned()));
        Self {
            kind: "error",
            status: None,
            error_type,
        }
    }
}

/// What one start needs.
#[derive(Debug)]
pub(super) struct Launch<'a> {
    pub(super) binary: &'a Path,
    pub(super) function: &'a str,
    pub(super) request_id: &'a str,
    pub(super) event: Bytes,
    /// The whole environment: the process gets nothing else.
    pub(super) env: &'a [(String, String)],
    pub(super) log: &'a Path,
}

/// Starts the binary, waits for its first answer and a warm second one, and stops it.
pub(super) async fn cold_start(
    api: &mut RuntimeApi,
    launch: &Launch<'_>,
) -> anyhow::Result<ColdStart> {
    api.arm(launch.request_id, launch.function, launch.event.clone());
    let log = std::fs::File::create(launch.log)
        .with_context(|| format!("creating {}", launch.log.display()))?;
    let runtime_api = api.address();
    let started = Instant::now();
    let mut child = Command::new(launch.binary)
        .env_clear()
        .envs(launch.env.iter().map(|(name, value)| (name, value)))
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", launch.binary.display()))?;
    let deadline = started + START_TIMEOUT;
    let first = async {
        let (ready, answered_at, outcome) =
            answer(api, &mut child, launch, launch.request_id, deadline).await?;
        let warm_id = format!("{}-warm", launch.request_id);
        api.arm(&warm_id, launch.function, launch.event.clone());
        let armed_at = Instant::now();
        let (_, warm_at, _) = answer(api, &mut child, launch, &warm_id, deadline).await?;
        anyhow::Ok((
            ready,
            answered_at,
            outcome,
            warm_at.duration_since(armed_at),
        ))
    }
    .await;
    child.start_kill()?;
    child.wait().await?;
    let (ready, answered_at, outcome, warm) = first?;
    let ms = |at: Instant| at.duration_since(started).as_secs_f64() * 1e3;
    Ok(ColdStart {
        // The event is only handed out by the call that reports it: it always came first.
        ready_ms: ready.map_or_else(|| ms(answered_at), ms),
        answered_ms: ms(answered_at),
        warm_ms: warm.as_secs_f64() * 1e3,
        outcome,
    })
}

/// Waits for the answer to invocation `request_id`: when it was handed out (if reported) and
/// when and how it was answered.
async fn answer(
    api: &mut RuntimeApi,
    child: &mut tokio::process::Child,
    launch: &Launch<'_>,
    request_id: &str,
    deadline: Instant,
) -> anyhow::Result<(Option<Instant>, Instant, Outcome)> {
    let mut ready = None;
    loop {
        let report = tokio::select! {
            report = api.report(deadline) => report,
            status = child.wait() => {
                let status = status?;
                bail!(
                    "{} exited ({status}) before it answered; see {}",
                    launch.function,
                    launch.log.display()
                );
            }
        };
        match report {
            None => bail!(
                "{} did not answer within {START_TIMEOUT:?}; see {}",
                launch.function,
                launch.log.display()
            ),
            Some(Report::Delivered { request_id: id, at }) if id == request_id => {
                ready = Some(at);
            }
            Some(Report::Response {
                request_id: id,
                at,
                body,
            }) if id == request_id => return Ok((ready, at, Outcome::from_response(&body))),
            Some(Report::Error {
                request_id: id,
                at,
                body,
            }) if id == request_id => return Ok((ready, at, Outcome::from_error(&body))),
            Some(Report::InitError { body }) => bail!(
                "{} failed to initialise: {}",
                launch.function,
                String::from_utf8_lossy(&body)
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_gateway_answer_gives_its_status() {
        assert_eq!(
            Outcome::from_response(br#"{"statusCode":401,"body":"{}"}"#).status,
            Some(401)
        );
        assert_eq!(
            Outcome::from_response(br#"{"batchItemFailures":[]}"#).status,
            None
        );
        assert_eq!(Outcome::from_response(b"null").status, None);
        let error = Outcome::from_error(br#"{"errorType":"orders::Error","errorMessage":"x"}"#);
        assert_eq!(
            (error.kind, error.error_type.as_deref()),
            ("error", Some("orders::Error"))
        );
    }
}
