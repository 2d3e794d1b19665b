//! `POST /institutions/{code}/accounts/{user_id}/password-reset`: a new initial password,
//! returned once; clears a failure lock and ends the account's sessions and tokens.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AccountPath;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::{instant, parse_institution};

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// Shown only in this response.
    pub initial_password: String,
    /// 30 days after issue for people; `null` for machine accounts (no expiry).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/institutions/{code}/accounts/{user_id}/password-reset",
    tag = "accounts",
    params(("code" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 200, body = PasswordReset),
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
) -> ApiResult<Json<PasswordReset>> {
    let institution = parse_institution(&path.code)?;
    let issued = state
        .admin
        .reset_password(&actor, &institution, &path.user_id)
        .await?;
    Ok(Json(PasswordReset {
        initial_password: issued.initial_password,
        expires_at: issued.expires_at.map(instant),
    }))
}
