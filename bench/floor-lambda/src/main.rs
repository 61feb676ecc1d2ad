//! The floor of `bench cold-start`: the least a Rust Lambda function built like ours does, the
//! `lambda_runtime` hello world. It answers every event with a fixed JSON object.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(hello)).await
}

async fn hello(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "message": "hello" }))
}
