//! Lockout (SPEC §6, seeds 000 §2 and 002 §2-6): how many consecutive failures lock an account,
//! whether a lock has lapsed, and the lock states the admin API shows.
//!
//! The service keeps the counter (exact across nodes, reset by a success) and the lock columns; it
//! calls [`decide_after_failure`] with the count after a failed password or second-factor attempt,
//! and [`is_locked`] before every attempt.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::Violation;

/// Bounds an institution may tune the threshold within.
pub const MIN_THRESHOLD: u32 = 3;
pub const MAX_THRESHOLD: u32 = 10;
/// Bounds of the optional auto-unlock delay: one minute to thirty days.
pub const MIN_AUTO_UNLOCK: Duration = Duration::minutes(1);
pub const MAX_AUTO_UNLOCK: Duration = Duration::days(30);

/// The lockout profile of a deployment or an institution.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account (default 5).
    pub threshold: u32,
    /// When set, a lock caused by failures lapses after this long (config key
    /// `auto_unlock_after_secs`). Off by default: an admin unlocks.
    #[serde(rename = "auto_unlock_after_secs", with = "crate::secs::option")]
    pub auto_unlock_after: Option<Duration>,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            auto_unlock_after: None,
        }
    }
}

impl LockoutPolicy {
    /// Checks the profile (at startup and when an institution changes its settings), naming the
    /// offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_THRESHOLD..=MAX_THRESHOLD).contains(&self.threshold) {
            return Err(format!(
                "lockout.threshold must be between {MIN_THRESHOLD} and {MAX_THRESHOLD} (got {})",
                self.threshold
            ));
        }
        if let Some(d) = self.auto_unlock_after
            && !(MIN_AUTO_UNLOCK..=MAX_AUTO_UNLOCK).contains(&d)
        {
            return Err(format!(
                "lockout.auto_unlock_after_secs must be between {} and {} seconds (got {})",
                MIN_AUTO_UNLOCK.whole_seconds(),
                MAX_AUTO_UNLOCK.whole_seconds(),
                d.whole_seconds()
            ));
        }
        Ok(())
    }
}

/// An account's lock column: none, locked by failures, or locked by an admin (SPEC §12 `lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    #[default]
    None,
    Failures,
    Admin,
}

impl LockState {
    pub const ALL: [LockState; 3] = [LockState::None, LockState::Failures, LockState::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            LockState::None => "none",
            LockState::Failures => "failures",
            LockState::Admin => "admin",
        }
    }

    /// The seed's search-screen label: なし / ロック中 [002 §2-6].
    pub const fn label_ja(self) -> &'static str {
        match self {
            LockState::None => "なし",
            LockState::Failures | LockState::Admin => "ロック中",
        }
    }
}

impl std::fmt::Display for LockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LockState {
    type Err = Violation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LockState::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                Violation::new(
                    "lock.unknown",
                    "ロック状態は none、failures、admin のいずれかです。",
                    "The lock state must be one of none, failures, admin.",
                )
            })
    }
}

/// What a failed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureDecision {
    /// The threshold is reached: lock the account (state `failures`) and revoke its sessions.
    Lock,
    /// Not yet: this many further failures lock the account. Never shown on the login page, which
    /// reveals nothing (SPEC §6); available to the audit log.
    Count(u32),
}

/// Decides after a failed password or second-factor attempt, given the consecutive-failure count
/// including this attempt.
pub fn decide_after_failure(failures: u32, policy: &LockoutPolicy) -> FailureDecision {
    if failures >= policy.threshold {
        FailureDecision::Lock
    } else {
        FailureDecision::Count(policy.threshold - failures)
    }
}

/// Whether an account is locked at `now`. Only locks caused by failures lapse, and only when the
/// policy enables auto-unlock; an admin lock lasts until an admin unlocks. A failure lock without
/// a recorded time never lapses (fail closed). When a failure lock has lapsed, the service
/// clears it and resets the counter on the next attempt.
pub fn is_locked(
    lock: LockState,
    locked_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    policy: &LockoutPolicy,
) -> bool {
    match lock {
        LockState::None => false,
        LockState::Admin => true,
        LockState::Failures => match auto_unlock_at(lock, locked_at, policy) {
            Some(at) => now < at,
            None => true,
        },
    }
}

/// When a lock lapses by itself, if it does.
pub fn auto_unlock_at(
    lock: LockState,
    locked_at: Option<OffsetDateTime>,
    policy: &LockoutPolicy,
) -> Option<OffsetDateTime> {
    match (lock, locked_at, policy.auto_unlock_after) {
        (LockState::Failures, Some(at), Some(after)) => at.checked_add(after),
        _ => None,
    }
}

