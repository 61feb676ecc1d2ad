//! The `admin` Lambda binary: build the dependencies once, then serve requests with them.

use lambda_http::{Error, service_fn};
use shared::{Config, Platform, adapters::aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    let sdk = aws::sdk_config(&platform.config.aws).await;
    let deps = &admin::Deps::new(&platform, &sdk);
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Error>(admin::handle(deps, req).await)
    }))
    .await
}
