//! Token introspection (RFC 7662) and revocation (RFC 7009) for access tokens.
//!
//! Both need an authenticated confidential client: resource servers register as clients.
//! Introspection answers `{"active": false}` for anything that is not a live access token of this
//! provider, without saying why; it covers grant tokens, machine account tokens and clients'
//! service tokens. Revocation answers 200 whatever the token was (RFC 7009 §2.2) and revokes
//! only grant tokens issued to the calling client; the token's whole grant is revoked, so every
//! token issued with it stops working at once. `client_credentials` tokens are stateless: they
//! end by expiry, or at once when the machine account is locked, disabled, deleted or reset.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{AuditResult, NewAuditEvent};

use super::error::{ErrorCode, TokenError};
use super::machine::CREDENTIAL_CLAIM;
use super::token::{Params, authenticate_client, json_no_store, limit, single_valued};
use super::userinfo::{BearerError, Principal, verify_access_token};
use crate::http::AppState;

async fn confidential_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(store::Client, String), TokenError> {
    let map = single_valued(params)?;
    let client = authenticate_client(state, headers, &map).await?;
    if client.is_public() {
        return Err(TokenError::new(
            ErrorCode::InvalidClient,
            "public clients may not introspect or revoke",
        ));
    }
    limit(state, &client.client_id).await?;
    let token = map.get("token").ok_or(TokenError::new(
        ErrorCode::InvalidRequest,
        "token is required",
    ))?;
    Ok((client, (*token).to_owned()))
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let (_, token) = match confidential_client(&state, &headers, &params).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    match verify_access_token(&state, &token).await {
        Ok(verified) => {
            let username = verified
                .account()
                .map(|a| format!("{}@{}", a.user_id, a.institution_code));
            let mut body = verified.claims;
            let object = body.as_object_mut().expect("JWT claims are an object");
            object.remove("gid");
            object.remove(CREDENTIAL_CLAIM);
            object.insert("active".into(), Value::Bool(true));
            object.insert("token_type".into(), json!("Bearer"));
            if let Some(username) = username {
                object.insert("username".into(), json!(username));
            }
            json_no_store(body)
        }
        Err(BearerError::Server(e)) => TokenError::server(e).into_response(),
        Err(_) => json_no_store(json!({ "active": false })),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let (client, token) = match confidential_client(&state, &headers, &params).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    let verified = match verify_access_token(&state, &token).await {
        Ok(verified) => verified,
        Err(BearerError::Server(e)) => return TokenError::server(e).into_response(),
        // Invalid, expired or already revoked: nothing to do, and nothing to tell.
        Err(_) => return StatusCode::OK.into_response(),
    };
    // Stateless client_credentials tokens have no grant to revoke; they expire.
    let Principal::Grant { grant, account } = &verified.principal else {
        return StatusCode::OK.into_response();
    };
    if grant.client_id != client.client_id {
        return StatusCode::OK.into_response();
    }
    let now = state.clock.now();
    if let Err(e) = state.store.revoke_grant(grant.id, now).await {
        return TokenError::server(e).into_response();
    }
    let event = NewAuditEvent {
        at: now,
        kind: "token.revoke".into(),
        actor_account_id: None,
        actor: format!("client:{}", client.client_id),
        target_account_id: Some(account.id),
        target: Some(format!("{}/{}", account.institution_code, account.user_id)),
        institution_code: Some(account.institution_code.as_str().to_owned()),
        ip: None,
        user_agent: None,
        result: AuditResult::Success,
        reason: None,
    };
    if let Err(e) = state.store.append_audit(event).await {
        return TokenError::server(e).into_response();
    }
    StatusCode::OK.into_response()
}
