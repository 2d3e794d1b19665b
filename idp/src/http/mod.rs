//! The IdP's HTTP surface: routing, shared state and the cross-cutting layers.

mod admin;
pub mod discovery;
mod health;

pub use discovery::document as discovery_document;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::routing::{get, post};
use bytes::Bytes;
use service::authentication::Authenticator;
use service::second_factor::SecondFactorService;
use service::{Clock, Sealer, SecretDigester};
use store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::keys::KeyRing;
use crate::oidc::{authorize, introspect, logout, token, userinfo};
use crate::pages::csrf::Csrf;
use crate::pages::{self, Pages, account, forgotten_password, login, second_factor};

/// Everything a handler may use, built once at startup from configuration. Cloned for every
/// request (axum's `State`), so it is one reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub keys: KeyRing,
    pub clock: Arc<dyn Clock>,
    pub sealer: Arc<Sealer>,
    pub digester: Arc<SecretDigester>,
    pub authenticator: Authenticator,
    pub second_factor: SecondFactorService,
    pub csrf: Arc<Csrf>,
    pub pages: Arc<Pages>,
    pub limiter: Arc<dyn limits::RateLimiter>,
    /// Outbound HTTP (back-channel logout): no redirects, short timeouts.
    pub http: reqwest::Client,
    /// Access tokens whose signatures this node has verified (introspection, userinfo).
    pub verified_signatures: crate::oidc::jwt::VerifiedSignatures,
    /// The discovery document, serialised once.
    pub discovery: Bytes,
    /// The admin use cases and provisioning, for the admin API under `/admin/v1`.
    pub admin: service::accounts::Admin,
    pub provisioner: service::provisioning::Provisioner,
    /// Bulk registration: the use cases and this node's runner.
    pub bulk: service::bulk::BulkRegistrations,
    /// ID/password notices (PDF), pointing people at this issuer's login page.
    pub notices: service::notices::Notices,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let admin = admin::router(&state);
    Router::new()
        .nest_service(admin_api::PREFIX, admin)
        .route("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route(discovery::JWKS_PATH, get(discovery::jwks))
        .route(discovery::AUTHORIZE_PATH, get(authorize::get).post(authorize::post))
        .route(discovery::TOKEN_PATH, post(token::token))
        .route(discovery::INTROSPECT_PATH, post(introspect::introspect))
        .route(discovery::REVOKE_PATH, post(introspect::revoke))
        .route(discovery::END_SESSION_PATH, get(logout::get).post(logout::post))
        .route("/session/end/confirm", post(logout::confirm))
        .route(discovery::USERINFO_PATH, get(userinfo::userinfo).post(userinfo::userinfo))
        .route("/login", get(login::page).post(login::submit))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/logout", post(account::logout))
        .route("/login/password", post(login::change))
        .route("/login/second-factor/enroll", post(second_factor::enroll))
        .route("/second-factor/verify", post(second_factor::verify))
        .route("/second-factor/resend", post(second_factor::resend))
        .route("/account/second-factor", post(second_factor::account_start))
        .route("/password/forgot", get(forgotten_password::page).post(forgotten_password::request))
        .route("/password/reset", post(forgotten_password::reset))
        .route("/static/sekimori.css", get(pages::stylesheet))
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        // A bug that panics in a handler answers 500 instead of dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            // Only the path is recorded: query strings can carry codes and tokens.
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
