//! User IDs (SPEC §3, seed 002 §2-2 and §2-6): half-width alphanumerics, 2-8 characters for people
//! and 3-8 for machines, with the machine prefixes `A0`/`A1`, `R0`/`R1`, `F0` and the prefixes
//! that human IDs may not use.
//!
//! Uniqueness within the institution and the rule that a deleted ID stays reserved forever are the
//! store's; this module owns the shape of one ID.

use serde::Serialize;

use crate::{AccountType, InstitutionKind, Violation};

/// The shortest and longest user IDs of any type.
pub const MIN_LEN_HUMAN: usize = 2;
pub const MIN_LEN_MACHINE: usize = 3;
pub const MAX_LEN: usize = 8;

/// A user ID that satisfied the rules of its account type at creation. Case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Parses the ID of a new account of `account_type` in an institution of `kind`, returning
    /// every rule that failed.
    pub fn parse(
        raw: &str,
        account_type: AccountType,
        kind: InstitutionKind,
    ) -> Result<UserId, Vec<Violation>> {
        let mut violations = Vec::new();
        if (account_type == AccountType::Operator) != (kind == InstitutionKind::Platform) {
            violations.push(Violation::new(
                "user_id.institution",
                format!(
                    "{}は{}に登録できません。",
                    account_type.label_ja(),
                    if kind == InstitutionKind::Platform {
                        "運用事業者"
                    } else {
                        "医療機関等"
                    }
                ),
                format!(
                    "A {account_type} account cannot belong to {}.",
                    if kind == InstitutionKind::Platform {
                        "the platform operator"
                    } else {
                        "an institution"
                    }
                ),
            ));
        }
        check_shape(raw, min_len(account_type), &mut violations);
        check_prefix(raw, account_type, kind, &mut violations);
        if violations.is_empty() {
            Ok(UserId(raw.to_owned()))
        } else {
            Err(violations)
        }
    }

    /// Parses an ID whose account type is not known yet: the login page, the `client_id` of a
    /// machine account and rows read back from the store. Only the rules common to every type
    /// apply (half-width alphanumerics, 2-8 characters).
    pub fn parse_for_login(raw: &str) -> Result<UserId, Vec<Violation>> {
        let mut violations = Vec::new();
        check_shape(raw, MIN_LEN_HUMAN, &mut violations);
        if violations.is_empty() {
            Ok(UserId(raw.to_owned()))
        } else {
            Err(violations)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The minimum length for a type: 3 for machine accounts, 2 for everyone else [002 §2-2].
pub const fn min_len(account_type: AccountType) -> usize {
    if account_type.is_machine() {
        MIN_LEN_MACHINE
    } else {
        MIN_LEN_HUMAN
    }
}

/// The prefix a machine account's ID must start with in an institution of `kind` [002 §2-2], or
/// `None` for human accounts (and for a machine account in the platform, which cannot exist).
pub const fn required_prefix(
    account_type: AccountType,
    kind: InstitutionKind,
) -> Option<&'static str> {
    let pharmacy = matches!(kind, InstitutionKind::Pharmacy);
    match (account_type, kind) {
        (_, InstitutionKind::Platform) => None,
        (AccountType::WebApi, _) => Some(if pharmacy { "A1" } else { "A0" }),
        (AccountType::LinkedApp, _) => Some(if pharmacy { "R1" } else { "R0" }),
        (AccountType::CardReader, _) => Some("F0"),
        (
            AccountType::Operator
            | AccountType::Master
            | AccountType::MasterReset
            | AccountType::Manager
            | AccountType::General
            | AccountType::ClinicalViewer,
            _,
        ) => None,
    }
}

/// Whether `raw` starts with a prefix reserved for machine accounts: `A0`-`A9`, `R0`-`R9`,
/// `F0`-`F9` [002 §2-2]. The comparison is exact (IDs are case-sensitive), so `a0…` is not reserved.
pub fn has_reserved_prefix(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() >= 2 && matches!(b[0], b'A' | b'R' | b'F') && b[1].is_ascii_digit()
}

fn check_shape(raw: &str, min: usize, violations: &mut Vec<Violation>) {
    let len = raw.chars().count();
    if !(min..=MAX_LEN).contains(&len) {
        violations.push(Violation::new(
            "user_id.length",
            format!(
                "ユーザIDは{min}文字以上{MAX_LEN}文字以下で入力してください（入力: {len}文字）。"
            ),
            format!("The user ID must be {min} to {MAX_LEN} characters long (got {len})."),
        ));
    }
    if raw.chars().any(is_full_width) {
        violations.push(Violation::new(
            "user_id.full_width",
            "ユーザIDに全角文字は使用できません。半角英数字で入力してください。",
            "The user ID must not contain full-width characters; use half-width letters and digits.",
        ));
    }
    if raw
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !is_full_width(c))
    {
        violations.push(Violation::new(
            "user_id.characters",
            "ユーザIDに使用できる文字は半角英数字（a-z、A-Z、0-9）のみです。",
            "The user ID may contain only half-width letters and digits (a-z, A-Z, 0-9).",
        ));
    }
}

