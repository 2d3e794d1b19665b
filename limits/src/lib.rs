//! Rate limiting for the sign-in and API surfaces.
//!
//! This crate owns one trait, [`RateLimiter`], and two backends chosen once at startup by
//! [`from_url`]:
//!
//! - [`MemoryLimiter`]: in-process, built on `governor`. Exact within one process; with several
//!   IdP nodes each node counts on its own, so the effective limit is multiplied by the number of
//!   nodes. It is the embedded default.
//! - [`RedisLimiter`]: shared by every node through one atomic Lua script, so the limit is exact
//!   across nodes and under any concurrency.
//!
//! # Algorithm
//!
//! Both backends implement the same generic cell rate algorithm (GCRA): a rule of `limit` hits per
//! `window` lets a burst of `limit` hits through at once, after which one more hit becomes
//! available every `window / limit`. A fixed window counter would allow up to twice the limit
//! across a window boundary and would make the two backends behave differently; GCRA has neither
//! flaw, and its state is a single timestamp per key. A refused hit does not consume capacity, so a
//! client that keeps retrying is let through again as soon as capacity returns.
//!
//! [`Decision::Limited`] carries how long until the next hit would be allowed (one emission
//! interval after the burst is spent, e.g. 2 s for 30 per minute), which maps onto `Retry-After`.
//!
//! # Keys
//!
//! Keys are arbitrary caller input (IP addresses, user IDs, client IDs). Both backends reduce
//! them to their SHA-256 digest before storing them, so memory per key and Redis key length are
//! bounded and no input can inject into the Redis key space. [`ip_key`] and [`account_key`] build
//! the canonical keys for the sign-in rules.
//!
//! # Failure policy
//!
//! When Redis cannot be reached, [`RateLimiter::hit`] returns [`LimitError::Unavailable`] within
//! the connection's response timeout; the crate never decides for the caller. The IdP fails open:
//! it logs the error at `warn` and lets the request through. Rate limiting is a second line of
//! defence: the lockout counter, which stops password guessing against one account, is exact in
//! the database and keeps working without Redis, and failing closed would turn a Redis outage into
//! an outage of every sign-in and token request.

mod config;
pub mod keys;
mod memory;
mod redis_backend;

use std::sync::Arc;
use std::time::Duration;

pub use config::Limits;
pub use keys::{account_key, ip_key};
pub use memory::MemoryLimiter;
pub use redis_backend::RedisLimiter;

/// One rate limiting rule: at most `limit` hits per `window` for each key.
///
/// `name` identifies the rule in storage (it is part of the Redis key) and in logs; it must be
/// 1-64 characters of `[a-z0-9_]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    pub name: &'static str,
    pub limit: u32,
    pub window: Duration,
}

impl Rule {
    /// Checks the rule's own shape; both backends call this before counting a hit.
    fn check(&self) -> Result<(), LimitError> {
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(LimitError::InvalidRule {
                rule: self.name,
                reason: "the name must be 1-64 characters of [a-z0-9_]",
            });
        }
        if self.limit == 0 {
            return Err(LimitError::InvalidRule {
                rule: self.name,
                reason: "the limit must be at least 1",
            });
        }
        if self.window < Duration::from_millis(1) || self.window > Duration::from_secs(86_400 * 7) {
            return Err(LimitError::InvalidRule {
                rule: self.name,
                reason: "the window must be between 1 ms and 7 days",
            });
        }
        Ok(())
    }

    /// The time after which one more hit becomes available (`window / limit`, at least 1 µs).
    fn emission_interval(&self) -> Duration {
        (self.window / self.limit).max(Duration::from_micros(1))
    }
}

