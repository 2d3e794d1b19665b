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
use service::{Clock, Sealer, SecretDigester};
use store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::keys::KeyRing;
use crate::oidc::{authorize, token, userinfo};
use crate::pages::csrf::Csrf;
use crate::pages::{self, Pages, login};

/// Everything a handler may use, built once at startup from configuration.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub keys: KeyRing,
    pub clock: Arc<dyn Clock>,
    pub sealer: Arc<Sealer>,
    pub digester: Arc<SecretDigester>,
    pub authenticator: Authenticator,
    pub csrf: Arc<Csrf>,
    pub pages: Arc<Pages>,
    /// The discovery document, serialised once.
    pub discovery: Bytes,
    /// The admin use cases and provisioning, for the admin API under `/admin/v1`.
    pub admin: service::accounts::Admin,
    pub provisioner: service::provisioning::Provisioner,
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
        .route(discovery::USERINFO_PATH, get(userinfo::userinfo).post(userinfo::userinfo))
        .route("/login", post(login::submit))
        .route("/login/password", post(login::change))
        .route("/static/sekimori.css", get(pages::stylesheet))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            // Only the path is recorded: query strings can carry codes and tokens.
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
