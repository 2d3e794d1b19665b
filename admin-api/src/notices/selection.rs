//! `POST /institutions/{code}/notices` `{"user_ids": [...]}`: one PDF with a page per account,
//! in the order given. All or nothing: if any account cannot be printed, the 409 problem names
//! every such user ID and no account is marked.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::pdf_response;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::wire::parse_institution;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeSelection {
    /// 1-100 user IDs of the institution, each at most once; one page each, in this order.
    pub user_ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/institutions/{code}/notices",
    tag = "notices",
    params(("code" = String, Path)),
    request_body = NoticeSelection,
    responses(
        (status = 200, description = "One PDF, one A4 page per selected account (attachment)",
            content_type = "application/pdf", body = [u8]),
        (status = 400, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Some accounts cannot be printed; `errors` names each; nothing was printed",
            body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty, over 100, or a user ID twice",
            body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<NoticeSelection>,
) -> ApiResult<Response> {
    let institution = parse_institution(&code)?;
    let notice = state
        .notices
        .print_selection(&actor, &institution, &body.user_ids)
        .await?;
    Ok(pdf_response(notice))
}
