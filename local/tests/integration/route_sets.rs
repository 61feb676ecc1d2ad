//! The routes the runner serves, the routes template.yaml deploys and the operations the API
//! document describes are one set (docs/contract.md, "Functions").

use std::collections::BTreeSet;

use serde_yaml::Value as Yaml;
use shared::routes::ROUTES;

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

/// Every `HttpApi` event of every `AWS::Serverless::Function`. serde_yaml keeps `!Ref` and
/// friends as tagged values, which this never needs to look into.
fn template_routes() -> RouteSet {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {path}: {err}"));
    let template: Yaml = serde_yaml::from_str(&text).unwrap();
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut set = RouteSet::new();
    for resource in resources.values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let properties = &event["Properties"];
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
