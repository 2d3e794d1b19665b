//! The `client_credentials` grant (RFC 6749 §4.4) in its two forms:
//!
//! - Machine accounts (`web_api`, `linked_app`, `card_reader`; SPEC §8) authenticate with the
//!   client ID `<user_id>@<institution_code>` and their account secret (HTTP Basic or
//!   `client_secret_post`). The decision is `service::authentication::Authenticator`'s, so the
//!   lock, the enabled state, the usage dates and the lockout count apply as at sign-in. Every
//!   failure is the same `invalid_client`; the reason is audited.
//! - Registered confidential clients allowed the grant get service tokens for themselves:
//!   `sub` is the client ID and the scope is limited to the client's own service scopes (never
//!   `openid` or a user scope).
//!
//! Both tokens are stateless RFC 9068 JWTs. Verification (`userinfo::verify_access_token`)
//! re-checks what they stand for: a machine account must still be able to act and hold the
//! credential the token was issued under (its keyed fingerprint is the private `crv` claim), so
//! a lock, disable, delete or reset ends its tokens at once; a service token's client must still
//! be registered for the grant. Either token, revoked at `/revoke` by whoever it was issued to,
//! is refused by its `jti` until it expires.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use service::authentication::{RequestContext, SignIn};
use store::{Account, AuditResult, Client, NewAuditEvent};
use time::Duration;
use uuid::Uuid;

use super::error::{ErrorCode, TokenError};
use super::token::BAD_CLIENT;
use super::{SCOPES, account_claims, jwt};
use crate::http::AppState;

/// Scopes a machine account may ask for; `institution` is granted when none is asked for. The
/// account claims (`account_type`, `institution_code`, `user_id`) are in every machine token.
pub const MACHINE_SCOPES: &[&str] = &["institution", "profile"];

/// The private claim holding the fingerprint of the credential a machine token was issued under.
pub const CREDENTIAL_CLAIM: &str = "crv";

/// Splits a machine client ID `<user_id>@<institution_code>`; `None` for any other client ID
/// (`@` never appears in registered client IDs).
pub fn split_client_id(client_id: &str) -> Option<(&str, &str)> {
    client_id
        .rsplit_once('@')
        .filter(|(user, code)| !user.is_empty() && !code.is_empty())
}

/// Whether a scope belongs to people's sign-ins (OpenID Connect and this provider's user
/// scopes); service tokens never carry one.
pub fn is_user_scope(scope: &str) -> bool {
    SCOPES.contains(&scope)
}

fn requested_scopes<'a>(map: &HashMap<&str, &'a str>) -> Vec<&'a str> {
    let mut scopes: Vec<&str> = Vec::new();
    for scope in map
        .get("scope")
        .copied()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes
}

const BAD_SCOPE: TokenError = TokenError::new(
    ErrorCode::InvalidScope,
    "a requested scope is not available with client_credentials",
);

/// A machine account's token. `secret` is the client secret as presented (Basic or post).
pub(crate) async fn machine_token(
    state: &AppState,
    ctx: &RequestContext,
    client_id: &str,
    secret: Option<&str>,
    map: &HashMap<&str, &str>,
) -> Result<Value, TokenError> {
    split_client_id(client_id).ok_or(BAD_CLIENT)?;
    let requested = requested_scopes(map);
    if requested.iter().any(|s| !MACHINE_SCOPES.contains(s)) {
        return Err(BAD_SCOPE);
    }
    let scopes: Vec<String> = if requested.is_empty() {
        vec!["institution".to_owned()]
    } else {
        requested.iter().map(|s| (*s).to_owned()).collect()
    };
    let account = authenticate(state, ctx, client_id, secret).await?;

    let now = state.clock.now();
    let issuer = state.settings.issuer();
    let ttl = i64::from(state.settings.tokens.access_token_seconds);
    let mut claims = machine_claims(&account, &scopes);
    claims.insert("iss".into(), json!(issuer));
    claims.insert("aud".into(), json!(issuer));
    claims.insert("client_id".into(), json!(client_id));
    claims.insert("iat".into(), json!(now.unix_timestamp()));
    claims.insert(
        "exp".into(),
        json!((now + Duration::seconds(ttl)).unix_timestamp()),
    );
    claims.insert("jti".into(), json!(Uuid::now_v7().to_string()));
    claims.insert("scope".into(), json!(scopes.join(" ")));
    claims.insert(
        CREDENTIAL_CLAIM.into(),
        json!(state.digester.fingerprint(&account.credential.hash)),
    );
    let token = jwt::sign(
        &state.keys.current(),
        &state.settings.tokens.machine_signing_alg,
        "at+jwt",
        &Value::Object(claims),
    )
    .map_err(TokenError::server)?;
    Ok(token_response(token, ttl, &scopes))
}

