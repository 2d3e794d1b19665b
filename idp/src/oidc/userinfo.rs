//! The UserInfo endpoint (OpenID Connect Core §5.3) with RFC 6750 Bearer tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use super::{account_claims, jwt, machine};
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
        Err(BearerError::InsufficientScope) => challenge(
            StatusCode::FORBIDDEN,
            "Bearer realm=\"sekimori\", error=\"insufficient_scope\", error_description=\"a client's own token has no user to describe\"",
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
    /// A valid token that cannot be used here (a client's own service token at userinfo).
    InsufficientScope,
    Server(store::StoreError),
}

/// Who a verified access token stands for.
// One per verified token, matched on at once: boxing the grant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Principal {
    /// A person's (or operator's) token from an authorization code or refresh: its grant and
    /// account, both still live.
    Grant {
        grant: store::Grant,
        account: store::Account,
    },
    /// A machine account's `client_credentials` token; the account may still act and holds the
    /// credential the token was issued under.
    Machine { account: store::Account },
    /// A registered client's own `client_credentials` token; the client is still registered for
    /// the grant.
    Service { client: store::Client },
}

/// A verified access token: its claims, its scopes and what it stands for.
pub struct Verified {
    pub claims: Value,
    pub scopes: Vec<String>,
    pub principal: Principal,
}

impl Verified {
    /// The account behind the token, if it stands for one.
    pub fn account(&self) -> Option<&store::Account> {
        match &self.principal {
            Principal::Grant { account, .. } | Principal::Machine { account } => Some(account),
            Principal::Service { .. } => None,
        }
    }
}

/// Verifies a Bearer access token issued by this provider: signature, type, issuer, audience,
/// expiry, and that what it stands for is still live.
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
/// and then by kind: a grant token's grant is not revoked and its account may still act; a
/// machine token's account may still act and still holds the credential the token was issued
/// under (a lock, disable, delete or reset ends it); a service token's client still allows the
/// grant and the scopes; neither of the last two was revoked. An account's token issued before
/// its last lock stays invalid after the unlock.
pub async fn verify_access_token(state: &AppState, token: &str) -> Result<Verified, BearerError> {
    let now = state.clock.now();
    let claims = jwt::verify_seen(
        &state.keys.current(),
        &state.verified_signatures,
        now.unix_timestamp(),
        token,
        "at+jwt",
    )
    .map_err(|_| BearerError::Invalid)?;
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
    let sub = str_claim("sub").ok_or(BearerError::Invalid)?;
    let issued_at = claims
        .get("iat")
        .and_then(Value::as_i64)
        .and_then(|iat| time::OffsetDateTime::from_unix_timestamp(iat).ok())
        .ok_or(BearerError::Invalid)?;
    let scopes: Vec<String> = str_claim("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(gid) = str_claim("gid") {
        let grant_id = Uuid::parse_str(gid).map_err(|_| BearerError::Invalid)?;
        let (grant, account) = state
            .store
            .get_grant_and_account(grant_id)
            .await
            .map_err(BearerError::Server)?
            .ok_or(BearerError::Invalid)?;
        if grant.revoked_at.is_some()
            || sub != grant.account_id.to_string()
            || !service::authentication::may_act(&account, now, &state.settings.lockout)
            || !service::authentication::outlived_locks(&account, issued_at)
        {
            return Err(BearerError::Invalid);
        }
        let scopes = grant.scopes.clone();
        return Ok(Verified {
            claims,
            scopes,
            principal: Principal::Grant { grant, account },
        });
    }
    let client_id = str_claim("client_id").ok_or(BearerError::Invalid)?;
    if let Some((user_id, institution_code)) = machine::split_client_id(client_id) {
        let account_id = Uuid::parse_str(sub).map_err(|_| BearerError::Invalid)?;
        let account = live_account(state, account_id, now).await?;
        let fingerprint = state.digester.fingerprint(&account.credential.hash);
        if account.user_id != user_id
            || account.institution_code.as_str() != institution_code
            || !account.account_type.is_machine()
            || str_claim(machine::CREDENTIAL_CLAIM) != Some(fingerprint.as_str())
            || !service::authentication::outlived_locks(&account, issued_at)
        {
            return Err(BearerError::Invalid);
        }
        not_revoked(state, &claims).await?;
        return Ok(Verified {
            claims,
            scopes,
            principal: Principal::Machine { account },
        });
    }
    let client = state
        .store
        .get_client(client_id)
        .await
        .map_err(BearerError::Server)?
        .ok_or(BearerError::Invalid)?;
    let still_allowed = sub == client.client_id
        && !client.is_public()
        && client.grant_types.iter().any(|g| g == "client_credentials")
        && scopes
            .iter()
            .all(|s| !machine::is_user_scope(s) && client.scopes.contains(s));
    if !still_allowed {
        return Err(BearerError::Invalid);
    }
    not_revoked(state, &claims).await?;
    Ok(Verified {
        claims,
        scopes,
        principal: Principal::Service { client },
    })
}

/// A token without a grant (a machine account's or a client's service token) revoked at
/// `/revoke` is recorded by its `jti` until it expires.
async fn not_revoked(state: &AppState, claims: &Value) -> Result<(), BearerError> {
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .ok_or(BearerError::Invalid)?;
    if state
        .store
        .access_token_revoked(jti)
        .await
        .map_err(BearerError::Server)?
    {
        return Err(BearerError::Invalid);
    }
    Ok(())
}

/// The account, if it exists and may still act at `now`.
async fn live_account(
    state: &AppState,
    id: Uuid,
    now: time::OffsetDateTime,
) -> Result<store::Account, BearerError> {
    let account = state
        .store
        .get_account(id)
        .await
        .map_err(BearerError::Server)?
        .ok_or(BearerError::Invalid)?;
    if !service::authentication::may_act(&account, now, &state.settings.lockout) {
        return Err(BearerError::Invalid);
    }
    Ok(account)
}

async fn claims(state: &AppState, headers: &HeaderMap) -> Result<Value, BearerError> {
    let verified = verify_bearer(state, headers).await?;
    match &verified.principal {
        Principal::Grant { account, grant } => Ok(Value::Object(account_claims(
            account,
            account.institution_code.kind(),
            &grant.scopes,
        ))),
        Principal::Machine { account } => Ok(Value::Object(machine::machine_claims(
            account,
            &verified.scopes,
        ))),
        Principal::Service { .. } => Err(BearerError::InsufficientScope),
    }
}
