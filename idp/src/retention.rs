//! The background task that forgets what ended sign-ins leave behind, by the bounds of
//! `policies::retention` (docs/oidc.md, "What is kept, and for how long").
//!
//! Every sign-in leaves a session row, every authorization a grant with its code, every refresh
//! a refresh token row, every second-factor code sent a challenge row. Each is deleted once
//! nothing can use it any more, plus `policies::retention::GRACE`; the deletes run on every node
//! every ten minutes in short batches, and a delete that another node already made deletes
//! nothing.

use std::time::Duration;

use policies::retention;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::Settings;
use crate::http::AppState;

/// How often the purge runs, and how many rows one statement deletes at most (a short write, so
/// that sign-ins and token requests do not wait behind it).
const PURGE_EVERY: Duration = Duration::from_secs(600);
const PURGE_BATCH: u32 = 500;

/// Until when a grant created at `created_at` with `scopes` is kept at least
/// ([`retention::grant_kept_until`]): its refresh family's lifetime counts only with
/// `offline_access`, the lifetimes are the current settings.
pub fn grant_retained_until(
    settings: &Settings,
    created_at: OffsetDateTime,
    scopes: &[String],
) -> OffsetDateTime {
    let session = time::Duration::hours(i64::from(settings.session.absolute_timeout_hours));
    let refresh = scopes
        .iter()
        .any(|s| s == "offline_access")
        .then(|| time::Duration::seconds(i64::from(settings.tokens.refresh_absolute_seconds)));
    retention::grant_kept_until(created_at, session, refresh)
}

/// Forgets ended sign-in state, at start and then every [`PURGE_EVERY`], in this order:
///
/// - Sessions past their absolute expiry (an idle one ends earlier, and goes at the same time).
/// - The revocations of tokens without a grant (service and machine tokens) that have expired
///   since.
/// - The refresh tokens of families that ended more than `retention::GRACE` ago: none of them
///   can be used again, and every refresh adds a row. A family's absolute expiry is at least
///   `tokens.refresh_absolute_seconds` (as configured when it began) after its grant was
///   created, so only grants created before that much and the grace ago are looked at: the old
///   end of the table's key. Families begun under a longer setting go once they fall in that
///   range.
/// - Grants past their `retain_until` (see [`grant_retained_until`]) that no session and no
///   refresh token refers to any more, with their authorization codes. A code replayed after
///   that is unknown rather than a replay: it is refused either way, but no longer revokes what
///   the grant issued, which by then has all ended.
/// - One-time codes sent more than `retention::OTP_SEND_LOG` and the grace ago: each expired
///   minutes after it was sent, and the send log of the daily caps and the cooldown reads no
///   further.
pub async fn purge_ended_sign_ins(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        let now = state.clock.now();
        let store = &state.store;
        in_batches("sessions", || store.purge_sessions(now, PURGE_BATCH)).await;
        if let Err(e) = store.purge_revoked_access_tokens(now).await {
            tracing::warn!(error = %e, "purging expired revocations failed");
        }
        let ended = retention::refresh_families_ended_before(now);
        let absolute =
            time::Duration::seconds(i64::from(state.settings.tokens.refresh_absolute_seconds));
        let below = uuid_v7_floor(ended - absolute);
        in_batches("refresh tokens", || {
            store.purge_refresh_tokens(below, ended, PURGE_BATCH)
        })
        .await;
        in_batches("grants", || store.purge_grants(now, PURGE_BATCH)).await;
        let sent_before = retention::otp_codes_sent_before(now);
        in_batches("one-time codes", || {
            store.purge_otp_challenges(sent_before, PURGE_BATCH)
        })
        .await;
    }
}

/// Runs `batch` until it deletes fewer than [`PURGE_BATCH`] rows, yielding in between, and logs
/// the total; a failure is logged and ends this round.
async fn in_batches<F, Fut>(what: &'static str, mut batch: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = store::Result<u64>>,
{
    let mut purged = 0;
    loop {
        match batch().await {
            Ok(n) => {
                purged += n;
                if n < u64::from(PURGE_BATCH) {
                    break;
                }
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, what, "purging ended sign-in state failed");
                break;
            }
        }
    }
    if purged > 0 {
        tracing::info!(rows = purged, what, "purged ended sign-in state");
    }
}

/// The smallest UUIDv7 of the millisecond `at`: every v7 ID made earlier sorts below it, bytewise
/// as both stores compare them.
fn uuid_v7_floor(at: OffsetDateTime) -> Uuid {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::grant_retained_until;
    use crate::config::Settings;

    #[test]
    fn a_grant_is_kept_a_day_past_the_longer_of_its_session_and_its_refresh_family() {
        let env = figment::providers::Env::prefixed("SEKIMORI_RETENTION_TEST_UNSET__");
        let mut settings = Settings::load_with(None, env).expect("the embedded default");
        let at = datetime!(2026-12-05 00:00 UTC);
        let scopes = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let plain = scopes(&["openid", "profile"]);
        let offline = scopes(&["openid", "offline_access"]);
        let day = Duration::days(1);
        // The defaults: 12-hour sessions, 30-day refresh families.
        assert_eq!(
            grant_retained_until(&settings, at, &plain),
            at + Duration::hours(12) + day
        );
        assert_eq!(
            grant_retained_until(&settings, at, &offline),
            at + Duration::days(30) + day
        );
        settings.session.absolute_timeout_hours = 24 * 30;
        settings.tokens.refresh_absolute_seconds = 2 * 86_400;
        assert_eq!(
            grant_retained_until(&settings, at, &offline),
            at + Duration::days(30) + day,
            "a session longer than the family"
        );
    }

    #[test]
    fn the_v7_floor_of_a_moment_is_above_every_earlier_id_and_below_every_later_one() {
        use uuid::{NoContext, Timestamp, Uuid};
        let at = time::macros::datetime!(2026-12-04 22:30:00.123 UTC);
        let floor = super::uuid_v7_floor(at);
        let id_at = |t: time::OffsetDateTime| {
            let nanos = t.unix_timestamp_nanos();
            let seconds = u64::try_from(nanos / 1_000_000_000).unwrap();
            let subsec = u32::try_from(nanos % 1_000_000_000).unwrap();
            Uuid::new_v7(Timestamp::from_unix(NoContext, seconds, subsec))
        };
        for _ in 0..100 {
            assert!(id_at(at - time::Duration::milliseconds(1)) < floor);
            assert!(id_at(at - time::Duration::days(400)) < floor);
            assert!(floor <= id_at(at));
            assert!(floor < id_at(at + time::Duration::milliseconds(1)));
        }
        // Both stores compare the 16 bytes in order, as `Uuid`'s `Ord` does.
        assert!(floor.as_bytes() <= id_at(at).as_bytes());
    }
}
