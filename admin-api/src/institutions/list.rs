//! `GET /institutions`: every institution, by code.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::wire::InstitutionView;

#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionList {
    pub items: Vec<InstitutionView>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/institutions",
    tag = "institutions",
    responses(
        (status = 200, body = InstitutionList),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
) -> ApiResult<Json<InstitutionList>> {
    let all = state.admin.list_institutions(&actor).await?;
    Ok(Json(InstitutionList {
        items: all.iter().map(InstitutionView::new).collect(),
    }))
}
