//! `GET /institutions/{code}/accounts/{user_id}`: one live account the caller may see.

use axum::Json;
use axum::extract::State;

use super::AccountPath;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::{AccountView, parse_institution};

#[utoipa::path(
    get,
    path = "/admin/v1/institutions/{code}/accounts/{user_id}",
    tag = "accounts",
    params(("code" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 200, body = AccountView),
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
) -> ApiResult<Json<AccountView>> {
    let institution = parse_institution(&path.code)?;
    let account = state
        .admin
        .get_account(&actor, &institution, &path.user_id)
        .await?;
    Ok(Json(AccountView::new(&account, state.admin.clock.now())))
}
