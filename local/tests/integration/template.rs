//! template.yaml as the tests read it. serde_yaml keeps `!Ref`, `!GetAtt` and `!Sub` as tagged
//! values; these helpers look into the few the tests compare.

use serde_yaml::{Mapping, Value as Yaml};

pub fn load() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {path}: {err}"));
    serde_yaml::from_str(&text).unwrap()
}

pub fn resources(template: &Yaml) -> &Mapping {
    template["Resources"].as_mapping().expect("Resources")
}

/// `(logical id, resource)` of every resource of `kind`, e.g. `AWS::SQS::Queue`.
pub fn resources_of<'t>(template: &'t Yaml, kind: &str) -> Vec<(&'t str, &'t Yaml)> {
    resources(template)
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(id, resource)| (id.as_str().expect("logical id"), resource))
        .collect()
}

/// `(logical id, resource)` of the function whose cargo-lambda binary is `binary`.
pub fn function<'t>(template: &'t Yaml, binary: &str) -> (&'t str, &'t Yaml) {
    resources_of(template, "AWS::Serverless::Function")
        .into_iter()
        .find(|(_, function)| binary_of(function) == Some(binary))
        .unwrap_or_else(|| panic!("template.yaml has no function with Binary {binary}"))
}

pub fn binary_of(function: &Yaml) -> Option<&str> {
    function["Metadata"]["BuildProperties"]["Binary"].as_str()
}

/// The events of a function of type `kind` (`HttpApi`, `SQS`, `ScheduleV2`), by name.
pub fn events_of<'t>(function: &'t Yaml, kind: &str) -> Vec<(&'t str, &'t Yaml)> {
    function["Properties"]["Events"]
        .as_mapping()
        .map(|events| {
            events
                .iter()
                .filter(|(_, event)| event["Type"].as_str() == Some(kind))
                .map(|(name, event)| (name.as_str().expect("event name"), &event["Properties"]))
                .collect()
        })
        .unwrap_or_default()
}

/// The value inside `!<tag> value`, if `value` has that tag.
pub fn tagged<'v>(value: &'v Yaml, tag: &str) -> Option<&'v Yaml> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == tag => Some(&tagged.value),
        _ => None,
    }
}

/// The logical id `value` refers to with `!Ref`.
pub fn ref_of(value: &Yaml) -> Option<&str> {
    tagged(value, "Ref").and_then(Yaml::as_str)
}

/// `(logical id, attribute)` of a `!GetAtt Id.Attribute`.
pub fn get_att_of(value: &Yaml) -> Option<(&str, &str)> {
    tagged(value, "GetAtt")
        .and_then(Yaml::as_str)
        .and_then(|text| text.split_once('.'))
}

/// A number written as a YAML number or a string.
pub fn number(value: &Yaml) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
}

/// A parameter's default (which `sam deploy --guided` offers).
pub fn parameter_default<'t>(template: &'t Yaml, name: &str) -> &'t Yaml {
    let default = &template["Parameters"][name]["Default"];
    assert!(!default.is_null(), "parameter {name} has no Default");
    default
}

/// The value a function's environment variable gets: the function's own, else the Globals';
/// a `!Ref` of a parameter resolved to the parameter's default.
pub fn environment<'t>(template: &'t Yaml, function: &'t Yaml, name: &str) -> Option<&'t Yaml> {
    let own = &function["Properties"]["Environment"]["Variables"][name];
    let global = &template["Globals"]["Function"]["Environment"]["Variables"][name];
    let value = if own.is_null() { global } else { own };
    if value.is_null() {
        return None;
    }
    Some(match ref_of(value) {
        Some(parameter) if !template["Parameters"][parameter].is_null() => {
            parameter_default(template, parameter)
        }
        _ => value,
    })
}
