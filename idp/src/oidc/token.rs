//! The token endpoint (RFC 6749 §3.2, §4.1.3; OpenID Connect Core §3.1.3): client
//! authentication, the authorization code and refresh token grants, and `client_credentials`
//! (in `machine`). ID tokens and RFC 9068 access tokens are signed with the client's algorithm.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use store::{
    Account, AuditResult, Client, CodeRedemption, Grant, NewAuditEvent, RefreshFamily,
    RefreshToken, RefreshTokenId,
};
use time::Duration;
use uuid::Uuid;

use super::error::{ErrorCode, TokenError};
use super::{account_claims, hash_handle, jwt, machine, refresh_value};
use crate::http::AppState;

pub(crate) type Params = Vec<(String, String)>;

/// Parses a form into a map, refusing repeated parameters (RFC 6749 §3.2).
pub(crate) fn single_valued(params: &Params) -> Result<HashMap<&str, &str>, TokenError> {
    let mut map = HashMap::with_capacity(params.len());
    for (k, v) in params {
        if map.insert(k.as_str(), v.as_str()).is_some() {
            return Err(TokenError::new(
                ErrorCode::InvalidRequest,
                "a parameter was given more than once",
            ));
        }
    }
    Ok(map)
}

pub(crate) fn json_no_store(body: Value) -> Response {
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let ctx = crate::pages::login::request_context(&headers, peer);
    match handle(&state, &headers, &params, &ctx).await {
        Ok(body) => json_no_store(body),
        Err(err) => err.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    ctx: &service::authentication::RequestContext,
) -> Result<Value, TokenError> {
    let map = single_valued(params)?;
    let presented = presented_credentials(headers, &map)?;
    if machine::split_client_id(&presented.client_id).is_some() {
        // A machine account (SPEC §8): only client_credentials, decided by the authenticator.
        limit(state, &presented.client_id).await?;
        return match map.get("grant_type").copied() {
            Some("client_credentials") => {
                machine::machine_token(
                    state,
                    ctx,
                    &presented.client_id,
                    presented.secret.as_deref(),
                    &map,
                )
                .await
            }
            Some("authorization_code" | "refresh_token") => Err(TokenError::new(
                ErrorCode::UnauthorizedClient,
                "machine accounts use client_credentials only",
            )),
            Some(_) => Err(TokenError::new(
                ErrorCode::UnsupportedGrantType,
                "this grant type is not supported",
            )),
            None => Err(TokenError::new(
                ErrorCode::InvalidRequest,
                "grant_type is required",
            )),
        };
    }
    let client = authenticate_presented(state, presented).await?;
    limit(state, &client.client_id).await?;
    match map.get("grant_type").copied() {
        Some("authorization_code") => authorization_code(state, &client, &map).await,
        Some("refresh_token") => refresh_token(state, &client, &map).await,
        Some("client_credentials") => machine::service_token(state, &client, &map).await,
        Some(_) => Err(TokenError::new(
            ErrorCode::UnsupportedGrantType,
            "this grant type is not supported",
        )),
        None => Err(TokenError::new(
            ErrorCode::InvalidRequest,
            "grant_type is required",
        )),
    }
}

/// The per-client token rate limit: 429 with `Retry-After`. A rate limit store outage fails open.
pub(crate) async fn limit(state: &AppState, client_id: &str) -> Result<(), TokenError> {
    match state
        .limiter
        .hit(&state.settings.limits.token_client(), client_id)
        .await
    {
        Ok(decision) => match decision.retry_after_secs() {
            Some(seconds) => Err(TokenError::limited(seconds)),
            None => Ok(()),
        },
        Err(e) => {
            tracing::warn!(error = %e, "rate limiting unavailable; allowing the request");
            Ok(())
        }
    }
}

pub(crate) const BAD_CLIENT: TokenError =
    TokenError::new(ErrorCode::InvalidClient, "client authentication failed");

/// The client credentials of a request, not yet checked.
pub(crate) struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
}

