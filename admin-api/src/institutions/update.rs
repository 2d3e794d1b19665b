//! `PATCH /institutions/{code}`: the name and the usage start date. The code (and so the kind)
//! is immutable.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::wire::{InstitutionView, parse_institution, parse_optional_date};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstitutionRequest {
    pub name: Option<String>,
    #[schema(format = Date)]
    pub usage_start: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/admin/v1/institutions/{code}",
    tag = "institutions",
    params(("code" = String, Path)),
    request_body = UpdateInstitutionRequest,
    responses(
        (status = 200, body = InstitutionView),
        (status = 400, description = "The body is not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
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
    ApiJson(body): ApiJson<UpdateInstitutionRequest>,
) -> ApiResult<Json<InstitutionView>> {
    let code = parse_institution(&code)?;
    let usage_start = parse_optional_date("usage_start", body.usage_start.as_deref())?;
    let institution = state
        .admin
        .update_institution(&actor, &code, body.name.as_deref(), usage_start)
        .await?;
    Ok(Json(InstitutionView::new(&institution)))
}
