//! The second-factor pages (SPEC §7, §10, §12): the code page after the password, enrollment of
//! a first destination during sign-in, and the change of method or destination on `/account`.
//!
//! Where the person is in a flow travels in the form as a sealed, expiring [`Step`] (like the
//! forced password change), so any node can continue it. Every form carries the CSRF token.
//! The destination a code was sent to is read back from the stored challenge, never from the
//! form, so what gets saved is exactly what was confirmed.
//!
//! `amr` after a second factor (RFC 8176): `sms` for SMS, `tel` for a voice call, and `otp` for
//! e-mail — RFC 8176 has no e-mail value, and the code is a one-time password — each with `pwd`
//! and `mfa`, so the `acr` becomes `ACR_MFA`.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use service::authentication::RequestContext;
use service::second_factor::{CodeCheck, Destination, SendError, mask};
use store::{Account, OtpPurpose, SecondFactorMethod};
use time::Duration;
use uuid::Uuid;

use super::Locale;
use super::login::{Continuation, complete, request_context, server_error};
use crate::http::AppState;
use crate::oidc::request::{PENDING_SECONDS, open_json, seal_json};
use crate::session;

const STEP_PURPOSE: &str = "second-factor-step";

/// Which flow a code belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Flow {
    /// A sign-in waiting for its second factor. `enroll` while registering a first destination.
    SignIn { next: Continuation, enroll: bool },
    /// A signed-in person changing their destination; bound to the session (its ID hash).
    Account { session: String },
}

/// The sealed state of a second-factor page.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    account_id: Uuid,
    flow: Flow,
    /// The code awaited; `None` when no code could be sent yet.
    challenge: Option<Uuid>,
    /// Where codes go in this step (the registered destination, or the one being enrolled).
    method: Option<SecondFactorMethod>,
    destination: Option<String>,
    expires_at: i64,
}

impl Step {
    fn purpose(&self) -> OtpPurpose {
        match self.flow {
            Flow::SignIn { enroll: false, .. } => OtpPurpose::SignIn,
            Flow::SignIn { enroll: true, .. } => OtpPurpose::Enroll,
            Flow::Account { .. } => OtpPurpose::Change,
        }
    }

    fn destination(&self) -> Option<Destination> {
        Some(Destination {
            method: self.method?,
            address: self.destination.clone()?,
        })
    }

    fn redirect_uri(&self) -> &str {
        match &self.flow {
            Flow::SignIn { next, .. } => next.client().map_or("", |(_, uri)| uri),
            Flow::Account { .. } => "",
        }
    }
}

fn delivery_locale(locale: Locale) -> delivery::Locale {
    match locale {
        Locale::Ja => delivery::Locale::Ja,
        Locale::En => delivery::Locale::En,
    }
}

/// What to tell the person above the code form.
enum Notice {
    None,
    Key(&'static str),
    Text(String),
}

impl Notice {
    fn text(&self, locale: Locale) -> String {
        match self {
            Notice::None => String::new(),
            Notice::Key(key) => super::i18n::messages(locale)
                .get(*key)
                .and_then(|v| v.as_str())
                .unwrap_or(key)
                .to_owned(),
            Notice::Text(text) => text.clone(),
        }
    }
}

fn expiry(state: &AppState) -> i64 {
    (state.clock.now() + Duration::seconds(PENDING_SECONDS)).unix_timestamp()
}

/// Sends a code for `step` and says how it went.
async fn send(
    state: &AppState,
    account: &Account,
    step: &mut Step,
    locale: Locale,
    ctx: &RequestContext,
) -> Result<Notice, Box<Response>> {
    let Some(destination) = step.destination() else {
        return Ok(Notice::Key("sf_no_code"));
    };
    match state
        .second_factor
        .send(
            account,
            step.purpose(),
            &destination,
            delivery_locale(locale),
            ctx,
        )
        .await
    {
        Ok(sent) => {
            step.challenge = Some(sent.challenge_id);
            Ok(Notice::None)
        }
        Err(SendError::Refused(refusal)) => {
            let v = refusal.violation();
            Ok(Notice::Text(
                locale.pick(&v.message_ja, &v.message_en).to_owned(),
            ))
        }
        Err(SendError::Delivery(_)) => Ok(Notice::Key("sf_delivery_failed")),
        Err(SendError::Service(e)) => Err(Box::new(server_error(state, locale, e))),
    }
}

/// After the password (and a forced change): send a code to the registered destination and
/// show the code page, or show the enrollment page when there is none.
pub async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    account: &Account,
    next: Continuation,
    ctx: &RequestContext,
) -> Response {
    let registered = Destination::registered(account);
    let mut step = Step {
        account_id: account.id,
        flow: Flow::SignIn {
            next,
            enroll: registered.is_none(),
        },
        challenge: None,
        method: registered.as_ref().map(|d| d.method),
        destination: registered.as_ref().map(|d| d.address.clone()),
        expires_at: expiry(state),
    };
    if registered.is_none() {
        return show_enroll(state, headers, locale, &step, None);
    }
    let notice = match send(state, account, &mut step, locale, ctx).await {
        Ok(notice) => notice,
        Err(response) => return *response,
    };
    show_code(state, headers, locale, &step, &notice)
}

