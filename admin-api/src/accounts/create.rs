//! `POST /institutions/{code}/accounts`: creates an account; the initial password is returned
//! once and never again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service::accounts::NewAccountInput;
use utoipa::ToSchema;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::wire::{
    AccountView, SecondFactorBody, instant, parse_account_type, parse_date, parse_institution,
    parse_optional_date,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    #[schema(example = "general")]
    pub account_type: String,
    #[schema(example = "staff01")]
    pub user_id: String,
    #[schema(example = "関守　花子")]
    pub name: String,
    #[schema(example = "セキモリ ハナコ")]
    pub name_kana: String,
    #[schema(format = Date, example = "2026-04-01")]
    pub usage_start: String,
    /// Defaults to 9999-12-31.
    #[schema(format = Date)]
    pub usage_end: Option<String>,
    pub second_factor: Option<SecondFactorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccount {
    pub account: AccountView,
    /// Shown only in this response.
    pub initial_password: String,
    /// When the initial password lapses (30 days for people; `null` for machine accounts).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/institutions/{code}/accounts",
    tag = "accounts",
    params(("code" = String, Path, description = "Institution code (0000000000 for operators)")),
    request_body = CreateAccountRequest,
    responses(
        (status = 201, body = CreatedAccount),
        (status = 400, description = "The body is not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<CreateAccountRequest>,
) -> ApiResult<(StatusCode, Json<CreatedAccount>)> {
    let institution = parse_institution(&code)?;
    let input = NewAccountInput {
        account_type: parse_account_type("account_type", &body.account_type)?,
        user_id: body.user_id,
        name: body.name,
        name_kana: body.name_kana,
        usage_start: parse_date("usage_start", &body.usage_start)?,
        usage_end: parse_optional_date("usage_end", body.usage_end.as_deref())?,
        second_factor: body
            .second_factor
            .map(SecondFactorBody::parse)
            .transpose()?,
    };
    let issued = state
        .admin
        .create_account(&actor, &institution, input)
        .await?;
    let now = state.admin.clock.now();
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccount {
            account: AccountView::new(&issued.account, now),
            initial_password: issued.initial_password,
            expires_at: issued.expires_at.map(instant),
        }),
    ))
}