/// Reads the client ID and secret from HTTP Basic or the form (`client_secret_basic`,
/// `client_secret_post`, or `none` for public clients, RFC 6749 §2.3), refusing two methods at
/// once.
pub(crate) fn presented_credentials(
    headers: &HeaderMap,
    map: &HashMap<&str, &str>,
) -> Result<Presented, TokenError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(value).ok_or(BAD_CLIENT)?),
        None => None,
    };
    let (client_id, secret) = match basic {
        Some((id, secret)) => {
            if map.contains_key("client_secret") {
                return Err(TokenError::new(
                    ErrorCode::InvalidRequest,
                    "use one client authentication method",
                ));
            }
            if map.get("client_id").is_some_and(|form_id| *form_id != id) {
                return Err(BAD_CLIENT);
            }
            (id, Some(secret))
        }
        None => {
            let id = map.get("client_id").ok_or(BAD_CLIENT)?;
            (
                (*id).to_owned(),
                map.get("client_secret").map(|s| (*s).to_owned()),
            )
        }
    };
    Ok(Presented { client_id, secret })
}

/// Checks presented credentials against the registered clients.
pub(crate) async fn authenticate_presented(
    state: &AppState,
    presented: Presented,
) -> Result<Client, TokenError> {
    let Presented { client_id, secret } = presented;
    let client = state
        .store
        .get_client(&client_id)
        .await
        .map_err(TokenError::server)?;
    match (client, secret) {
        (Some(client), Some(secret)) => match &client.secret_hash {
            Some(hash) if state.digester.verify(&secret, hash) => Ok(client),
            _ => Err(BAD_CLIENT),
        },
        (Some(client), None) if client.is_public() => Ok(client),
        (None, Some(secret)) => {
            // Same work as a real check, so response times do not reveal which clients exist.
            let _ = state.digester.verify(
                &secret,
                "$hmac-sha256$v=1$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            );
            Err(BAD_CLIENT)
        }
        _ => Err(BAD_CLIENT),
    }
}

fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
    let unescape = |s: &str| -> Option<String> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

const BAD_GRANT: TokenError = TokenError::new(
    ErrorCode::InvalidGrant,
    "the authorization code is invalid, expired or already used",
);

async fn authorization_code(
    state: &AppState,
    client: &Client,
    map: &HashMap<&str, &str>,
) -> Result<Value, TokenError> {
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(TokenError::new(
            ErrorCode::UnauthorizedClient,
            "the client may not use this grant",
        ));
    }
    let code = map.get("code").ok_or(TokenError::new(
        ErrorCode::InvalidRequest,
        "code is required",
    ))?;
    let redirect_uri = map.get("redirect_uri").ok_or(TokenError::new(
        ErrorCode::InvalidRequest,
        "redirect_uri is required",
    ))?;
    let now = state.clock.now();
    let (record, grant) = match state
        .store
        .redeem_code(&hash_handle(code), now)
        .await
        .map_err(TokenError::server)?
    {
        CodeRedemption::Redeemed { code, grant } => (code, grant),
        CodeRedemption::Replayed { code } => {
            // RFC 6749 §4.1.2: a replayed code revokes what it issued.
            revoke_refused(
                state,
                code.grant_id,
                now,
                &code.client_id,
                None,
                "token.code_replay",
                "grant revoked",
            )
            .await?;
            return Err(BAD_GRANT);
        }
        CodeRedemption::Unknown => return Err(BAD_GRANT),
    };
    if record.client_id != client.client_id
        || record.redirect_uri != *redirect_uri
        || now >= record.expires_at
    {
        return Err(BAD_GRANT);
    }
    match (&record.code_challenge, map.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
        (None, None) => {}
        _ => {
            return Err(TokenError::new(
                ErrorCode::InvalidGrant,
                "PKCE verification failed",
            ));
        }
    }
    if grant.revoked_at.is_some() {
        return Err(BAD_GRANT);
    }
    let account = usable_account(state, grant.account_id).await?;
    let mut body = issue_tokens(state, client, &account, &grant, record.nonce.as_deref())?;
    if grant.scopes.iter().any(|s| s == "offline_access")
        && client.grant_types.iter().any(|g| g == "refresh_token")
    {
        let absolute =
            now + Duration::seconds(i64::from(state.settings.tokens.refresh_absolute_seconds));
        let version = state
            .store
            .get_institution(&account.institution_code)
            .await
            .map_err(TokenError::server)?
            .map_or(0, |i| i.settings_version);
        let refresh = issue_refresh_token(state, &grant, version, absolute).await?;
        body["refresh_token"] = Value::String(refresh);
    }
    audit(
        state,
        &client.client_id,
        Some(&account),
        "token.issue",
        AuditResult::Success,
        None,
    )
    .await?;
    Ok(body)
}

