//! `GET /institutions/{code}/bulk-registrations`: the caller's newest three jobs (seed 002 §2-5).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::BulkJobView;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::parse_institution;

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkJobList {
    /// Newest first, at most three.
    pub items: Vec<BulkJobView>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/institutions/{code}/bulk-registrations",
    tag = "bulk-registrations",
    params(("code" = String, Path, description = "Institution code")),
    responses(
        (status = 200, body = BulkJobList),
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
) -> ApiResult<Json<BulkJobList>> {
    let institution = parse_institution(&code)?;
    let jobs = state.bulk.list(&actor, &institution).await?;
    Ok(Json(BulkJobList {
        items: jobs.iter().map(BulkJobView::new).collect(),
    }))
}
