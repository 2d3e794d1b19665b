//! Who is calling: the [`BearerAuth`] seam that `idp` implements, and the extractor that turns a
//! request into a `service::accounts::AdminActor`.

use std::net::SocketAddr;

use async_trait::async_trait;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use service::accounts::AdminActor;

use crate::AdminState;
use crate::error::ApiError;

/// The scope an access token needs for the admin API (SPEC §9).
pub const ADMIN_SCOPE: &str = "admin";

/// An authenticated caller: the live account behind the token and the token's scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: store::Account,
    pub scopes: Vec<String>,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing bearer token")]
    Missing,
    /// A token that is malformed, expired, revoked, or whose account may no longer act
    /// (disabled, locked, deleted, reset).
    #[error("invalid bearer token")]
    Invalid,
    /// A valid token without the `admin` scope.
    #[error("the token lacks the admin scope")]
    InsufficientScope,
    /// The check itself failed (e.g. the database); logged, never shown.
    #[error("authentication failed: {0}")]
    Internal(String),
}

/// Verifies the `Authorization: Bearer …` header of a request. `idp` implements it with its own
/// token verification and requires the `admin` scope.
#[async_trait]
pub trait BearerAuth: Send + Sync + 'static {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError>;
}

/// The authenticated admin, extracted from every protected handler's request.
pub struct Authenticated(pub AdminActor);

impl FromRequestParts<AdminState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let caller = state.auth.authenticate(&parts.headers).await?;
        // Checked here too, so that no BearerAuth implementation can forget it.
        if !caller.scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(AuthError::InsufficientScope.into());
        }
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Authenticated(AdminActor {
            account: caller.account,
            ip,
            user_agent,
        }))
    }
}
