//! Ending sessions: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at the
//! `end_session_endpoint`, and back-channel logout (OpenID Connect Back-Channel Logout 1.0)
//! notifications to every client that received tokens in the session.
//!
//! A logout request with a valid `id_token_hint` for the signed-in account ends the session at
//! once; without one the user confirms on a page (a cross-site link alone cannot sign anyone out).
//! `post_logout_redirect_uri` must be registered for the client; otherwise no redirect happens.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use service::authentication::RequestContext;
use time::Duration;

use super::jwt;
use super::request::{open_json, seal_json};
use super::token::session_id_claim;
use crate::http::AppState;
use crate::pages::Locale;
use crate::pages::login::{request_context, server_error};
use crate::session::{self, Live};

type Params = Vec<(String, String)>;

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    end_session(state, peer, headers, params).await
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    end_session(state, peer, headers, params).await
}

/// Where to go after the logout, sealed into the confirmation form.
#[derive(Serialize, Deserialize)]
struct After {
    redirect: Option<String>,
    state: Option<String>,
    expires_at: i64,
}

const CONFIRM_PURPOSE: &str = "logout-confirmation";

async fn end_session(
    state: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let locale = Locale::from_headers(&headers);
    let map: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    // The hint names the client and the account; expired ID tokens are fine as hints.
    let hint = match map.get("id_token_hint") {
        Some(token) => match jwt::verify(&state.keys.current(), token, "JWT") {
            Ok(claims)
                if claims.get("iss").and_then(Value::as_str) == Some(state.settings.issuer()) =>
            {
                Some(claims)
            }
            _ => {
                return state
                    .pages
                    .error(StatusCode::BAD_REQUEST, locale, "bad_logout_request");
            }
        },
        None => None,
    };
    let hinted_client = hint
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(Value::as_str);
    let client_id = match (hinted_client, map.get("client_id").copied()) {
        (Some(a), Some(b)) if a != b => {
            return state
                .pages
                .error(StatusCode::BAD_REQUEST, locale, "bad_logout_request");
        }
        (a, b) => a.or(b),
    };
    let redirect = match map.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client_id) = client_id else {
                return state
                    .pages
                    .error(StatusCode::BAD_REQUEST, locale, "bad_logout_request");
            };
            match state.store.get_client(client_id).await {
                Ok(Some(client)) if client.post_logout_redirect_uris.iter().any(|r| r == uri) => {
                    Some((*uri).to_owned())
                }
                Ok(_) => {
                    return state.pages.error(
                        StatusCode::BAD_REQUEST,
                        locale,
                        "bad_logout_request",
                    );
                }
                Err(e) => return server_error(&state, locale, e),
            }
        }
    };
    let after = After {
        redirect,
        state: map.get("state").map(|s| (*s).to_owned()),
        expires_at: (state.clock.now() + Duration::minutes(10)).unix_timestamp(),
    };

    let live = match session::current(&state, &headers).await {
        Ok(live) => live,
        Err(e) => return server_error(&state, locale, e),
    };
    let Some(live) = live else {
        // Nobody is signed in here: nothing to end.
        return finish(&state, locale, &after, None);
    };
    let hint_matches = hint
        .as_ref()
        .and_then(|c| c.get("sub"))
        .and_then(Value::as_str)
        == Some(live.account.id.to_string().as_str());
    if hint_matches {
        let ctx = request_context(&headers, peer);
        if let Err(e) = end_browser_session(&state, &live, "rp_logout", &ctx).await {
            return server_error(&state, locale, e);
        }
        return finish(&state, locale, &after, Some(clear_cookie()));
    }
    let (csrf_token, cookie) = state.csrf.issue(&headers);
    state.pages.render(
        StatusCode::OK,
        "logout_confirm.html",
        locale,
        minijinja::context! { csrf_token, after => seal_json(&state.sealer, CONFIRM_PURPOSE, &after) },
        &[after.redirect.as_deref().unwrap_or("")],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    after: String,
}

