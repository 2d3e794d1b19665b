//! The state of an account's password (SPEC §5, seeds 002 §2-2 and 000 §2): on a system-issued
//! initial password, changed by its holder, or an initial password that expired unused.
//!
//! Human accounts must replace an initial password at first login, and it lapses 30 days after
//! issue ("初期パスワードの有効日数は30日間です"); machine accounts keep theirs with no expiry and no
//! forced change.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::AccountType;

/// How long a human account's initial password stays valid [002 §2-2].
pub const INITIAL_PASSWORD_VALIDITY_DAYS: i64 = 30;

/// [`INITIAL_PASSWORD_VALIDITY_DAYS`] as a duration, the default `validity` of [`password_state`].
pub const INITIAL_PASSWORD_VALIDITY: Duration = Duration::days(INITIAL_PASSWORD_VALIDITY_DAYS);

/// `password_state` of the admin API's Account (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordState {
    /// A system-issued password that has not been replaced yet.
    Initial,
    /// The holder chose the current password.
    Changed,
    /// A human account's initial password, older than its validity: login is refused until a
    /// superior resets it.
    Expired,
}

impl PasswordState {
    pub const fn as_str(self) -> &'static str {
        match self {
            PasswordState::Initial => "initial",
            PasswordState::Changed => "changed",
            PasswordState::Expired => "expired",
        }
    }
}

impl std::fmt::Display for PasswordState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of an account's password at `now`. `initial_issued_at` is `Some` while the account
/// is on an initial password. The initial password is valid for `validity` from issue: at exactly
/// `issued_at + validity` it has expired.
pub fn password_state(
    account_type: AccountType,
    initial_issued_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    validity: Duration,
) -> PasswordState {
    let Some(issued_at) = initial_issued_at else {
        return PasswordState::Changed;
    };
    if !account_type.initial_password_expires() {
        return PasswordState::Initial;
    }
    match issued_at.checked_add(validity) {
        Some(expires_at) if now >= expires_at => PasswordState::Expired,
        _ => PasswordState::Initial,
    }
}

/// When an initial password issued at `issued_at` expires: 30 days later for human accounts,
/// never for machine accounts.
pub fn initial_password_expires_at(
    issued_at: OffsetDateTime,
    account_type: AccountType,
) -> Option<OffsetDateTime> {
    if account_type.initial_password_expires() {
        issued_at.checked_add(INITIAL_PASSWORD_VALIDITY)
    } else {
        None
    }
}

/// Whether a sign-in must set a new password before any token or session is issued: human
/// accounts on an initial password [001 作業③補足, 000 §2 (イ)]. Machine accounts never do.
pub const fn must_change_password(account_type: AccountType, state: PasswordState) -> bool {
    account_type.is_human() && matches!(state, PasswordState::Initial)
}

/// Whether an account's secret is always system-generated (machine accounts) rather than chosen
/// by a person. Machine accounts never change their secret themselves: an admin reset issues a
/// new generated one. Their secrets are long ([`crate::password::INITIAL_LENGTH_MACHINE`]
/// characters, ~140 bits), which is why they are stored with a keyed fast hash, not argon2id.
pub const fn secret_is_generated(account_type: AccountType) -> bool {
    account_type.is_machine()
}

/// How an account authenticates (SPEC §8): people on the login pages, machine accounts with the
/// `client_credentials` grant (client ID `<user_id>@<institution_code>`, the secret as client
/// secret). Neither may use the other's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignInChannel {
    Pages,
    ClientCredentials,
}

/// The one channel an account type signs in through.
pub const fn sign_in_channel(account_type: AccountType) -> SignInChannel {
    if account_type.is_machine() {
        SignInChannel::ClientCredentials
    } else {
        SignInChannel::Pages
    }
}

/// Whether a password in this state may sign in at all. An expired initial password may not:
/// a superior must reset it.
pub const fn may_sign_in(state: PasswordState) -> bool {
    !matches!(state, PasswordState::Expired)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn states() {
        let issued = datetime!(2024-04-01 10:00 +9);
        let v = INITIAL_PASSWORD_VALIDITY;
        let rows: &[(
            AccountType,
            Option<OffsetDateTime>,
            OffsetDateTime,
            PasswordState,
        )] = &[
            (AccountType::General, None, issued, PasswordState::Changed),
            // 002 §2-2 "初期パスワードの有効日数は30日間です".
            (
                AccountType::General,
                Some(issued),
                issued + Duration::days(29),
                PasswordState::Initial,
            ),
            (
                AccountType::Manager,
                Some(issued),
                issued + Duration::days(30) - Duration::SECOND,
                PasswordState::Initial,
            ),
            (
                AccountType::Manager,
                Some(issued),
                issued + Duration::days(30),
                PasswordState::Expired,
            ),
            (
                AccountType::Operator,
                Some(issued),
                issued + Duration::days(400),
                PasswordState::Expired,
            ),
            // 002 §2-1(1) "※パスワードに有効期限はありません" for system accounts.
            (
                AccountType::WebApi,
                Some(issued),
                issued + Duration::days(4000),
                PasswordState::Initial,
            ),
            (
                AccountType::CardReader,
                None,
                issued,
                PasswordState::Changed,
            ),
        ];
        for (t, issued_at, now, expected) in rows {
            assert_eq!(
                password_state(*t, *issued_at, *now, v),
                *expected,
                "{t} {now}"
            );
        }
        assert_eq!(
            initial_password_expires_at(issued, AccountType::General),
            Some(issued + Duration::days(30))
        );
        assert_eq!(
            initial_password_expires_at(issued, AccountType::LinkedApp),
            None
        );
        // 000 §2 (イ): people change the initial password at first login; machines never must.
        assert!(must_change_password(
            AccountType::General,
            PasswordState::Initial
        ));
        assert!(!must_change_password(
            AccountType::WebApi,
            PasswordState::Initial
        ));
        assert!(!may_sign_in(PasswordState::Expired));
        // SPEC §8: machines use client_credentials, people the pages; machine secrets are
        // generated, never chosen.
        for t in AccountType::ALL {
            let expected = if t.is_machine() {
                SignInChannel::ClientCredentials
            } else {
                SignInChannel::Pages
            };
            assert_eq!(sign_in_channel(t), expected, "{t}");
            assert_eq!(secret_is_generated(t), t.is_machine(), "{t}");
        }
        assert_eq!(PasswordState::Expired.as_str(), "expired");
    }
}
