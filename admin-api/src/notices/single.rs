//! `GET /institutions/{code}/accounts/{user_id}/notice.pdf`: the notice of one account, which
//! is then marked issued (出力済).

use axum::extract::State;
use axum::response::Response;

use super::pdf_response;
use crate::AdminState;
use crate::accounts::AccountPath;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::parse_institution;

#[utoipa::path(
    get,
    path = "/admin/v1/institutions/{code}/accounts/{user_id}/notice.pdf",
    tag = "notices",
    params(("code" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 200, description = "The ID/password notice, one A4 page (attachment)",
            content_type = "application/pdf", body = [u8]),
        (status = 400, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not on a kept, unexpired initial password (the message says why)",
            body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(path): ApiPath<AccountPath>,
) -> ApiResult<Response> {
    let institution = parse_institution(&path.code)?;
    let notice = state
        .notices
        .print_one(&actor, &institution, &path.user_id)
        .await?;
    Ok(pdf_response(notice))
}
