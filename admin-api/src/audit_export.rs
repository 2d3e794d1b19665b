//! `GET /audit-events.csv`: the audit log as CSV, filtered by period, kind and institution
//! (SPEC §9, [002 §4]). More than 25,000 matching rows is a 422 asking to narrow the search.
//!
//! Encoding: UTF-8 with a byte-order mark by default (Excel then detects UTF-8), or
//! `encoding=shift_jis` for older Excel set-ups, encoded as Windows-31J (CP932, what Excel calls
//! Shift_JIS). Characters that CP932 cannot represent (emoji, rare kanji such as 𠮷 in a user
//! agent or a typed user ID) are replaced by `?` rather than refusing the whole export, and the
//! number of replacements is reported in the `X-Sekimori-Replaced-Characters` header.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::{AuditEvent, AuditFilter};
use time::{Duration, OffsetDateTime};
use utoipa::IntoParams;

use crate::AdminState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::ApiQuery;
use crate::wire::{instant, parse_date, parse_instant};

const HEADER: [&str; 11] = [
    "seq",
    "at",
    "kind",
    "result",
    "reason",
    "actor",
    "target",
    "institution_code",
    "ip",
    "user_agent",
    "actor_account_id",
];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Inclusive start: an RFC 3339 instant, or a date (YYYY-MM-DD, from 00:00 in Asia/Tokyo).
    pub from: Option<String>,
    /// Exclusive end: an RFC 3339 instant, or a date (YYYY-MM-DD, that whole day included).
    pub to: Option<String>,
    /// Exact kind, e.g. `login.failure`, `account.create`.
    pub kind: Option<String>,
    /// Exact institution code (required for institution masters).
    pub institution_code: Option<String>,
    /// `utf-8` (default, with BOM) or `shift_jis` (CP932).
    pub encoding: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    ShiftJis,
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit-events.csv",
    tag = "audit",
    params(ExportParams),
    responses(
        (status = 200, description = "CSV with a header row", content_type = "text/csv", body = String),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn handler(
    State(state): State<AdminState>,
    Authenticated(actor): Authenticated,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let encoding = match params.encoding.as_deref() {
        None | Some("utf-8" | "utf8" | "UTF-8") => Encoding::Utf8,
        Some("shift_jis" | "Shift_JIS" | "sjis" | "cp932" | "windows-31j") => Encoding::ShiftJis,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "encoding",
                "encoding.unknown",
                "文字コードは utf-8 または shift_jis を指定してください。",
                "The encoding must be utf-8 or shift_jis.",
            )]));
        }
    };
    let from = params
        .from
        .as_deref()
        .map(|r| bound("from", r, false))
        .transpose()?;
    let to = params
        .to
        .as_deref()
        .map(|r| bound("to", r, true))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "to",
            "period.order",
            "期間の終了は開始より後にしてください。",
            "The end of the period must be after its start.",
        )]));
    }
    let filter = AuditFilter {
        from,
        to,
        kind: params.kind.filter(|k| !k.is_empty()),
        institution_code: params.institution_code.filter(|c| !c.is_empty()),
    };
    let events = state.admin.export_audit(&actor, filter).await?;
    let text = to_csv(&events)?;
    let (body, charset, replaced) = match encoding {
        Encoding::Utf8 => {
            let mut body = Vec::with_capacity(text.len() + 3);
            body.extend_from_slice(b"\xEF\xBB\xBF");
            body.extend_from_slice(text.as_bytes());
            (body, "utf-8", 0)
        }
        Encoding::ShiftJis => {
            let (body, replaced) = shift_jis(&text);
            (body, "Shift_JIS", replaced)
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("text/csv; charset={charset}"))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-events.csv\""),
    );
    headers.insert(
        HeaderName::from_static("x-sekimori-replaced-characters"),
        HeaderValue::from(replaced),
    );
    Ok((headers, body).into_response())
}

/// A period bound: an RFC 3339 instant, or a date in Asia/Tokyo (the end date is included, so
/// its exclusive bound is the next midnight).
fn bound(field: &str, raw: &str, end: bool) -> ApiResult<OffsetDateTime> {
    if raw.len() == 10 {
        let day = parse_date(field, raw)?;
        let start = day.midnight().assume_offset(policies::usage::JST);
        return Ok(if end {
            start + Duration::days(1)
        } else {
            start
        });
    }
    parse_instant(field, raw)
}

fn to_csv(events: &[AuditEvent]) -> ApiResult<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Internal(e.to_string());
    writer.write_record(HEADER).map_err(internal)?;
    for e in events {
        let ev = &e.event;
        writer
            .write_record([
                e.seq.to_string(),
                instant(ev.at.to_offset(policies::usage::JST)),
                ev.kind.clone(),
                ev.result.as_str().to_owned(),
                ev.reason.clone().unwrap_or_default(),
                ev.actor.clone(),
                ev.target.clone().unwrap_or_default(),
                ev.institution_code.clone().unwrap_or_default(),
                ev.ip.clone().unwrap_or_default(),
                ev.user_agent.clone().unwrap_or_default(),
                ev.actor_account_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            ])
            .map_err(internal)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Encodes as CP932, replacing each unrepresentable character by `?`; returns the bytes and the
/// number of replacements.
fn shift_jis(text: &str) -> (Vec<u8>, u32) {
    let (bytes, _, had_errors) = encoding_rs::SHIFT_JIS.encode(text);
    if !had_errors {
        return (bytes.into_owned(), 0);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut replaced = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let (bytes, _, bad) = encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut buf));
        if bad {
            out.push(b'?');
            replaced += 1;
        } else {
            out.extend_from_slice(&bytes);
        }
    }
    (out, replaced)
}

#[cfg(test)]
mod tests {
    use super::shift_jis;

    #[test]
    fn shift_jis_replaces_what_cp932_cannot_hold() {
        let (bytes, replaced) = shift_jis("関守,①髙\n");
        assert_eq!(replaced, 0, "CP932 holds NEC and IBM extensions");
        let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        assert_eq!(decoded, "関守,①髙\n");
        let (bytes, replaced) = shift_jis("𠮷野家🍣");
        assert_eq!(replaced, 2);
        assert_eq!(encoding_rs::SHIFT_JIS.decode(&bytes).0, "?野家?");
    }
}
