//! The API Gateway stand-in: HTTP in, `lambda_http::Request` to the handler, its response back out.
//!
//! Every route of the route table is registered once, at start-up, with its route key resolved.
//! A request then costs one match on the path, a scan of that path's (few) methods, one copy of
//! the body, and the conversion to the request API Gateway's HTTP API (payload format 2.0) would
//! hand the function:
//!
//! - method, headers and an absolute URI (`http://{host}{path}?{query}`); duplicate headers are
//!   joined with commas (cookies with `; `), and `x-forwarded-{for,proto,port}` are added, as
//!   API Gateway does;
//! - query string parameters parsed from the raw query string and path parameters
//!   (percent-decoded), like `lambda_http` does for a real event;
//! - the body as `Text` when it is UTF-8 of a textual media type, `Binary` otherwise, `Empty`
//!   when there is none;
//! - the request context with `routeKey` (`"GET /products/{id}"`), stage `$default`, method,
//!   path and the caller's address.
//!
//! Deliberate differences from API Gateway: a known path with an unknown method answers 405 (API
//! Gateway answers 404), and both 404 and 405 are problem+json like every other error of ours.
//! Bodies are capped at [`MAX_BODY_BYTES`] (API Gateway allows 10 MB; the handlers refuse
//! anything above 64 KiB themselves).

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    Router,
    extract::{ConnectInfo, RawPathParams, rejection::RawPathParamsRejection},
    routing::any,
};
use http::{
    HeaderMap, HeaderValue, Method, StatusCode, Uri,
    header::{self, HeaderName},
    request::Parts,
    uri::{PathAndQuery, Scheme},
};
use http_body_util::BodyExt;
use lambda_http::{Body, RequestExt, aws_lambda_events::query_map::QueryMap};
use shared::{
    ApiError,
    error::{Problem, ProblemCode},
    http::{PROBLEM_JSON, api_gateway_context, json_bytes},
    routes::Route,
};

use crate::functions::Dispatch;

/// The largest request body the gateway accepts before answering 413 itself.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
/// The runner speaks plain HTTP; API Gateway would say `https` and `443`.
const LOCAL_SCHEME: &str = "http";

/// One route, resolved once at start-up.
#[derive(Debug)]
struct Target {
    method: Method,
    /// `"GET /products/{id}"`, what API Gateway puts in `requestContext.routeKey`.
    route_key: String,
    function: &'static str,
}

/// All routes of one path template, and the function registry they dispatch to.
#[derive(Debug)]
struct PathRoutes<D> {
    targets: Vec<Target>,
    /// The `Allow` header of a 405 on this path.
    allow: HeaderValue,
    dispatcher: Arc<D>,
}

/// The router for `routes` (in the runner, [`shared::routes::ROUTES`]), answering unknown paths
/// with 404 problem+json. Other routers may be merged into it.
pub fn router<D: Dispatch>(routes: &[Route], dispatcher: &Arc<D>) -> Router {
    // Group by path: one axum route per path, whose handler picks the method itself, so that
    // HEAD is not silently served by GET and a wrong method gets our 405.
    let mut by_path: BTreeMap<&str, Vec<Target>> = BTreeMap::new();
    for route in routes {
        let Ok(method) = Method::from_bytes(route.method.as_bytes()) else {
            tracing::error!(route = %route.key(), "not an HTTP method; route skipped");
            continue;
        };
        by_path.entry(route.path).or_default().push(Target {
            method,
            route_key: route.key(),
            function: route.function,
        });
    }
    let mut router = Router::new();
    for (path, targets) in by_path {
        let allow = targets
            .iter()
            .map(|target| target.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let routes = Arc::new(PathRoutes {
            targets,
            allow: HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("")),
            dispatcher: dispatcher.clone(),
        });
        router = router.route(
            &axum_path(path),
            any(
                move |params: Result<RawPathParams, RawPathParamsRejection>,
                      req: axum::extract::Request| async move {
                    match params {
                        Ok(params) => forward(&routes, &params, req).await,
                        // A parameter that is not UTF-8 once percent-decoded (`/products/%FF`).
                        Err(rejection) => into_axum_response(
                            ApiError::bad_request(
                                ProblemCode::MalformedPath,
                                rejection.body_text(),
                            )
                            .into_response(),
                        ),
                    }
                },
            ),
        );
    }
    router.fallback(route_not_found)
}

