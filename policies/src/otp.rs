//! One-time codes for the second factor (SPEC §7, seed 001 "二要素認証"): length, lifetime, tries
//! per code, resend cooldown and the daily caps that stop SMS and voice pumping fraud.
//!
//! The service stores each code hashed with its issue time and try count, and counts the codes
//! sent per account and per destination during the current Asia/Tokyo day
//! ([`crate::usage::jst_date`]); these functions decide.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime, Time};

use crate::Violation;
use crate::usage::JST;

/// The one-time-code profile of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtpPolicy {
    /// Digits per code (default 6; 6..=8).
    pub length: u8,
    /// How long a code is valid (default 5 minutes; 1..=10 minutes). Config key `lifetime_secs`.
    #[serde(rename = "lifetime_secs", with = "crate::secs")]
    pub lifetime: Duration,
    /// Wrong entries allowed per code (default 5; 1..=10). Each also counts toward lockout.
    pub max_tries: u32,
    /// Wait between two sends to one account (default 60 s; 30..=600 s). Config key
    /// `resend_cooldown_secs`.
    #[serde(rename = "resend_cooldown_secs", with = "crate::secs")]
    pub resend_cooldown: Duration,
    /// Codes sent to one account per Asia/Tokyo day (default 10; 1..=50).
    pub daily_cap_per_account: u32,
    /// Codes sent to one e-mail address or phone number per Asia/Tokyo day, whatever the account
    /// (default 20: a clinic may share one phone among several staff; 1..=100).
    pub daily_cap_per_destination: u32,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        Self {
            length: 6,
            lifetime: Duration::minutes(5),
            max_tries: 5,
            resend_cooldown: Duration::seconds(60),
            daily_cap_per_account: 10,
            daily_cap_per_destination: 20,
        }
    }
}

/// Why a code may not be checked any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyRefusal {
    /// The code's lifetime has passed.
    Expired,
    /// All tries for this code are used.
    TooManyTries,
}

impl VerifyRefusal {
    pub const fn rule(self) -> &'static str {
        match self {
            VerifyRefusal::Expired => "otp.expired",
            VerifyRefusal::TooManyTries => "otp.too_many_tries",
        }
    }

    pub fn violation(self) -> Violation {
        match self {
            VerifyRefusal::Expired => Violation::new(
                self.rule(),
                "認証コードの有効期限が切れました。コードを再送信してください。",
                "The code has expired; request a new one.",
            ),
            VerifyRefusal::TooManyTries => Violation::new(
                self.rule(),
                "認証コードの入力回数の上限に達しました。コードを再送信してください。",
                "Too many wrong entries for this code; request a new one.",
            ),
        }
    }
}

impl std::fmt::Display for VerifyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.violation().message_en)
    }
}

impl std::error::Error for VerifyRefusal {}

/// Why a code may not be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusalReason {
    Cooldown,
    AccountDailyCap,
    DestinationDailyCap,
}

/// A refused send, with how long until a send may succeed (for `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRefusal {
    pub reason: SendRefusalReason,
    pub retry_after: Duration,
}

impl SendRefusal {
    pub const fn rule(&self) -> &'static str {
        match self.reason {
            SendRefusalReason::Cooldown => "otp.cooldown",
            SendRefusalReason::AccountDailyCap => "otp.daily_cap_account",
            SendRefusalReason::DestinationDailyCap => "otp.daily_cap_destination",
        }
    }

    /// Whole seconds to wait, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs =
            self.retry_after.whole_seconds() + i64::from(self.retry_after.subsec_nanoseconds() > 0);
        u64::try_from(secs.max(1)).unwrap_or(1)
    }

    pub fn violation(&self) -> Violation {
        let secs = self.retry_after_secs();
        match self.reason {
            SendRefusalReason::Cooldown => Violation::new(
                self.rule(),
                format!("認証コードの再送信は{secs}秒後から可能です。"),
                format!("A new code can be sent in {secs} seconds."),
            ),
            SendRefusalReason::AccountDailyCap => Violation::new(
                self.rule(),
                "本日の認証コード送信回数の上限に達しました。明日以降に再度お試しください。",
                "The daily limit of codes for this account is reached; try again tomorrow (Japan time).",
            ),
            SendRefusalReason::DestinationDailyCap => Violation::new(
                self.rule(),
                "この送信先への本日の認証コード送信回数の上限に達しました。明日以降に再度お試しください。",
                "The daily limit of codes for this destination is reached; try again tomorrow (Japan time).",
            ),
        }
    }
}

impl std::fmt::Display for SendRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.violation().message_en)
    }
}

impl std::error::Error for SendRefusal {}

