//! Schedules: fired on time (under tokio's paused clock) and on demand through the runner's
//! control route.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::TimeDelta;
use futures::FutureExt;
use kicksync_local::schedules::{ScheduleBinding, ScheduleHandler, Schedules};
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::common::{expect_problem, spawn_app_with};

/// Answers with the parts of the event a scheduled function looks at.
fn echo_handler() -> ScheduleHandler {
    Arc::new(|event: EventBridgeEvent| {
        async move {
            Ok(json!({
                "detail_type": event.detail_type,
                "source": event.source,
                "resources": event.resources,
                "region": event.region,
                "has_time": event.time.is_some(),
                "detail": event.detail,
            }))
        }
        .boxed()
    })
}

fn failing_handler() -> ScheduleHandler {
    Arc::new(|_event: EventBridgeEvent| {
        async move { Err::<Value, lambda_http::Error>("the sweep could not reach MySQL".into()) }
            .boxed()
    })
}

#[tokio::test]
async fn schedules_fire_on_demand_through_the_control_route() {
    let app = spawn_app_with(vec![
        ScheduleBinding::new("echo", "cron(0 4 * * ? *)", "Asia/Seoul", echo_handler()).unwrap(),
        ScheduleBinding::new("broken", "rate(1 day)", "UTC", failing_handler()).unwrap(),
    ])
    .await;

    let fired = app
        .client
        .post(app.url("/_local/schedules/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(fired.status(), 200);
    let output: Value = fired.json().await.unwrap();
    assert_eq!(output["detail_type"], "Scheduled Event");
    assert_eq!(output["source"], "aws.scheduler");
    assert_eq!(output["has_time"], true);
    assert_eq!(output["detail"], json!({}));
    let rule = output["resources"][0].as_str().unwrap();
    assert!(
        rule.starts_with("arn:aws:scheduler:") && rule.ends_with(":schedule/default/echo"),
        "{rule}"
    );

    let unknown = app
        .client
        .post(app.url("/_local/schedules/nope"))
        .send()
        .await
        .unwrap();
    expect_problem(unknown, 404, "SCHEDULE_NOT_FOUND").await;

    let broken = app
        .client
        .post(app.url("/_local/schedules/broken"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(broken, 500, "HANDLER_FAILED").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("could not reach MySQL")
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_schedule_fires_every_period_until_shutdown() {
    let (fired, mut fires) = mpsc::unbounded_channel();
    let handler: ScheduleHandler = Arc::new(move |event: EventBridgeEvent| {
        let fired = fired.clone();
        async move {
            let _ = fired.send(event.time);
            Ok(Value::Null)
        }
        .boxed()
    });
    let schedules = Arc::new(Schedules::new(
        vec![ScheduleBinding::new("sweep", "rate(1 minute)", "UTC", handler).unwrap()],
        "ap-northeast-2",
    ));
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    schedules.spawn(&mut tasks, &shutdown);

    // The paused clock jumps to each fire; event times are one period apart.
    let first = fires.recv().await.unwrap().unwrap();
    let second = fires.recv().await.unwrap().unwrap();
    let third = fires.recv().await.unwrap().unwrap();
    assert_eq!(second - first, TimeDelta::minutes(1));
    assert_eq!(third - second, TimeDelta::minutes(1));

    shutdown.cancel();
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
}

#[test]
fn bindings_refuse_bad_expressions_and_timezones() {
    assert!(ScheduleBinding::new("x", "cron(0 4 * * * *)", "Asia/Seoul", echo_handler()).is_err());
    assert!(ScheduleBinding::new("x", "rate(1 minute)", "Mars/Olympus", echo_handler()).is_err());
}
