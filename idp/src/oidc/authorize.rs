//! The authorization endpoint (OpenID Connect Core §3.1.2, RFC 6749 §4.1, RFC 7636, RFC 9207).
//!
//! An unknown client or an unregistered redirect URI gets an error page and is never redirected
//! to; every later error goes back to the client as an RFC 6749 §4.1.2.1 error response.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use store::{Account, AuthorizationCode, Client, Grant, Session};
use time::Duration;
use uuid::Uuid;

use super::error::ErrorCode;
use super::request::AuthorizationRequest;
use super::{ACR_MFA, ACR_PASSWORD, SCOPES, hash_handle};
use crate::http::AppState;
use crate::pages::Locale;
use crate::session;

type Params = Vec<(String, String)>;

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    authorize(state, headers, params).await
}

pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    authorize(state, headers, params).await
}

/// An error to send back to the client's redirect URI.
struct Redirected {
    code: ErrorCode,
    description: &'static str,
}

const fn refuse(code: ErrorCode, description: &'static str) -> Redirected {
    Redirected { code, description }
}

async fn authorize(state: AppState, headers: HeaderMap, params: Params) -> Response {
    let locale = Locale::from_headers(&headers);
    let mut map: HashMap<&str, &str> = HashMap::with_capacity(params.len());
    let mut duplicated = false;
    for (k, v) in &params {
        duplicated |= map.insert(k.as_str(), v.as_str()).is_some();
    }

    // Until the client and redirect URI are known to be registered, errors stay on our page.
    let Some(client_id) = map.get("client_id") else {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "missing_parameter");
    };
    let client = match state.store.get_client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return state
                .pages
                .error(StatusCode::BAD_REQUEST, locale, "unknown_client");
        }
        Err(e) => return server_error(&state, locale, e),
    };
    let Some(redirect_uri) = map.get("redirect_uri") else {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "missing_parameter");
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "bad_redirect_uri");
    }
    let state_param = map.get("state").map(|s| (*s).to_owned());
    let back = |err: Redirected| error_redirect(&state, redirect_uri, err, state_param.as_deref());

    if duplicated {
        return back(refuse(
            ErrorCode::InvalidRequest,
            "a parameter was given more than once",
        ));
    }
    let request = match validate(&client, &map) {
        Ok(request) => request,
        Err(err) => return back(err),
    };
    let prompt: Vec<&str> = map
        .get("prompt")
        .map(|p| p.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if prompt.contains(&"none") && prompt.len() > 1 {
        return back(refuse(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let force_login = prompt
        .iter()
        .any(|p| matches!(*p, "login" | "select_account"));

    let live = match session::current(&state, &headers).await {
        Ok(live) => live,
        Err(e) => return server_error(&state, locale, e),
    };
    let now = state.clock.now();
    let usable = live.filter(|live| {
        !force_login
            && request
                .max_age
                .is_none_or(|max_age| now - live.session.auth_time <= Duration::seconds(max_age))
            && (!request.step_up || live.session.amr.iter().any(|a| a == "mfa"))
    });
    match usable {
        Some(live) => match issue_code(&state, &live.account, &live.session, &request).await {
            Ok(response) => response,
            Err(e) => server_error(&state, locale, e),
        },
        None if prompt.contains(&"none") => {
            back(refuse(ErrorCode::LoginRequired, "the user must sign in"))
        }
        None => crate::pages::login::show(
            &state,
            &headers,
            locale,
            &crate::pages::login::Continuation::Authorize(request),
            false,
            "",
            "",
        ),
    }
}

fn validate(
    client: &Client,
    map: &HashMap<&str, &str>,
) -> Result<AuthorizationRequest, Redirected> {
    if map.contains_key("request") {
        return Err(refuse(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if map.contains_key("request_uri") {
        return Err(refuse(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    if map.contains_key("registration") {
        return Err(refuse(
            ErrorCode::RegistrationNotSupported,
            "registration is not supported",
        ));
    }
    match map.get("response_type") {
        Some(&"code") => {}
        Some(_) => {
            return Err(refuse(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "response_type is required",
            ));
        }
    }
    if map.get("response_mode").is_some_and(|m| *m != "query") {
        return Err(refuse(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(refuse(
            ErrorCode::UnauthorizedClient,
            "the client may not use the authorization code grant",
        ));
    }

    let mut scopes: Vec<String> = Vec::new();
    for scope in map
        .get("scope")
        .copied()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        if !SCOPES.contains(&scope) || !client.scopes.iter().any(|s| s == scope) {
            return Err(refuse(
                ErrorCode::InvalidScope,
                "a requested scope is not allowed for this client",
            ));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(refuse(
            ErrorCode::InvalidScope,
            "the openid scope is required",
        ));
    }

    let challenge = map.get("code_challenge").map(|c| (*c).to_owned());
    match (
        challenge.as_deref(),
        map.get("code_challenge_method").copied(),
    ) {
        (None, None) if client.is_public() => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "public clients must use PKCE (code_challenge with S256)",
            ));
        }
        (None, None) => {}
        (None, Some(_)) => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge",
            ));
        }
        (Some(_), Some("S256")) => {}
        (Some(_), _) => {
            return Err(refuse(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not allowed)",
            ));
        }
    }
    if let Some(c) = &challenge
        && (c.len() != 43
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(refuse(
            ErrorCode::InvalidRequest,
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }
    let nonce = map.get("nonce").map(|n| (*n).to_owned());
    if nonce.as_ref().is_some_and(|n| n.len() > 512)
        || map.get("state").is_some_and(|s| s.len() > 2048)
    {
        return Err(refuse(
            ErrorCode::InvalidRequest,
            "state or nonce is too long",
        ));
    }
    let max_age = match map.get("max_age") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(refuse(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    let login_hint = map.get("login_hint").map(|h| h.chars().take(64).collect());
    let step_up = map
        .get("acr_values")
        .is_some_and(|v| demands_second_factor(v));
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: map
            .get("redirect_uri")
            .map(|r| (*r).to_owned())
            .unwrap_or_default(),
        scopes,
        state: map.get("state").map(|s| (*s).to_owned()),
        nonce,
        code_challenge: challenge,
        max_age,
        login_hint,
        step_up,
    })
}

/// Whether `acr_values` (a space-separated preference list, OpenID Connect Core §3.1.2.1)
/// demands a second factor: it names [`ACR_MFA`] and does not accept [`ACR_PASSWORD`]. Values
/// this provider does not know are ignored, as for any voluntary claim request.
fn demands_second_factor(acr_values: &str) -> bool {
    let values: Vec<&str> = acr_values.split(' ').filter(|s| !s.is_empty()).collect();
    values.contains(&ACR_MFA) && !values.contains(&ACR_PASSWORD)
}

/// Issues a code for a signed-in account and redirects back to the client.
pub async fn issue_code(
    state: &AppState,
    account: &Account,
    session: &Session,
    request: &AuthorizationRequest,
) -> Result<Response, store::StoreError> {
    let now = state.clock.now();
    let code = service::random::token();
    let grant = Grant {
        id: Uuid::now_v7(),
        account_id: account.id,
        client_id: request.client_id.clone(),
        session_id_hash: Some(session.id_hash.clone()),
        scopes: request.scopes.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        acr: if session.amr.iter().any(|a| a == "mfa") {
            ACR_MFA
        } else {
            ACR_PASSWORD
        }
        .to_owned(),
        created_at: now,
        revoked_at: None,
        retain_until: crate::retention::grant_retained_until(&state.settings, now, &request.scopes),
    };
    let record = AuthorizationCode {
        code_hash: hash_handle(&code),
        grant_id: grant.id,
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        created_at: now,
        expires_at: now
            + Duration::seconds(i64::from(state.settings.tokens.authorization_code_seconds)),
        used_at: None,
    };
    state.store.create_grant_with_code(grant, record).await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", state.settings.issuer()));
    Ok(redirect_with(&request.redirect_uri, &pairs))
}

fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    err: Redirected,
    state_param: Option<&str>,
) -> Response {
    let mut pairs = vec![
        ("error", err.code.as_str()),
        ("error_description", err.description),
    ];
    if let Some(s) = state_param {
        pairs.push(("state", s));
    }
    pairs.push(("iss", state.settings.issuer()));
    redirect_with(redirect_uri, &pairs)
}

/// A 303 to `uri` with `pairs` appended to its query.
pub fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(uri) {
        Ok(url) => url,
        Err(_) => return (StatusCode::BAD_REQUEST, "invalid redirect URI").into_response(),
    };
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn server_error(state: &AppState, locale: Locale, err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "authorization endpoint failed");
    state
        .pages
        .error(StatusCode::INTERNAL_SERVER_ERROR, locale, "server_error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_values_demand_a_second_factor_only_when_a_password_alone_is_not_accepted() {
        let rows: &[(&str, bool)] = &[
            ("urn:sekimori:acr:mfa", true),
            (" urn:sekimori:acr:mfa  ", true),
            ("urn:example:other urn:sekimori:acr:mfa", true),
            ("urn:sekimori:acr:mfa urn:sekimori:acr:password", false),
            ("urn:sekimori:acr:password", false),
            ("urn:example:other", false),
            ("", false),
        ];
        for (value, expected) in rows {
            assert_eq!(demands_second_factor(value), *expected, "{value:?}");
        }
    }
}
