//! The EventBridge stand-in: fires scheduled handlers on their schedule and on demand.
//!
//! Each [`ScheduleBinding`] gets one task that sleeps until the next fire time (computed in the
//! binding's timezone), builds the `EventBridgeEvent` EventBridge Scheduler delivers with the
//! `Input` template.yaml gives it ("Scheduled Event" from "aws.scheduler", `time` the scheduled
//! minute) and awaits the handler. Fires are never
//! replayed: after a laptop sleeps through some, the schedule picks up at the next one, as
//! EventBridge does not backfill either. A handler that runs past its next fire time delays it
//! rather than overlapping itself.
//!
//! On demand: `kicksync-local fire NAME`, or `POST /_local/schedules/{name}` on a running runner
//! (a control route of the runner only; it is not a Lambda route and not in the API document).

mod expression;

use std::{fmt, sync::Arc, time::Duration};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use axum::{
    Router,
    extract::{Path, State},
    routing::post,
};
use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
pub use expression::{ExpressionError, ScheduleExpression};
use futures::future::BoxFuture;
use http::StatusCode;
use shared::{ApiError, error::ProblemCode, http::json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::gateway::{into_axum_response, problem};

/// The control route that fires a schedule now.
pub const FIRE_ROUTE: &str = "/_local/schedules/{name}";
/// The account id in local ARNs (the one AWS uses in its documentation, and moto by default).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";

/// A scheduled handler: the event in, its JSON output (or the error Lambda would record) out.
pub type ScheduleHandler = Arc<
    dyn Fn(EventBridgeEvent) -> BoxFuture<'static, Result<serde_json::Value, lambda_http::Error>>
        + Send
        + Sync,
>;

/// One EventBridge rule and the function it targets.
#[derive(Clone)]
pub struct ScheduleBinding {
    /// The rule name: what `fire NAME` and the control route take.
    pub name: String,
    /// As written in template.yaml, e.g. `cron(0 4 * * ? *)`.
    pub expression_text: String,
    pub expression: ScheduleExpression,
    pub timezone: Tz,
    pub handler: ScheduleHandler,
}

impl fmt::Debug for ScheduleBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScheduleBinding")
            .field("name", &self.name)
            .field("expression", &self.expression_text)
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error(transparent)]
    Expression(#[from] ExpressionError),
    #[error("unknown timezone {0:?}")]
    Timezone(String),
}

impl ScheduleBinding {
    /// `expression` in EventBridge syntax, `timezone` an IANA name such as `Asia/Seoul`.
    pub fn new(
        name: &str,
        expression: &str,
        timezone: &str,
        handler: ScheduleHandler,
    ) -> Result<Self, BindingError> {
        Ok(Self {
            name: name.to_owned(),
            expression_text: expression.to_owned(),
            expression: expression.parse()?,
            timezone: timezone
                .parse()
                .map_err(|_| BindingError::Timezone(timezone.to_owned()))?,
            handler,
        })
    }

    /// The event EventBridge Scheduler sends for a fire at `time`: template.yaml's `Input`, its
    /// context attributes (execution id, scheduled time, schedule ARN) filled in.
    pub fn event(&self, time: DateTime<Utc>, region: &str) -> EventBridgeEvent {
        let mut event = EventBridgeEvent::default();
        event.version = Some("0".to_owned());
        event.id = Some(uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
        "Scheduled Event".clone_into(&mut event.detail_type);
        "aws.scheduler".clone_into(&mut event.source);
        event.account = Some(LOCAL_ACCOUNT_ID.to_owned());
        event.time = Some(time.trunc_subsecs(0));
        event.region = Some(region.to_owned());
        event.resources = Some(vec![format!(
            "arn:aws:scheduler:{region}:{LOCAL_ACCOUNT_ID}:schedule/default/{}",
            self.name
        )]);
        event.detail = serde_json::json!({});
        event
    }
}

/// All schedules of the runner.
#[derive(Debug)]
pub struct Schedules {
    bindings: Vec<ScheduleBinding>,
    region: String,
}

impl Schedules {
    pub fn new(bindings: Vec<ScheduleBinding>, region: &str) -> Self {
        Self {
            bindings,
            region: region.to_owned(),
        }
    }

    pub fn bindings(&self) -> &[ScheduleBinding] {
        &self.bindings
    }

    pub fn get(&self, name: &str) -> Option<&ScheduleBinding> {
        self.bindings.iter().find(|binding| binding.name == name)
    }

    /// Runs the handler of `name` once, as a fire at `time`; `None` for an unknown name.
    pub async fn fire(
        &self,
        name: &str,
        time: DateTime<Utc>,
    ) -> Option<Result<serde_json::Value, lambda_http::Error>> {
        let binding = self.get(name)?;
        Some((binding.handler)(binding.event(time, &self.region)).await)
    }

    /// Starts one task per schedule; each stops when `shutdown` is cancelled (after finishing a
    /// fire in progress).
    pub fn spawn(self: &Arc<Self>, tasks: &mut JoinSet<()>, shutdown: &CancellationToken) {
        for index in 0..self.bindings.len() {
            tasks.spawn(run_schedule(self.clone(), index, shutdown.clone()));
        }
    }

    /// `POST /_local/schedules/{name}`: fires the schedule now and answers with the handler's
    /// JSON output; 404 for an unknown name, 500 with the error when the handler fails.
    pub fn control_router(self: Arc<Self>) -> Router {
        Router::new()
            .route(FIRE_ROUTE, post(fire_now))
            .with_state(self)
    }
}

async fn fire_now(
    State(schedules): State<Arc<Schedules>>,
    Path(name): Path<String>,
) -> axum::response::Response {
    let response = match schedules.fire(&name, Utc::now()).await {
        None => ApiError::NotFound {
            code: ProblemCode::ScheduleNotFound,
        }
        .into_response(),
        Some(Ok(output)) => json(StatusCode::OK, &output),
        Some(Err(err)) => {
            tracing::error!(schedule = %name, error = %err, "scheduled handler failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                ProblemCode::HandlerFailed,
                &format!("schedule {name}: {err}"),
            )
        }
    };
    into_axum_response(response)
}

async fn run_schedule(schedules: Arc<Schedules>, index: usize, shutdown: CancellationToken) {
    let Some(binding) = schedules.bindings.get(index) else {
        return;
    };
    let mut after = Utc::now();
    loop {
        let Some(next) = binding.expression.next_after(after, binding.timezone) else {
            tracing::info!(schedule = %binding.name, "schedule has no future fire times");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        match (binding.handler)(binding.event(next, &schedules.region)).await {
            Ok(output) => {
                tracing::info!(schedule = %binding.name, %output, "scheduled handler ran")
            }
            Err(err) => {
                tracing::error!(schedule = %binding.name, error = %err, "scheduled handler failed")
            }
        }
        // Skip, rather than replay, whatever was missed while the handler ran or the machine slept.
        let now = Utc::now();
        after = match binding.expression.next_after(next, binding.timezone) {
            Some(following) if following <= now => now,
            _ => next,
        };
    }
}
