//! Every sample under `events/<function>/` is in the shape AWS delivers to that function and is
//! answered by its handler, run on the MySQL pool template.yaml gives the function's Lambda
//! environments (README "Connection budget"). The functions' own tests check what each sample
//! does in detail; this one makes sure no function and no sample is left out.

use std::{
    collections::{HashMap, hash_map::Entry},
    path::PathBuf,
    sync::Arc,
};

use aws_lambda_events::{eventbridge::EventBridgeEvent, sqs::SqsEvent};
use kicksync_local::Functions;
use serde_json::Value;
use shared::{
    domain::auth::Role,
    routes::{self, ROUTES},
    testing::{TestContext, aws::TestAws},
};

use crate::template::{environment, events_of, function, number, tagged};

const EVENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
/// What the samples put where API Gateway would carry a real access token.
const TOKEN_PLACEHOLDER: &str = "<access token>";

/// `(function, file name, event)` of every sample, sorted.
fn samples() -> Vec<(String, String, Value)> {
    let mut samples = Vec::new();
    for dir in std::fs::read_dir(EVENTS_DIR).unwrap() {
        let dir = dir.unwrap().path();
        let function = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "events/{function}/ is empty");
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.ends_with(".json"),
                "events/{function}/{name} is not JSON"
            );
            let event = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|err| panic!("events/{function}/{name}: {err}"));
            samples.push((function.clone(), name, event));
        }
    }
    samples.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    samples
}

#[test]
fn every_function_has_samples_and_every_sample_a_function() {
    let template = crate::template::load();
    let with_samples: std::collections::BTreeSet<String> = samples()
        .into_iter()
        .map(|(function, ..)| function)
        .collect();
    let deployed: std::collections::BTreeSet<String> =
        crate::template::resources_of(&template, "AWS::Serverless::Function")
            .into_iter()
            .filter_map(|(_, function)| crate::template::binary_of(function).map(str::to_owned))
            .collect();
    assert_eq!(with_samples, deployed);
}

/// Whether the concrete `path` is an instance of the route's `template` (`/orders/{id}`).
fn path_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template.iter().zip(&path).all(|(expected, actual)| {
            (expected.starts_with('{') && !actual.is_empty()) || expected == actual
        })
}

/// The role a route's caller has: admins under `/admin`, partners under `/partner` and for
/// writes to the catalogue, buyers elsewhere.
fn caller_role(method: &str, path: &str) -> Role {
    if path.starts_with("/admin") {
        Role::Admin
    } else if path.starts_with("/partner") || (path.starts_with("/products") && method != "GET") {
        Role::Partner
    } else {
        Role::Buyer
    }
}

/// Fills a Scheduler `Input` template with the context attributes and pseudo parameters the
/// sample carries, as EventBridge Scheduler and CloudFormation would.
fn scheduler_input(input: &str, sample: &Value) -> Value {
    let text = input
        .replace("${AWS::AccountId}", sample["account"].as_str().unwrap())
        .replace("${AWS::Region}", sample["region"].as_str().unwrap())
        .replace(
            "<aws.scheduler.execution-id>",
            sample["id"].as_str().unwrap(),
        )
        .replace(
            "<aws.scheduler.scheduled-time>",
            sample["time"].as_str().unwrap(),
        )
        .replace(
            "<aws.scheduler.schedule-arn>",
            sample["resources"][0].as_str().unwrap(),
        );
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("Input is not JSON: {err}: {text}"))
}

/// The runner's functions on a database of their own, with the function's Lambda pool size,
/// and DynamoDB tables and a queue of their own on moto.
struct Harness {
    ctx: TestContext,
    functions: Arc<Functions>,
    _runs: TestAws,
    _ids: TestAws,
}

impl Harness {
    async fn new(pool_size: u64) -> Self {
        let runs = TestAws::new(30).await;
        let ids = TestAws::new(30).await;
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:5001".to_owned());
        let pool_size = pool_size.to_string();
        let ctx = TestContext::with_vars(&[
            ("DATABASE_MAX_CONNECTIONS", &pool_size),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("SETTLEMENT_RUNS_TABLE", &runs.table),
            ("SETTLEMENT_QUEUE_URL", &runs.queue_url),
            ("IDEMPOTENCY_TABLE", &ids.table),
        ])
        .await;
        let functions = Arc::new(Functions::new(&ctx.platform).await.unwrap());
        Self {
            ctx,
            functions,
            _runs: runs,
            _ids: ids,
        }
    }
}

