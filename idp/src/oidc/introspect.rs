//! Token introspection (RFC 7662) and revocation (RFC 7009) for access and refresh tokens.
//!
//! Both need an authenticated confidential client: resource servers register as clients.
//! Access tokens are JWTs and refresh tokens opaque handles without a `.`, so the token itself
//! says which it is and `token_type_hint` is not needed (RFC 7009 §2.1 lets a server ignore it).
//!
//! Introspection answers `{"active": false}` for anything that is not a live token of this
//! provider, without saying why. Access tokens of every kind (grant, machine account, a client's
//! service token) are described to any confidential client; a refresh token only to the client
//! it was issued to, and only while a refresh with it would succeed.
//!
//! Revocation answers 200 whatever the token was (RFC 7009 §2.2) and acts only on tokens issued
//! to the calling client: an access or refresh token of a grant revokes the whole grant, so every
//! token issued with it (the refresh family included) stops working at once. A client's own
//! `client_credentials` token has no grant: its `jti` is recorded as revoked until it expires.
//! A machine account authenticates here as at the token endpoint (its client ID
//! `<user_id>@<institution_code>` and its secret; a wrong secret counts toward its lockout) and
//! may revoke its own tokens the same way. It may not introspect: it is no resource server.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use service::authentication::RequestContext;
use store::{Account, AuditResult, Client, Grant, NewAuditEvent, RefreshToken, StoreError};

use super::error::{ErrorCode, TokenError};
use super::machine::{self, CREDENTIAL_CLAIM, service_token_event, split_client_id};
use super::refresh_value::Presented;
use super::token::{
    Params, Presented as TokenPresented, authenticate_presented, json_no_store, limit, live_family,
    presented_credentials, single_valued,
};
use super::userinfo::{BearerError, Principal, verify_access_token};
use crate::http::AppState;

async fn confidential_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(store::Client, String), TokenError> {
    let map = single_valued(params)?;
    let presented = presented_credentials(headers, &map)?;
    confidential(state, presented, &map).await
}

/// Authenticates presented credentials as a registered confidential client (rate-limited), and
/// reads the `token` parameter.
async fn confidential(
    state: &AppState,
    presented: TokenPresented,
    map: &HashMap<&str, &str>,
) -> Result<(store::Client, String), TokenError> {
    let client = authenticate_presented(state, presented).await?;
    if client.is_public() {
        return Err(TokenError::new(
            ErrorCode::InvalidClient,
            "public clients may not introspect or revoke",
        ));
    }
    limit(state, &client.client_id).await?;
    Ok((client, required_token(map)?.to_owned()))
}

fn required_token<'a>(map: &HashMap<&str, &'a str>) -> Result<&'a str, TokenError> {
    map.get("token").copied().ok_or(TokenError::new(
        ErrorCode::InvalidRequest,
        "token is required",
    ))
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let (client, token) = match confidential_client(&state, &headers, &params).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    if is_refresh_handle(&token) {
        return match live_refresh_token(&state, &client, &token).await {
            Ok(Some((refresh, grant, account))) => json_no_store(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": grant.client_id,
                "scope": grant.scopes.join(" "),
                "sub": account.id.to_string(),
                "username": format!("{}@{}", account.user_id, account.institution_code),
                "iat": refresh.created_at.unix_timestamp(),
                "exp": refresh.idle_expires_at.min(refresh.absolute_expires_at).unix_timestamp(),
            })),
            Ok(None) => json_no_store(json!({ "active": false })),
            Err(e) => TokenError::server(e).into_response(),
        };
    }
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let ctx = crate::pages::login::request_context(&headers, peer);
    let revoked = async {
        let map = single_valued(&params)?;
        let presented = presented_credentials(&headers, &map)?;
        if split_client_id(&presented.client_id).is_some() {
            revoke_as_machine(&state, &ctx, presented, &map).await
        } else {
            revoke_as_client(&state, presented, &map).await
        }
    };
    match revoked.await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => err.into_response(),
    }
}

/// Revocation by a registered confidential client: a token of one of its grants revokes the
/// grant, its own service token is recorded by `jti`; anything else changes nothing.
async fn revoke_as_client(
    state: &AppState,
    presented: TokenPresented,
    map: &HashMap<&str, &str>,
) -> Result<(), TokenError> {
    let (client, token) = confidential(state, presented, map).await?;
    if is_refresh_handle(&token) {
        return revoke_refresh_token(state, &client, &token)
            .await
            .map_err(TokenError::server);
    }
    let verified = match verify_access_token(state, &token).await {
        Ok(verified) => verified,
        Err(BearerError::Server(e)) => return Err(TokenError::server(e)),
        // Invalid, expired or already revoked: nothing to do, and nothing to tell.
        Err(_) => return Ok(()),
    };
    match &verified.principal {
        Principal::Grant { grant, account } if grant.client_id == client.client_id => {
            revoke_grant(state, &client, grant, Some(account), "access_token").await
        }
        Principal::Service { client: owner } if owner.client_id == client.client_id => {
            revoke_service_token(state, &client, &verified.claims).await
        }
        // Another client's token, or a machine account's.
        _ => Ok(()),
    }
    .map_err(TokenError::server)
}

