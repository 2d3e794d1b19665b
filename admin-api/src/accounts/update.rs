//! `PATCH /institutions/{code}/accounts/{user_id}`: names, enabled state, usage dates and the
//! second factor. `account_type` and `user_id` are immutable: sending them is a 422 naming the
//! field and the rule `field.immutable`. Disabling ends the account's sessions and tokens.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use service::accounts::AccountUpdateInput;
use utoipa::ToSchema;

use super::AccountPath;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::wire::{AccountView, SecondFactorBody, parse_institution, parse_optional_date};

/// Fields that never change after creation [002 §2-1(2)].
const IMMUTABLE: [&str; 3] = ["account_type", "user_id", "institution_code"];

/// Every field is optional; absent fields keep their value. `second_factor: null` removes the
/// registered destination.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountRequest {
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub enabled: Option<bool>,
    #[schema(format = Date)]
    pub usage_start: Option<String>,
    #[schema(format = Date)]
    pub usage_end: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable)]
    pub second_factor: Option<Option<SecondFactorBody>>,
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[utoipa::path(
    patch,
    path = "/admin/v1/institutions/{code}/accounts/{user_id}",
    tag = "accounts",
    params(("code" = String, Path), ("user_id" = String, Path)),
    request_body = UpdateAccountRequest,
    responses(
        (status = 200, body = AccountView),
        (status = 400, description = "The body is not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(path): ApiPath<AccountPath>,
    ApiJson(raw): ApiJson<Value>,
) -> ApiResult<Json<AccountView>> {
    let institution = parse_institution(&path.code)?;
    let immutable: Vec<FieldError> = raw
        .as_object()
        .map(|fields| {
            IMMUTABLE
                .iter()
                .filter(|f| fields.contains_key(**f))
                .map(|f| {
                    FieldError::new(
                        f,
                        "field.immutable",
                        format!("{f} は作成後に変更できません。"),
                        format!("{f} cannot be changed after creation."),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !immutable.is_empty() {
        return Err(ApiError::Validation(immutable));
    }
    let body: UpdateAccountRequest = serde_json::from_value(raw).map_err(|e| {
        ApiError::Validation(vec![FieldError::new(
            "body",
            "body.schema",
            format!("リクエストの内容が正しくありません: {e}"),
            format!("The request body does not match the schema: {e}"),
        )])
    })?;
    let input = AccountUpdateInput {
        name: body.name,
        name_kana: body.name_kana,
        enabled: body.enabled,
        usage_start: parse_optional_date("usage_start", body.usage_start.as_deref())?,
        usage_end: parse_optional_date("usage_end", body.usage_end.as_deref())?,
        second_factor: match body.second_factor {
            None => None,
            Some(None) => Some(None),
            Some(Some(f)) => Some(Some(f.parse()?)),
        },
    };
    let account = state
        .admin
        .update_account(&actor, &institution, &path.user_id, input)
        .await?;
    Ok(Json(AccountView::new(&account, state.admin.clock.now())))
}
