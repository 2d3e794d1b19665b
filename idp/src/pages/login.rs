//! The login page and the forced password change that follows a sign-in with an initial
//! password (SPEC §5, §10). Failures show one generic message whatever the reason.
//!
//! What happens after a sign-in is carried in the form as a sealed [`Continuation`]: an
//! authorization request to finish, or the account page. The order is: password, then the
//! forced password change when the password is an initial one, then the second factor when
//! one is required ([`super::second_factor`]); only then does [`complete`] start the session.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use service::ServiceError;
use service::authentication::{PageSignIn, RequestContext, SignIn};
use time::Duration;
use uuid::Uuid;

use super::Locale;
use crate::http::AppState;
use crate::oidc::authorize::issue_code;
use crate::oidc::request::{AuthorizationRequest, PENDING_SECONDS, open_json, seal_json};
use crate::session;

/// Where a successful sign-in leads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Continuation {
    Authorize(AuthorizationRequest),
    Account,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    next: Continuation,
    expires_at: i64,
}

const LOGIN_PURPOSE: &str = "login-continuation";

impl Continuation {
    pub(crate) fn client(&self) -> Option<(&str, &str)> {
        match self {
            Continuation::Authorize(r) => Some((&r.client_id, &r.redirect_uri)),
            Continuation::Account => None,
        }
    }
}

