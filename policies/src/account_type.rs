//! The account types of SPEC §2, as one exhaustive enum.

use serde::{Deserialize, Serialize};

/// Every kind of account Sekimori knows. Logic matches on this enum; strings exist only at the
/// edges (`as_str` / `FromStr`), and their spelling is part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    Operator,
    Master,
    MasterReset,
    Manager,
    General,
    ClinicalViewer,
    WebApi,
    LinkedApp,
    CardReader,
}

impl AccountType {
    pub const ALL: [AccountType; 9] = [
        AccountType::Operator,
        AccountType::Master,
        AccountType::MasterReset,
        AccountType::Manager,
        AccountType::General,
        AccountType::ClinicalViewer,
        AccountType::WebApi,
        AccountType::LinkedApp,
        AccountType::CardReader,
    ];

    /// The canonical identifier used in the API, tokens and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountType::Operator => "operator",
            AccountType::Master => "master",
            AccountType::MasterReset => "master_reset",
            AccountType::Manager => "manager",
            AccountType::General => "general",
            AccountType::ClinicalViewer => "clinical_viewer",
            AccountType::WebApi => "web_api",
            AccountType::LinkedApp => "linked_app",
            AccountType::CardReader => "card_reader",
        }
    }

    /// Whether a person signs in with this account (as opposed to a machine).
    pub const fn is_human(self) -> bool {
        !self.is_machine()
    }

    pub const fn is_machine(self) -> bool {
        matches!(
            self,
            AccountType::WebApi | AccountType::LinkedApp | AccountType::CardReader
        )
    }

    /// Whether an initial password of this type expires (30 days for humans, never for machines).
    pub const fn initial_password_expires(self) -> bool {
        self.is_human()
    }

    /// The seed's name of the type (SPEC §2 table, seed 002 §2-1(1)), for pages, notices and audit
    /// exports.
    pub const fn label_ja(self) -> &'static str {
        match self {
            AccountType::Operator => "運用事業者",
            AccountType::Master => "マスタアカウント",
            AccountType::MasterReset => "マスタアカウントリセット用アカウント",
            AccountType::Manager => "管理アカウント",
            AccountType::General => "一般アカウント",
            AccountType::ClinicalViewer => "医療情報閲覧アカウント",
            AccountType::WebApi => "WebAPI用アカウント",
            AccountType::LinkedApp => "連携アプリ用アカウント",
            AccountType::CardReader => "顔認証用アカウント",
        }
    }

    /// The 権限区分 label that the seed's screens and bulk CSV use (002 §2-4, §2-6). Only the
    /// types an institution registers itself have one.
    pub const fn csv_label_ja(self) -> Option<&'static str> {
        match self {
            AccountType::Manager => Some("管理者"),
            AccountType::General => Some("一般利用者"),
            AccountType::ClinicalViewer => Some("医療情報閲覧"),
            AccountType::WebApi => Some("WebAPI用"),
            AccountType::LinkedApp => Some("連携アプリケーション用"),
            AccountType::CardReader => Some("顔認証付きカードリーダー用"),
            AccountType::Operator | AccountType::Master | AccountType::MasterReset => None,
        }
    }

    /// Parses a type as written in a bulk CSV cell: the canonical identifier, the 権限区分 label
    /// (管理者, 一般利用者, 医療情報閲覧, WebAPI用, 連携アプリケーション用, 顔認証付きカードリーダー用) or
    /// the type's seed name (e.g. 連携アプリ用アカウント). Surrounding whitespace and the spaces the
    /// seed's screens put inside labels (`WebAPI 用`) are ignored.
    pub fn parse_label(raw: &str) -> Result<Self, UnknownAccountType> {
        let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(t) = compact.parse::<AccountType>() {
            return Ok(t);
        }
        let short = |t: AccountType| t.label_ja().trim_end_matches("アカウント");
        AccountType::ALL
            .into_iter()
            .find(|t| {
                t.csv_label_ja() == Some(compact.as_str())
                    || t.label_ja() == compact
                    || (t.is_machine() && short(*t) == compact)
            })
            .ok_or_else(|| UnknownAccountType(raw.chars().take(64).collect()))
    }
}

impl std::fmt::Display for AccountType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown account type {0:?}; expected one of operator, master, master_reset, manager, general, clinical_viewer, web_api, linked_app, card_reader"
)]
pub struct UnknownAccountType(pub String);

impl std::str::FromStr for AccountType {
    type Err = UnknownAccountType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownAccountType(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row: what a bulk CSV cell parses to.
    fn check(raw: &str, expected: Option<AccountType>) {
        assert_eq!(AccountType::parse_label(raw).ok(), expected, "{raw:?}");
    }

    #[test]
    fn csv_labels() {
        use AccountType::*;
        let rows: &[(&str, Option<AccountType>)] = &[
            // 002 §2-6 権限区分: 管理者、一般利用者、医療情報閲覧、WebAPI 用、連携アプリケーション用、
            // 顔認証付きカードリーダー用.
            ("管理者", Some(Manager)),
            ("一般利用者", Some(General)),
            ("医療情報閲覧", Some(ClinicalViewer)),
            ("WebAPI 用", Some(WebApi)),
            ("WebAPI用", Some(WebApi)),
            ("連携アプリケーション用", Some(LinkedApp)),
            ("顔認証付きカードリーダー用", Some(CardReader)),
            // 002 §2-1(1) names of the types.
            ("連携アプリ用", Some(LinkedApp)),
            ("顔認証用アカウント", Some(CardReader)),
            ("一般アカウント", Some(General)),
            // SPEC §2 identifiers.
            ("clinical_viewer", Some(ClinicalViewer)),
            (" web_api ", Some(WebApi)),
            ("WEB_API", None),
            ("", None),
            ("管理", None),
        ];
        for (raw, expected) in rows {
            check(raw, *expected);
        }
    }

    #[test]
    fn identifiers_round_trip() {
        for t in AccountType::ALL {
            assert_eq!(t.as_str().parse::<AccountType>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).expect("json"), format!("\"{t}\""));
            assert_eq!(AccountType::parse_label(t.label_ja()), Ok(t));
        }
        // SPEC §2: web_api, linked_app, card_reader are machines whose passwords never expire.
        let machines: Vec<_> = AccountType::ALL
            .into_iter()
            .filter(|t| t.is_machine())
            .collect();
        assert_eq!(
            machines,
            [
                AccountType::WebApi,
                AccountType::LinkedApp,
                AccountType::CardReader
            ]
        );
        assert!(
            AccountType::ALL
                .iter()
                .all(|t| t.initial_password_expires() == t.is_human())
        );
    }
}
