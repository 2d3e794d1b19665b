//! `/account`: the self-service page (SPEC §10): change one's password, change the second
//! factor (verified by a code before it is saved, see [`super::second_factor`]), see recent
//! sign-ins, sign out. Changing the password ends every other session of the account.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use policies::usage::JST;
use serde::Deserialize;
use service::ServiceError;
use store::SecondFactorMethod;

use super::Locale;
use super::login::{request_context, server_error};
use crate::http::AppState;
use crate::session::{self, Live};

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    changed: Option<String>,
    #[serde(default)]
    second_factor: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    match session::current(&state, &headers).await {
        Ok(Some(live)) => {
            let mut notices = Vec::new();
            if notice.changed.is_some() {
                notices.push("password_changed");
            }
            if notice.second_factor.is_some() {
                notices.push("account_sf_changed");
            }
            render(&state, &headers, locale, &live, &notices, &[]).await
        }
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => server_error(&state, locale, e),
    }
}

/// Renders the page. `notices` are message keys of what just succeeded; `violations` are the
/// password change's refusals, `sf_problems` the second-factor form's.
pub(crate) async fn render(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    live: &Live,
    notices: &[&str],
    sf_problems: &[String],
) -> Response {
    render_with(state, headers, locale, live, notices, &[], sf_problems).await
}

async fn render_with(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    live: &Live,
    notices: &[&str],
    violations: &[String],
    sf_problems: &[String],
) -> Response {
    let events = match state.store.recent_sign_ins(live.account.id, 10).await {
        Ok(events) => events,
        Err(e) => return server_error(state, locale, e),
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let sign_ins: Vec<_> = events
        .iter()
        .map(|e| {
            minijinja::context! {
                at => e.event.at.to_offset(JST).format(format).unwrap_or_default(),
                ok => e.event.kind == "login.success",
                ip => e.event.ip.clone().unwrap_or_default(),
            }
        })
        .collect();
    let (csrf_token, cookie) = state.csrf.issue(headers);
    let account = &live.account;
    let messages = super::i18n::messages(locale);
    let notices: Vec<String> = notices
        .iter()
        .filter_map(|key| {
            messages
                .get(*key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect();
    let second_factor = account.second_factor.as_ref().map(|f| {
        let method_key = match f.method {
            SecondFactorMethod::Email => "method_email",
            SecondFactorMethod::Sms => "method_sms",
            SecondFactorMethod::Voice => "method_voice",
        };
        let address = match f.method {
            SecondFactorMethod::Email => f.email.clone(),
            SecondFactorMethod::Sms | SecondFactorMethod::Voice => f.phone.clone(),
        };
        minijinja::context! {
            method => f.method.as_str(),
            method_label => messages.get(method_key).and_then(|v| v.as_str()).unwrap_or_default(),
            masked => address.map(|a| service::second_factor::mask(f.method, &a)).unwrap_or_default(),
            verified => f.verified,
        }
    });
    let status = if violations.is_empty() && sf_problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    state.pages.render(
        status,
        "account.html",
        locale,
        minijinja::context! {
            csrf_token,
            institution_code => account.institution_code.as_str(),
            user_id => account.user_id.clone(),
            name => account.name.clone(),
            account_type => account.account_type.as_str(),
            account_type_label => locale.pick(account.account_type.label_ja(), account.account_type.as_str()),
            notices,
            violations => minijinja::Value::from(minijinja::value::Serde(violations)),
            sf_problems => minijinja::Value::from(minijinja::value::Serde(sf_problems)),
            second_factor,
            sign_ins,
        },
        &[],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    if !state.csrf.check(&headers, &form.csrf_token) {
        return state
            .pages
            .error(StatusCode::FORBIDDEN, locale, "form_expired");
    }
    let live = match session::current(&state, &headers).await {
        Ok(Some(live)) => live,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return server_error(&state, locale, e),
    };
    let ctx = request_context(&headers, peer);
    let result = state
        .authenticator
        .change_password(
            live.account.id,
            Some(&form.current_password),
            &form.new_password,
            &form.new_password_confirm,
            Some(&live.session.id_hash),
            &ctx,
        )
        .await;
    match result {
        Ok(_) => Redirect::to("/account?changed=1").into_response(),
        Err(ServiceError::Invalid { violations, .. }) => {
            let messages: Vec<String> = violations
                .iter()
                .map(|v| locale.pick(&v.message_ja, &v.message_en).to_owned())
                .collect();
            render_with(&state, &headers, locale, &live, &[], &messages, &[]).await
        }
        Err(e) => server_error(&state, locale, e),
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// Ends the browser's session and clears its cookie.
pub async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    if !state.csrf.check(&headers, &form.csrf_token) {
        return state
            .pages
            .error(StatusCode::FORBIDDEN, locale, "form_expired");
    }
    if let Ok(Some(live)) = session::current(&state, &headers).await {
        let ctx = request_context(&headers, peer);
        if let Err(e) =
            crate::oidc::logout::end_browser_session(&state, &live, "logout", &ctx).await
        {
            return server_error(&state, locale, e);
        }
    }
    let mut response = state.pages.render(
        StatusCode::OK,
        "signed_out.html",
        locale,
        minijinja::context! {},
        &[],
        &[],
    );
    if let Ok(value) =
        HeaderValue::from_str(&session::set_cookie(session::COOKIE, "", "Lax", Some(0)))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