fn show_code(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    step: &Step,
    notice: &Notice,
) -> Response {
    let (csrf_token, cookie) = state.csrf.issue(headers);
    let status = match notice {
        Notice::None => StatusCode::OK,
        Notice::Key("sf_delivery_failed") => StatusCode::SERVICE_UNAVAILABLE,
        Notice::Key("sf_wrong") => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let masked = match (step.method, &step.destination) {
        (Some(method), Some(address)) => mask(method, address),
        _ => String::new(),
    };
    let method_key = match step.method {
        Some(SecondFactorMethod::Email) => "method_email",
        Some(SecondFactorMethod::Sms) => "method_sms",
        Some(SecondFactorMethod::Voice) => "method_voice",
        None => "",
    };
    let change_method = matches!(step.flow, Flow::SignIn { enroll: true, .. });
    state.pages.render(
        status,
        "second_factor.html",
        locale,
        minijinja::context! {
            csrf_token,
            step => seal_json(&state.sealer, STEP_PURPOSE, step),
            masked,
            method_key,
            sent => step.challenge.is_some(),
            notice => notice.text(locale),
            change_method,
        },
        &[step.redirect_uri()],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

fn show_enroll(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    step: &Step,
    problem: Option<String>,
) -> Response {
    let (csrf_token, cookie) = state.csrf.issue(headers);
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    state.pages.render(
        status,
        "second_factor_enroll.html",
        locale,
        minijinja::context! {
            csrf_token,
            step => seal_json(&state.sealer, STEP_PURPOSE, step),
            problem,
        },
        &[step.redirect_uri()],
        &cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// Opens the sealed step of a posted form; `Err` is the page to answer with.
fn open_step(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    csrf_token: &str,
    sealed: &str,
) -> Result<Step, Box<Response>> {
    if !state.csrf.check(headers, csrf_token) {
        return Err(Box::new(state.pages.error(
            StatusCode::FORBIDDEN,
            locale,
            "form_expired",
        )));
    }
    open_json::<Step>(&state.sealer, STEP_PURPOSE, sealed)
        .filter(|s| s.expires_at > state.clock.now().unix_timestamp())
        .ok_or_else(|| {
            Box::new(
                state
                    .pages
                    .error(StatusCode::BAD_REQUEST, locale, "form_expired"),
            )
        })
}

/// The account a step is about, still able to sign in; for the account flow, only while the
/// session that started it is alive. `Err` is the page to answer with.
async fn step_account(
    state: &AppState,
    headers: &HeaderMap,
    locale: Locale,
    step: &Step,
) -> Result<Account, Box<Response>> {
    if let Flow::Account { session: id_hash } = &step.flow {
        return match session::current(state, headers).await {
            Ok(Some(live))
                if live.session.id_hash == *id_hash && live.account.id == step.account_id =>
            {
                Ok(live.account)
            }
            Ok(_) => Err(Box::new(Redirect::to("/login").into_response())),
            Err(e) => Err(Box::new(server_error(state, locale, e))),
        };
    }
    match state.store.get_account(step.account_id).await {
        Ok(Some(account)) if account.deleted_at.is_none() => Ok(account),
        Ok(_) => Err(Box::new(state.pages.error(
            StatusCode::BAD_REQUEST,
            locale,
            "form_expired",
        ))),
        Err(e) => Err(Box::new(server_error(state, locale, e))),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    code: String,
}

/// `POST /second-factor/verify`: checks the code of any flow.
pub async fn verify(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    let step = match open_step(&state, &headers, locale, &form.csrf_token, &form.step) {
        Ok(step) => step,
        Err(response) => return *response,
    };
    let account = match step_account(&state, &headers, locale, &step).await {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let Some(challenge_id) = step.challenge else {
        return show_code(&state, &headers, locale, &step, &Notice::Key("sf_no_code"));
    };
    let ctx = request_context(&headers, peer);
    let checked = state
        .second_factor
        .verify(account.id, challenge_id, step.purpose(), &form.code, &ctx)
        .await;
    let challenge = match checked {
        Ok(CodeCheck::Valid(challenge)) => challenge,
        Ok(CodeCheck::Wrong { locked: false }) => {
            return show_code(&state, &headers, locale, &step, &Notice::Key("sf_wrong"));
        }
        Ok(CodeCheck::Refused(refusal)) => {
            let v = refusal.violation();
            let text = locale.pick(&v.message_ja, &v.message_en).to_owned();
            let mut step = step;
            step.challenge = None;
            return show_code(&state, &headers, locale, &step, &Notice::Text(text));
        }
        Ok(CodeCheck::Wrong { locked: true } | CodeCheck::AccountUnavailable) => {
            // Like a failed password: one generic answer, the reason is in the audit log.
            return match step.flow {
                Flow::SignIn { next, .. } => {
                    super::login::show(&state, &headers, locale, &next, true, "", "")
                }
                Flow::Account { .. } => Redirect::to("/login").into_response(),
            };
        }
        Ok(CodeCheck::Stale) => {
            return state
                .pages
                .error(StatusCode::BAD_REQUEST, locale, "form_expired");
        }
        Err(e) => return server_error(&state, locale, e),
    };
    let service = &state.second_factor;
    match step.flow {
        Flow::SignIn { next, enroll } => {
            if enroll && let Err(e) = service.save_destination(&account, &challenge, &ctx).await {
                return server_error(&state, locale, e);
            }
            if let Err(e) = service
                .sign_in_completed(&account, challenge.method, &ctx)
                .await
            {
                return server_error(&state, locale, e);
            }
            let factor = match challenge.method {
                SecondFactorMethod::Email => "otp",
                SecondFactorMethod::Sms => "sms",
                SecondFactorMethod::Voice => "tel",
            };
            let amr = vec!["pwd".into(), factor.into(), "mfa".into()];
            complete(&state, &account, &next, ctx, amr).await
        }
        Flow::Account { .. } => match service.save_destination(&account, &challenge, &ctx).await {
            Ok(_) => Redirect::to("/account?second_factor=1").into_response(),
            Err(e) => server_error(&state, locale, e),
        },
    }
}

#[derive(Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    step: String,
}

/// `POST /second-factor/resend`: a new code to the same destination, if the cooldown and the
/// daily caps allow.
pub async fn resend(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<ResendForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    let mut step = match open_step(&state, &headers, locale, &form.csrf_token, &form.step) {
        Ok(step) => step,
        Err(response) => return *response,
    };
    let account = match step_account(&state, &headers, locale, &step).await {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let ctx = request_context(&headers, peer);
    let previous = step.challenge;
    let notice = match send(&state, &account, &mut step, locale, &ctx).await {
        Ok(Notice::None) => Notice::Key("sf_resent"),
        Ok(notice) => {
            // A refused resend keeps the code sent before.
            step.challenge = previous;
            notice
        }
        Err(response) => return *response,
    };
    step.expires_at = expiry(&state);
    let status_ok = matches!(notice, Notice::Key("sf_resent"));
    let mut response = show_code(&state, &headers, locale, &step, &notice);
    if status_ok {
        *response.status_mut() = StatusCode::OK;
    }
    response
}

#[derive(Deserialize)]
pub struct EnrollForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

/// Parses the method and destination of an enrollment or change form.
fn destination_of(form: &EnrollForm, locale: Locale) -> Result<Destination, String> {
    let Some(method) = SecondFactorMethod::parse(form.method.trim()) else {
        return Err(super::i18n::messages(locale)
            .get("sf_choose_method")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned());
    };
    Destination::parse(method, &form.email, &form.phone)
        .map_err(|v| locale.pick(&v.message_ja, &v.message_en).to_owned())
}

/// `POST /login/second-factor/enroll`: during sign-in, an account without a verified
/// destination chooses one; a code is sent to it. An empty method shows the choice again.
pub async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<EnrollForm>,
) -> Response {
    let locale = Locale::from_headers(&headers);
    let mut step = match open_step(&state, &headers, locale, &form.csrf_token, &form.step) {
        Ok(step) => step,
        Err(response) => return *response,
    };
    if !matches!(step.flow, Flow::SignIn { enroll: true, .. }) {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "form_expired");
    }
    let account = match step_account(&state, &headers, locale, &step).await {
        Ok(account) => account,
        Err(response) => return *response,
    };
    // Only an account without a verified destination may enroll one here; otherwise a password
    // alone would let anyone register their own phone.
    if Destination::registered(&account).is_some() {
        return state
            .pages
            .error(StatusCode::BAD_REQUEST, locale, "form_expired");
    }
    step.challenge = None;
    step.expires_at = expiry(&state);
    if form.method.trim().is_empty() {
        return show_enroll(&state, &headers, locale, &step, None);
    }
    let destination = match destination_of(&form, locale) {
        Ok(destination) => destination,
        Err(problem) => return show_enroll(&state, &headers, locale, &step, Some(problem)),
    };
    step.method = Some(destination.method);
    step.destination = Some(destination.address);
    let ctx = request_context(&headers, peer);
    match send(&state, &account, &mut step, locale, &ctx).await {
        Ok(notice) => show_code(&state, &headers, locale, &step, &notice),
        Err(response) => *response,
    }
}

/// `POST /account/second-factor`: a signed-in person chooses a new method or destination; it
/// is saved only once the code sent to it is confirmed.
pub async fn account_start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<EnrollForm>,
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
    let destination = match destination_of(&form, locale) {
        Ok(destination) => destination,
        Err(problem) => {
            return super::account::render(&state, &headers, locale, &live, &[], &[problem]).await;
        }
    };
    let mut step = Step {
        account_id: live.account.id,
        flow: Flow::Account {
            session: live.session.id_hash.clone(),
        },
        challenge: None,
        method: Some(destination.method),
        destination: Some(destination.address),
        expires_at: expiry(&state),
    };
    let ctx = request_context(&headers, peer);
    match send(&state, &live.account, &mut step, locale, &ctx).await {
        Ok(notice) => show_code(&state, &headers, locale, &step, &notice),
        Err(response) => *response,
    }
}