/// API Gateway's greedy `{proxy+}` is axum's `{*proxy}`; the rest of the syntax is the same.
fn axum_path(template: &str) -> String {
    template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(name) => format!("{{*{name}}}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

async fn forward<D: Dispatch>(
    routes: &PathRoutes<D>,
    params: &RawPathParams,
    req: axum::extract::Request,
) -> axum::response::Response {
    let Some(target) = routes.targets.iter().find(|t| t.method == req.method()) else {
        return method_not_allowed(&routes.allow, req.method(), req.uri().path());
    };
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(response) => return into_axum_response(response),
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let request = to_lambda_request(&target.route_key, parts, params.iter(), body, peer);
    let response = routes.dispatcher.dispatch(target.function, request).await;
    into_axum_response(response)
}

/// Reads the whole body into one buffer (the only copy), refusing more than [`MAX_BODY_BYTES`].
async fn read_body(
    headers: &HeaderMap,
    mut body: axum::body::Body,
) -> Result<Vec<u8>, lambda_http::Response<Body>> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut buffer = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            ApiError::bad_request(
                ProblemCode::BadRequestBody,
                format!("could not read the request body: {err}"),
            )
            .into_response()
        })?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer)
}

fn too_large() -> lambda_http::Response<Body> {
    ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    }
    .into_response()
}

/// Builds the request API Gateway's HTTP API would deliver for `route_key` (`"METHOD /template"`)
/// from an HTTP request's parts, its path parameters, its body and the caller's address.
pub fn to_lambda_request<'a>(
    route_key: &str,
    parts: Parts,
    path_params: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: Vec<u8>,
    source_ip: Option<IpAddr>,
) -> lambda_http::Request {
    let Parts {
        method,
        uri,
        mut headers,
        ..
    } = parts;
    let path = uri.path().to_owned();
    let query: QueryMap = uri
        .query()
        .and_then(|query| query.parse().ok())
        .unwrap_or_default();
    let path_params: HashMap<String, String> = path_params
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let source_ip = source_ip.map(|ip| ip.to_string());

    if headers.keys_len() != headers.len() {
        join_duplicate_headers(&mut headers);
    }
    let uri = absolute_uri(&headers, uri);
    add_forwarded_headers(&mut headers, source_ip.as_deref());
    let body = lambda_body(&headers, body);
    let context = api_gateway_context(route_key, method.clone(), &path, source_ip);

    let mut request = lambda_http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
        .with_raw_http_path(path)
        .with_query_string_parameters(query)
        .with_path_parameters(path_params)
        .with_request_context(context)
}

/// API Gateway hands a function one value per header name: repeated headers joined by commas,
/// and cookies (which it moves to `cookies`, and `lambda_http` joins back) by `; `.
fn join_duplicate_headers(headers: &mut HeaderMap) {
    let repeated: Vec<HeaderName> = headers
        .keys()
        .filter(|name| headers.get_all(*name).iter().nth(1).is_some())
        .cloned()
        .collect();
    for name in repeated {
        let separator: &[u8] = if name == header::COOKIE { b"; " } else { b"," };
        let mut joined = Vec::new();
        for value in headers.get_all(&name) {
            if !joined.is_empty() {
                joined.extend_from_slice(separator);
            }
            joined.extend_from_slice(value.as_bytes());
        }
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            headers.insert(name, value);
        }
    }
}

/// `http://{host}{path}?{query}`, as `lambda_http` builds it from the Host header.
fn absolute_uri(headers: &HeaderMap, uri: Uri) -> Uri {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
    else {
        return uri;
    };
    // The path and query are reused as parsed; only the host is new.
    let mut parts = uri.clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = host.parse().ok();
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    Uri::from_parts(parts).unwrap_or(uri)
}

fn add_forwarded_headers(headers: &mut HeaderMap, source_ip: Option<&str>) {
    headers.reserve(3);
    if let Some(ip) = source_ip {
        // API Gateway appends the caller to whatever chain the client sent.
        let chain = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {ip}"),
            None => ip.to_owned(),
        };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(LOCAL_SCHEME));
    if let Some(port) = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.rsplit_once(':'))
        .and_then(|(_, port)| HeaderValue::from_str(port).ok())
    {
        headers.insert(X_FORWARDED_PORT, port);
    }
}

