//! Server-rendered pages: Japanese first, English by `Accept-Language`, usable without
//! JavaScript, every form protected by a CSRF token, every page under a strict CSP.

pub mod account;
pub mod csrf;
pub mod forgotten_password;
pub mod i18n;
pub mod login;
pub mod second_factor;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

pub use i18n::Locale;

/// The compiled templates.
pub struct Pages {
    env: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "password_change.html",
        include_str!("../../templates/password_change.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    ("account.html", include_str!("../../templates/account.html")),
    (
        "signed_out.html",
        include_str!("../../templates/signed_out.html"),
    ),
    (
        "rate_limited.html",
        include_str!("../../templates/rate_limited.html"),
    ),
    (
        "logout_confirm.html",
        include_str!("../../templates/logout_confirm.html"),
    ),
    (
        "second_factor.html",
        include_str!("../../templates/second_factor.html"),
    ),
    (
        "second_factor_fields.html",
        include_str!("../../templates/second_factor_fields.html"),
    ),
    (
        "second_factor_enroll.html",
        include_str!("../../templates/second_factor_enroll.html"),
    ),
    (
        "password_forgot.html",
        include_str!("../../templates/password_forgot.html"),
    ),
    (
        "password_reset.html",
        include_str!("../../templates/password_reset.html"),
    ),
    (
        "password_reset_done.html",
        include_str!("../../templates/password_reset_done.html"),
    ),
];

pub const STYLESHEET: &str = include_str!("../../templates/sekimori.css");

impl Pages {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("templates are valid");
        }
        Self { env }
    }

    /// Renders a page. `form_targets` are extra origins the page's forms may lead to (the
    /// client's redirect URI, reached by a redirect after the form is posted).
    pub fn render<S: Serialize>(
        &self,
        status: StatusCode,
        name: &str,
        locale: Locale,
        context: S,
        form_targets: &[&str],
        cookies: &[String],
    ) -> Response {
        let rendered = self.env.get_template(name).and_then(|template| {
            template.render(minijinja::context! {
                t => minijinja::Value::from(minijinja::value::Serde(i18n::messages(locale))),
                lang => locale.tag(),
                page => minijinja::Value::from(minijinja::value::Serde(&context)),
            })
        });
        let body = match rendered {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, template = name, "page rendering failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        secure_headers(headers, form_targets);
        for cookie in cookies {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        response
    }

    /// An error page that does not redirect anywhere (unknown client, bad redirect URI,
    /// expired form).
    pub fn error(&self, status: StatusCode, locale: Locale, message_key: &str) -> Response {
        let messages = i18n::messages(locale);
        let message = messages
            .get(message_key)
            .and_then(|v| v.as_str())
            .unwrap_or(message_key)
            .to_owned();
        self.render(
            status,
            "error.html",
            locale,
            minijinja::context! { message },
            &[],
            &[],
        )
    }
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

/// Strict CSP and the other protective headers of every page.
pub fn secure_headers(headers: &mut HeaderMap, form_targets: &[&str]) {
    let mut form_action = String::from("'self'");
    for target in form_targets {
        if let Some(origin) = origin_of(target) {
            form_action.push(' ');
            form_action.push_str(&origin);
        }
    }
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `scheme://host[:port]` of an absolute URI, for CSP source lists.
fn origin_of(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let clean = authority
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    (!authority.is_empty() && clean && matches!(scheme, "http" | "https"))
        .then(|| format!("{scheme}://{authority}"))
}

/// Counts a sign-in attempt against the per-IP and per-account limits. `Some` is the polite
/// "please wait" page (429 with `Retry-After`) to answer instead of trying the password. A rate
/// limit store outage fails open: the database lockout still protects every account.
pub async fn limit_login(
    state: &crate::http::AppState,
    locale: Locale,
    peer: std::net::SocketAddr,
    institution_code: &str,
    user_id: &str,
) -> Option<Response> {
    let checks = [
        (state.settings.limits.login_ip(), limits::ip_key(peer.ip())),
        (
            state.settings.limits.login_account(),
            limits::account_key(institution_code, user_id),
        ),
    ];
    for (rule, key) in checks {
        match state.limiter.hit(&rule, &key).await {
            Ok(decision) => {
                if let Some(seconds) = decision.retry_after_secs() {
                    let mut response = state.pages.render(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited.html",
                        locale,
                        minijinja::context! { seconds },
                        &[],
                        &[],
                    );
                    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                        response.headers_mut().insert(header::RETRY_AFTER, value);
                    }
                    return Some(response);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rule = rule.name, "rate limiting unavailable; allowing the attempt")
            }
        }
    }
    None
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLESHEET,
    )
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn every_template_file_is_registered_and_renders() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let pages = super::Pages::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".html") {
                assert!(
                    pages.env.get_template(&name).is_ok(),
                    "{name} is not registered"
                );
                let response = pages.render(
                    axum::http::StatusCode::OK,
                    &name,
                    super::Locale::En,
                    minijinja::context! {},
                    &[],
                    &[],
                );
                assert_eq!(
                    response.status(),
                    axum::http::StatusCode::OK,
                    "{name} does not render"
                );
            }
        }
    }

    #[test]
    fn origins_for_the_csp() {
        assert_eq!(
            origin_of("https://rp.example/cb?x=1").as_deref(),
            Some("https://rp.example")
        );
        assert_eq!(
            origin_of("http://localhost:3000/cb").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(origin_of("https://evil.example; script-src *"), None);
        assert_eq!(origin_of("/relative"), None);
    }
}
