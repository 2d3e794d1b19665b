//! `POST /institutions/{code}/bulk-registrations`: receives the CSV (`text/csv`, the file as
//! the body) and answers 202 with the job. A second upload while the institution's job is
//! queued or running is 409 with `Retry-After: 60`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::BulkJobView;
use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::wire::parse_institution;

/// Media types accepted for the file: `text/csv`, and what browsers on Windows send for a
/// `.csv` file picked in a form.
const CSV_TYPES: [&str; 3] = ["text/csv", "application/csv", "application/vnd.ms-excel"];

#[utoipa::path(
    post,
    path = "/admin/v1/institutions/{code}/bulk-registrations",
    tag = "bulk-registrations",
    params(("code" = String, Path, description = "Institution code")),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "The bulk CSV of SPEC §12: a header row (English names or the Japanese labels), \
            then one account per row. UTF-8 with or without BOM, or Shift_JIS (CP932); CRLF or LF; \
            at most 4 MiB and 10,000 rows."
    ),
    responses(
        (status = 202, description = "The job: queued, or failed_file_structure when the file cannot be read", body = BulkJobView,
            headers(("Location" = String, description = "The job"))),
        (status = 400, description = "Empty body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A job of this institution is queued or running", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds: 60"))),
        (status = 413, description = "Larger than 4 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not text/csv", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiPath(code): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let institution = parse_institution(&code)?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !media_type.is_some_and(|t| CSV_TYPES.contains(&t.as_str())) {
        return Err(ApiError::UnsupportedMediaType("text/csv"));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(policies::bulk::MAX_FILE_BYTES)
        } else {
            ApiError::Malformed(e.body_text())
        }
    })?;
    if body.len() > policies::bulk::MAX_FILE_BYTES {
        return Err(ApiError::PayloadTooLarge(policies::bulk::MAX_FILE_BYTES));
    }
    if body.is_empty() {
        return Err(ApiError::Malformed(
            "the body is empty; send the CSV file".into(),
        ));
    }
    let job = state
        .bulk
        .upload(&actor, &institution, body.to_vec())
        .await?;
    let location = format!(
        "{}/institutions/{}/bulk-registrations/{}",
        crate::PREFIX,
        institution.as_str(),
        job.reception_number
    );
    let mut response = (StatusCode::ACCEPTED, Json(BulkJobView::new(&job))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}