/// Revocation by a machine account (client ID `<user_id>@<institution_code>`), authenticated as
/// at the token endpoint. The account revokes only its own access tokens; it has no refresh
/// tokens, and anything else answers 200 and changes nothing, as for a registered client.
async fn revoke_as_machine(
    state: &AppState,
    ctx: &RequestContext,
    presented: TokenPresented,
    map: &HashMap<&str, &str>,
) -> Result<(), TokenError> {
    limit(state, &presented.client_id).await?;
    let token = required_token(map)?;
    let account = machine::authenticate(
        state,
        ctx,
        &presented.client_id,
        presented.secret.as_deref(),
    )
    .await?;
    if is_refresh_handle(token) {
        return Ok(());
    }
    let verified = match verify_access_token(state, token).await {
        Ok(verified) => verified,
        Err(BearerError::Server(e)) => return Err(TokenError::server(e)),
        Err(_) => return Ok(()),
    };
    match &verified.principal {
        Principal::Machine { account: owner } if owner.id == account.id => {
            let audit = machine::machine_token_event(&account, ctx, state.clock.now());
            record_revocation(state, &verified.claims, audit)
                .await
                .map_err(TokenError::server)
        }
        _ => Ok(()),
    }
}

/// Revokes a client's own `client_credentials` token: it has no grant, so its `jti` is recorded
/// until the token's expiry.
async fn revoke_service_token(
    state: &AppState,
    client: &Client,
    claims: &Value,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    let audit = service_token_event(&client.client_id, "token.revoke", "service_token", now);
    record_revocation(state, claims, audit).await
}

/// Records a verified token without a grant as revoked by its `jti` until its `exp`, auditing
/// the first revocation only.
async fn record_revocation(
    state: &AppState,
    claims: &Value,
    audit: NewAuditEvent,
) -> Result<(), StoreError> {
    let (Some(jti), Some(expires_at)) = (
        claims.get("jti").and_then(Value::as_str),
        claims
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|exp| time::OffsetDateTime::from_unix_timestamp(exp).ok()),
    ) else {
        // A verified token without a grant always has both; nothing to record without them.
        return Ok(());
    };
    state
        .store
        .revoke_access_token(jti, expires_at, audit)
        .await
        .map(|_| ())
}

/// Refresh tokens are opaque handles (base64url, never a `.`); access tokens are JWTs.
fn is_refresh_handle(token: &str) -> bool {
    !token.contains('.')
}

/// The refresh token `token` of `client`, with its grant and account, if a refresh with it would
/// succeed now: unspent and alive by [`live_family`]. Another client's token is never described.
async fn live_refresh_token(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<Option<(RefreshToken, Grant, Account)>, StoreError> {
    let now = state.clock.now();
    let presented = Presented::parse(token);
    let Some(family) = state.store.get_refresh_family(&presented.key).await? else {
        return Ok(None);
    };
    if !presented.matches(&family.token)
        || family.token.used_at.is_some()
        || family.grant.client_id != client.client_id
        || live_family(state, &family, now).is_err()
    {
        return Ok(None);
    }
    Ok(Some((family.token, family.grant, family.account)))
}

/// Revokes the family of the refresh token `token` if it was issued to `client` (RFC 7009 §2.1:
/// revoking a refresh token also ends the access tokens of its grant).
async fn revoke_refresh_token(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<(), StoreError> {
    let presented = Presented::parse(token);
    let Some(family) = state.store.get_refresh_family(&presented.key).await? else {
        return Ok(());
    };
    let grant = &family.grant;
    if !presented.matches(&family.token)
        || grant.client_id != client.client_id
        || grant.revoked_at.is_some()
    {
        return Ok(());
    }
    revoke_grant(state, client, grant, Some(&family.account), "refresh_token").await
}

/// Revokes `grant` and audits it (`reason`: which kind of token was presented).
async fn revoke_grant(
    state: &AppState,
    client: &Client,
    grant: &Grant,
    account: Option<&Account>,
    reason: &str,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    state.store.revoke_grant(grant.id, now).await?;
    state
        .store
        .append_audit(NewAuditEvent {
            at: now,
            kind: "token.revoke".into(),
            actor_account_id: None,
            actor: format!("client:{}", client.client_id),
            target_account_id: account.map(|a| a.id),
            target: account.map(|a| format!("{}/{}", a.institution_code, a.user_id)),
            institution_code: account.map(|a| a.institution_code.as_str().to_owned()),
            ip: None,
            user_agent: None,
            result: AuditResult::Success,
            reason: Some(reason.to_owned()),
        })
        .await
}
