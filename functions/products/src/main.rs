//! The `products` Lambda binary: build the dependencies once, then serve requests with them.

use lambda_http::{Error, service_fn};
use shared::{Config, Platform, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    platform.connect().await;
    let deps = &products::Deps::new(&platform);
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Error>(products::handle(deps, req).await)
    }))
    .await
}
