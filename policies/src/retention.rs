//! How long what sign-ins leave behind is kept once it has ended (docs/oidc.md, "What is kept,
//! and for how long"): the bounds the provider's purge (`idp::retention`) deletes below.
//! Sessions go at their absolute expiry and revoked `jti`s at their token's `exp`, with no rule
//! beyond those times.

use time::{Duration, OffsetDateTime};

/// How long past its last possible use a row is kept. It covers what is not checked row by row:
/// a grant's authorization code (at most ten minutes) and the access tokens minted from it (at
/// most an hour each, the last one minted just before its refresh family ended), under any
/// setting the configuration accepts, including one shortened since the row was written.
pub const GRACE: Duration = Duration::days(1);

/// How far back the send log of one-time codes is read: the daily caps count from midnight in
/// Japan ([`crate::otp`]), the resend cooldown from the newest send.
pub const OTP_SEND_LOG: Duration = Duration::days(1);

/// Until when a grant created at `created_at` is kept at least: its session's absolute lifetime
/// (logout notifies the clients of the session's grants) or, for a grant with refresh tokens
/// (`refresh_lifetime`, the family's absolute lifetime), that one, whichever is longer, plus
/// [`GRACE`]. The purge also waits for the session and the refresh tokens themselves to be gone,
/// so a lifetime lengthened later does not cut a grant short.
pub fn grant_kept_until(
    created_at: OffsetDateTime,
    session_lifetime: Duration,
    refresh_lifetime: Option<Duration>,
) -> OffsetDateTime {
    created_at + session_lifetime.max(refresh_lifetime.unwrap_or(Duration::ZERO)) + GRACE
}

/// The refresh token rows of families whose absolute expiry is before this are deleted at `now`.
pub fn refresh_families_ended_before(now: OffsetDateTime) -> OffsetDateTime {
    now - GRACE
}

/// One-time codes sent before this are deleted at `now`, spent or not.
pub fn otp_codes_sent_before(now: OffsetDateTime) -> OffsetDateTime {
    now - OTP_SEND_LOG - GRACE
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn grants_are_kept_a_day_past_the_longer_of_session_and_refresh_family() {
        let at = datetime!(2026-12-05 00:00 UTC);
        let h = Duration::hours;
        let d = Duration::days;
        for (session, refresh, kept) in [
            (h(12), None, at + h(12) + d(1)),
            (h(12), Some(d(30)), at + d(31)),
            (d(30), Some(d(2)), at + d(31)),
            (h(1), Some(h(1)), at + h(25)),
        ] {
            assert_eq!(
                grant_kept_until(at, session, refresh),
                kept,
                "{session} {refresh:?}"
            );
        }
    }

    #[test]
    fn ended_refresh_families_and_old_codes_are_a_grace_behind_now() {
        let now = datetime!(2026-12-05 12:00 UTC);
        assert_eq!(
            refresh_families_ended_before(now),
            datetime!(2026-12-04 12:00 UTC)
        );
        assert_eq!(otp_codes_sent_before(now), datetime!(2026-12-03 12:00 UTC));
    }
}
