//! `GET /institutions/{code}`.

use axum::Json;
use axum::extract::State;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::{InstitutionView, parse_institution};

#[utoipa::path(
    get,
    path = "/admin/v1/institutions/{code}",
    tag = "institutions",
    params(("code" = String, Path)),
    responses(
        (status = 200, body = InstitutionView),
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
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<InstitutionView>> {
    let code = parse_institution(&code)?;
    let institution = state.admin.get_institution(&actor, &code).await?;
    Ok(Json(InstitutionView::new(&institution)))
}