#[tokio::test]
async fn every_sample_event_is_answered_by_its_handler() {
    let template = crate::template::load();
    let mut harnesses: HashMap<u64, Harness> = HashMap::new();
    for (function_name, file, mut sample) in samples() {
        let what = format!("events/{function_name}/{file}");
        let (logical_id, deployed) = function(&template, &function_name);
        let pool_size = environment(&template, deployed, "DATABASE_MAX_CONNECTIONS")
            .and_then(number)
            .unwrap_or_else(|| panic!("{logical_id}: DATABASE_MAX_CONNECTIONS"));
        if let Entry::Vacant(slot) = harnesses.entry(pool_size) {
            slot.insert(Harness::new(pool_size).await);
        }
        let harness = &harnesses[&pool_size];
        assert_eq!(
            harness.ctx.platform.config.database_max_connections,
            u32::try_from(pool_size).unwrap()
        );

        if sample.get("version").and_then(Value::as_str) == Some("2.0") {
            // API Gateway HTTP API, payload format 2.0.
            let route_key = sample["routeKey"].as_str().unwrap().to_owned();
            assert_eq!(sample["requestContext"]["routeKey"], route_key, "{what}");
            let (method, path) = route_key.split_once(' ').unwrap();
            assert!(
                routes::routes_of(&function_name).any(|route| route.key() == route_key),
                "{what}: {route_key} is not a route of {function_name}"
            );
            assert_eq!(sample["requestContext"]["http"]["method"], method, "{what}");
            let raw_path = sample["rawPath"].as_str().unwrap();
            assert!(
                path_matches(path, raw_path),
                "{what}: {raw_path} is not {path}"
            );
            assert_eq!(sample["requestContext"]["http"]["path"], raw_path, "{what}");
            if let Some(authorization) = sample["headers"]["authorization"].as_str()
                && authorization.contains(TOKEN_PLACEHOLDER)
            {
                let (_, token) = harness.ctx.user(caller_role(method, path)).await;
                sample["headers"]["authorization"] =
                    Value::from(authorization.replace(TOKEN_PLACEHOLDER, &token));
            }
            let request = lambda_http::request::from_str(&sample.to_string())
                .unwrap_or_else(|err| panic!("{what}: {err}"));
            let response = harness.functions.dispatch(&function_name, request).await;
            let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
            assert!(
                response.status().as_u16() < 500 && !body.contains("ROUTE_NOT_FOUND"),
                "{what}: {} {body}",
                response.status()
            );
        } else if sample.get("detail-type").is_some() {
            // EventBridge Scheduler, with the Input template.yaml gives the schedule.
            let schedules = events_of(deployed, "ScheduleV2");
            assert_eq!(schedules.len(), 1, "{what}: {logical_id} has one schedule");
            let (event_name, properties) = schedules[0];
            let input = tagged(&properties["Input"], "Sub")
                .and_then(serde_yaml::Value::as_str)
                .unwrap_or_else(|| panic!("{logical_id}.{event_name} has no Input"));
            assert_eq!(scheduler_input(input, &sample), sample, "{what}");
            let schedule_arn = sample["resources"][0].as_str().unwrap();
            assert!(
                schedule_arn.ends_with(&format!(":schedule/default/{logical_id}{event_name}")),
                "{what}: {schedule_arn} is not the schedule SAM creates"
            );
            let event: EventBridgeEvent = serde_json::from_value(sample.clone()).unwrap();
            let binding = harness
                .functions
                .schedules()
                .into_iter()
                .find(|binding| binding.name == function_name)
                .unwrap_or_else(|| panic!("{what}: the runner binds no schedule to it"));
            let output = (binding.handler)(event)
                .await
                .unwrap_or_else(|err| panic!("{what}: {err}"));
            assert!(output.is_object(), "{what}: {output}");
        } else if sample.get("Records").is_some() {
            // SQS, from the queue the function's event source mapping reads.
            let (_, source) = events_of(deployed, "SQS")[0];
            let (queue_id, _) = crate::template::get_att_of(&source["Queue"]).unwrap();
            let queue_name =
                crate::template::resources(&template)[queue_id]["Properties"]["QueueName"]
                    .as_str()
                    .unwrap();
            let event: SqsEvent = serde_json::from_value(sample.clone()).unwrap();
            let mut ids = Vec::new();
            for record in &event.records {
                assert_eq!(record.event_source.as_deref(), Some("aws:sqs"), "{what}");
                let arn = record.event_source_arn.as_deref().unwrap_or_default();
                assert!(arn.ends_with(&format!(":{queue_name}")), "{what}: {arn}");
                ids.push(record.message_id.clone().unwrap());
            }
            let binding = harness
                .functions
                .queues(&harness.ctx.platform.config)
                .into_iter()
                .find(|binding| binding.name == function_name)
                .unwrap_or_else(|| panic!("{what}: the runner binds no queue to it"));
            let response = (binding.handler)(event).await;
            for failure in &response.batch_item_failures {
                assert!(
                    ids.contains(&failure.item_identifier),
                    "{what}: {failure:?}"
                );
            }
        } else {
            panic!("{what}: neither API Gateway v2, EventBridge nor SQS");
        }
        assert!(
            ROUTES.iter().any(|route| route.function == function_name)
                || !events_of(deployed, "ScheduleV2").is_empty()
                || !events_of(deployed, "SQS").is_empty(),
            "{what}: {function_name} has no trigger"
        );
    }
}
