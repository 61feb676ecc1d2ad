//! The `order-sweeper` Lambda binary (EventBridge `rate(1 minute)`).
// The sweep's future nests the runtime's, the lifecycle's and sqlx's: deeper than the default
// limit of the compiler's layout queries.
#![recursion_limit = "256"]

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::{Config, Platform, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    platform.connect().await;
    let deps = &order_sweeper::Deps::new(&platform);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            order_sweeper::handle(deps, event.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