/// The user confirmed the logout.
pub async fn confirm(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    if !state.csrf.check(&headers, &form.csrf_token) {
        return state
            .pages
            .error(StatusCode::FORBIDDEN, locale, "form_expired");
    }
    let Some(after) = open_json::<After>(&state.sealer, CONFIRM_PURPOSE, &form.after)
        .filter(|a| a.expires_at > state.clock.now().unix_timestamp())
    else {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "form_expired");
    };
    match session::current(&state, &headers).await {
        Ok(Some(live)) => {
            let ctx = request_context(&headers, peer);
            if let Err(e) = end_browser_session(&state, &live, "rp_logout", &ctx).await {
                return server_error(&state, locale, e);
            }
        }
        Ok(None) => {}
        Err(e) => return server_error(&state, locale, e),
    }
    finish(&state, locale, &after, Some(clear_cookie()))
}

fn clear_cookie() -> String {
    session::set_cookie(session::COOKIE, "", "Lax", Some(0))
}

fn finish(state: &AppState, locale: Locale, after: &After, cookie: Option<String>) -> Response {
    let mut response = match &after.redirect {
        Some(uri) => {
            let mut pairs = Vec::new();
            if let Some(s) = &after.state {
                pairs.push(("state", s.as_str()));
            }
            super::authorize::redirect_with(uri, &pairs)
        }
        None => state.pages.render(
            StatusCode::OK,
            "signed_out.html",
            locale,
            minijinja::context! {},
            &[],
            &[],
        ),
    };
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Ends a browser session: deletes it, audits the end, and notifies every client that received
/// tokens in it through its back-channel logout URI.
pub async fn end_browser_session(
    state: &AppState,
    live: &Live,
    reason: &str,
    ctx: &RequestContext,
) -> Result<(), service::ServiceError> {
    state.store.delete_session(&live.session.id_hash).await?;
    state
        .authenticator
        .session_ended(&live.account, reason, ctx)
        .await?;
    notify_backchannel(state, &live.session.id_hash, &live.account).await?;
    Ok(())
}

/// Sends a logout token to each client of the session that registered a back-channel logout URI.
/// Deliveries run in the background with retries, so a slow client never delays the user.
async fn notify_backchannel(
    state: &AppState,
    session_id_hash: &str,
    account: &store::Account,
) -> Result<(), service::ServiceError> {
    let grants = state.store.grants_of_session(session_id_hash).await?;
    let clients: BTreeSet<String> = grants.into_iter().map(|g| g.client_id).collect();
    for client_id in clients {
        let Some(client) = state.store.get_client(&client_id).await? else {
            continue;
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let now = state.clock.now();
        let claims = json!({
            "iss": state.settings.issuer(),
            "aud": client.client_id,
            "iat": now.unix_timestamp(),
            "exp": (now + Duration::minutes(2)).unix_timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": account.id.to_string(),
            "sid": session_id_claim(session_id_hash),
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        let token = match jwt::sign(
            &state.keys.current(),
            &client.signing_alg,
            "logout+jwt",
            &claims,
        ) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, client = %client.client_id, "cannot sign a logout token");
                continue;
            }
        };
        let http = state.http.clone();
        let store = state.store.clone();
        let clock = state.clock.clone();
        tokio::spawn(async move {
            let delivered = deliver(&http, &uri, &token).await;
            let event = store::NewAuditEvent {
                at: clock.now(),
                kind: "logout.backchannel".into(),
                actor_account_id: None,
                actor: "system".into(),
                target_account_id: None,
                target: Some(format!("client:{}", client.client_id)),
                institution_code: None,
                ip: None,
                user_agent: None,
                result: if delivered {
                    store::AuditResult::Success
                } else {
                    store::AuditResult::Failure
                },
                reason: (!delivered).then(|| "not delivered after retries".to_owned()),
            };
            if let Err(e) = store.append_audit(event).await {
                tracing::warn!(error = %e, "cannot audit a back-channel logout");
            }
        });
    }
    Ok(())
}

/// POSTs the logout token, retrying with backoff (0.5 s, 1 s, 2 s) on errors and 5xx answers.
async fn deliver(http: &reqwest::Client, uri: &str, token: &str) -> bool {
    let mut wait = StdDuration::from_millis(500);
    for attempt in 1..=4 {
        match http.post(uri).form(&[("logout_token", token)]).send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) if response.status().is_client_error() => {
                tracing::warn!(status = %response.status(), %uri, "back-channel logout refused by the client");
                return false;
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), attempt, %uri, "back-channel logout failed; retrying")
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, %uri, "back-channel logout failed; retrying")
            }
        }
        if attempt < 4 {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    false
}