/// Whether a token issued at `issued_at` was issued before the account's last lock
/// (`tokens_not_before`), and so stays invalid after the account is unlocked. Whole seconds are
/// compared, because a JWT's `iat` has none smaller, and a token of the lock's own second
/// stands, as with Keycloak's `notBefore`: refusing it would also refuse a token issued right
/// after an unlock in that second, for its whole lifetime.
pub fn issued_before_lock(
    issued_at: OffsetDateTime,
    tokens_not_before: Option<OffsetDateTime>,
) -> bool {
    tokens_not_before.is_some_and(|lock| issued_at.unix_timestamp() < lock.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn tokens_issued_before_the_last_lock() {
        let lock = datetime!(2024-04-01 09:00:00.500 UTC);
        let rows: &[(OffsetDateTime, Option<OffsetDateTime>, bool)] = &[
            // Never locked: every token stands.
            (lock, None, false),
            (lock - Duration::days(1), Some(lock), true),
            (datetime!(2024-04-01 08:59:59.999 UTC), Some(lock), true),
            // The lock's own second, before or after the lock instant (an `iat` cannot tell).
            (datetime!(2024-04-01 09:00:00 UTC), Some(lock), false),
            (datetime!(2024-04-01 09:00:00.900 UTC), Some(lock), false),
            (datetime!(2024-04-01 09:00:01 UTC), Some(lock), false),
            (lock + Duration::hours(2), Some(lock), false),
        ];
        for (issued_at, not_before, expected) in rows {
            assert_eq!(
                issued_before_lock(*issued_at, *not_before),
                *expected,
                "{issued_at} vs {not_before:?}"
            );
        }
    }

    #[test]
    fn decisions_after_failures() {
        let default = LockoutPolicy::default();
        let three = LockoutPolicy {
            threshold: 3,
            ..LockoutPolicy::default()
        };
        // SPEC §6: 5 consecutive failures lock by default; tunable per institution.
        let rows: &[(u32, &LockoutPolicy, FailureDecision)] = &[
            (1, &default, FailureDecision::Count(4)),
            (4, &default, FailureDecision::Count(1)),
            (5, &default, FailureDecision::Lock),
            (6, &default, FailureDecision::Lock),
            (2, &three, FailureDecision::Count(1)),
            (3, &three, FailureDecision::Lock),
            (0, &three, FailureDecision::Count(3)),
            (u32::MAX, &three, FailureDecision::Lock),
        ];
        for (failures, policy, expected) in rows {
            assert_eq!(
                decide_after_failure(*failures, policy),
                *expected,
                "{failures}"
            );
        }
    }

    #[test]
    fn locks_and_auto_unlock() {
        let at = datetime!(2024-04-01 09:00 UTC);
        let manual = LockoutPolicy::default();
        let auto = LockoutPolicy {
            auto_unlock_after: Some(Duration::minutes(30)),
            ..manual.clone()
        };
        let rows: &[(
            LockState,
            Option<OffsetDateTime>,
            OffsetDateTime,
            &LockoutPolicy,
            bool,
        )] = &[
            (LockState::None, None, at, &manual, false),
            // SPEC §6: locked until an admin unlocks (auto-unlock off by default).
            (
                LockState::Failures,
                Some(at),
                at + Duration::days(365),
                &manual,
                true,
            ),
            // SPEC §6: optional auto-unlock after the configured time, for failure locks only.
            (
                LockState::Failures,
                Some(at),
                at + Duration::minutes(29),
                &auto,
                true,
            ),
            (
                LockState::Failures,
                Some(at),
                at + Duration::minutes(30),
                &auto,
                false,
            ),
            (
                LockState::Failures,
                None,
                at + Duration::days(1),
                &auto,
                true,
            ),
            // 000 §2 アカウントロック: an admin lock never lapses.
            (
                LockState::Admin,
                Some(at),
                at + Duration::days(365),
                &auto,
                true,
            ),
        ];
        for (lock, locked_at, now, policy, expected) in rows {
            assert_eq!(
                is_locked(*lock, *locked_at, *now, policy),
                *expected,
                "{lock} {now}"
            );
        }
        assert_eq!(
            auto_unlock_at(LockState::Failures, Some(at), &auto),
            Some(at + Duration::minutes(30))
        );
        assert_eq!(auto_unlock_at(LockState::Admin, Some(at), &auto), None);
    }

    #[test]
    fn states_and_config() {
        for l in LockState::ALL {
            assert_eq!(l.as_str().parse::<LockState>(), Ok(l));
        }
        // 002 §2-6: なし / ロック中.
        assert_eq!(LockState::None.label_ja(), "なし");
        assert_eq!(LockState::Admin.label_ja(), "ロック中");
        assert_eq!(LockoutPolicy::default().validate(), Ok(()));
        for (policy, field) in [
            (
                LockoutPolicy {
                    threshold: 2,
                    auto_unlock_after: None,
                },
                "threshold",
            ),
            (
                LockoutPolicy {
                    threshold: 11,
                    auto_unlock_after: None,
                },
                "threshold",
            ),
            (
                LockoutPolicy {
                    threshold: 5,
                    auto_unlock_after: Some(Duration::seconds(5)),
                },
                "auto_unlock_after_secs",
            ),
        ] {
            assert!(policy.validate().expect_err(field).contains(field));
        }
        let p: LockoutPolicy =
            serde_json::from_str(r#"{"threshold": 3, "auto_unlock_after_secs": 900}"#)
                .expect("json");
        assert_eq!(
            p,
            LockoutPolicy {
                threshold: 3,
                auto_unlock_after: Some(Duration::minutes(15))
            }
        );
    }
}