/// Renders the login page.
pub fn show(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    next: &Continuation,
    failed: bool,
    institution_code: &str,
    user_id: &str,
) -> Response {
    let (csrf_token, cookie) = state.csrf.issue(headers);
    let hint = match next {
        Continuation::Authorize(r) => r.login_hint.as_deref(),
        Continuation::Account => None,
    };
    let (hint_code, hint_user) = split_hint(hint);
    let institution_code = if institution_code.is_empty() {
        hint_code
    } else {
        institution_code
    };
    let user_id = if user_id.is_empty() {
        hint_user
    } else {
        user_id
    };
    let status = if failed {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let sealed = Sealed {
        next: next.clone(),
        expires_at: (state.clock.now() + Duration::seconds(PENDING_SECONDS)).unix_timestamp(),
    };
    let (client_id, redirect_uri) = next.client().unwrap_or(("", ""));
    state.pages.render(
        status,
        "login.html",
        locale,
        minijinja::context! {
            csrf_token,
            req => seal_json(&state.sealer, LOGIN_PURPOSE, &sealed),
            client_id,
            failed,
            institution_code,
            user_id,
            forgot => state.settings.second_factor.forgotten_password,
        },
        &[redirect_uri],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// `login_hint` may be `user_id@institution_code` (as machine client IDs are written) or a user ID.
fn split_hint(hint: Option<&str>) -> (&str, &str) {
    match hint {
        Some(h) => match h.rsplit_once('@') {
            Some((user, code)) => (code, user),
            None => ("", h),
        },
        None => ("", ""),
    }
}

/// `GET /login`: signing in to manage one's own account.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let locale = Locale::from_headers(&headers);
    show(
        &state,
        &headers,
        locale,
        &Continuation::Account,
        false,
        "",
        "",
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    req: String,
    #[serde(default)]
    institution_code: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    password: String,
}

pub fn request_context(headers: &HeaderMap, peer: SocketAddr) -> RequestContext {
    RequestContext {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    if !state.csrf.check(&headers, &form.csrf_token) {
        return state
            .pages
            .error(StatusCode::FORBIDDEN, locale, "form_expired");
    }
    let now = state.clock.now();
    let Some(sealed) = open_json::<Sealed>(&state.sealer, LOGIN_PURPOSE, &form.req)
        .filter(|s| s.expires_at > now.unix_timestamp())
    else {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "form_expired");
    };
    let next = sealed.next;
    if let Some(limited) =
        super::limit_login(&state, locale, peer, &form.institution_code, &form.user_id).await
    {
        return limited;
    }
    let ctx = request_context(&headers, peer);
    let step_up = matches!(&next, Continuation::Authorize(request) if request.step_up);
    let outcome = match state
        .authenticator
        .sign_in_on_page(
            &form.institution_code,
            &form.user_id,
            &form.password,
            PageSignIn {
                trusted_networks: Some(&state.settings.second_factor.trusted_networks),
                step_up,
            },
            &ctx,
        )
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return server_error(&state, locale, e),
    };
    match outcome {
        SignIn::Failure(_) => show(
            &state,
            &headers,
            locale,
            &next,
            true,
            bounded(&form.institution_code, 10),
            bounded(&form.user_id, 8),
        ),
        SignIn::Success {
            account,
            must_change_password: true,
            second_factor_required,
        } => {
            let pending = Pending {
                account_id: account.id,
                next,
                second_factor: second_factor_required,
                expires_at: (now + Duration::minutes(15)).unix_timestamp(),
            };
            show_change(&state, &headers, locale, &pending, &[])
        }
        SignIn::Success {
            account,
            second_factor_required: true,
            ..
        } => super::second_factor::begin(&state, &headers, locale, &account, next, &ctx).await,
        SignIn::Success { account, .. } => {
            complete(&state, &account, &next, ctx, vec!["pwd".into()]).await
        }
    }
}

fn bounded(raw: &str, max: usize) -> &str {
    match raw.char_indices().nth(max) {
        Some((i, _)) => &raw[..i],
        None => raw,
    }
}

/// A sign-in waiting for its forced password change, sealed into the form.
#[derive(Serialize, Deserialize)]
struct Pending {
    account_id: Uuid,
    next: Continuation,
    /// A second factor follows the change.
    #[serde(default)]
    second_factor: bool,
    expires_at: i64,
}

const PENDING_PURPOSE: &str = "forced-password-change";

fn show_change(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    pending: &Pending,
    violations: &[String],
) -> Response {
    let (csrf_token, cookie) = state.csrf.issue(headers);
    let status = if violations.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let (_, redirect_uri) = pending.next.client().unwrap_or(("", ""));
    state.pages.render(
        status,
        "password_change.html",
        locale,
        minijinja::context! {
            csrf_token,
            pending => seal_json(&state.sealer, PENDING_PURPOSE, pending),
            action => "/login/password",
            violations => minijinja::Value::from(minijinja::value::Serde(violations)),
        },
        &[redirect_uri],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    pending: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

pub async fn change(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    if !state.csrf.check(&headers, &form.csrf_token) {
        return state
            .pages
            .error(StatusCode::FORBIDDEN, locale, "form_expired");
    }
    let Some(pending) = open_json::<Pending>(&state.sealer, PENDING_PURPOSE, &form.pending)
        .filter(|p| p.expires_at > state.clock.now().unix_timestamp())
    else {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "form_expired");
    };
    let ctx = request_context(&headers, peer);
    let changed = state
        .authenticator
        .change_password(
            pending.account_id,
            None,
            &form.new_password,
            &form.new_password_confirm,
            None,
            &ctx,
        )
        .await;
    match changed {
        Ok(_) => {}
        Err(ServiceError::Invalid { violations, .. }) => {
            let messages: Vec<String> = violations
                .iter()
                .map(|v| locale.pick(&v.message_ja, &v.message_en).to_owned())
                .collect();
            return show_change(&state, &headers, locale, &pending, &messages);
        }
        Err(e) => return server_error(&state, locale, e),
    }
    let account = match state.store.get_account(pending.account_id).await {
        Ok(Some(account)) => account,
        Ok(None) => {
            return state
                .pages
                .error(StatusCode::BAD_REQUEST, locale, "form_expired");
        }
        Err(e) => return server_error(&state, locale, e),
    };
    if pending.second_factor {
        return super::second_factor::begin(&state, &headers, locale, &account, pending.next, &ctx)
            .await;
    }
    complete(&state, &account, &pending.next, ctx, vec!["pwd".into()]).await
}

/// Starts the session with the given authentication methods (RFC 8176 `amr`) and continues:
/// back to the client with a code, or to the account page.
pub(crate) async fn complete(
    state: &AppState,
    account: &store::Account,
    next: &Continuation,
    ctx: RequestContext,
    amr: Vec<String>,
) -> Response {
    let locale = Locale::Ja;
    let (session, cookie) = match session::start(state, account, amr, ctx.ip, ctx.user_agent).await
    {
        Ok(started) => started,
        Err(e) => return server_error(state, locale, e),
    };
    let mut response = match next {
        Continuation::Authorize(request) => {
            match issue_code(state, account, &session, request).await {
                Ok(response) => response,
                Err(e) => return server_error(state, locale, e),
            }
        }
        Continuation::Account => Redirect::to("/account").into_response(),
    };
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub fn server_error(state: &AppState, locale: Locale, err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "page failed with a server error");
    state
        .pages
        .error(StatusCode::INTERNAL_SERVER_ERROR, locale, "server_error")
}
