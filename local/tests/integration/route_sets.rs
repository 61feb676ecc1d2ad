//! The routes the runner serves, the routes template.yaml deploys and the operations the API
//! document describes are one set (docs/contract.md, "Functions"); so are the functions, tables,
//! queues and schedules the code names and the ones template.yaml creates.

use std::collections::{BTreeSet, HashMap};

use kicksync_local::functions::{
    SCHEDULES, SETTLEMENT_WORKER_BATCH_SIZE, SETTLEMENT_WORKER_CONCURRENCY,
};
use serde_yaml::Value as Yaml;
use shared::{Config, routes::ROUTES};

use crate::template::{
    binary_of, environment, events_of, function, get_att_of, number, parameter_default, ref_of,
    resources, resources_of, tagged,
};

type RouteSet = BTreeSet<(String, String)>;

fn route_table() -> RouteSet {
    ROUTES
        .iter()
        .map(|route| (route.method.to_owned(), route.path.to_owned()))
        .collect()
}

fn openapi_operations() -> RouteSet {
    let document = kicksync_local::docs::openapi();
    let mut set = RouteSet::new();
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("OPTIONS", &item.options),
            ("HEAD", &item.head),
            ("PATCH", &item.patch),
            ("TRACE", &item.trace),
        ];
        for (method, operation) in operations {
            if operation.is_some() {
                set.insert((method.to_owned(), path.clone()));
            }
        }
    }
    set
}

/// Every `HttpApi` event of every `AWS::Serverless::Function`.
fn template_routes() -> RouteSet {
    let template = crate::template::load();
    let mut set = RouteSet::new();
    for (_, function) in resources_of(&template, "AWS::Serverless::Function") {
        for (_, properties) in events_of(function, "HttpApi") {
            let method = properties["Method"].as_str().expect("HttpApi Method");
            let path = properties["Path"].as_str().expect("HttpApi Path");
            set.insert((method.to_ascii_uppercase(), path.to_owned()));
        }
    }
    set
}

fn assert_same(left_name: &str, left: &RouteSet, right_name: &str, right: &RouteSet) {
    let only_left: Vec<_> = left.difference(right).collect();
    let only_right: Vec<_> = right.difference(left).collect();
    assert!(
        only_left.is_empty() && only_right.is_empty(),
        "only in {left_name}: {only_left:?}; only in {right_name}: {only_right:?}"
    );
}

#[test]
fn the_route_table_and_the_api_document_agree() {
    assert_same(
        "the route table",
        &route_table(),
        "openapi.json",
        &openapi_operations(),
    );
}

#[test]
fn the_route_table_and_template_yaml_agree() {
    assert_same(
        "the route table",
        &route_table(),
        "template.yaml",
        &template_routes(),
    );
}

#[test]
fn the_route_table_has_no_duplicates() {
    assert_eq!(route_table().len(), ROUTES.len());
}

/// The function crates under `functions/`.
fn function_crates() -> BTreeSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_function_crate_is_a_template_function_and_every_name_the_code_uses_is_one() {
    let template = crate::template::load();
    let deployed: BTreeSet<String> = resources_of(&template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, function)| {
            binary_of(function)
                .unwrap_or_else(|| panic!("{id} has no BuildProperties.Binary"))
                .to_owned()
        })
        .collect();
    assert_eq!(deployed, function_crates());
    let named = ROUTES
        .iter()
        .map(|route| route.function)
        .chain(SCHEDULES.iter().map(|schedule| schedule.function))
        .chain(["settlement-worker"]);
    for name in named {
        assert!(deployed.contains(name), "the code names function {name}");
    }
}

/// Configuration with its defaults: the names the code uses when nothing overrides them.
fn default_config() -> Config {
    Config::from_vars(HashMap::from([
        (
            "DATABASE_URL".to_owned(),
            "mysql://root@127.0.0.1/x".to_owned(),
        ),
        ("JWT_SECRET".to_owned(), "x".repeat(32)),
    ]))
    .unwrap()
}

