//! `POST …/accounts/{user_id}/lock` and `…/unlock`. Locking ends the account's sessions and
//! tokens; unlocking clears either kind of lock and the failure count.

use axum::Json;
use axum::extract::State;

use super::AccountPath;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::{AccountView, parse_institution};

#[utoipa::path(
    post,
    path = "/admin/v1/institutions/{code}/accounts/{user_id}/lock",
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
pub async fn lock(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(path): ApiPath<AccountPath>,
) -> ApiResult<Json<AccountView>> {
    let institution = parse_institution(&path.code)?;
    let account = state
        .admin
        .lock_account(&actor, &institution, &path.user_id)
        .await?;
    Ok(Json(AccountView::new(&account, state.admin.clock.now())))
}

#[utoipa::path(
    post,
    path = "/admin/v1/institutions/{code}/accounts/{user_id}/unlock",
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
pub async fn unlock(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(path): ApiPath<AccountPath>,
) -> ApiResult<Json<AccountView>> {
    let institution = parse_institution(&path.code)?;
    let account = state
        .admin
        .unlock_account(&actor, &institution, &path.user_id)
        .await?;
    Ok(Json(AccountView::new(&account, state.admin.clock.now())))
}
