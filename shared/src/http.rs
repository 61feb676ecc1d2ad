//! HTTP helpers shared by every function: reading JSON bodies within the size limit, writing JSON
//! responses, and reading what API Gateway (or the local runner) put on the request.

use std::net::IpAddr;

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::{
    Body, Request, RequestExt, Response,
    http::{HeaderMap, Method, StatusCode, header},
    request::RequestContext,
};
use serde::{Serialize, de::DeserializeOwned};

pub use crate::error::PROBLEM_JSON;
use crate::{
    domain::FieldError,
    error::{ApiError, ProblemCode},
};

/// Request bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const APPLICATION_JSON: &str = "application/json";

/// `"METHOD /path/{param}"`, as API Gateway's HTTP API sets `requestContext.routeKey`.
pub fn route_key(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.route_key.as_deref(),
        _ => None,
    }
}

/// The request context API Gateway's HTTP API attaches; the local runner and tests build the same.
pub fn api_gateway_context(
    route_key: &str,
    method: Method,
    path: &str,
    source_ip: Option<String>,
) -> RequestContext {
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = method;
    http.path = Some(path.to_owned());
    http.source_ip = source_ip;
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.stage = Some("$default".to_owned());
    context.time_epoch = chrono::Utc::now().timestamp_millis();
    context.http = http;
    RequestContext::ApiGatewayV2(context)
}

/// The caller's address as API Gateway saw it.
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref()?.parse().ok(),
        _ => None,
    }
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Reads a JSON body: 413 when too large, 415 when not JSON, 400 when unparseable, 422 when a
/// field is missing or of the wrong type (naming the field).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req)?;
    if !is_json(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_json(bytes)
}

/// Like [`json_body`] but an absent body yields `None` (for routes whose body is optional).
pub fn optional_json_body<T: DeserializeOwned>(req: &Request) -> Result<Option<T>, ApiError> {
    let bytes = body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_json(bytes).map(Some)
}

fn body_bytes(req: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(bytes)
}

fn is_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str()).is_some_and(|value| {
        let media_type = value.split(';').next().unwrap_or_default().trim();
        media_type.eq_ignore_ascii_case(APPLICATION_JSON)
            || media_type.to_ascii_lowercase().ends_with("+json")
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // JSON is UTF-8 text. serde_json checks the strings it keeps, not those it skips (a field
    // `T` ignores), so the whole body is checked first.
    let text = std::str::from_utf8(bytes).map_err(|err| {
        ApiError::bad_request(
            ProblemCode::MalformedJson,
            format!("request body is not UTF-8: {err}"),
        )
    })?;
    // A well-formed object goes straight into `T`; only a body that fails is read again, slower,
    // to say what is wrong with it and where.
    let is_object = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if is_object && let Ok(parsed) = serde_json::from_str(text) {
        return Ok(parsed);
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| {
        ApiError::bad_request(
            ProblemCode::MalformedJson,
            format!("request body is not valid JSON: {err}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::validation(
            "",
            "request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.inner().to_string();
        let path = err.path().to_string();
        // serde reports a missing field at the parent path; name the field itself.
        let field = match missing_field_name(&inner) {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None => path,
        };
        ApiError::Validation(vec![FieldError::new(field, inner)])
    })
}

fn missing_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Serializes a value we built ourselves; our types always serialize.
pub fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|err| {
        tracing::error!(%err, "could not serialize a response");
        b"{}".to_vec()
    })
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    json_raw(status, json_bytes(value))
}

/// A JSON response from bytes that are already JSON (e.g. a cached page).
pub fn json_raw(status: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::Binary(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(APPLICATION_JSON),
    );
    response
}

pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Turns a handler result into the response Lambda returns; errors become problem+json.
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

#[cfg(test)]
mod tests {
    use lambda_http::http::Request as HttpRequest;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Signup {
        email: String,
        age: u32,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = HttpRequest::builder().method("POST").uri("/x");
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        builder.body(Body::from(body)).unwrap()
    }

    fn code(err: &ApiError) -> (u16, &'static str) {
        (err.status().as_u16(), err.code().as_str())
    }

    #[test]
    fn malformed_json_is_400() {
        let err =
            json_body::<Signup>(&request(Some("application/json"), "{\"email\":")).unwrap_err();
        assert_eq!(code(&err), (400, "MALFORMED_JSON"));
    }

    #[test]
    fn a_body_that_is_not_utf8_is_400_even_where_it_would_be_ignored() {
        #[derive(Debug, Deserialize)]
        struct Empty {}
        let body = Body::from(b"{\"ignored\":\"\xff\xfe\"}".to_vec());
        let req = HttpRequest::builder()
            .method("POST")
            .uri("/x")
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let err = json_body::<Empty>(&req).unwrap_err();
        assert_eq!(code(&err), (400, "MALFORMED_JSON"));
        let err = optional_json_body::<Empty>(&req).unwrap_err();
        assert_eq!(code(&err), (400, "MALFORMED_JSON"));
    }

    #[test]
    fn missing_field_names_the_field() {
        let err = json_body::<Signup>(&request(Some("application/json"), r#"{"email":"a@b.co"}"#))
            .unwrap_err();
        let ApiError::Validation(errors) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(errors[0].field, "age");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = json_body::<Signup>(&request(
            Some("application/json; charset=utf-8"),
            r#"{"email":"a@b.co","age":"old"}"#,
        ))
        .unwrap_err();
        let ApiError::Validation(errors) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(errors[0].field, "age");
    }

    #[test]
    fn wrong_content_type_is_415() {
        let err = json_body::<Signup>(&request(Some("text/plain"), r#"{"email":"x","age":1}"#))
            .unwrap_err();
        assert_eq!(code(&err), (415, "UNSUPPORTED_MEDIA_TYPE"));
        let err = json_body::<Signup>(&request(None, r#"{"email":"x","age":1}"#)).unwrap_err();
        assert_eq!(code(&err), (415, "UNSUPPORTED_MEDIA_TYPE"));
    }

    #[test]
    fn oversized_body_is_413_before_parsing() {
        let huge = format!(r#"{{"email":"{}","age":1}}"#, "a".repeat(MAX_BODY_BYTES));
        let err = json_body::<Signup>(&request(Some("text/plain"), &huge)).unwrap_err();
        assert_eq!(code(&err), (413, "PAYLOAD_TOO_LARGE"));
    }

    #[test]
    fn non_object_body_is_422() {
        let err = json_body::<Signup>(&request(Some("application/json"), "[1,2]")).unwrap_err();
        assert_eq!(code(&err), (422, "VALIDATION"));
        // serde would read a struct from an array of its fields; we only take objects.
        let err =
            json_body::<Signup>(&request(Some("application/json"), r#"["a@b.co",3]"#)).unwrap_err();
        assert_eq!(code(&err), (422, "VALIDATION"));
    }

    #[test]
    fn an_object_is_read_whatever_the_whitespace() {
        let body = " \n {\"email\":\"a@b.co\",\"age\":3}";
        let signup = json_body::<Signup>(&request(Some("application/json"), body)).unwrap();
        assert_eq!((signup.email.as_str(), signup.age), ("a@b.co", 3));
    }

    #[test]
    fn optional_body_may_be_empty() {
        let parsed = optional_json_body::<Signup>(&request(None, "")).unwrap();
        assert!(parsed.is_none());
    }
}