fn check_prefix(
    raw: &str,
    account_type: AccountType,
    kind: InstitutionKind,
    violations: &mut Vec<Violation>,
) {
    if let Some(prefix) = required_prefix(account_type, kind) {
        if !raw.starts_with(prefix) {
            violations.push(Violation::new(
                "user_id.prefix_required",
                format!(
                    "{}のユーザIDは「{prefix}」で始めてください。",
                    account_type.label_ja()
                ),
                format!("The user ID of a {account_type} account must start with \"{prefix}\"."),
            ));
        }
    } else if account_type.is_human() && has_reserved_prefix(raw) {
        violations.push(Violation::new(
            "user_id.prefix_forbidden",
            "A0～A9、R0～R9、F0～F9で始まるユーザIDはシステム用アカウント専用のため使用できません。",
            "User IDs starting with A0-A9, R0-R9 or F0-F9 are reserved for machine accounts.",
        ));
    }
}

/// Full-width forms (U+FF01-U+FF60, U+FFE0-U+FFE6), the ideographic space and the CJK and kana
/// blocks: what a person typing with a Japanese IME left on produces.
fn is_full_width(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{303F}'
        | '\u{3040}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF01}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountType::*;
    use InstitutionKind::*;

    /// One row: the rules `raw` fails for this type and institution kind (empty = accepted).
    fn check(raw: &str, account_type: AccountType, kind: InstitutionKind, expected: &[&str]) {
        let got: Vec<&str> = match UserId::parse(raw, account_type, kind) {
            Ok(id) => {
                assert_eq!(id.as_str(), raw);
                vec![]
            }
            Err(v) => v.iter().map(|v| v.rule).collect(),
        };
        assert_eq!(got, expected, "{raw:?} as {account_type} in {kind}");
    }

    #[test]
    fn seed_rules() {
        let rows: &[(&str, AccountType, InstitutionKind, &[&str])] = &[
            // 002 §2-2 設定例: "staff01" for 一般利用者 / 医療情報閲覧.
            ("staff01", General, Medical, &[]),
            ("staff01", ClinicalViewer, Pharmacy, &[]),
            // 002 §2-2 設定例: WebAPI "A0123" (医科・歯科・訪看), "A1234" (薬局).
            ("A0123", WebApi, Medical, &[]),
            ("A0123", WebApi, Dental, &[]),
            ("A0123", WebApi, HomeNursing, &[]),
            ("A1234", WebApi, Pharmacy, &[]),
            ("A1234", WebApi, Medical, &["user_id.prefix_required"]),
            ("A0123", WebApi, Pharmacy, &["user_id.prefix_required"]),
            // 002 §2-2 設定例: 連携アプリ "R0123" / "R1234".
            ("R0123", LinkedApp, Dental, &[]),
            ("R1234", LinkedApp, Pharmacy, &[]),
            (
                "R1234",
                LinkedApp,
                HomeNursing,
                &["user_id.prefix_required"],
            ),
            ("A0123", LinkedApp, Medical, &["user_id.prefix_required"]),
            // 002 §2-2 設定例: 顔認証 "F0123", whatever the kind.
            ("F0123", CardReader, Medical, &[]),
            ("F0123", CardReader, Pharmacy, &[]),
            ("F1123", CardReader, Pharmacy, &["user_id.prefix_required"]),
            // 002 §2-2: human IDs must not start with R0-R9, A0-A9, F0-F9.
            ("A0123", General, Medical, &["user_id.prefix_forbidden"]),
            (
                "A9xy",
                ClinicalViewer,
                Medical,
                &["user_id.prefix_forbidden"],
            ),
            ("R5abc", General, Pharmacy, &["user_id.prefix_forbidden"]),
            ("F0123", Manager, Medical, &["user_id.prefix_forbidden"]),
            ("F9", Master, Dental, &["user_id.prefix_forbidden"]),
            ("AB12", General, Medical, &[]),
            ("Fx01", General, Medical, &[]),
            // Decision: IDs are case-sensitive, so a lower-case "a0" is not a reserved prefix.
            ("a0123", General, Medical, &[]),
            // 002 §2-2: 2-8 characters for people.
            ("a", General, Medical, &["user_id.length"]),
            ("ab", General, Medical, &[]),
            ("abcdefgh", General, Medical, &[]),
            ("abcdefghi", General, Medical, &["user_id.length"]),
            // 002 改訂履歴 1.10 / §2-2: 3-8 characters for system accounts.
            ("A01", WebApi, Medical, &[]),
            ("A0", WebApi, Medical, &["user_id.length"]),
            ("A0123456", WebApi, Medical, &[]),
            ("A01234567", WebApi, Medical, &["user_id.length"]),
            // 002 §2-6 search screen: "01234567", "12312312", "12345678", "123" are user IDs.
            ("01234567", General, Medical, &[]),
            ("12312312", General, Medical, &[]),
            ("12345678", General, Medical, &[]),
            ("123", General, Medical, &[]),
            // 002 §2-6 screenshot shows "seino0123" (9 characters); the 2-8 rule refuses it.
            ("seino0123", General, Medical, &["user_id.length"]),
            // 000 §2: "MA000000", "USER0001" are 8 half-width alphanumerics.
            ("MA000000", Operator, Platform, &[]),
            ("USER0001", General, Medical, &[]),
            // 002 §2-2 使用できる文字：半角英数字 — full-width and other characters refused.
            ("ｓｔａｆｆ", General, Medical, &["user_id.full_width"]),
            ("スタッフ", General, Medical, &["user_id.full_width"]),
            ("staff_01", General, Medical, &["user_id.characters"]),
            ("staff 1", General, Medical, &["user_id.characters"]),
            ("ab😀", General, Medical, &["user_id.characters"]),
            ("", General, Medical, &["user_id.length"]),
            (
                "Ａ0123",
                WebApi,
                Medical,
                &["user_id.full_width", "user_id.prefix_required"],
            ),
            // SPEC §3: master / master_reset IDs follow the human rules.
            ("master01", Master, Medical, &[]),
            ("reset01", MasterReset, Pharmacy, &[]),
            // SPEC §2: operators live in the platform pseudo-institution, nobody else does.
            ("ops01", Operator, Medical, &["user_id.institution"]),
            ("A0123", WebApi, Platform, &["user_id.institution"]),
        ];
        for (raw, account_type, kind, expected) in rows {
            check(raw, *account_type, *kind, expected);
        }
    }

    #[test]
    fn login_form_accepts_any_type_shape() {
        assert!(UserId::parse_for_login("A0123").is_ok());
        assert!(UserId::parse_for_login("staff01").is_ok());
        assert!(UserId::parse_for_login("s").is_err());
        assert!(UserId::parse_for_login("ｓｔａｆｆ").is_err());
    }

    #[test]
    fn serializes_as_a_string() {
        let id = UserId::parse("staff01", General, Medical).expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"staff01\"");
        assert_eq!(id.to_string(), "staff01");
    }
}
