//! Browser sessions: a random value in a Secure, HttpOnly, SameSite=Lax cookie; only its hash is
//! stored. A session ends after `session.idle_timeout_minutes` without use, at the latest
//! `session.absolute_timeout_hours` after sign-in, and as soon as its account is locked,
//! disabled, deleted, or its institution's settings change.

use axum::http::HeaderMap;
use store::{Account, Session};
use time::Duration;

use crate::http::AppState;
use crate::oidc::hash_handle;

pub const COOKIE: &str = "sekimori_session";

/// Reads a cookie value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the attributes every Sekimori cookie carries.
pub fn set_cookie(name: &str, value: &str, same_site: &str, max_age: Option<i64>) -> String {
    let mut out = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}");
    if let Some(seconds) = max_age {
        out.push_str(&format!("; Max-Age={seconds}"));
    }
    out
}

pub struct Live {
    pub session: Session,
    pub account: Account,
}

/// Starts a session for an account that just signed in; returns the `Set-Cookie` value.
pub async fn start(
    state: &AppState,
    account: &Account,
    amr: Vec<String>,
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<(Session, String), store::StoreError> {
    let now = state.clock.now();
    let value = service::random::token();
    let settings_version = state
        .store
        .get_institution(&account.institution_code)
        .await?
        .map_or(0, |i| i.settings_version);
    let session = Session {
        id_hash: hash_handle(&value),
        account_id: account.id,
        institution_settings_version: settings_version,
        auth_time: now,
        amr,
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(i64::from(state.settings.session.absolute_timeout_hours)),
        ip,
        user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
    };
    state.store.create_session(session.clone()).await?;
    Ok((session, set_cookie(COOKIE, &value, "Lax", None)))
}

/// The live session of this request, if any. Expired or no longer valid sessions are deleted.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Live>, store::StoreError> {
    let Some(value) = cookie(headers, COOKIE).filter(|v| v.len() <= 64) else {
        return Ok(None);
    };
    let id_hash = hash_handle(value);
    let Some(session) = state.store.get_session(&id_hash).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let idle = Duration::minutes(i64::from(state.settings.session.idle_timeout_minutes));
    let account = state.store.get_account(session.account_id).await?;
    let institution = match &account {
        Some(a) => state.store.get_institution(&a.institution_code).await?,
        None => None,
    };
    let valid = match (&account, &institution) {
        (Some(account), Some(institution)) => {
            now < session.expires_at
                && now < session.last_seen_at + idle
                && service::authentication::may_act(account, now, &state.settings.lockout)
                && session.institution_settings_version == institution.settings_version
        }
        _ => false,
    };
    match account {
        Some(account) if valid => {
            // Refresh the idle timer at most once a minute to keep session reads cheap.
            if now - session.last_seen_at > Duration::minutes(1) {
                state.store.touch_session(&id_hash, now).await?;
            }
            Ok(Some(Live { session, account }))
        }
        _ => {
            state.store.delete_session(&id_hash).await?;
            Ok(None)
        }
    }
}
