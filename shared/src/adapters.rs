//! The real implementations behind the ports: MySQL, Redis, and the AWS clients.

pub mod accounts;
pub mod aws;
pub mod dynamodb;
pub mod mysql;
pub mod orders;
pub mod payments;
pub mod portone;
pub mod redis;
pub mod settlements;
pub mod sqs;
pub mod stock;
pub mod webhook_ids;