/// A new refresh token `id` (of its grant's family), valid until idle or `absolute_expires_at`,
/// bound to the institution's current `settings_version` (a settings change ends it): the row to
/// store and the value to hand out.
fn new_refresh_token(
    state: &AppState,
    id: RefreshTokenId,
    version: i64,
    absolute_expires_at: time::OffsetDateTime,
) -> Result<(RefreshToken, String), TokenError> {
    let now = state.clock.now();
    let Some((value, secret_hash)) = refresh_value::issue(id) else {
        // A family rotated four billion times ends; its client signs the person in again.
        return Err(BAD_REFRESH);
    };
    let idle = now + Duration::seconds(i64::from(state.settings.tokens.refresh_idle_seconds));
    let token = RefreshToken {
        grant_id: id.grant_id,
        generation: id.generation,
        secret_hash,
        institution_settings_version: version,
        created_at: now,
        idle_expires_at: idle.min(absolute_expires_at),
        absolute_expires_at,
        used_at: None,
    };
    Ok((token, value))
}

/// Issues and stores the first refresh token of `grant`'s family (see [`new_refresh_token`]).
async fn issue_refresh_token(
    state: &AppState,
    grant: &Grant,
    version: i64,
    absolute_expires_at: time::OffsetDateTime,
) -> Result<String, TokenError> {
    let id = RefreshTokenId {
        grant_id: grant.id,
        generation: 0,
    };
    let (token, value) = new_refresh_token(state, id, version, absolute_expires_at)?;
    state
        .store
        .insert_refresh_token(token)
        .await
        .map_err(TokenError::server)?;
    Ok(value)
}

const BAD_REFRESH: TokenError = TokenError::new(
    ErrorCode::InvalidGrant,
    "the refresh token is invalid, expired or revoked",
);

/// The refresh token grant (RFC 6749 §6) with rotation: every use spends the token and returns a
/// successor; a second use of a spent token revokes the whole family (the grant).
async fn refresh_token(
    state: &AppState,
    client: &Client,
    map: &HashMap<&str, &str>,
) -> Result<Value, TokenError> {
    if !client.grant_types.iter().any(|g| g == "refresh_token") {
        return Err(TokenError::new(
            ErrorCode::UnauthorizedClient,
            "the client may not use this grant",
        ));
    }
    let presented = map.get("refresh_token").ok_or(TokenError::new(
        ErrorCode::InvalidRequest,
        "refresh_token is required",
    ))?;
    let now = state.clock.now();
    let presented = refresh_value::Presented::parse(presented);
    // Every check reads; only a refresh that passes them all writes, and then in one grouped
    // transaction that spends the token only if it is still unspent (so of concurrent uses
    // exactly one wins), inserts the successor and appends the audit row.
    let Some(family) = state
        .store
        .get_refresh_family(&presented.key)
        .await
        .map_err(TokenError::server)?
    else {
        return Err(BAD_REFRESH);
    };
    if !presented.matches(&family.token) {
        return Err(BAD_REFRESH);
    }
    let RefreshFamily {
        token,
        grant,
        account,
        institution,
    } = &family;
    if token.used_at.is_some() {
        return Err(refresh_reused(state, token, now, &client.client_id).await?);
    }
    if grant.client_id != client.client_id {
        // A token presented by another client is spent and its family ends.
        spend_refused(state, token.id(), now).await?;
        state
            .store
            .revoke_grant(grant.id, now)
            .await
            .map_err(TokenError::server)?;
        return Err(BAD_REFRESH);
    }
    match live_family(state, &family, now) {
        Ok(()) => {}
        Err(RefreshRefusal::Dead) => {
            spend_refused(state, token.id(), now).await?;
            return Err(BAD_REFRESH);
        }
        Err(RefreshRefusal::Refused(reason)) => {
            spend_refused(state, token.id(), now).await?;
            revoke_refused(
                state,
                grant.id,
                now,
                &client.client_id,
                Some(account),
                "token.refresh_refused",
                &reason,
            )
            .await?;
            return Err(BAD_REFRESH);
        }
    }
    if let Some(requested) = map.get("scope")
        && !requested
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| grant.scopes.iter().any(|g| g == s))
    {
        return Err(TokenError::new(
            ErrorCode::InvalidScope,
            "a refresh may not widen the scope",
        ));
    }
    let mut body = issue_tokens(state, client, account, grant, None)?;
    let (successor, value) = new_refresh_token(
        state,
        token.id().successor(),
        institution.settings_version,
        token.absolute_expires_at,
    )?;
    let rotated = state
        .store
        .rotate_refresh_token(store::Rotation {
            spent: token.id(),
            at: now,
            successor,
            audit: audit_event(
                state,
                &client.client_id,
                Some(account),
                "token.refresh",
                AuditResult::Success,
                None,
            ),
        })
        .await
        .map_err(TokenError::server)?;
    if !rotated {
        // Another use of the same token won the race: this one is a reuse.
        return Err(refresh_reused(state, token, now, &client.client_id).await?);
    }
    body["refresh_token"] = Value::String(value);
    Ok(body)
}

