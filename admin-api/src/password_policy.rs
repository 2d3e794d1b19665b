//! `POST /password-policy/check`: checks a candidate password against the deployment's policy,
//! listing every failed rule (SPEC §5, §12). Nothing is stored or logged.

use axum::Json;
use axum::extract::State;
use policies::password::PasswordContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiJson;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordCheckRequest {
    pub user_id: String,
    pub password: String,
    pub current_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordCheck {
    pub ok: bool,
    pub violations: Vec<ViolationView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationView {
    pub rule: String,
    pub message_ja: String,
    pub message_en: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/password-policy/check",
    tag = "password-policy",
    request_body = PasswordCheckRequest,
    responses(
        (status = 200, body = PasswordCheck),
        (status = 400, description = "The body is not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(_actor): Authenticated,
    ApiJson(body): ApiJson<PasswordCheckRequest>,
) -> ApiResult<Json<PasswordCheck>> {
    let violations = state.admin.policy.check(
        &body.password,
        &PasswordContext {
            user_id: Some(&body.user_id),
            current_password: body.current_password.as_deref(),
        },
    );
    Ok(Json(PasswordCheck {
        ok: violations.is_empty(),
        violations: violations
            .into_iter()
            .map(|v| ViolationView {
                rule: v.rule.to_owned(),
                message_ja: v.message_ja,
                message_en: v.message_en,
            })
            .collect(),
    }))
}