impl OtpPolicy {
    /// Checks the profile at startup, naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(6..=8).contains(&self.length) {
            return Err(format!(
                "otp.length must be between 6 and 8 (got {})",
                self.length
            ));
        }
        if !(Duration::minutes(1)..=Duration::minutes(10)).contains(&self.lifetime) {
            return Err(format!(
                "otp.lifetime_secs must be between 60 and 600 (got {})",
                self.lifetime.whole_seconds()
            ));
        }
        if !(1..=10).contains(&self.max_tries) {
            return Err(format!(
                "otp.max_tries must be between 1 and 10 (got {})",
                self.max_tries
            ));
        }
        if !(Duration::seconds(30)..=Duration::minutes(10)).contains(&self.resend_cooldown) {
            return Err(format!(
                "otp.resend_cooldown_secs must be between 30 and 600 (got {})",
                self.resend_cooldown.whole_seconds()
            ));
        }
        if !(1..=50).contains(&self.daily_cap_per_account) {
            return Err(format!(
                "otp.daily_cap_per_account must be between 1 and 50 (got {})",
                self.daily_cap_per_account
            ));
        }
        if !(1..=100).contains(&self.daily_cap_per_destination) {
            return Err(format!(
                "otp.daily_cap_per_destination must be between 1 and 100 (got {})",
                self.daily_cap_per_destination
            ));
        }
        Ok(())
    }

    /// Whether an entered code may still be compared with the one issued at `issued_at`, after
    /// `tries_so_far` wrong entries. At exactly `issued_at + lifetime` the code has expired.
    pub fn can_verify(
        &self,
        tries_so_far: u32,
        issued_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), VerifyRefusal> {
        match issued_at.checked_add(self.lifetime) {
            Some(expires_at) if now < expires_at => {}
            _ => return Err(VerifyRefusal::Expired),
        }
        if tries_so_far >= self.max_tries {
            return Err(VerifyRefusal::TooManyTries);
        }
        Ok(())
    }

    /// Whether a code may be sent now. `sent_today_*` count the codes already sent during the
    /// current Asia/Tokyo day. A daily cap refusal waits until the next Asia/Tokyo midnight.
    pub fn can_send(
        &self,
        last_sent_at: Option<OffsetDateTime>,
        sent_today_account: u32,
        sent_today_destination: u32,
        now: OffsetDateTime,
    ) -> Result<(), SendRefusal> {
        if sent_today_account >= self.daily_cap_per_account {
            return Err(SendRefusal {
                reason: SendRefusalReason::AccountDailyCap,
                retry_after: until_next_jst_midnight(now),
            });
        }
        if sent_today_destination >= self.daily_cap_per_destination {
            return Err(SendRefusal {
                reason: SendRefusalReason::DestinationDailyCap,
                retry_after: until_next_jst_midnight(now),
            });
        }
        if let Some(last) = last_sent_at
            && let Some(ready_at) = last.checked_add(self.resend_cooldown)
            && now < ready_at
        {
            return Err(SendRefusal {
                reason: SendRefusalReason::Cooldown,
                retry_after: ready_at - now,
            });
        }
        Ok(())
    }

    /// A uniformly random code of `length` digits (leading zeros kept), drawn by rejection
    /// sampling so that no code is more likely than another.
    pub fn generate_code<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> String {
        let length = self.length.clamp(1, 9);
        let space = 10usize.pow(u32::from(length));
        let n = crate::password::uniform_index(rng, space);
        format!("{n:0width$}", width = usize::from(length))
    }

    /// Parses a code as typed: surrounding whitespace is ignored and full-width digits (what a
    /// Japanese IME produces) are read as digits. Anything else than exactly `length` digits is
    /// refused.
    pub fn parse_code(&self, raw: &str) -> Result<OtpCode, Violation> {
        let mut code = String::with_capacity(usize::from(self.length));
        for c in raw.trim().chars() {
            let digit = match c {
                '0'..='9' => c,
                '０'..='９' => char::from(b'0' + (u32::from(c) - u32::from('０')) as u8),
                _ => return Err(self.format_violation()),
            };
            if code.len() >= usize::from(self.length) {
                return Err(self.format_violation());
            }
            code.push(digit);
        }
        if code.len() != usize::from(self.length) {
            return Err(self.format_violation());
        }
        Ok(OtpCode(code))
    }

    fn format_violation(&self) -> Violation {
        Violation::new(
            "otp.format",
            format!("認証コードは{}桁の数字で入力してください。", self.length),
            format!("The code is {} digits.", self.length),
        )
    }
}

/// A code as the user entered it, in ASCII digits. Not `Display`: it is compared (hashed), never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

