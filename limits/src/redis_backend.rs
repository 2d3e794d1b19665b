//! The shared backend: GCRA in one Lua script on Redis, exact across IdP nodes.
//!
//! The script reads the key's theoretical arrival time (TAT), decides, and writes the new TAT in
//! one atomic step, so concurrent hits from any number of nodes are serialised by Redis itself.
//! Time comes from the Redis server (`TIME`), not from the nodes, so clock skew between nodes
//! cannot widen a limit. Each key expires as soon as its state is indistinguishable from a fresh
//! one, so Redis holds only recently active keys.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::keys::digest;
use crate::{Decision, LimitError, RateLimiter, Rule};

/// The prefix of every key this backend writes; the full key is
/// `sekimori:rl:<rule name>:<SHA-256 hex of the key>`.
const PREFIX: &str = "sekimori:rl:";

/// GCRA over microsecond timestamps; Lua numbers are doubles, exact up to 2^53 µs (285 years).
///
/// KEYS[1] is the bucket. ARGV[1] is the emission interval in µs (`window / limit`), ARGV[2] the
/// burst (the rule's limit). Returns `{1, remaining}` when the hit is counted, or `{0, wait_us}`
/// when it is refused; a refused hit leaves the bucket untouched.
const GCRA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, allow_at - now}
end
local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, math.floor((now - allow_at) / interval)}
";

/// Per-attempt timeout for connecting to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a hit waits for Redis before reporting it unavailable; this bounds the latency an
/// outage adds to a sign-in when the caller fails open.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Rate limiting shared by every IdP node through Redis (or Valkey) 5 or later.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: redis::Script,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLimiter(..)")
    }
}

impl RedisLimiter {
    /// Connects to `url` (`redis://…` or `rediss://…`) and loads the script, so an unusable
    /// server stops startup. Afterwards the connection manager reconnects on its own.
    pub async fn connect(url: &str) -> Result<Self, LimitError> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(LimitError::Config(
                "redis.url must be empty or start with redis:// or rediss://".into(),
            ));
        }
        // The parse error is not shown: it could quote parts of the URL, including a password.
        let client = redis::Client::open(url)
            .map_err(|_| LimitError::Config("redis.url is not a valid Redis URL".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let unreachable = |e: &dyn std::fmt::Display| {
            LimitError::Config(format!("redis.url: cannot use Redis: {e}"))
        };
        let mut connection = tokio::time::timeout(
            CONNECT_TIMEOUT * 3,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|e| unreachable(&e))?
        .map_err(|e| unreachable(&e))?;
        let script = redis::Script::new(GCRA);
        script
            .load_async(&mut connection)
            .await
            .map_err(|e| unreachable(&e))?;
        Ok(Self { connection, script })
    }

    /// The Redis key holding the state of `key` under `rule`; operators can delete it to lift a
    /// limit early.
    pub fn storage_key(rule: &Rule, key: &str) -> String {
        format!("{PREFIX}{}:{}", rule.name, hex::encode(digest(key)))
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    async fn hit(&self, rule: &Rule, key: &str) -> Result<Decision, LimitError> {
        rule.check()?;
        // The rule check bounds the window to 7 days, so the interval fits easily.
        let interval_us = u64::try_from(rule.emission_interval().as_micros()).unwrap_or(u64::MAX);
        let mut connection = self.connection.clone();
        let (allowed, value): (i64, i64) = self
            .script
            .key(Self::storage_key(rule, key))
            .arg(interval_us)
            .arg(rule.limit)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        let value = u64::try_from(value).unwrap_or(0);
        Ok(if allowed == 1 {
            Decision::Allowed {
                remaining: u32::try_from(value).unwrap_or(u32::MAX),
            }
        } else {
            Decision::Limited {
                retry_after: Duration::from_micros(value),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_are_bounded_and_inert() {
        let rule = Rule {
            name: "login_ip",
            limit: 1,
            window: Duration::from_secs(60),
        };
        for key in ["", "a b\r\n*3", "{tag}", &"x".repeat(10_000)] {
            let stored = RedisLimiter::storage_key(&rule, key);
            assert_eq!(stored.len(), PREFIX.len() + "login_ip:".len() + 64);
            assert!(stored.starts_with("sekimori:rl:login_ip:"));
            assert!(
                stored[PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            );
        }
    }
}
