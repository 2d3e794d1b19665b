//! `DELETE /institutions/{code}/accounts/{user_id}`: soft delete. The user ID stays reserved
//! forever; the account's sessions and tokens end at once.

use axum::extract::State;
use axum::http::StatusCode;

use super::AccountPath;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::parse_institution;

#[utoipa::path(
    delete,
    path = "/admin/v1/institutions/{code}/accounts/{user_id}",
    tag = "accounts",
    params(("code" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
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
) -> ApiResult<StatusCode> {
    let institution = parse_institution(&path.code)?;
    state
        .admin
        .delete_account(&actor, &institution, &path.user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
