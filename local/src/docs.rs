//! The API document: every HTTP function's OpenAPI description merged into one, served as
//! `GET /openapi.json`, with Swagger UI at `/docs`.
//!
//! These two are documentation routes of the runner only, not Lambda routes: they are not in
//! the route table nor in template.yaml. Swagger UI's files are compiled into the binary
//! (`utoipa-swagger-ui` feature `vendored`), so nothing is fetched from a CDN.

use axum::Router;
use utoipa::openapi::{
    InfoBuilder, OpenApi, OpenApiBuilder,
    security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::functions::api_docs;

mod problems;

pub const OPENAPI_PATH: &str = "/openapi.json";
pub const DOCS_PATH: &str = "/docs";
/// The security scheme name the functions' `security(("bearer" = []))` refer to.
pub const BEARER_SCHEME: &str = "bearer";

/// The merged document: title KickSync, this crate's version, and the `bearer` JWT scheme.
pub fn openapi() -> OpenApi {
    let mut document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("KickSync")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A limited-edition sneaker marketplace: drops, checkout through PortOne, and \
                     nightly partner settlements. Errors are RFC 9457 problem+json with a stable \
                     `code`.",
                ))
                .build(),
        )
        .build();
    for function_document in api_docs() {
        document.merge(function_document);
    }
    problems::document_problems(&mut document);
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The access token from POST /auth/login."))
                    .build(),
            ),
        );
    document
}

/// `GET /openapi.json` and Swagger UI under `/docs`.
pub fn router() -> Router {
    SwaggerUi::new(DOCS_PATH)
        .url(OPENAPI_PATH, openapi())
        .into()
}