/// Authenticates a machine account as a client (`client_id` `<user_id>@<institution_code>`):
/// the authenticator's decision, so a wrong secret counts toward the account's lockout wherever
/// it is presented, and every refusal is the same `invalid_client`.
pub(crate) async fn authenticate(
    state: &AppState,
    ctx: &RequestContext,
    client_id: &str,
    secret: Option<&str>,
) -> Result<Account, TokenError> {
    let (user_id, institution_code) = split_client_id(client_id).ok_or(BAD_CLIENT)?;
    // No secret at all is no attempt: nothing is counted or audited.
    let secret = secret.ok_or(BAD_CLIENT)?;
    let outcome = state
        .authenticator
        .authenticate_machine(institution_code, user_id, secret, ctx)
        .await
        .map_err(TokenError::server)?;
    match outcome {
        SignIn::Success { account, .. } => Ok(*account),
        SignIn::Failure(_) => Err(BAD_CLIENT),
    }
}

/// The account claims of a machine token or its userinfo: always the institution claims, the
/// names with `profile`.
pub fn machine_claims(account: &Account, scopes: &[String]) -> Map<String, Value> {
    let mut with_institution = scopes.to_vec();
    if !with_institution.iter().any(|s| s == "institution") {
        with_institution.push("institution".to_owned());
    }
    account_claims(account, account.institution_code.kind(), &with_institution)
}

/// A registered client's own token (`sub` = its client ID).
pub(crate) async fn service_token(
    state: &AppState,
    client: &Client,
    map: &HashMap<&str, &str>,
) -> Result<Value, TokenError> {
    if client.is_public() || !client.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(TokenError::new(
            ErrorCode::UnauthorizedClient,
            "the client may not use this grant",
        ));
    }
    let own: Vec<&str> = client
        .scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !is_user_scope(s))
        .collect();
    let requested = requested_scopes(map);
    let scopes: Vec<String> = if requested.is_empty() {
        own.iter().map(|s| (*s).to_owned()).collect()
    } else if requested.iter().all(|s| own.contains(s)) {
        requested.iter().map(|s| (*s).to_owned()).collect()
    } else {
        return Err(BAD_SCOPE);
    };
    let now = state.clock.now();
    let issuer = state.settings.issuer();
    let ttl = i64::from(state.settings.tokens.access_token_seconds);
    let claims = json!({
        "iss": issuer,
        "aud": issuer,
        "sub": client.client_id,
        "client_id": client.client_id,
        "iat": now.unix_timestamp(),
        "exp": (now + Duration::seconds(ttl)).unix_timestamp(),
        "jti": Uuid::now_v7().to_string(),
        "scope": scopes.join(" "),
    });
    let token = jwt::sign(
        &state.keys.current(),
        &client.signing_alg,
        "at+jwt",
        &claims,
    )
    .map_err(TokenError::server)?;
    state
        .store
        .append_audit(service_token_event(
            &client.client_id,
            "token.issue",
            "client_credentials",
            now,
        ))
        .await
        .map_err(TokenError::server)?;
    Ok(token_response(token, ttl, &scopes))
}

fn token_response(token: String, ttl: i64, scopes: &[String]) -> Value {
    // RFC 6749 §4.4.3: no refresh token for this grant.
    json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scopes.join(" "),
    })
}

/// The audit row of something a registered client did with its own service token (issue,
/// revocation): the client is both actor and target; no account is involved.
pub(crate) fn service_token_event(
    client_id: &str,
    kind: &str,
    reason: &str,
    at: time::OffsetDateTime,
) -> NewAuditEvent {
    NewAuditEvent {
        at,
        kind: kind.into(),
        actor_account_id: None,
        actor: format!("client:{client_id}"),
        target_account_id: None,
        target: Some(client_id.to_owned()),
        institution_code: None,
        ip: None,
        user_agent: None,
        result: AuditResult::Success,
        reason: Some(reason.to_owned()),
    }
}

/// The audit row of a machine account's revocation of its own token: the account is actor and
/// target.
pub(crate) fn machine_token_event(
    account: &Account,
    ctx: &RequestContext,
    at: time::OffsetDateTime,
) -> NewAuditEvent {
    let label = format!("{}/{}", account.institution_code, account.user_id);
    NewAuditEvent {
        at,
        kind: "token.revoke".into(),
        actor_account_id: Some(account.id),
        actor: label.clone(),
        target_account_id: Some(account.id),
        target: Some(label),
        institution_code: Some(account.institution_code.as_str().to_owned()),
        ip: ctx.ip.clone(),
        user_agent: ctx
            .user_agent
            .as_deref()
            .map(|ua| ua.chars().take(256).collect()),
        result: AuditResult::Success,
        reason: Some("machine_token".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_client_ids_split_at_the_last_at_sign() {
        assert_eq!(
            split_client_id("A0api@1312345678"),
            Some(("A0api", "1312345678"))
        );
        assert_eq!(split_client_id("rp-web"), None);
        assert_eq!(split_client_id("@1312345678"), None);
        assert_eq!(split_client_id("A0api@"), None);
    }

    #[test]
    fn user_scopes_are_never_service_scopes() {
        for scope in [
            "openid",
            "profile",
            "institution",
            "offline_access",
            "admin",
        ] {
            assert!(is_user_scope(scope), "{scope}");
        }
        assert!(!is_user_scope("records:read"));
    }
}
