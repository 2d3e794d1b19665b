//! `POST /institutions`: an institution with its `master` and `master_reset` accounts, whose
//! initial passwords are returned once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service::provisioning::NewInstitutionInput;
use utoipa::ToSchema;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::wire::{InstitutionView, parse_optional_date};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstitutionRequest {
    /// 10 digits: prefecture, score table (1, 3, 4, 6), institution number.
    #[schema(example = "1312345678")]
    pub code: String,
    #[schema(example = "関守クリニック")]
    pub name: String,
    #[schema(example = "mst01")]
    pub master_id: String,
    #[schema(example = "rst01")]
    pub master_reset_id: String,
    /// Defaults to today in Asia/Tokyo.
    #[schema(format = Date)]
    pub usage_start: Option<String>,
}

/// A user ID with its initial password, shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCredential {
    pub user_id: String,
    pub initial_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInstitution {
    pub code: String,
    pub institution: InstitutionView,
    pub master: IssuedCredential,
    pub master_reset: IssuedCredential,
}

#[utoipa::path(
    post,
    path = "/admin/v1/institutions",
    tag = "institutions",
    request_body = CreateInstitutionRequest,
    responses(
        (status = 201, body = CreatedInstitution),
        (status = 400, description = "The body is not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<CreateInstitutionRequest>,
) -> ApiResult<(StatusCode, Json<CreatedInstitution>)> {
    let usage_start = parse_optional_date("usage_start", body.usage_start.as_deref())?;
    let created = state
        .admin
        .create_institution(
            &state.provisioner,
            &actor,
            NewInstitutionInput {
                code: &body.code,
                name: &body.name,
                master_id: &body.master_id,
                master_reset_id: &body.master_reset_id,
                usage_start,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInstitution {
            code: created.institution.code.as_str().to_owned(),
            institution: InstitutionView::new(&created.institution),
            master: IssuedCredential {
                user_id: created.master.user_id,
                initial_password: created.master.initial_password,
            },
            master_reset: IssuedCredential {
                user_id: created.master_reset.user_id,
                initial_password: created.master_reset.initial_password,
            },
        }),
    ))
}