/// A spent refresh token presented again: its whole family ends (RFC 9700 §4.14.2).
async fn refresh_reused(
    state: &AppState,
    token: &RefreshToken,
    now: time::OffsetDateTime,
    client_id: &str,
) -> Result<TokenError, TokenError> {
    revoke_refused(
        state,
        token.grant_id,
        now,
        client_id,
        None,
        "token.refresh_reuse",
        "family revoked",
    )
    .await?;
    Ok(BAD_REFRESH)
}

/// Spends a refresh token that is refused, so that it can never be used later.
async fn spend_refused(
    state: &AppState,
    id: RefreshTokenId,
    now: time::OffsetDateTime,
) -> Result<(), TokenError> {
    state
        .store
        .redeem_refresh_token(id, now)
        .await
        .map(|_| ())
        .map_err(TokenError::server)
}

/// Why a refresh token may not be used now.
pub(crate) enum RefreshRefusal {
    /// Expired, its grant revoked, issued before the account's last lock, or its account gone
    /// or unable to act: nothing to record.
    Dead,
    /// Alive, but refused by [`refresh_refusal`] for this reason; the family ends and the
    /// reason is audited.
    Refused(String),
}

/// Whether a refresh with the token of `family` may succeed now: the token within its idle and
/// absolute lifetimes, the grant not revoked, the account able to act and not locked since the
/// token was issued (`service::authentication::outlived_locks`), and not refused by
/// [`refresh_refusal`]. Whether the token is unspent and presented by its own client is the
/// caller's check. One rule for the grant and introspection.
pub(crate) fn live_family(
    state: &AppState,
    family: &RefreshFamily,
    now: time::OffsetDateTime,
) -> Result<(), RefreshRefusal> {
    let RefreshFamily {
        token,
        grant,
        account,
        institution,
    } = family;
    if grant.revoked_at.is_some()
        || now >= token.idle_expires_at
        || now >= token.absolute_expires_at
        || !service::authentication::may_act(account, now, &state.settings.lockout)
        || !service::authentication::outlived_locks(account, token.created_at)
    {
        return Err(RefreshRefusal::Dead);
    }
    match refresh_refusal(state, token, account, institution, now) {
        Some(reason) => Err(RefreshRefusal::Refused(reason)),
        None => Ok(()),
    }
}

