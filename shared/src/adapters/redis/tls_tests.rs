//! `rediss://` against a Redis server of the test's own that speaks only TLS
//! ([`PrivateRedis::start_tls`], its certificate signed by a throwaway CA): the store built from
//! the configuration as the functions build it, certificate checks, and settings that conflict;
//! and the cluster client against a cluster whose nodes speak only TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use redis::{AsyncCommands, ErrorKind, RedisError};

use super::RedisStore;
use crate::{
    config::Config,
    testing::{PrivateCluster, PrivateRedis},
};

fn config(vars: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        (
            "DATABASE_URL".into(),
            "mysql://root@127.0.0.1:3306/unused".into(),
        ),
        ("JWT_SECRET".into(), crate::testing::TEST_JWT_SECRET.into()),
    ]);
    for (name, value) in vars {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    Config::from_vars(env).unwrap()
}

async fn ping(store: &RedisStore) -> Result<String, RedisError> {
    let mut connection = store.connection().await?;
    redis::cmd("PING").query_async(&mut connection).await
}

#[tokio::test]
async fn a_rediss_url_reaches_a_tls_only_server_that_the_configured_ca_vouches_for() {
    // GIVEN a server with no plain-text port, and the configuration the functions read
    let server = PrivateRedis::start_tls();
    let ca_file = server.certificates().ca_file();
    let config = config(&[
        ("REDIS_URL", &server.url()),
        ("REDIS_TLS_CA_FILE", ca_file.to_str().unwrap()),
        ("REDIS_KEY_PREFIX", "tls:"),
    ]);
    assert!(server.url().starts_with("rediss://"));

    // WHEN the store is built as `Platform::new` builds it
    let store = RedisStore::new(&config).unwrap();

    // THEN commands, scripts and pipelines run over TLS
    assert_eq!(ping(&store).await.unwrap(), "PONG");
    let mut connection = store.connection().await.unwrap();
    let key = store.key("stock:{p1}");
    let () = connection.set(&key, 5).await.unwrap();
    let left: i64 = redis::Script::new("return redis.call('DECRBY', KEYS[1], ARGV[1])")
        .key(&key)
        .arg(2)
        .invoke_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(left, 3);
    let (stock, missing): (i64, Option<i64>) = redis::pipe()
        .get(&key)
        .get(store.key("missing"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!((stock, missing), (3, None));
}

#[tokio::test]
async fn the_servers_certificate_is_checked() {
    let server = PrivateRedis::start_tls();

    // The public roots do not vouch for the throwaway CA: the handshake fails.
    let public_roots = RedisStore::with_prefix(&server.url(), "t:").unwrap();
    let err = ping(&public_roots).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // Another CA does not vouch for it either.
    let stranger = crate::testing::TestCertificates::generate();
    let other_ca =
        RedisStore::open_trusting(&server.url(), false, "t:", Some(&stranger.ca_pem())).unwrap();
    let err = ping(&other_ca).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // A plain-text client gets nothing from a TLS port.
    let plain_url = server.url().replacen("rediss://", "redis://", 1);
    let plain = RedisStore::with_prefix(&plain_url, "t:").unwrap();
    assert!(ping(&plain).await.is_err());

    // The right CA: the same server answers.
    let trusted = RedisStore::open_trusting(
        &server.url(),
        false,
        "t:",
        Some(&server.certificates().ca_pem()),
    )
    .unwrap();
    assert_eq!(ping(&trusted).await.unwrap(), "PONG");
}

#[test]
fn tls_settings_that_contradict_the_url_are_refused_at_start() {
    let ca = crate::testing::TestCertificates::generate();
    let ca_pem = ca.ca_pem();

    // A CA for a plain-text URL would be ignored: the operator meant TLS.
    let err = RedisStore::open_trusting("redis://127.0.0.1:6379", false, "t:", Some(&ca_pem))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidClientConfig);
    assert!(err.to_string().contains("REDIS_TLS_CA_FILE"), "{err}");

    // The cluster client takes TLS from its first seed: seeds must agree.
    let err =
        RedisStore::open("rediss://127.0.0.1:7000,redis://127.0.0.1:7001", true, "t:").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidClientConfig);

    // A CA file that cannot be read stops the cold start instead of falling back to public roots.
    let config = config(&[
        ("REDIS_URL", "rediss://127.0.0.1:6380"),
        ("REDIS_TLS_CA_FILE", "/nonexistent/ca.pem"),
    ]);
    let err = RedisStore::new(&config).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

    // Seeds that agree are accepted, in either case of scheme.
    assert!(
        RedisStore::open(
            "REDISS://127.0.0.1:7000, rediss://127.0.0.1:7001",
            true,
            "t:"
        )
        .is_ok()
    );
}

#[tokio::test]
async fn the_cluster_client_reaches_every_primary_of_a_tls_only_cluster() {
    // GIVEN three TLS-only primaries, and the configuration the functions read
    let cluster = PrivateCluster::start_tls();
    let ca_file = cluster.certificates().ca_file();
    let seeds = cluster.urls();
    assert!(seeds.split(',').all(|seed| seed.starts_with("rediss://")));
    let config = config(&[
        ("REDIS_URL", &seeds),
        ("REDIS_CLUSTER", "true"),
        ("REDIS_TLS_CA_FILE", ca_file.to_str().unwrap()),
        ("REDIS_KEY_PREFIX", "tls:"),
    ]);
    let store = RedisStore::new(&config).unwrap();
    assert!(store.is_cluster());

    // WHEN one pipeline writes keys of every primary's slots, and reads them back
    let keys: Vec<String> = (1..=12)
        .map(|id| store.key_of(format_args!("stock:{{p{id}}}")))
        .collect();
    let primaries: std::collections::HashSet<u16> =
        keys.iter().map(|key| cluster.port_of(key)).collect();
    assert_eq!(primaries.len(), 3, "the keys spread over every primary");
    let mut connection = store.connection().await.unwrap();
    let mut write = redis::pipe();
    for (n, key) in keys.iter().enumerate() {
        write.set(key, n).ignore();
    }
    write.query_async::<()>(&mut connection).await.unwrap();
    let mut read = redis::pipe();
    for key in &keys {
        read.get(key);
    }
    let values: Vec<usize> = read.query_async(&mut connection).await.unwrap();

    // THEN every node answered over TLS (none has a plain-text port)
    assert_eq!(values, (0..keys.len()).collect::<Vec<_>>());
    for key in &keys {
        let value = cluster.command_on(cluster.port_of(key), &["GET", key]);
        assert!(
            matches!(value, redis::Value::BulkString(_)),
            "{key}: {value:?}"
        );
    }

    // And without the CA the cluster client cannot connect at all.
    let public_roots = RedisStore::open(&seeds, true, "t:").unwrap();
    assert!(public_roots.connection().await.is_err());
}
