//! Wire formats shared by several handlers: the Account and Institution shapes of SPEC §12, and
//! the parsers for dates (`YYYY-MM-DD`) and path parameters. Domain types are never serialized
//! directly.

use policies::credential;
use policies::{AccountType, InstitutionCode};
use serde::{Deserialize, Serialize};
use store::{Account, Institution, SecondFactorMethod};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};

/// An account as the admin API shows it (SPEC §12).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub institution_code: String,
    #[schema(example = "general")]
    pub account_type: String,
    pub user_id: String,
    pub name: String,
    pub name_kana: String,
    pub enabled: bool,
    /// `none`, `failures` (locked by consecutive failures) or `admin` (locked by hand).
    #[schema(example = "none")]
    pub lock: String,
    #[schema(format = Date, example = "2026-04-01")]
    pub usage_start: String,
    #[schema(format = Date, example = "9999-12-31")]
    pub usage_end: String,
    /// `initial`, `changed` or `expired`.
    #[schema(example = "initial")]
    pub password_state: String,
    pub second_factor: Option<SecondFactorView>,
    /// Whether the ID/password notice of the current initial password was printed (出力済).
    pub notice_issued: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_login_at: Option<String>,
}

/// A registered second-factor destination.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorView {
    /// `email`, `sms` or `voice`.
    pub method: String,
    pub email: Option<String>,
    /// E.164, e.g. `+819012345678`.
    pub phone: Option<String>,
    pub verified: bool,
}

impl AccountView {
    pub fn new(account: &Account, now: OffsetDateTime) -> Self {
        let state = credential::password_state(
            account.account_type,
            account.credential.initial_issued_at,
            now,
            credential::INITIAL_PASSWORD_VALIDITY,
        );
        Self {
            institution_code: account.institution_code.as_str().to_owned(),
            account_type: account.account_type.as_str().to_owned(),
            user_id: account.user_id.clone(),
            name: account.name.clone(),
            name_kana: account.name_kana.clone(),
            enabled: account.enabled,
            lock: account.lock.as_str().to_owned(),
            usage_start: date(account.usage_start),
            usage_end: date(account.usage_end),
            password_state: state.as_str().to_owned(),
            second_factor: account.second_factor.as_ref().map(|f| SecondFactorView {
                method: f.method.as_str().to_owned(),
                email: f.email.clone(),
                phone: f.phone.clone(),
                verified: f.verified,
            }),
            notice_issued: account.notice_issued,
            created_at: instant(account.created_at),
            last_login_at: account.last_login_at.map(instant),
        }
    }
}

/// A second-factor destination in a request: `method` is `email`, `sms` or `voice`, with the
/// matching `email` or `phone` (Japanese numbers, any common notation).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorBody {
    #[schema(example = "sms")]
    pub method: String,
    pub email: Option<String>,
    #[schema(example = "090-1234-5678")]
    pub phone: Option<String>,
}

impl SecondFactorBody {
    pub fn parse(self) -> Result<service::accounts::SecondFactorInput, ApiError> {
        let method = SecondFactorMethod::parse(&self.method).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "second_factor.method",
                "second_factor.method",
                "二要素認証の手段は email、sms、voice のいずれかです。",
                "The second-factor method must be email, sms or voice.",
            )])
        })?;
        Ok(service::accounts::SecondFactorInput {
            method,
            email: self.email,
            phone: self.phone,
        })
    }
}

/// An institution as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionView {
    pub code: String,
    pub name: String,
    /// `medical`, `dental`, `pharmacy` or `home_nursing`.
    pub kind: String,
    #[schema(format = Date)]
    pub usage_start: String,
    pub settings: SettingsView,
    /// Increases with every settings change; sessions of older versions have ended.
    pub settings_version: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// An institution's security settings (SPEC §6, §7).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsView {
    /// Require the second factor everywhere, not only outside trusted networks.
    #[serde(default)]
    pub second_factor_everywhere: bool,
    /// Consecutive failures that lock an account (3-10); `null` uses the deployment default.
    #[schema(minimum = 3, maximum = 10)]
    pub lockout_threshold: Option<u32>,
    /// Login hours in Asia/Tokyo; `null` for none.
    pub login_hours: Option<LoginHoursView>,
}

/// `opens` is included, `closes` excluded; `closes` before `opens` crosses midnight.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginHoursView {
    #[schema(example = "09:00")]
    pub opens: String,
    #[schema(example = "22:00")]
    pub closes: String,
    /// Weekdays such as `mon`; every day when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
}

impl InstitutionView {
    pub fn new(institution: &Institution) -> Self {
        let settings = &institution.settings;
        Self {
            code: institution.code.as_str().to_owned(),
            name: institution.name.clone(),
            kind: institution.kind.as_str().to_owned(),
            usage_start: date(institution.usage_start),
            settings: SettingsView {
                second_factor_everywhere: settings.second_factor_everywhere,
                lockout_threshold: settings.lockout_threshold,
                login_hours: settings
                    .login_hours
                    .as_ref()
                    .and_then(|h| serde_json::to_value(h).ok())
                    .and_then(|v| serde_json::from_value(v).ok()),
            },
            settings_version: institution.settings_version,
            created_at: instant(institution.created_at),
        }
    }
}

pub fn date(d: Date) -> String {
    let format = format_description!("[year]-[month]-[day]");
    d.format(&format).unwrap_or_default()
}

pub fn instant(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Parses a `YYYY-MM-DD` date (SPEC §12), naming the field on failure.
pub fn parse_date(field: &str, raw: &str) -> Result<Date, ApiError> {
    let format = format_description!("[year]-[month]-[day]");
    Date::parse(raw, &format).map_err(|_| {
        ApiError::Validation(vec![FieldError::new(
            field,
            "date.format",
            "日付は YYYY-MM-DD 形式の実在する日付で指定してください。",
            "Dates are real calendar dates written YYYY-MM-DD.",
        )])
    })
}

pub fn parse_optional_date(field: &str, raw: Option<&str>) -> Result<Option<Date>, ApiError> {
    raw.map(|r| parse_date(field, r)).transpose()
}

/// Parses an RFC 3339 instant, naming the field on failure.
pub fn parse_instant(field: &str, raw: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
        ApiError::Validation(vec![FieldError::new(
            field,
            "instant.format",
            "日時は RFC 3339 形式（例: 2026-04-01T09:00:00+09:00）で指定してください。",
            "Instants are RFC 3339, e.g. 2026-04-01T09:00:00+09:00.",
        )])
    })
}

/// Parses an account type identifier (`general`, …).
pub fn parse_account_type(field: &str, raw: &str) -> Result<AccountType, ApiError> {
    raw.parse::<AccountType>().map_err(|_| {
        ApiError::Validation(vec![FieldError::new(
            field,
            "account_type.unknown",
            "権限区分が正しくありません（operator, master, master_reset, manager, general, clinical_viewer, web_api, linked_app, card_reader）。",
            "Unknown account type (operator, master, master_reset, manager, general, clinical_viewer, web_api, linked_app, card_reader).",
        )])
    })
}

/// Parses the institution code of a path. The operators' pseudo-institution `0000000000` is
/// accepted: operators are managed under it.
pub fn parse_institution(raw: &str) -> Result<InstitutionCode, ApiError> {
    InstitutionCode::parse_for_login(raw).map_err(|v| ApiError::field("code", &v))
}
