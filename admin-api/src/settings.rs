//! `PUT /institutions/{code}/settings`: the institution's security settings (second factor
//! everywhere, login hours, lockout threshold within 3-10). A change ends every session and
//! refresh token of the institution: everyone signs in again (SPEC §6).

use axum::Json;
use axum::extract::State;
use policies::usage::LoginHours;
use store::InstitutionSettings;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::wire::{InstitutionView, SettingsView, parse_institution};

#[utoipa::path(
    put,
    path = "/admin/v1/institutions/{code}/settings",
    tag = "institutions",
    params(("code" = String, Path)),
    request_body = SettingsView,
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
    ApiJson(body): ApiJson<SettingsView>,
) -> ApiResult<Json<InstitutionView>> {
    let code = parse_institution(&code)?;
    let login_hours = body
        .login_hours
        .map(|h| {
            // The policies type validates times, weekdays and that the window is not empty.
            serde_json::to_value(&h)
                .and_then(serde_json::from_value::<LoginHours>)
                .map_err(|e| {
                    ApiError::Validation(vec![FieldError::new(
                        "login_hours",
                        "login_hours.format",
                        format!(
                            "ログイン可能時間帯が正しくありません（HH:MM、曜日は mon～sun）: {e}"
                        ),
                        format!("The login hours are not valid (HH:MM, weekdays mon-sun): {e}"),
                    )])
                })
        })
        .transpose()?;
    let settings = InstitutionSettings {
        second_factor_everywhere: body.second_factor_everywhere,
        lockout_threshold: body.lockout_threshold,
        login_hours,
    };
    let institution = state.admin.set_settings(&actor, &code, settings).await?;
    Ok(Json(InstitutionView::new(&institution)))
}
