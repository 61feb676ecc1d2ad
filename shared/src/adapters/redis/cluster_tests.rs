//! The cluster client's own paths, on a Redis Cluster of the test's own ([`PrivateCluster`]):
//! slots computed as Redis computes them, pipelines across slots, the blacklist of a shard that
//! restarts empty, and a cross-slot command caught rather than swallowed by a fallback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use redis::{AsyncCommands, Value};

use super::{BlacklistAnswer, BlacklistCache, RateDecision, RateLimiter, RedisStore, key_slot};
use crate::{
    auth::Principal,
    domain::auth::Role,
    testing::{ApiRequest, PrivateCluster, TestContext},
};

#[test]
fn key_slots_follow_the_cluster_specification() {
    // CRC16-XMODEM("123456789") is 0x31C3, the specification's check value.
    assert_eq!(key_slot(b"123456789"), 0x31C3);
    assert_eq!(key_slot(b"foo"), 12182);
    // Only the first {…} counts, and only when not empty.
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
}

#[tokio::test]
async fn slots_and_pipelines_across_slots_agree_with_a_real_cluster() {
    let cluster = PrivateCluster::start();
    let store = RedisStore::open(&cluster.urls(), true, "t:").unwrap();
    assert!(store.is_cluster());
    // Our key shapes, and Redis's own view of their slots.
    let keys: Vec<String> = (1..=12)
        .flat_map(|id| {
            [
                store.key_of(format_args!("stock:{{p{id}}}")),
                store.key_of(format_args!("bl:{{u{id}}}:jti-{id}")),
                store.loaded_flag("blacklist", id),
            ]
        })
        .collect();
    for key in &keys {
        let Value::Int(slot) = cluster.command_on(cluster.ports()[0], &["CLUSTER", "KEYSLOT", key])
        else {
            panic!("no slot for {key}");
        };
        assert_eq!(i64::from(key_slot(key.as_bytes())), slot, "{key}");
    }
    let nodes: std::collections::HashSet<u16> =
        keys.iter().map(|key| cluster.port_of(key)).collect();
    assert_eq!(nodes.len(), 3, "the keys spread over every primary");

    // One pipeline over every slot: written, then read back in the pipeline's order.
    let mut connection = store.connection().await.unwrap();
    let mut write = redis::pipe();
    for (n, key) in keys.iter().enumerate() {
        write.set(key, n).ignore();
    }
    write.query_async::<()>(&mut connection).await.unwrap();
    let mut read = redis::pipe();
    for key in keys.iter().rev() {
        read.get(key);
    }
    read.get(store.key("missing"));
    let values: Vec<Option<usize>> = read.query_async(&mut connection).await.unwrap();
    let mut expected: Vec<Option<usize>> = (0..keys.len()).rev().map(Some).collect();
    expected.push(None);
    assert_eq!(values, expected);

    // The checkout gate's shape: a script in the buyer's slot, reads in the products' slots.
    let limiter = RateLimiter::new(store.clone());
    let exist = [
        store.key_of(format_args!("bl:{{u7}}:jti-7")),
        store.loaded_flag("blacklist", 7),
    ];
    let (decision, existing, reads): (_, _, Vec<Option<usize>>) = limiter
        .hit_and_read(
            "checkout:{u7}",
            5,
            Duration::from_secs(60),
            &exist,
            |pipe| {
                for id in [1, 2, 3] {
                    pipe.get(store.key_of(format_args!("stock:{{p{id}}}")));
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(decision, RateDecision::Allowed);
    assert_eq!(existing, vec![true, true]);
    assert_eq!(reads, vec![Some(0), Some(3), Some(6)]);

    // Redis forgetting its scripts (a primary restarted) does not lose the count.
    cluster.command_on(cluster.port_of("rl:checkout:{u7}"), &["SCRIPT", "FLUSH"]);
    let counted: u32 = connection.get(store.key("rl:checkout:{u7}")).await.unwrap();
    limiter
        .hit_and_read::<()>("checkout:{u7}", 5, Duration::from_secs(60), &[], |_| {})
        .await
        .unwrap();
    let after: u32 = connection.get(store.key("rl:checkout:{u7}")).await.unwrap();
    assert_eq!(after, counted + 1);
}

#[tokio::test]
#[should_panic(expected = "CROSSSLOT")]
async fn a_command_naming_two_slots_is_caught_not_swallowed() {
    let cluster = PrivateCluster::start();
    let store = RedisStore::open(&cluster.urls(), true, "t:").unwrap();
    let mut connection = store.connection().await.unwrap();
    // Two keys of different slots in one script: a key design bug, which a fallback would
    // otherwise hide behind a slower path.
    let _: Result<Value, _> = redis::cmd("EVAL")
        .arg("return redis.call('GET', KEYS[2])")
        .arg(2)
        .arg(store.key("{p1}"))
        .arg(store.key("{p2}"))
        .query_async(&mut connection)
        .await;
}

/// Users with a logged-out token each, and a live one; returns (user id, logged-out, live).
async fn users_with_a_logout(ctx: &TestContext, count: usize) -> Vec<(i64, String, String)> {
    let mut users = Vec::new();
    for _ in 0..count {
        let (id, logged_out) = ctx.user(Role::Buyer).await;
        let claims = ctx.platform.tokens.verify(&logged_out).unwrap();
        let principal = Principal {
            user_id: id,
            role: Role::Buyer,
            jti: claims.jti,
            expires_at: claims.exp,
        };
        ctx.platform.authenticator.revoke(&principal).await.unwrap();
        let live = ctx
            .platform
            .tokens
            .issue(id, Role::Buyer, chrono::Utc::now())
            .unwrap();
        users.push((id, logged_out, live));
    }
    users
}

async fn admitted(ctx: &TestContext, token: &str) -> bool {
    let request = ApiRequest::new("GET /auth/me").bearer(token).build();
    ctx.platform
        .authenticator
        .authenticate(&request)
        .await
        .is_ok()
}

/// A primary restarting empty loses only its own slots' keys. Each user's blacklist flag lives
/// beside the user's entries, so the users of that shard lose both (and MySQL answers, then
/// their entries are reloaded), while the users of the other shards keep both: no flag on one
/// shard vouches for entries lost on another.
#[tokio::test]
async fn a_shard_that_restarts_empty_takes_its_users_flags_with_it() {
    let cluster = PrivateCluster::start();
    let urls = cluster.urls();
    let ctx = TestContext::with_vars(&[("REDIS_URL", &urls), ("REDIS_CLUSTER", "true")]).await;
    let store = &ctx.platform.redis;
    let blacklist = BlacklistCache::new(store.clone());
    let users = users_with_a_logout(&ctx, 6).await;
    // Every live token is admitted, which loads its user's entries and sets the user's flag.
    for (_, _, live) in &users {
        assert!(admitted(&ctx, live).await);
    }
    let shard = |id: i64| cluster.port_of(&blacklist.loaded_key(id));
    let lost_shard = shard(users[0].0);
    let (lost, kept): (Vec<_>, Vec<_>) = users
        .iter()
        .partition(|(id, _, _)| shard(*id) == lost_shard);
    assert!(
        !kept.is_empty(),
        "six users spread over more than one shard"
    );

    cluster.command_on(lost_shard, &["FLUSHALL"]);

    for (id, logged_out, _) in &lost {
        assert_eq!(
            blacklist.check(*id, "any").await.unwrap(),
            BlacklistAnswer::NotLoaded,
            "the flag went with the shard"
        );
        assert!(
            !admitted(&ctx, logged_out).await,
            "MySQL refuses user {id}'s token"
        );
        let entry = ctx.platform.tokens.verify(logged_out).unwrap().jti;
        assert_eq!(
            blacklist.check(*id, &entry).await.unwrap(),
            BlacklistAnswer::Listed,
            "and the user's entries are back in Redis"
        );
    }
    for (id, logged_out, _) in &kept {
        assert_eq!(
            blacklist.check(*id, "any").await.unwrap(),
            BlacklistAnswer::NotListed,
            "user {id}'s shard kept its flag"
        );
        assert!(!admitted(&ctx, logged_out).await);
    }
}
