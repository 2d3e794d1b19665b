//! The in-process backend: one `governor` keyed limiter per rule, owned by the struct.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Governor};

use crate::keys::digest;
use crate::{Decision, LimitError, RateLimiter, Rule};

/// How many hits pass between two sweeps of idle keys.
const SWEEP_EVERY: u64 = 4096;

type Keyed<C> = Governor<[u8; 32], DashMapStateStore<[u8; 32]>, C, StateInformationMiddleware>;

/// Exact rate limiting within one process.
///
/// Keys are stored as their SHA-256 digest (32 bytes each). A key is forgotten once its state is
/// indistinguishable from a fresh one (its window has fully replenished); every 4096
/// hits the limiter sweeps such keys, so memory follows the number of recently active keys, not
/// the number ever seen.
///
/// The clock is a parameter so tests can use `governor::clock::FakeRelativeClock`.
pub struct MemoryLimiter<C: Clock = DefaultClock> {
    clock: C,
    rules: Mutex<HashMap<Rule, Arc<Keyed<C>>>>,
    hits: AtomicU64,
}

impl MemoryLimiter<DefaultClock> {
    pub fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl Default for MemoryLimiter<DefaultClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock + Clone> std::fmt::Debug for MemoryLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("tracked_keys", &self.tracked_keys())
            .finish_non_exhaustive()
    }
}

