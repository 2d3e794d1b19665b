//! OAuth 2.0 errors: redirected to the client from the authorization endpoint
//! (RFC 6749 §4.1.2.1) and returned as JSON from the token endpoint (§5.2).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error code of RFC 6749 / OpenID Connect Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    LoginRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::RegistrationNotSupported => "registration_not_supported",
        }
    }
}

/// An error of the token endpoint. The description is for developers and never carries a
/// secret, a code or a token; server errors carry no detail at all.
#[derive(Debug)]
pub struct TokenError {
    pub code: ErrorCode,
    pub description: &'static str,
    /// Set when the request was rate limited: answered 429 with `Retry-After`.
    pub retry_after: Option<u64>,
}

impl TokenError {
    pub const fn new(code: ErrorCode, description: &'static str) -> Self {
        Self {
            code,
            description,
            retry_after: None,
        }
    }

    pub fn server(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "token endpoint failed");
        Self::new(ErrorCode::ServerError, "")
    }

    pub fn limited(seconds: u64) -> Self {
        Self {
            code: ErrorCode::InvalidRequest,
            description: "too many requests; retry later",
            retry_after: Some(seconds),
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match (self.code, self.retry_after) {
            (_, Some(_)) => StatusCode::TOO_MANY_REQUESTS,
            (ErrorCode::InvalidClient, _) => StatusCode::UNAUTHORIZED,
            (ErrorCode::ServerError, _) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = if self.description.is_empty() {
            json!({ "error": self.code.as_str() })
        } else {
            json!({ "error": self.code.as_str(), "error_description": self.description })
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if self.code == ErrorCode::InvalidClient {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sekimori\", charset=\"UTF-8\""),
            );
        }
        response
    }
}
