//! ID/password notices (ID・パスワード発行通知書, SPEC §5, §9 [000 §5]): which accounts may have
//! one printed, and what a selection for one combined PDF may look like.
//!
//! [000 §5] lets the seed's screen tick an account for the bulk notice only "未発行または発行済
//! （初期パスワードの状態）": whether printed before or not, as long as the account is still on its
//! initial password. SPEC §9 adds "unexpired". Printing again is allowed (a lost sheet), so the
//! 出力済 mark does not block a second print. Who may print is `permissions::can_issue_notice`.

use time::{Duration, OffsetDateTime};

use crate::credential::{PasswordState, password_state};
use crate::usage::JST;
use crate::{AccountType, Violation};

/// At most this many accounts in one combined notice PDF. An admin search page holds at most
/// 100 accounts (`per_page` 1-100), so a whole page of results prints at once; a larger batch
/// is split by the caller. It bounds the rendering work and the size of one response.
pub const MAX_SELECTION: usize = 100;

/// Why no notice can be printed for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeRefusal {
    /// The holder already replaced the initial password: it is gone for good.
    PasswordChanged,
    /// The initial password lapsed at this instant; a superior must reset it first.
    PasswordExpired { expired_at: OffsetDateTime },
    /// On an initial password, but no sealed copy is kept (e.g. a bootstrap account created
    /// before notices existed); only a reset issues a printable one.
    NotKept,
    /// The selection names a user ID with no live account in the institution.
    UnknownAccount,
}

impl NoticeRefusal {
    pub const fn rule(self) -> &'static str {
        match self {
            NoticeRefusal::PasswordChanged => "notice.password_changed",
            NoticeRefusal::PasswordExpired { .. } => "notice.password_expired",
            NoticeRefusal::NotKept => "notice.not_kept",
            NoticeRefusal::UnknownAccount => "notice.unknown_account",
        }
    }

    /// The refusal in both languages, for the problem document.
    pub fn violation(self) -> Violation {
        match self {
            NoticeRefusal::PasswordChanged => Violation::new(
                self.rule(),
                "初期パスワードは既に変更されているため、ID・パスワード発行通知書を出力できません。\
                 通知書が必要な場合はパスワードを初期化してください。",
                "The initial password has already been changed, so no ID/password notice can be \
                 printed; reset the password to issue a new one.",
            ),
            NoticeRefusal::PasswordExpired { expired_at } => {
                let at = expired_at.to_offset(JST);
                let shown = format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}",
                    at.year(),
                    u8::from(at.month()),
                    at.day(),
                    at.hour(),
                    at.minute()
                );
                Violation::new(
                    self.rule(),
                    format!(
                        "初期パスワードの有効期限（{shown} JST）が過ぎているため、ID・パスワード発行\
                         通知書を出力できません。パスワードを初期化してください。"
                    ),
                    format!(
                        "The initial password expired at {shown} JST, so no ID/password notice \
                         can be printed; reset the password first."
                    ),
                )
            }
            NoticeRefusal::NotKept => Violation::new(
                self.rule(),
                "この初期パスワードは保管されていないため、ID・パスワード発行通知書を出力できません。\
                 パスワードを初期化してください。",
                "This initial password is not kept, so no ID/password notice can be printed; \
                 reset the password to issue a printable one.",
            ),
            NoticeRefusal::UnknownAccount => Violation::new(
                self.rule(),
                "指定されたユーザIDのアカウントはこの医療機関等に存在しません（削除済みを含む）。",
                "No account with this user ID exists in this institution (or it was deleted).",
            ),
        }
    }
}

