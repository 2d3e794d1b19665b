//! `GET /institutions/{code}/accounts`: search with every filter of SPEC §12, ordered by user ID
//! (then internal ID) so that pages are stable, among the types the caller may see.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use service::accounts::SearchInput;
use store::PageRequest;
use utoipa::{IntoParams, ToSchema};

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiPath, ApiQuery};
use crate::wire::{AccountView, parse_account_type, parse_institution, parse_optional_date};

/// Default and largest page sizes.
pub const DEFAULT_PER_PAGE: i64 = 20;
pub const MAX_PER_PAGE: i64 = 100;
/// Longest partial name or reading accepted (the fields themselves are at most 20 and 40).
const MAX_NEEDLE_CHARS: usize = 40;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// One account type, e.g. `general`.
    pub account_type: Option<String>,
    /// Exact user ID (case-sensitive).
    pub user_id: Option<String>,
    /// Part of the name, e.g. `佐藤`.
    pub name: Option<String>,
    /// Part of the reading, e.g. `サトウ`.
    pub name_kana: Option<String>,
    /// `true` or `false`.
    pub enabled: Option<String>,
    /// `true`: locked (by failures or by an admin); `false`: not locked.
    pub locked: Option<String>,
    /// Usage start date on or after (YYYY-MM-DD).
    pub usage_start_from: Option<String>,
    /// Usage start date on or before (YYYY-MM-DD).
    pub usage_start_to: Option<String>,
    /// Usage end date on or after (YYYY-MM-DD).
    pub usage_end_from: Option<String>,
    /// Usage end date on or before (YYYY-MM-DD).
    pub usage_end_to: Option<String>,
    /// Page number from 1 (default 1).
    pub page: Option<String>,
    /// Items per page, 1-100 (default 20).
    pub per_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountView>,
    /// How many accounts match in all, counted up to 10,000.
    pub total: i64,
    /// False when more than 10,000 accounts match: `total` is then 10,000 ("10,000 or more").
    pub total_exact: bool,
    pub page: i64,
    pub per_page: i64,
}

#[utoipa::path(
    get,
    path = "/admin/v1/institutions/{code}/accounts",
    tag = "accounts",
    params(("code" = String, Path), SearchParams),
    responses(
        (status = 200, body = AccountList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(code): ApiPath<String>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Json<AccountList>> {
    let institution = parse_institution(&code)?;
    let page = number(
        "page",
        params.page.as_deref(),
        1,
        1,
        i64::MAX / MAX_PER_PAGE,
    )?;
    let per_page = number(
        "per_page",
        params.per_page.as_deref(),
        DEFAULT_PER_PAGE,
        1,
        MAX_PER_PAGE,
    )?;
    let input = SearchInput {
        account_type: params
            .account_type
            .as_deref()
            .map(|t| parse_account_type("account_type", t))
            .transpose()?,
        user_id: params.user_id,
        name: needle("name", params.name)?,
        name_kana: needle("name_kana", params.name_kana)?,
        enabled: boolean("enabled", params.enabled.as_deref())?,
        locked: boolean("locked", params.locked.as_deref())?,
        usage_start_from: parse_optional_date(
            "usage_start_from",
            params.usage_start_from.as_deref(),
        )?,
        usage_start_to: parse_optional_date("usage_start_to", params.usage_start_to.as_deref())?,
        usage_end_from: parse_optional_date("usage_end_from", params.usage_end_from.as_deref())?,
        usage_end_to: parse_optional_date("usage_end_to", params.usage_end_to.as_deref())?,
    };
    let found = state
        .admin
        .search_accounts(
            &actor,
            &institution,
            input,
            PageRequest {
                offset: (page - 1) * per_page,
                limit: per_page,
            },
        )
        .await?;
    let now = state.admin.clock.now();
    Ok(Json(AccountList {
        items: found
            .items
            .iter()
            .map(|a| AccountView::new(a, now))
            .collect(),
        total: found.total,
        total_exact: found.total_exact,
        page,
        per_page,
    }))
}

fn number(field: &str, raw: Option<&str>, default: i64, min: i64, max: i64) -> ApiResult<i64> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::Validation(vec![FieldError::new(
            field,
            "paging.range",
            format!("{field} は {min}～{max} の整数で指定してください。"),
            format!("{field} must be an integer from {min} to {max}."),
        )])),
    }
}

fn boolean(field: &str, raw: Option<&str>) -> ApiResult<Option<bool>> {
    match raw {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::Validation(vec![FieldError::new(
            field,
            "boolean.format",
            format!("{field} は true または false で指定してください。"),
            format!("{field} must be true or false."),
        )])),
    }
}

/// A partial name: empty means no filter; overly long or control characters are refused.
fn needle(field: &str, raw: Option<String>) -> ApiResult<Option<String>> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if raw.chars().count() > MAX_NEEDLE_CHARS || raw.chars().any(char::is_control) {
        return Err(ApiError::Validation(vec![FieldError::new(
            field,
            "search.needle",
            format!(
                "検索文字列は{MAX_NEEDLE_CHARS}文字以内で、制御文字を含めずに指定してください。"
            ),
            format!(
                "A search text is at most {MAX_NEEDLE_CHARS} characters without control characters."
            ),
        )]));
    }
    Ok(Some(raw))
}