/// API Gateway passes textual bodies as text and base64-encodes the rest, which `lambda_http`
/// turns into `Text` and `Binary`.
fn lambda_body(headers: &HeaderMap, bytes: Vec<u8>) -> Body {
    if bytes.is_empty() {
        return Body::Empty;
    }
    if !is_textual(headers) {
        return Body::Binary(bytes);
    }
    match String::from_utf8(bytes) {
        Ok(text) => Body::Text(text),
        Err(err) => Body::Binary(err.into_bytes()),
    }
}

fn is_textual(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type.starts_with("text/")
        || media_type.ends_with("json")
        || media_type.ends_with("xml")
        || media_type.ends_with("javascript")
        || media_type == "application/x-www-form-urlencoded"
}

/// The handler's response, unchanged: status, headers and body.
pub fn into_axum_response(response: lambda_http::Response<Body>) -> axum::response::Response {
    response.map(|body| match body {
        Body::Empty => axum::body::Body::empty(),
        Body::Text(text) => axum::body::Body::from(text),
        Body::Binary(bytes) => axum::body::Body::from(bytes),
        // `Body` is non-exhaustive; any future variant still has bytes.
        other => axum::body::Body::from(other.as_ref().to_vec()),
    })
}

/// 404 for a path no route matches (API Gateway's own answer, as problem+json).
pub async fn route_not_found(method: Method, uri: Uri) -> axum::response::Response {
    into_axum_response(ApiError::RouteNotFound(format!("{method} {}", uri.path())).into_response())
}

fn method_not_allowed(
    allow: &HeaderValue,
    method: &Method,
    path: &str,
) -> axum::response::Response {
    let mut response = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        ProblemCode::MethodNotAllowed,
        &format!("{path} does not accept {method}"),
    );
    response.headers_mut().insert(header::ALLOW, allow.clone());
    into_axum_response(response)
}

/// A problem+json response for the runner's own answers that `ApiError` has no variant for
/// (405, a function the runner does not host, a failed scheduled handler).
pub fn problem(status: StatusCode, code: ProblemCode, detail: &str) -> lambda_http::Response<Body> {
    let document = Problem {
        kind: shared::error::problem_type(code.as_str()),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        code,
        errors: Vec::new(),
    };
    let mut response = lambda_http::Response::new(Body::Binary(json_bytes(&document)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn greedy_parameters_become_axum_wildcards() {
        assert_eq!(axum_path("/files/{path+}"), "/files/{*path}");
        assert_eq!(axum_path("/orders/{id}/cancel"), "/orders/{id}/cancel");
        assert_eq!(axum_path("/health"), "/health");
    }

    #[test]
    fn textual_bodies_become_text_and_others_binary() {
        let mut headers = HeaderMap::new();
        assert_eq!(lambda_body(&headers, Vec::new()), Body::Empty);
        assert_eq!(
            lambda_body(&headers, b"{}".to_vec()),
            Body::Binary(b"{}".to_vec())
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(
            lambda_body(&headers, b"{}".to_vec()),
            Body::Text("{}".into())
        );
        assert_eq!(lambda_body(&headers, vec![0xff]), Body::Binary(vec![0xff]));
    }

    #[test]
    fn the_uri_is_absolute_with_the_host_like_lambda_http_builds_it() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        let uri: Uri = "/products?cursor=abc&size=2".parse().unwrap();
        assert_eq!(
            absolute_uri(&headers, uri).to_string(),
            "http://127.0.0.1:3000/products?cursor=abc&size=2"
        );
        let no_host = HeaderMap::new();
        let uri: Uri = "/orders".parse().unwrap();
        assert_eq!(absolute_uri(&no_host, uri).to_string(), "/orders");
    }

    #[test]
    fn repeated_headers_are_joined_like_api_gateway() {
        let mut headers = HeaderMap::new();
        headers.append("accept", HeaderValue::from_static("a/b"));
        headers.append("accept", HeaderValue::from_static("c/d"));
        headers.append(header::COOKIE, HeaderValue::from_static("x=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("y=2"));
        join_duplicate_headers(&mut headers);
        assert_eq!(headers.get("accept").unwrap(), "a/b,c/d");
        assert_eq!(headers.get(header::COOKIE).unwrap(), "x=1; y=2");
        assert_eq!(headers.len(), 2);
    }
}
