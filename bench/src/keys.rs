//! The bench's Redis keys: each benchmark (and each `bench drop` configuration) keeps its keys
//! under a prefix of its own and deletes them before and after it measures.

use redis::AsyncCommands;
use shared::adapters::redis::RedisStore;

/// Deletes every key with the store's prefix.
pub async fn flush(redis: &RedisStore) -> anyhow::Result<()> {
    let mut connection = redis.connection().await?;
    let keys: Vec<String> = {
        let mut iter = connection
            .scan_match::<_, String>(format!("{}*", redis.prefix()))
            .await?;
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key);
        }
        keys
    };
    if !keys.is_empty() {
        let () = connection.del(keys).await?;
    }
    Ok(())
}
