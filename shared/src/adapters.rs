//! The real implementations behind the ports: MySQL, Redis, and the AWS clients.

pub mod aws;
pub mod mysql;
pub mod redis;
