//! Error answers in the API document, as the functions really send them.
//!
//! Each handler's `#[utoipa::path]` lists the answers particular to its route. The ones every
//! route shares (401/403 on authenticated routes, 400/413/415/422 for bodies, 503 when a store
//! is down) are added here once, and every `Problem` answer is declared with the media type it
//! is sent with, `application/problem+json`, rather than utoipa's default `application/json`.
//! A fuzzer reading the document (schemathesis, see `scripts/fuzz`) then finds every status and
//! media type it meets documented.

use utoipa::openapi::{
    ContentBuilder, OpenApi, RefOr, Response, ResponseBuilder, path::Operation, schema::Ref,
};

use shared::error::PROBLEM_JSON;

const JSON: &str = "application/json";
const PROBLEM_SCHEMA: &str = "Problem";

/// Declares every `Problem` answer as problem+json and adds the answers all routes share.
pub fn document_problems(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    as_problem_json(response);
                }
            }
            add_shared_answers(operation);
        }
    }
}

fn is_problem(schema: Option<&RefOr<utoipa::openapi::schema::Schema>>) -> bool {
    matches!(schema, Some(RefOr::Ref(reference))
        if reference.ref_location.ends_with(&format!("/{PROBLEM_SCHEMA}")))
}

fn as_problem_json(response: &mut Response) {
    let problem = response
        .content
        .get(JSON)
        .is_some_and(|content| is_problem(content.schema.as_ref()));
    if problem && let Some(content) = response.content.shift_remove(JSON) {
        response.content.insert(PROBLEM_JSON.to_owned(), content);
    }
}

fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(PROBLEM_SCHEMA)))
                    .build(),
            )
            .build(),
    )
}

fn add_shared_answers(operation: &mut Operation) {
    let authenticated = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if authenticated {
        shared.push(("401", "UNAUTHENTICATED: no valid access token"));
        shared.push(("403", "FORBIDDEN: this role may not do that"));
    }
    if operation.request_body.is_some() {
        shared.push(("400", "MALFORMED_JSON: the body is not JSON"));
        shared.push(("413", "PAYLOAD_TOO_LARGE: the body is over 64 KiB"));
        shared.push((
            "415",
            "UNSUPPORTED_MEDIA_TYPE: the body is not application/json",
        ));
        shared.push(("422", "VALIDATION: the failing fields are in `errors`"));
    }
    if operation
        .parameters
        .as_ref()
        .is_some_and(|params| !params.is_empty())
    {
        shared.push(("422", "VALIDATION: the failing fields are in `errors`"));
    }
    shared.push(("500", "INTERNAL: nothing was changed; retry"));
    shared.push((
        "503",
        "UNAVAILABLE: a store or PortOne is unavailable; retry",
    ));
    for (status, description) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description));
    }
}