/// The outcome of one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The hit was counted; `remaining` more hits would be allowed right now.
    Allowed { remaining: u32 },
    /// The hit was refused and not counted; the next hit is allowed after `retry_after`.
    Limited { retry_after: Duration },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }

    /// The value for an HTTP `Retry-After` header: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Decision::Allowed { .. } => None,
            Decision::Limited { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some(secs.max(1))
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The shared store could not be reached or answered with an error; the caller decides
    /// whether to fail open or closed (the IdP fails open and logs).
    #[error("rate limit store unavailable: {0}")]
    Unavailable(String),
    /// The configuration names an unusable backend; the message names the key.
    #[error("{0}")]
    Config(String),
    /// A [`Rule`] built by code is malformed; this is a programming error.
    #[error("invalid rate limit rule {rule:?}: {reason}")]
    InvalidRule {
        rule: &'static str,
        reason: &'static str,
    },
}

/// Counts hits per rule and key.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one hit against `rule` for `key` and says whether it is allowed.
    async fn hit(&self, rule: &Rule, key: &str) -> Result<Decision, LimitError>;
}

/// Builds the limiter named by the `redis.url` setting: empty or absent selects the in-process
/// [`MemoryLimiter`]; `redis://…` or `rediss://…` connects a [`RedisLimiter`] now, so a wrong URL
/// or an unreachable server stops startup instead of failing open on every request later.
///
/// Error messages name `redis.url` and never repeat the URL, which may carry a password.
pub async fn from_url(redis_url: Option<&str>) -> Result<Arc<dyn RateLimiter>, LimitError> {
    match redis_url.map(str::trim) {
        None | Some("") => Ok(Arc::new(MemoryLimiter::new())),
        Some(url) => Ok(Arc::new(RedisLimiter::connect(url).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &'static str, limit: u32, window: Duration) -> Rule {
        Rule {
            name,
            limit,
            window,
        }
    }

    #[test]
    fn rule_shape_is_checked() {
        let minute = Duration::from_secs(60);
        assert!(rule("login_ip", 30, minute).check().is_ok());
        assert!(rule("", 30, minute).check().is_err());
        assert!(rule("Login", 30, minute).check().is_err());
        assert!(rule("login:ip", 30, minute).check().is_err());
        assert!(rule("login_ip", 0, minute).check().is_err());
        assert!(rule("login_ip", 1, Duration::ZERO).check().is_err());
        assert!(
            rule("login_ip", 1, Duration::from_secs(86_400 * 8))
                .check()
                .is_err()
        );
    }

    #[test]
    fn emission_interval_is_window_over_limit() {
        let r = rule("r", 30, Duration::from_secs(60));
        assert_eq!(r.emission_interval(), Duration::from_secs(2));
        let tiny = rule("r", 10_000, Duration::from_millis(1));
        assert_eq!(tiny.emission_interval(), Duration::from_micros(1));
    }

    #[test]
    fn retry_after_header_rounds_up() {
        let limited = |ms| Decision::Limited {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(limited(0).retry_after_secs(), Some(1));
        assert_eq!(limited(1).retry_after_secs(), Some(1));
        assert_eq!(limited(1000).retry_after_secs(), Some(1));
        assert_eq!(limited(1001).retry_after_secs(), Some(2));
        assert_eq!(Decision::Allowed { remaining: 3 }.retry_after_secs(), None);
    }

    #[tokio::test]
    async fn empty_url_selects_memory() {
        let minute = Duration::from_secs(60);
        for url in [None, Some(""), Some("  ")] {
            let limiter = from_url(url).await.expect("memory limiter");
            let decision = limiter.hit(&rule("r", 2, minute), "k").await.unwrap();
            assert_eq!(decision, Decision::Allowed { remaining: 1 });
        }
    }

    #[tokio::test]
    async fn bad_urls_name_the_key_and_hide_the_password() {
        for url in [
            "http://user:hunter2@127.0.0.1:6379",
            "redis://:hunter2@127.0.0.1:1",
            "not a url hunter2",
        ] {
            let Err(err) = from_url(Some(url)).await else {
                panic!("{url} must be refused");
            };
            let message = err.to_string();
            assert!(message.starts_with("redis.url"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }
}
