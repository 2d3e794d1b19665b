//! `GET /institutions/{code}/bulk-registrations/{reception_number}`: one of the caller's jobs.

use axum::Json;
use axum::extract::State;

use super::{BulkJobView, JobPath};
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::parse_institution;

#[utoipa::path(
    get,
    path = "/admin/v1/institutions/{code}/bulk-registrations/{reception_number}",
    tag = "bulk-registrations",
    params(("code" = String, Path), ("reception_number" = String, Path)),
    responses(
        (status = 200, body = BulkJobView),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another account's job", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(path): ApiPath<JobPath>,
) -> ApiResult<Json<BulkJobView>> {
    let institution = parse_institution(&path.code)?;
    let job = state
        .bulk
        .get(&actor, &institution, &path.reception_number)
        .await?;
    Ok(Json(BulkJobView::new(&job)))
}