/// Whether a notice may be printed at `now` for an account of `account_type` whose initial
/// password was issued at `initial_issued_at` (`None`: the holder changed it) and whose sealed
/// copy is kept (`sealed_kept`). Expiry follows [`password_state`] with the 30-day validity:
/// machine accounts' initial passwords never expire.
pub fn notice_printable(
    account_type: AccountType,
    initial_issued_at: Option<OffsetDateTime>,
    sealed_kept: bool,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<(), NoticeRefusal> {
    match password_state(account_type, initial_issued_at, now, validity) {
        PasswordState::Changed => Err(NoticeRefusal::PasswordChanged),
        PasswordState::Expired => Err(NoticeRefusal::PasswordExpired {
            // `Expired` implies an issue instant and a representable expiry.
            expired_at: initial_issued_at
                .and_then(|at| at.checked_add(validity))
                .unwrap_or(now),
        }),
        PasswordState::Initial if !sealed_kept => Err(NoticeRefusal::NotKept),
        PasswordState::Initial => Ok(()),
    }
}

/// Checks the user IDs of a combined notice request: at least one, at most [`MAX_SELECTION`],
/// and no user ID twice. Decision: duplicates are refused, not merged, so that the PDF always
/// has exactly one page per requested entry and a client bug is seen rather than hidden.
pub fn check_selection(user_ids: &[String]) -> Vec<Violation> {
    let mut violations = Vec::new();
    if user_ids.is_empty() {
        violations.push(Violation::new(
            "notice.selection_empty",
            "通知書を出力するアカウントのユーザIDを1件以上指定してください。",
            "Name at least one user ID to print notices for.",
        ));
    }
    if user_ids.len() > MAX_SELECTION {
        violations.push(Violation::new(
            "notice.selection_too_large",
            format!(
                "一度に出力できる通知書は{MAX_SELECTION}件までです（指定: {}件）。分けて出力してください。",
                user_ids.len()
            ),
            format!(
                "At most {MAX_SELECTION} notices can be printed at once ({} requested); split the \
                 selection.",
                user_ids.len()
            ),
        ));
    }
    let mut duplicates: Vec<&str> = Vec::new();
    for (i, id) in user_ids.iter().enumerate() {
        if user_ids[..i].contains(id) && !duplicates.contains(&id.as_str()) {
            duplicates.push(id);
        }
    }
    if !duplicates.is_empty() {
        // Printed IDs are bounded and stripped of control characters: they come from the request.
        let shown: Vec<String> = duplicates
            .iter()
            .take(10)
            .map(|id| id.chars().filter(|c| !c.is_control()).take(32).collect())
            .collect();
        let shown = shown.join(", ");
        violations.push(Violation::new(
            "notice.selection_duplicate",
            format!("同じユーザIDが複数回指定されています: {shown}"),
            format!("These user IDs are named more than once: {shown}"),
        ));
    }
    violations
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::credential::INITIAL_PASSWORD_VALIDITY;

    #[test]
    fn printable_only_on_a_kept_unexpired_initial_password() {
        let issued = datetime!(2026-04-01 10:00 +9);
        let expiry = issued + Duration::days(30);
        // (type, initial password issued at, sealed copy kept, now, expected)
        type Row = (
            AccountType,
            Option<OffsetDateTime>,
            bool,
            OffsetDateTime,
            Result<(), NoticeRefusal>,
        );
        let rows: &[Row] = &[
            // [000 §5] 未発行または発行済（初期パスワードの状態）: printable, again and again.
            (AccountType::General, Some(issued), true, issued, Ok(())),
            (
                AccountType::Manager,
                Some(issued),
                true,
                expiry - Duration::SECOND,
                Ok(()),
            ),
            // SPEC §9 "only accounts still on an unexpired initial password"; 30 days [002 §2-2].
            (
                AccountType::Manager,
                Some(issued),
                true,
                expiry,
                Err(NoticeRefusal::PasswordExpired { expired_at: expiry }),
            ),
            // Changed by the holder: the initial password no longer exists.
            (
                AccountType::General,
                None,
                false,
                issued,
                Err(NoticeRefusal::PasswordChanged),
            ),
            (
                AccountType::General,
                None,
                true,
                issued,
                Err(NoticeRefusal::PasswordChanged),
            ),
            // Machine accounts' initial passwords never expire [002 §2-1(1)].
            (
                AccountType::WebApi,
                Some(issued),
                true,
                issued + Duration::days(4000),
                Ok(()),
            ),
            // Nothing sealed to print.
            (
                AccountType::Master,
                Some(issued),
                false,
                issued,
                Err(NoticeRefusal::NotKept),
            ),
            // Expiry is decided before the missing copy: the admin must reset either way, and
            // "expired" is the more useful reason.
            (
                AccountType::General,
                Some(issued),
                false,
                expiry,
                Err(NoticeRefusal::PasswordExpired { expired_at: expiry }),
            ),
        ];
        for (account_type, issued_at, kept, now, expected) in rows {
            assert_eq!(
                notice_printable(
                    *account_type,
                    *issued_at,
                    *kept,
                    *now,
                    INITIAL_PASSWORD_VALIDITY
                ),
                *expected,
                "{account_type} {issued_at:?} kept={kept} {now}"
            );
        }
    }

    #[test]
    fn refusals_explain_themselves_in_both_languages() {
        let expired = NoticeRefusal::PasswordExpired {
            expired_at: datetime!(2026-05-01 01:30 UTC),
        }
        .violation();
        assert_eq!(expired.rule, "notice.password_expired");
        assert!(
            expired.message_ja.contains("2026-05-01 10:30 JST"),
            "{expired}"
        );
        assert!(expired.message_en.contains("2026-05-01 10:30 JST"));
        for refusal in [
            NoticeRefusal::PasswordChanged,
            NoticeRefusal::NotKept,
            NoticeRefusal::UnknownAccount,
        ] {
            let v = refusal.violation();
            assert_eq!(v.rule, refusal.rule());
            assert!(!v.message_ja.is_empty() && v.message_en.is_ascii());
        }
    }

    #[test]
    fn selections() {
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let rules = |list: &[String]| {
            check_selection(list)
                .into_iter()
                .map(|v| v.rule)
                .collect::<Vec<_>>()
        };
        assert!(rules(&ids(&["user01"])).is_empty());
        assert!(
            rules(&ids(&["user01", "USER01"])).is_empty(),
            "case-sensitive"
        );
        assert_eq!(rules(&[]), vec!["notice.selection_empty"]);
        let full: Vec<String> = (0..MAX_SELECTION).map(|i| format!("u{i}")).collect();
        assert!(rules(&full).is_empty());
        let over: Vec<String> = (0..=MAX_SELECTION).map(|i| format!("u{i}")).collect();
        assert_eq!(rules(&over), vec!["notice.selection_too_large"]);
        let dup = check_selection(&ids(&["a1", "b2", "a1", "a1", "b2"]));
        assert_eq!(dup.len(), 1);
        assert_eq!(dup[0].rule, "notice.selection_duplicate");
        assert!(dup[0].message_en.ends_with("a1, b2"), "{}", dup[0]);
    }
}
