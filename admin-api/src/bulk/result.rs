//! `GET /institutions/{code}/bulk-registrations/{reception_number}/result.csv`: the result file,
//! for the submitter only and only for done, done_with_duplicates and failed_validation jobs.
//! UTF-8 with a byte-order mark (Excel then reads it as UTF-8); CRLF line ends. The header is
//! `line`, the upload's columns by their English names, `result`, `errors`, `initial_password`;
//! errors are in Japanese, or English when `Accept-Language` prefers English.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::JobPath;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::parse_institution;

#[utoipa::path(
    get,
    path = "/admin/v1/institutions/{code}/bulk-registrations/{reception_number}/result.csv",
    tag = "bulk-registrations",
    params(("code" = String, Path), ("reception_number" = String, Path)),
    responses(
        (status = 200, description = "The result CSV (UTF-8 with BOM)", content_type = "text/csv", body = String),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another account's job", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has no result (still running, or failed without one)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(path): ApiPath<JobPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let institution = parse_institution(&path.code)?;
    let english = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("en"));
    let text = state
        .bulk
        .result_csv(&actor, &institution, &path.reception_number, english)
        .await?;
    let mut body = Vec::with_capacity(text.len() + 3);
    body.extend_from_slice(b"\xEF\xBB\xBF");
    body.extend_from_slice(text.as_bytes());
    let disposition = format!(
        "attachment; filename=\"bulk-registration-{}.csv\"",
        path.reception_number
    );
    let mut response = body.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response_headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
