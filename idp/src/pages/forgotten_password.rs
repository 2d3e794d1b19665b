//! The forgotten-password pages (SPEC §10), offered when `second_factor.forgotten_password` is
//! on: institution code, user ID and the registered method → a code to the registered
//! destination → the code and a new password.
//!
//! No enumeration: whatever was entered, the answer is the same page ("if the account exists, a
//! code was sent"), at once (the code leaves in the background), and its sealed state has the
//! same shape (random IDs stand in for an unknown account). Requests count against the sign-in
//! rate limits per IP and per account; wrong codes count toward the lockout; every step is
//! audited (`password.forgotten`, `second_factor.*`, `password.reset_forgotten`).

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use service::second_factor::{ResetOutcome, ResetTicket};
use store::SecondFactorMethod;
use time::Duration;
use uuid::Uuid;

use super::Locale;
use super::login::{request_context, server_error};
use crate::http::AppState;
use crate::oidc::request::{open_json, seal_json};

const RESET_PURPOSE: &str = "forgotten-password";

/// The sealed state of the reset form.
#[derive(Serialize, Deserialize)]
struct Ticket {
    account_id: Uuid,
    challenge_id: Uuid,
    expires_at: i64,
}

fn disabled(state: &AppState, locale: Locale) -> Option<Response> {
    (!state.settings.second_factor.forgotten_password).then(|| {
        state
            .pages
            .error(StatusCode::NOT_FOUND, locale, "forgot_disabled")
    })
}

fn show_request(state: &AppState, headers: &HeaderMap, locale: Locale) -> Response {
    let (csrf_token, cookie) = state.csrf.issue(headers);
    state.pages.render(
        StatusCode::OK,
        "password_forgot.html",
        locale,
        minijinja::context! { csrf_token },
        &[],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// `GET /password/forgot`.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let locale = Locale::from_headers(&headers);
    if let Some(response) = disabled(&state, locale) {
        return response;
    }
    show_request(&state, &headers, locale)
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    institution_code: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    method: String,
}

fn show_reset(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    ticket: &Ticket,
    status: StatusCode,
    problems: &[String],
) -> Response {
    let (csrf_token, cookie) = state.csrf.issue(headers);
    state.pages.render(
        status,
        "password_reset.html",
        locale,
        minijinja::context! {
            csrf_token,
            ticket => seal_json(&state.sealer, RESET_PURPOSE, ticket),
            problems => minijinja::Value::from(minijinja::value::Serde(problems)),
        },
        &[],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// `POST /password/forgot`: always answers with the code form.
pub async fn request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<RequestForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    if let Some(response) = disabled(&state, locale) {
        return response;
    }
    if !state.csrf.check(&headers, &form.csrf_token) {
        return state
            .pages
            .error(StatusCode::FORBIDDEN, locale, "form_expired");
    }
    if let Some(limited) =
        super::limit_login(&state, locale, peer, &form.institution_code, &form.user_id).await
    {
        return limited;
    }
    let ctx = request_context(&headers, peer);
    let delivery_locale = match locale {
        Locale::Ja => delivery::Locale::Ja,
        Locale::En => delivery::Locale::En,
    };
    let ticket = match state
        .second_factor
        .request_reset(
            &form.institution_code,
            &form.user_id,
            SecondFactorMethod::parse(form.method.trim()),
            delivery_locale,
            &ctx,
        )
        .await
    {
        Ok(ticket) => ticket,
        Err(e) => return server_error(&state, locale, e),
    };
    let sealed = Ticket {
        account_id: ticket.account_id,
        challenge_id: ticket.challenge_id,
        expires_at: (state.clock.now() + Duration::minutes(15)).unix_timestamp(),
    };
    show_reset(&state, &headers, locale, &sealed, StatusCode::OK, &[])
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// `POST /password/reset`: the code and the new password.
pub async fn reset(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    if let Some(response) = disabled(&state, locale) {
        return response;
    }
    if !state.csrf.check(&headers, &form.csrf_token) {
        return state
            .pages
            .error(StatusCode::FORBIDDEN, locale, "form_expired");
    }
    let Some(ticket) = open_json::<Ticket>(&state.sealer, RESET_PURPOSE, &form.ticket)
        .filter(|t| t.expires_at > state.clock.now().unix_timestamp())
    else {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "form_expired");
    };
    let ctx = request_context(&headers, peer);
    let outcome = state
        .second_factor
        .reset_password(
            &state.authenticator,
            ResetTicket {
                account_id: ticket.account_id,
                challenge_id: ticket.challenge_id,
            },
            &form.code,
            &form.new_password,
            &form.new_password_confirm,
            &ctx,
        )
        .await;
    match outcome {
        Ok(ResetOutcome::Done) => state.pages.render(
            StatusCode::OK,
            "password_reset_done.html",
            locale,
            minijinja::context! {},
            &[],
            &[],
        ),
        Ok(ResetOutcome::BadCode) => {
            let message = super::i18n::messages(locale)
                .get("reset_bad_code")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            show_reset(
                &state,
                &headers,
                locale,
                &ticket,
                StatusCode::UNAUTHORIZED,
                &[message],
            )
        }
        Ok(ResetOutcome::Invalid(violations)) => {
            let messages: Vec<String> = violations
                .iter()
                .map(|v| locale.pick(&v.message_ja, &v.message_en).to_owned())
                .collect();
            show_reset(
                &state,
                &headers,
                locale,
                &ticket,
                StatusCode::UNPROCESSABLE_ENTITY,
                &messages,
            )
        }
        Err(e) => server_error(&state, locale, e).into_response(),
    }
}