/// Why a live refresh token of a usable account may not be used now: the institution's settings
/// changed since it was issued, or the account is outside its usage dates or login hours.
fn refresh_refusal(
    state: &AppState,
    token: &RefreshToken,
    account: &Account,
    institution: &store::Institution,
    now: time::OffsetDateTime,
) -> Option<String> {
    if institution.settings_version != token.institution_settings_version {
        return Some("institution_settings_changed".to_owned());
    }
    let window = policies::usage::UsageWindow {
        start: account.usage_start,
        end: account.usage_end,
    };
    let hours = state.authenticator.login_hours(Some(institution));
    policies::usage::check_sign_in_window(&window, hours.as_ref(), now)
        .err()
        .map(|r| r.rule().to_owned())
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !valid {
        return false;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(digest.as_ref());
    aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
        .is_ok()
}

/// The account behind a grant, if it may still receive tokens.
async fn usable_account(state: &AppState, id: Uuid) -> Result<Account, TokenError> {
    let account = state
        .store
        .get_account(id)
        .await
        .map_err(TokenError::server)?
        .ok_or(BAD_GRANT)?;
    let now = state.clock.now();
    if !service::authentication::may_act(&account, now, &state.settings.lockout) {
        return Err(BAD_GRANT);
    }
    Ok(account)
}

fn issue_tokens(
    state: &AppState,
    client: &Client,
    account: &Account,
    grant: &Grant,
    nonce: Option<&str>,
) -> Result<Value, TokenError> {
    let keys = state.keys.current();
    let now = state.clock.now();
    let issuer = state.settings.issuer();
    let kind = account.institution_code.kind();
    let access_ttl = i64::from(state.settings.tokens.access_token_seconds);
    let scope = grant.scopes.join(" ");

    let mut access = account_claims(account, kind, &grant.scopes);
    access.insert("iss".into(), json!(issuer));
    access.insert("aud".into(), json!(issuer));
    access.insert("client_id".into(), json!(client.client_id));
    access.insert("iat".into(), json!(now.unix_timestamp()));
    access.insert(
        "exp".into(),
        json!((now + Duration::seconds(access_ttl)).unix_timestamp()),
    );
    access.insert("jti".into(), json!(Uuid::now_v7().to_string()));
    access.insert("scope".into(), json!(scope));
    access.insert("auth_time".into(), json!(grant.auth_time.unix_timestamp()));
    access.insert("acr".into(), json!(grant.acr));
    access.insert("amr".into(), json!(grant.amr));
    access.insert("gid".into(), json!(grant.id.to_string()));
    let access_token = jwt::sign(&keys, &client.signing_alg, "at+jwt", &Value::Object(access))
        .map_err(TokenError::server)?;

    let mut id = account_claims(account, kind, &grant.scopes);
    id.insert("iss".into(), json!(issuer));
    id.insert("aud".into(), json!(client.client_id));
    id.insert("azp".into(), json!(client.client_id));
    id.insert("iat".into(), json!(now.unix_timestamp()));
    id.insert(
        "exp".into(),
        json!(
            (now + Duration::seconds(i64::from(state.settings.tokens.id_token_seconds)))
                .unix_timestamp()
        ),
    );
    id.insert("auth_time".into(), json!(grant.auth_time.unix_timestamp()));
    id.insert("acr".into(), json!(grant.acr));
    id.insert("amr".into(), json!(grant.amr));
    id.insert(
        "at_hash".into(),
        json!(jwt::at_hash(&client.signing_alg, &access_token)),
    );
    if let Some(sid) = &grant.session_id_hash {
        id.insert("sid".into(), json!(session_id_claim(sid)));
    }
    if let Some(nonce) = nonce {
        id.insert("nonce".into(), json!(nonce));
    }
    let id_token = jwt::sign(&keys, &client.signing_alg, "JWT", &Value::Object(id))
        .map_err(TokenError::server)?;

    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": access_ttl,
        "id_token": id_token,
        "scope": scope,
    }))
}

/// The `sid` claim: derived from the stored session hash, so it identifies the session to
/// clients (for logout) without being usable as a cookie.
pub fn session_id_claim(session_id_hash: &str) -> String {
    hash_handle(session_id_hash)[..22].to_owned()
}

/// Revokes grant `grant_id` because of a refused token request and audits the failure: who
/// asked (`client_id`), whose grant it was (if known), the audit kind and the reason.
async fn revoke_refused(
    state: &AppState,
    grant_id: Uuid,
    now: time::OffsetDateTime,
    client_id: &str,
    account: Option<&Account>,
    kind: &str,
    reason: &str,
) -> Result<(), TokenError> {
    state
        .store
        .revoke_grant(grant_id, now)
        .await
        .map_err(TokenError::server)?;
    audit(
        state,
        client_id,
        account,
        kind,
        AuditResult::Failure,
        Some(reason),
    )
    .await
}

async fn audit(
    state: &AppState,
    client_id: &str,
    account: Option<&Account>,
    kind: &str,
    result: AuditResult,
    reason: Option<&str>,
) -> Result<(), TokenError> {
    state
        .store
        .append_audit(audit_event(state, client_id, account, kind, result, reason))
        .await
        .map_err(TokenError::server)
}

/// The audit row of a token request by `client_id` about `account`.
fn audit_event(
    state: &AppState,
    client_id: &str,
    account: Option<&Account>,
    kind: &str,
    result: AuditResult,
    reason: Option<&str>,
) -> NewAuditEvent {
    NewAuditEvent {
        at: state.clock.now(),
        kind: kind.into(),
        actor_account_id: account.map(|a| a.id),
        actor: format!("client:{client_id}"),
        target_account_id: account.map(|a| a.id),
        target: account.map(|a| format!("{}/{}", a.institution_code, a.user_id)),
        institution_code: account.map(|a| a.institution_code.as_str().to_owned()),
        ip: None,
        user_agent: None,
        result,
        reason: reason.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"
        ));
        assert!(!pkce_matches(challenge, "short"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let value = HeaderValue::from_str(&format!(
            "Basic {}",
            STANDARD.encode("my%20client:s%3Acret+x")
        ))
        .unwrap();
        assert_eq!(
            parse_basic(&value),
            Some(("my client".into(), "s:cret x".into()))
        );
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
    }
}