impl<C: Clock + Clone> MemoryLimiter<C> {
    pub fn with_clock(clock: C) -> Self {
        Self {
            clock,
            rules: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    /// The governor limiter for `rule`, created on first use. Rules are keyed by name, limit and
    /// window, so two rules sharing a name but not their parameters never share state.
    fn limiter(&self, rule: &Rule) -> Arc<Keyed<C>> {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        rules
            .entry(*rule)
            .or_insert_with(|| {
                let burst = NonZeroU32::new(rule.limit).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(rule.emission_interval())
                    .unwrap_or_else(|| Quota::per_second(burst))
                    .allow_burst(burst);
                Arc::new(
                    Governor::dashmap_with_clock(quota, self.clock.clone())
                        .with_middleware::<StateInformationMiddleware>(),
                )
            })
            .clone()
    }

    /// Forgets every key whose state has fully replenished and releases the spare capacity.
    /// [`RateLimiter::hit`] calls this every few thousand hits; it is public so a caller may also
    /// run it on a timer.
    pub fn forget_idle_keys(&self) {
        let limiters: Vec<_> = self
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The number of keys currently held across all rules.
    pub fn tracked_keys(&self) -> usize {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|limiter| limiter.len())
            .sum()
    }
}

#[async_trait::async_trait]
impl<C> RateLimiter for MemoryLimiter<C>
where
    C: Clock + Clone + Send + Sync + 'static,
{
    async fn hit(&self, rule: &Rule, key: &str) -> Result<Decision, LimitError> {
        rule.check()?;
        if self.hits.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.forget_idle_keys();
        }
        let limiter = self.limiter(rule);
        Ok(match limiter.check_key(&digest(key)) {
            Ok(snapshot) => Decision::Allowed {
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn rule(limit: u32, window: Duration) -> Rule {
        Rule {
            name: "test",
            limit,
            window,
        }
    }

    fn fake() -> (FakeRelativeClock, MemoryLimiter<FakeRelativeClock>) {
        let clock = FakeRelativeClock::default();
        (clock.clone(), MemoryLimiter::with_clock(clock))
    }

    #[tokio::test]
    async fn burst_up_to_the_limit_then_limited_with_one_interval_to_wait() {
        let (_clock, limiter) = fake();
        let rule = rule(30, MINUTE);
        for expected in (0..30).rev() {
            let decision = limiter.hit(&rule, "198.51.100.1").await.unwrap();
            assert_eq!(
                decision,
                Decision::Allowed {
                    remaining: expected
                }
            );
        }
        let decision = limiter.hit(&rule, "198.51.100.1").await.unwrap();
        assert_eq!(
            decision,
            Decision::Limited {
                retry_after: Duration::from_secs(2)
            }
        );
    }

    #[tokio::test]
    async fn refused_hits_are_not_counted_and_capacity_returns_over_time() {
        let (clock, limiter) = fake();
        let rule = rule(3, MINUTE);
        for _ in 0..3 {
            assert!(limiter.hit(&rule, "k").await.unwrap().is_allowed());
        }
        for _ in 0..10 {
            assert!(!limiter.hit(&rule, "k").await.unwrap().is_allowed());
        }
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            limiter.hit(&rule, "k").await.unwrap(),
            Decision::Limited {
                retry_after: Duration::from_secs(15)
            }
        );
        clock.advance(Duration::from_secs(15));
        assert_eq!(
            limiter.hit(&rule, "k").await.unwrap(),
            Decision::Allowed { remaining: 0 }
        );
        clock.advance(MINUTE);
        assert_eq!(
            limiter.hit(&rule, "k").await.unwrap(),
            Decision::Allowed { remaining: 2 }
        );
    }

    #[tokio::test]
    async fn keys_and_rules_are_independent() {
        let (_clock, limiter) = fake();
        let ip = Rule {
            name: "login_ip",
            limit: 1,
            window: MINUTE,
        };
        let account = Rule {
            name: "login_account",
            ..ip
        };
        assert!(limiter.hit(&ip, "a").await.unwrap().is_allowed());
        assert!(!limiter.hit(&ip, "a").await.unwrap().is_allowed());
        assert!(limiter.hit(&ip, "b").await.unwrap().is_allowed());
        assert!(limiter.hit(&account, "a").await.unwrap().is_allowed());
        let wider = Rule { limit: 2, ..ip };
        assert!(limiter.hit(&wider, "a").await.unwrap().is_allowed());
    }

    #[tokio::test]
    async fn odd_and_long_keys_are_accepted() {
        let (_clock, limiter) = fake();
        let rule = rule(1, MINUTE);
        let long = "ü".repeat(50_000);
        for key in ["", "\0", "a\r\nb", "*", "{x}", "../../", long.as_str()] {
            assert!(
                limiter.hit(&rule, key).await.unwrap().is_allowed(),
                "{key:?}"
            );
            assert!(
                !limiter.hit(&rule, key).await.unwrap().is_allowed(),
                "{key:?}"
            );
        }
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten() {
        let (clock, limiter) = fake();
        let rule = rule(10, MINUTE);
        for i in 0..1000 {
            limiter.hit(&rule, &format!("k{i}")).await.unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 1000);
        // One hit of ten per minute replenishes after 6 s; until then the key must be kept.
        clock.advance(Duration::from_secs(5));
        limiter.forget_idle_keys();
        assert_eq!(limiter.tracked_keys(), 1000, "keys not yet replenished");
        clock.advance(MINUTE);
        limiter.forget_idle_keys();
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[tokio::test]
    async fn sweeping_happens_automatically() {
        let (clock, limiter) = fake();
        let rule = rule(10, MINUTE);
        for i in 0..SWEEP_EVERY - 1 {
            limiter.hit(&rule, &format!("k{i}")).await.unwrap();
        }
        clock.advance(MINUTE * 2);
        limiter.hit(&rule, "last").await.unwrap();
        assert_eq!(limiter.tracked_keys(), 1, "only the newest key remains");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hits_are_exact() {
        let (_clock, limiter) = fake();
        let limiter = Arc::new(limiter);
        let rule = rule(50, Duration::from_secs(3600));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.hit(&rule, "shared").await.unwrap() })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap().is_allowed());
        }
        assert_eq!(allowed, 50);
    }

    #[tokio::test]
    async fn real_clock_windows_pass() {
        let limiter = MemoryLimiter::new();
        let rule = rule(2, Duration::from_millis(200));
        assert!(limiter.hit(&rule, "k").await.unwrap().is_allowed());
        assert!(limiter.hit(&rule, "k").await.unwrap().is_allowed());
        let Decision::Limited { retry_after } = limiter.hit(&rule, "k").await.unwrap() else {
            panic!("third hit must be limited");
        };
        assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}");
        tokio::time::sleep(retry_after + Duration::from_millis(5)).await;
        assert!(limiter.hit(&rule, "k").await.unwrap().is_allowed());
    }

    #[tokio::test]
    async fn malformed_rules_are_refused() {
        let (_clock, limiter) = fake();
        let zero = rule(0, MINUTE);
        assert!(matches!(
            limiter.hit(&zero, "k").await,
            Err(LimitError::InvalidRule { .. })
        ));
    }
}