#[test]
fn every_table_the_code_names_exists_on_demand_with_its_key_and_ttl() {
    let template = crate::template::load();
    let config = default_config();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    let tables = [
        ("IDEMPOTENCY_TABLE", &config.aws.idempotency_table),
        ("SETTLEMENT_RUNS_TABLE", &config.aws.settlement_runs_table),
    ];
    for (variable, name) in tables {
        let (id, table) = resources_of(&template, "AWS::DynamoDB::Table")
            .into_iter()
            .find(|(_, table)| table["Properties"]["TableName"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no DynamoDB table named {name} ({variable}'s default)"));
        assert_eq!(ref_of(&globals[variable]), Some(id), "{variable}");
        let properties = &table["Properties"];
        assert_eq!(
            properties["BillingMode"].as_str(),
            Some("PAY_PER_REQUEST"),
            "{id}"
        );
        // shared/src/adapters/{dynamodb,webhook_ids}.rs: hash key `pk` (S), TTL `expires_at`.
        assert_eq!(
            properties["KeySchema"][0]["AttributeName"].as_str(),
            Some("pk")
        );
        assert_eq!(properties["KeySchema"][0]["KeyType"].as_str(), Some("HASH"));
        assert_eq!(
            properties["AttributeDefinitions"][0]["AttributeType"].as_str(),
            Some("S")
        );
        let ttl = &properties["TimeToLiveSpecification"];
        assert_eq!(ttl["AttributeName"].as_str(), Some("expires_at"), "{id}");
        assert_eq!(ttl["Enabled"].as_bool(), Some(true), "{id}");
    }
}

/// `(logical id, resource)` of the queue `SETTLEMENT_QUEUE_URL` names.
fn settlement_queue(template: &Yaml) -> (&str, &Yaml) {
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    let queue_id =
        ref_of(&globals["SETTLEMENT_QUEUE_URL"]).expect("SETTLEMENT_QUEUE_URL is a !Ref");
    let queue = &resources(template)[queue_id];
    assert_eq!(queue["Type"].as_str(), Some("AWS::SQS::Queue"));
    (queue_id, queue)
}

#[test]
fn the_settlement_queue_feeds_the_worker_as_the_runner_binds_it() {
    let template = crate::template::load();
    let (queue_id, queue) = settlement_queue(&template);

    let (_, worker) = function(&template, "settlement-worker");
    let sources = events_of(worker, "SQS");
    assert_eq!(sources.len(), 1, "the worker reads one queue");
    let source = sources[0].1;
    assert_eq!(get_att_of(&source["Queue"]), Some((queue_id, "Arn")));
    assert_eq!(
        number(&source["BatchSize"]),
        Some(u64::try_from(SETTLEMENT_WORKER_BATCH_SIZE).unwrap())
    );
    let concurrency = u64::try_from(SETTLEMENT_WORKER_CONCURRENCY).unwrap();
    assert_eq!(
        number(&source["ScalingConfig"]["MaximumConcurrency"]),
        Some(concurrency)
    );
    assert!(
        source["FunctionResponseTypes"]
            .as_sequence()
            .is_some_and(|types| types
                .iter()
                .any(|t| t.as_str() == Some("ReportBatchItemFailures"))),
        "the worker reports batch item failures"
    );
    // Reserved concurrency below MaximumConcurrency would throttle the mapping.
    assert!(number(&worker["Properties"]["ReservedConcurrentExecutions"]) >= Some(concurrency));

    let queue = &queue["Properties"];
    let timeout = number(&worker["Properties"]["Timeout"]).expect("worker Timeout");
    assert_eq!(number(&queue["VisibilityTimeout"]), Some(6 * timeout));
    let redrive = &queue["RedrivePolicy"];
    assert_eq!(number(&redrive["maxReceiveCount"]), Some(3));
    let (dlq, attribute) = get_att_of(&redrive["deadLetterTargetArn"]).expect("a DLQ");
    assert_eq!(attribute, "Arn");
    assert_eq!(
        resources(&template)[dlq]["Type"].as_str(),
        Some("AWS::SQS::Queue")
    );
}

/// `(parameter, value)` of a condition written `!Not [!Equals [!Ref parameter, value]]`.
fn unless_equal<'t>(template: &'t Yaml, condition: &str) -> (&'t str, &'t str) {
    let written = &template["Conditions"][condition];
    let equals = tagged(written, "Not")
        .and_then(|not| not.as_sequence())
        .and_then(|not| tagged(not.first()?, "Equals"))
        .and_then(Yaml::as_sequence)
        .unwrap_or_else(|| panic!("{condition} is not !Not [!Equals [...]]: {written:?}"));
    let parameter = ref_of(&equals[0]).expect("!Ref of a parameter");
    let value = equals[1].as_str().expect("a string");
    (parameter, value)
}

#[test]
fn the_dead_letter_alarm_watches_the_queue_the_settlement_queue_dead_letters_into() {
    let template = crate::template::load();
    let (_, queue) = settlement_queue(&template);
    let redrive = &queue["Properties"]["RedrivePolicy"];
    let (dlq, _) = get_att_of(&redrive["deadLetterTargetArn"]).expect("a DLQ");

    let alarm = &resources(&template)["SettlementDeadLetterAlarm"];
    assert_eq!(alarm["Type"].as_str(), Some("AWS::CloudWatch::Alarm"));
    let alarm = &alarm["Properties"];
    assert_eq!(alarm["Namespace"].as_str(), Some("AWS/SQS"));
    assert_eq!(
        alarm["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible")
    );
    let dimensions = alarm["Dimensions"].as_sequence().expect("Dimensions");
    assert_eq!(dimensions.len(), 1, "one queue");
    assert_eq!(dimensions[0]["Name"].as_str(), Some("QueueName"));
    assert_eq!(
        get_att_of(&dimensions[0]["Value"]),
        Some((dlq, "QueueName")),
        "the queue the RedrivePolicy names"
    );
    // One dead message, seen in one minute, is enough.
    assert_eq!(
        alarm["ComparisonOperator"].as_str(),
        Some("GreaterThanThreshold")
    );
    assert_eq!(number(&alarm["Threshold"]), Some(0));
    assert_eq!(alarm["Statistic"].as_str(), Some("Maximum"));
    assert_eq!(number(&alarm["EvaluationPeriods"]), Some(1));

    // The topic is an action only when one is given.
    let actions = tagged(&alarm["AlarmActions"], "If")
        .and_then(Yaml::as_sequence)
        .expect("AlarmActions is an !If");
    let condition = actions[0].as_str().expect("a condition");
    let topic = ref_of(&actions[1][0]).expect("[!Ref the topic]");
    assert_eq!(actions[1].as_sequence().map(Vec::len), Some(1));
    assert_eq!(ref_of(&actions[2]), Some("AWS::NoValue"));
    assert_eq!(unless_equal(&template, condition), (topic, ""));
    assert_eq!(parameter_default(&template, topic).as_str(), Some(""));
}

#[test]
fn every_schedule_the_runner_fires_is_deployed_and_no_other() {
    let template = crate::template::load();
    let mut deployed = BTreeSet::new();
    for (id, function) in resources_of(&template, "AWS::Serverless::Function") {
        assert!(
            events_of(function, "Schedule").is_empty(),
            "{id}: schedules are EventBridge Scheduler (ScheduleV2) events"
        );
        for (_, properties) in events_of(function, "ScheduleV2") {
            let timezone = properties["ScheduleExpressionTimezone"]
                .as_str()
                .unwrap_or("UTC");
            deployed.insert((
                binary_of(function).unwrap().to_owned(),
                properties["ScheduleExpression"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                timezone.to_owned(),
            ));
            assert!(
                tagged(&properties["Input"], "Sub").is_some(),
                "{id}: Scheduler delivers Input as it is, so Input is the event the handler reads"
            );
        }
    }
    let fired: BTreeSet<_> = SCHEDULES
        .iter()
        .map(|s| {
            (
                s.function.to_owned(),
                s.expression.to_owned(),
                s.timezone.to_owned(),
            )
        })
        .collect();
    assert_eq!(deployed, fired);
}

/// The variables that carry secrets come from Secrets Manager at deploy time; no parameter
/// carries one (so none is `NoEcho`, and none has a default to leak).
#[test]
fn secrets_come_from_secrets_manager_never_from_parameters() {
    let template = crate::template::load();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    for variable in [
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "REDIS_URL",
        "JWT_SECRET",
        "PORTONE_API_SECRET",
        "PORTONE_WEBHOOK_SECRET",
    ] {
        let text = tagged(&globals[variable], "Sub")
            .and_then(Yaml::as_str)
            .unwrap_or_else(|| panic!("{variable} is not a !Sub"));
        assert!(
            text.contains("{{resolve:secretsmanager:"),
            "{variable}: {text}"
        );
    }
    for (name, parameter) in template["Parameters"].as_mapping().unwrap() {
        assert!(
            parameter["NoEcho"].is_null(),
            "{name:?} is a secret parameter"
        );
    }
    for (id, function) in resources_of(&template, "AWS::Serverless::Function") {
        if let Some(variables) = function["Properties"]["Environment"]["Variables"].as_mapping() {
            for name in variables.keys() {
                let name = name.as_str().unwrap();
                assert!(
                    !name.contains("SECRET") && !name.contains("PASSWORD"),
                    "{id}: {name}"
                );
            }
        }
    }
}

/// README "Connection budget": the orders function's environments are bounded, checkout bursts
/// fit in them, and every function's pool is what a Lambda binary accepts.
#[test]
fn the_connection_budget_is_what_the_template_deploys() {
    let template = crate::template::load();
    let (_, orders) = function(&template, "orders");
    let reserved = ref_of(&orders["Properties"]["ReservedConcurrentExecutions"])
        .and_then(|parameter| number(parameter_default(&template, parameter)))
        .expect("orders' reserved concurrency is a parameter");
    let (_, checkout) = events_of(orders, "HttpApi")
        .into_iter()
        .find(|(_, event)| {
            event["Path"].as_str() == Some("/orders") && event["Method"].as_str() == Some("POST")
        })
        .expect("POST /orders");
    let burst = ref_of(&checkout["RouteSettings"]["ThrottlingBurstLimit"])
        .and_then(|parameter| number(parameter_default(&template, parameter)))
        .expect("the checkout route has its own burst");
    assert!(
        burst <= reserved,
        "burst {burst} over reserved concurrency {reserved}"
    );

    // Provisioned environments are part of the reserved ones: the parameter cannot be set above
    // the reserved concurrency's default, it is off by default, and off means no configuration
    // at all (the alias still exists: SAM cannot make it conditional).
    let properties = &orders["Properties"];
    assert_eq!(properties["AutoPublishAlias"].as_str(), Some("live"));
    let provisioned = tagged(&properties["ProvisionedConcurrencyConfig"], "If")
        .and_then(Yaml::as_sequence)
        .expect("orders' ProvisionedConcurrencyConfig is an !If");
    let parameter = ref_of(&provisioned[1]["ProvisionedConcurrentExecutions"])
        .expect("provisioned concurrency is a parameter");
    assert_eq!(ref_of(&provisioned[2]), Some("AWS::NoValue"));
    let condition = provisioned[0].as_str().expect("a condition");
    assert_eq!(unless_equal(&template, condition), (parameter, "0"));
    let declared = &template["Parameters"][parameter];
    assert_eq!(declared["Type"].as_str(), Some("Number"));
    assert_eq!(number(parameter_default(&template, parameter)), Some(0));
    let most = number(&declared["MaxValue"]).expect("a MaxValue");
    assert!(
        most <= reserved,
        "provisioned concurrency up to {most}, reserved {reserved}"
    );

    for (id, function) in resources_of(&template, "AWS::Serverless::Function") {
        assert!(
            !function["Properties"]["ReservedConcurrentExecutions"].is_null(),
            "{id} has no reserved concurrency, so nothing bounds its connections"
        );
        let pool = environment(&template, function, "DATABASE_MAX_CONNECTIONS")
            .and_then(number)
            .unwrap_or_else(|| panic!("{id}: DATABASE_MAX_CONNECTIONS"));
        assert!(
            (1..=u64::from(shared::config::LAMBDA_MAX_POOL_SIZE)).contains(&pool),
            "{id}: a pool of {pool}"
        );
    }
    for signup_or_login in ["/auth/signup", "/auth/login"] {
        let (_, auth) = function(&template, "auth");
        let (_, event) = events_of(auth, "HttpApi")
            .into_iter()
            .find(|(_, event)| event["Path"].as_str() == Some(signup_or_login))
            .unwrap();
        assert!(
            ref_of(&event["RouteSettings"]["ThrottlingRateLimit"]).is_some(),
            "{signup_or_login} has its own rate"
        );
    }
    let api = &resources(&template)["KickSyncApi"]["Properties"];
    assert!(!api["DefaultRouteSettings"]["ThrottlingBurstLimit"].is_null());
    assert!(!api["DefaultRouteSettings"]["ThrottlingRateLimit"].is_null());
}
