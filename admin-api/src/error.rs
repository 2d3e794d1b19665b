//! The one error type of the admin API and its `application/problem+json` form (RFC 9457).
//!
//! Every problem has a stable `type` URI (`https://sekimori.example/problems/<slug>`), a title,
//! the status, and a message in Japanese and English; validation problems list each failed
//! field with the rule that failed. Server errors are logged and never detailed to the client.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use policies::Violation;
use serde::Serialize;
use service::{Refusal, ServiceError};
use utoipa::ToSchema;

use crate::auth::AuthError;

const TYPE_BASE: &str = "https://sekimori.example/problems/";

/// A problem document (RFC 9457) with Sekimori's bilingual messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the problem, e.g. `https://sekimori.example/problems/validation`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub message_ja: String,
    pub message_en: String,
    /// For validation problems: every field and rule that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One failed rule of one field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub rule: String,
    pub message_ja: String,
    pub message_en: String,
}

impl FieldError {
    pub fn from_violation(field: &str, v: &Violation) -> Self {
        Self {
            field: field.to_owned(),
            rule: v.rule.to_owned(),
            message_ja: v.message_ja.clone(),
            message_en: v.message_en.clone(),
        }
    }

    pub fn new(field: &str, rule: &str, ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            rule: rule.to_owned(),
            message_ja: ja.into(),
            message_en: en.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthenticated")]
    Unauthenticated { token_given: bool },
    #[error("insufficient scope")]
    InsufficientScope,
    #[error("forbidden")]
    Forbidden(Refusal),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The institution's bulk registration job is queued or running (409, `Retry-After: 60`).
    #[error("a bulk registration is in progress")]
    BulkInProgress,
    /// The bulk registration job has no result file (yet, or at all).
    #[error("no result")]
    NoResult,
    #[error("payload too large")]
    PayloadTooLarge(usize),
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No ID/password notice can be printed: why, and for a selection every user ID concerned.
    #[error("notice unavailable")]
    NoticeUnavailable {
        message_ja: String,
        message_en: String,
        errors: Vec<FieldError>,
    },
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// One failed rule of one field.
    pub fn field(field: &str, v: &Violation) -> Self {
        ApiError::Validation(vec![FieldError::from_violation(field, v)])
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { field, violations } => ApiError::Validation(
                violations
                    .iter()
                    .map(|v| FieldError::from_violation(field, v))
                    .collect(),
            ),
            ServiceError::Conflict("bulk_registration") => ApiError::BulkInProgress,
            ServiceError::Conflict("bulk_result") => ApiError::NoResult,
            ServiceError::Conflict(what) => ApiError::Conflict(what),
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::Forbidden(refusal) => ApiError::Forbidden(refusal),
            ServiceError::NoticeUnavailable(blocked) => notice_unavailable(&blocked),
            ServiceError::Store(e) => ApiError::Internal(e.to_string()),
            ServiceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The 409 of a notice request. A single account gets the reason itself as the message; a
/// selection names every user ID that cannot be printed, with one entry per ID in `errors`
/// (`field` = `user_ids[<index>]`).
fn notice_unavailable(blocked: &[service::notices::NoticeBlocked]) -> ApiError {
    let errors: Vec<FieldError> = blocked
        .iter()
        .map(|b| {
            let v = b.refusal.violation();
            let field = match b.position {
                Some(i) => format!("user_ids[{i}]"),
                None => "user_id".to_owned(),
            };
            FieldError::new(
                &field,
                v.rule,
                format!("{}: {}", b.user_id, v.message_ja),
                format!("{}: {}", b.user_id, v.message_en),
            )
        })
        .collect();
    let (message_ja, message_en) = match blocked {
        [single] if single.position.is_none() => {
            let v = single.refusal.violation();
            (v.message_ja, v.message_en)
        }
        _ => {
            let ids: Vec<&str> = blocked.iter().map(|b| b.user_id.as_str()).collect();
            let ids = ids.join(", ");
            (
                format!(
                    "次のアカウントは通知書を出力できないため、どの通知書も出力していません（出力済にもしていません）: {ids}。理由は errors を確認してください。"
                ),
                format!(
                    "No notice was printed (and none marked issued) because these accounts \
                     cannot be printed: {ids}. See errors for each reason."
                ),
            )
        }
    };
    ApiError::NoticeUnavailable {
        message_ja,
        message_en,
        errors,
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::Unauthenticated { token_given: false },
            AuthError::Invalid => ApiError::Unauthenticated { token_given: true },
            AuthError::InsufficientScope => ApiError::InsufficientScope,
            AuthError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        match e {
            JsonRejection::JsonDataError(e) => ApiError::Validation(vec![FieldError::new(
                "body",
                "body.schema",
                format!("リクエストの内容が正しくありません: {}", e.body_text()),
                format!(
                    "The request body does not match the schema: {}",
                    e.body_text()
                ),
            )]),
            other => ApiError::Malformed(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::Validation(vec![FieldError::new(
            "query",
            "query.format",
            format!("検索条件が正しくありません: {}", e.body_text()),
            format!("The query parameters are not valid: {}", e.body_text()),
        )])
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::Malformed(e.body_text())
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, String, String) {
        match self {
            ApiError::Unauthenticated { .. } => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Unauthenticated",
                "有効なアクセストークン（admin スコープ）が必要です。再度サインインしてください。"
                    .into(),
                "A valid access token with the admin scope is required; sign in again.".into(),
            ),
            ApiError::InsufficientScope => (
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "Insufficient scope",
                "このアクセストークンには admin スコープがありません。".into(),
                "The access token does not carry the admin scope.".into(),
            ),
            ApiError::Forbidden(Refusal::NotPermitted) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "この操作を行う権限がありません。".into(),
                "Your account type may not perform this action on this target.".into(),
            ),
            ApiError::Forbidden(Refusal::OwnAccount) => (
                StatusCode::FORBIDDEN,
                "own-account",
                "Action on own account",
                "自分自身のアカウントに対してこの管理操作は行えません。".into(),
                "This admin action cannot be performed on your own account.".into(),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "指定されたリソースが見つかりません。".into(),
                "The resource was not found.".into(),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "このメソッドは使用できません。".into(),
                "This method is not allowed on this resource.".into(),
            ),
            ApiError::Conflict(what) => (
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                match *what {
                    "account" => {
                        "このユーザIDは使用済みです（削除済みアカウントのIDも再利用できません）。"
                            .into()
                    }
                    "institution" => "この医療機関等コードは登録済みです。".into(),
                    "notice" => {
                        "出力中に対象アカウントのパスワードが初期化・変更されたため、通知書を出力しませんでした。もう一度出力してください。"
                            .into()
                    }
                    _ => "既に存在します。".into(),
                },
                match *what {
                    "account" => {
                        "This user ID is taken; IDs of deleted accounts are never reused.".into()
                    }
                    "institution" => "An institution with this code already exists.".into(),
                    "notice" => "A password was reset or changed while the notice was being \
                        printed, so nothing was printed; print again."
                        .into(),
                    other => format!("The {other} already exists."),
                },
            ),
            ApiError::BulkInProgress => (
                StatusCode::CONFLICT,
                "bulk-registration-in-progress",
                "Bulk registration in progress",
                "他の一括登録を処理中です。少し時間（1分程度）を置いてから、再度登録してください。"
                    .into(),
                "Another bulk registration of this institution is queued or running; try again in a minute."
                    .into(),
            ),
            ApiError::NoResult => (
                StatusCode::CONFLICT,
                "bulk-result-unavailable",
                "No result file",
                "登録結果は「登録完了」「登録完了(一部ID重複あり)」「登録失敗(入力チェックエラー)」の場合のみダウンロードできます。"
                    .into(),
                "A result file exists only for done, done_with_duplicates and failed_validation jobs."
                    .into(),
            ),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!("ファイルが大きすぎます（上限 {} バイト）。分割して登録してください。", limit),
                format!("The file is too large (at most {limit} bytes); split it."),
            ),
            ApiError::UnsupportedMediaType(expected) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!("Content-Type は {expected} を指定してください。"),
                format!("The Content-Type must be {expected}."),
            ),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Validation failed",
                "入力内容に誤りがあります。各項目のエラーを確認してください。".into(),
                "The request failed validation; see the errors of each field.".into(),
            ),
            ApiError::NoticeUnavailable {
                message_ja,
                message_en,
                ..
            } => (
                StatusCode::CONFLICT,
                "notice-unavailable",
                "Notice unavailable",
                message_ja.clone(),
                message_en.clone(),
            ),
            ApiError::Malformed(why) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
                format!("リクエストを解釈できません: {why}"),
                format!("The request could not be read: {why}"),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "サーバ内部でエラーが発生しました。時間をおいて再度お試しください。".into(),
                "An internal error occurred; please try again later.".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            // Logged for operators; the client sees only the generic message.
            tracing::error!(error = %detail, "admin API request failed");
        }
        let (status, slug, title, message_ja, message_en) = self.parts();
        let challenge = match &self {
            // RFC 6750 §3.1: no error code when the request carried no token at all.
            ApiError::Unauthenticated { token_given: false } => {
                Some("Bearer realm=\"sekimori\", scope=\"admin\"")
            }
            ApiError::Unauthenticated { token_given: true } => {
                Some("Bearer realm=\"sekimori\", error=\"invalid_token\", scope=\"admin\"")
            }
            ApiError::InsufficientScope => {
                Some("Bearer realm=\"sekimori\", error=\"insufficient_scope\", scope=\"admin\"")
            }
            _ => None,
        };
        let self_kind = if matches!(self, ApiError::BulkInProgress) {
            Kind::BulkInProgress
        } else {
            Kind::Other
        };
        let errors = match self {
            ApiError::Validation(errors) | ApiError::NoticeUnavailable { errors, .. } => errors,
            _ => Vec::new(),
        };
        let problem = Problem {
            problem_type: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: message_en.clone(),
            message_ja,
            message_en,
            errors,
        };
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self_kind, Kind::BulkInProgress) {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(policies::bulk::RETRY_AFTER_SECONDS),
            );
        }
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// Which extra header a problem carries, decided before the error is consumed.
enum Kind {
    BulkInProgress,
    Other,
}

/// The router's fallback: unknown paths are problem documents too.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub type ApiResult<T> = Result<T, ApiError>;
