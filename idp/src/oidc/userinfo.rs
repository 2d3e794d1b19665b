//! The UserInfo endpoint (OpenID Connect Core §5.3) with RFC 6750 Bearer tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use super::{account_claims, jwt};
use crate::http::AppState;

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match claims(&state, &headers).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(BearerError::Missing) => {
            challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"sekimori\"")
        }
        Err(BearerError::Invalid) => challenge(
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"sekimori\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\"",
        ),
        Err(BearerError::Server(e)) => {
            tracing::error!(error = %e, "userinfo failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": "server_error" })),
            )
                .into_response()
        }
    }
}

fn challenge(status: StatusCode, value: &'static str) -> Response {
    let mut response = status.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    response
}

pub enum BearerError {
    Missing,
    Invalid,
    Server(store::StoreError),
}

/// A verified access token: its claims, the grant it belongs to and the account, all still live.
pub struct Verified {
    pub claims: Value,
    pub grant: store::Grant,
    pub account: store::Account,
}

/// Verifies a Bearer access token issued by this provider: signature, type, issuer, audience,
/// expiry, and that its grant is not revoked and its account may still act.
pub async fn verify_bearer(state: &AppState, headers: &HeaderMap) -> Result<Verified, BearerError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(BearerError::Missing)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(BearerError::Invalid)?;
    verify_access_token(state, token.trim()).await
}

/// Verifies an access token issued by this provider: signature, type, issuer, audience, expiry,
/// and that its grant is not revoked and its account may still act.
pub async fn verify_access_token(state: &AppState, token: &str) -> Result<Verified, BearerError> {
    let claims =
        jwt::verify(&state.keys.current(), token, "at+jwt").map_err(|_| BearerError::Invalid)?;
    let now = state.clock.now();
    let issuer = state.settings.issuer();
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(BearerError::Invalid)?;
    if str_claim("iss") != Some(issuer)
        || str_claim("aud") != Some(issuer)
        || exp <= now.unix_timestamp()
    {
        return Err(BearerError::Invalid);
    }
    let grant_id = str_claim("gid")
        .and_then(|g| Uuid::parse_str(g).ok())
        .ok_or(BearerError::Invalid)?;
    let grant = state
        .store
        .get_grant(grant_id)
        .await
        .map_err(BearerError::Server)?
        .ok_or(BearerError::Invalid)?;
    if grant.revoked_at.is_some() || str_claim("sub") != Some(grant.account_id.to_string().as_str())
    {
        return Err(BearerError::Invalid);
    }
    let account = state
        .store
        .get_account(grant.account_id)
        .await
        .map_err(BearerError::Server)?
        .ok_or(BearerError::Invalid)?;
    if !service::authentication::may_act(&account, now, &state.settings.lockout) {
        return Err(BearerError::Invalid);
    }
    Ok(Verified {
        claims,
        grant,
        account,
    })
}

async fn claims(state: &AppState, headers: &HeaderMap) -> Result<Value, BearerError> {
    let verified = verify_bearer(state, headers).await?;
    let kind = verified.account.institution_code.kind();
    Ok(Value::Object(account_claims(
        &verified.account,
        kind,
        &verified.grant.scopes,
    )))
}