/// Time until the next midnight in Asia/Tokyo, when daily caps reset.
pub fn until_next_jst_midnight(now: OffsetDateTime) -> Duration {
    let Some(local) = now.checked_to_offset(JST) else {
        return Duration::DAY;
    };
    let Some(tomorrow) = local.date().next_day() else {
        return Duration::DAY;
    };
    tomorrow.with_time(Time::MIDNIGHT).assume_offset(JST) - now
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn verify() {
        let p = OtpPolicy::default();
        let issued = datetime!(2024-04-01 09:00 +9);
        // SPEC §7: 5-minute lifetime, at most 5 tries per code.
        let rows: &[(u32, OffsetDateTime, Result<(), VerifyRefusal>)] = &[
            (0, issued, Ok(())),
            (4, issued + Duration::minutes(4), Ok(())),
            (
                5,
                issued + Duration::minutes(1),
                Err(VerifyRefusal::TooManyTries),
            ),
            (
                0,
                issued + Duration::minutes(5),
                Err(VerifyRefusal::Expired),
            ),
            (9, issued + Duration::hours(1), Err(VerifyRefusal::Expired)),
        ];
        for (tries, now, expected) in rows {
            assert_eq!(
                p.can_verify(*tries, issued, *now),
                *expected,
                "{tries} {now}"
            );
        }
    }

    #[test]
    fn send() {
        let p = OtpPolicy::default();
        let now = datetime!(2024-04-01 23:00 +9);
        // SPEC §7: resend cooldown, per-account and per-destination daily caps.
        /// (last sent, sent today to the account, sent today to the destination, decision).
        type Row = (
            Option<OffsetDateTime>,
            u32,
            u32,
            Result<(), (SendRefusalReason, Duration)>,
        );
        let rows: &[Row] = &[
            (None, 0, 0, Ok(())),
            (Some(now - Duration::seconds(60)), 3, 3, Ok(())),
            (
                Some(now - Duration::seconds(20)),
                3,
                3,
                Err((SendRefusalReason::Cooldown, Duration::seconds(40))),
            ),
            (
                None,
                10,
                0,
                Err((SendRefusalReason::AccountDailyCap, Duration::hours(1))),
            ),
            (
                None,
                9,
                20,
                Err((SendRefusalReason::DestinationDailyCap, Duration::hours(1))),
            ),
        ];
        for (last, account, destination, expected) in rows {
            let got = p
                .can_send(*last, *account, *destination, now)
                .map_err(|r| (r.reason, r.retry_after));
            assert_eq!(got, *expected, "{last:?} {account} {destination}");
        }
        let refusal = p
            .can_send(Some(now - Duration::milliseconds(500)), 0, 0, now)
            .expect_err("cooldown");
        assert_eq!(refusal.retry_after_secs(), 60);
        assert!(refusal.violation().message_ja.contains("60秒"));
    }

    #[test]
    fn codes() {
        let p = OtpPolicy::default();
        let mut rng = StdRng::seed_from_u64(3);
        let mut leading_zero = false;
        for _ in 0..2000 {
            let code = p.generate_code(&mut rng);
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            leading_zero |= code.starts_with('0');
            assert_eq!(p.parse_code(&code).expect("own code").as_str(), code);
        }
        assert!(leading_zero, "codes keep their leading zeros");
        let rows: &[(&str, Option<&str>)] = &[
            ("012345", Some("012345")),
            (" 123456 ", Some("123456")),
            ("１２３４５６", Some("123456")),
            ("12345", None),
            ("1234567", None),
            ("12 456", None),
            ("abcdef", None),
            ("", None),
        ];
        for (raw, expected) in rows {
            assert_eq!(
                p.parse_code(raw).ok().as_ref().map(OtpCode::as_str),
                *expected,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn config() {
        assert_eq!(OtpPolicy::default().validate(), Ok(()));
        let p: OtpPolicy =
            serde_json::from_str(r#"{"lifetime_secs": 180, "max_tries": 3}"#).expect("json");
        assert_eq!(p.lifetime, Duration::minutes(3));
        assert_eq!(p.max_tries, 3);
        for (policy, field) in [
            (
                OtpPolicy {
                    length: 4,
                    ..OtpPolicy::default()
                },
                "length",
            ),
            (
                OtpPolicy {
                    lifetime: Duration::hours(1),
                    ..OtpPolicy::default()
                },
                "lifetime_secs",
            ),
            (
                OtpPolicy {
                    max_tries: 0,
                    ..OtpPolicy::default()
                },
                "max_tries",
            ),
            (
                OtpPolicy {
                    resend_cooldown: Duration::ZERO,
                    ..OtpPolicy::default()
                },
                "resend_cooldown_secs",
            ),
            (
                OtpPolicy {
                    daily_cap_per_account: 0,
                    ..OtpPolicy::default()
                },
                "daily_cap_per_account",
            ),
            (
                OtpPolicy {
                    daily_cap_per_destination: 1000,
                    ..OtpPolicy::default()
                },
                "daily_cap_per_destination",
            ),
        ] {
            assert!(policy.validate().expect_err(field).contains(field));
        }
        assert!(serde_json::from_str::<OtpPolicy>(r#"{"lifetime_secs": -1}"#).is_err());
    }
}
