//! The `orders` Lambda binary: build the dependencies once, then serve requests with them.

use std::sync::Arc;

use lambda_http::{Error, service_fn};
use shared::{Config, Platform, adapters::portone::PortOneClient, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    platform.connect().await;
    let portone = Arc::new(PortOneClient::new(&platform.config.portone)?);
    let deps = &orders::Deps::new(&platform, portone);
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Error>(orders::handle(deps, req).await)
    }))
    .await
}
