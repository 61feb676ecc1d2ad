//! The `admin` Lambda binary: build the dependencies once, then serve requests with them.

use lambda_http::{Error, service_fn};
use shared::{Config, Platform, adapters::aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    // The stores' handshakes overlap the SDK's configuration.
    let (sdk, ()) = tokio::join!(aws::sdk_config(&platform.config.aws), platform.connect());
    let deps = &admin::Deps::new(&platform, &sdk);
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Error>(admin::handle(deps, req).await)
    }))
    .await
}
