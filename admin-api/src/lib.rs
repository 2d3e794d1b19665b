//! Sekimori's admin REST API (SPEC §9, §12), served by `idp serve` under `/admin/v1`.
//!
//! Handlers are thin, one file per action: they authenticate the caller through
//! [`BearerAuth`] (implemented by `idp`, which verifies its own access tokens), parse the request
//! into domain types, call a use case of `service::accounts::Admin`, and map the result to the
//! wire format. What a caller may do is decided only by `policies::permissions`, inside the
//! service. Every error is `application/problem+json` ([`error::ApiError`]). The OpenAPI document
//! ([`openapi::ApiDoc`]) is generated from the handlers' annotations and served at
//! `/admin/v1/openapi.json`.
//!
//! This crate does not depend on `idp`; `idp` nests [`router`] and supplies the
//! [`BearerAuth`] implementation.

pub mod accounts;
mod audit_export;
mod auth;
pub mod bulk;
pub mod error;
mod extract;
pub mod institutions;
pub mod notices;
pub mod openapi;
mod password_policy;
mod settings;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post, put};
use tower_http::set_header::SetResponseHeaderLayer;

pub use auth::{AuthError, BearerAuth, Caller};

/// The path prefix `idp` nests [`router`] under.
pub const PREFIX: &str = "/admin/v1";

/// What the admin handlers use, built once by `idp`'s composition from the same services as
/// the rest of the server.
#[derive(Clone)]
pub struct AdminState {
    pub admin: service::accounts::Admin,
    pub provisioner: service::provisioning::Provisioner,
    pub bulk: service::bulk::BulkRegistrations,
    pub notices: service::notices::Notices,
    pub auth: Arc<dyn BearerAuth>,
}

/// The admin API's routes, relative to [`PREFIX`].
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route(
            "/institutions",
            post(institutions::create::handler).get(institutions::list::handler),
        )
        .route(
            "/institutions/{code}",
            get(institutions::get::handler).patch(institutions::update::handler),
        )
        .route("/institutions/{code}/settings", put(settings::handler))
        .route(
            "/institutions/{code}/accounts",
            post(accounts::create::handler).get(accounts::search::handler),
        )
        .route(
            "/institutions/{code}/accounts/{user_id}",
            get(accounts::get::handler)
                .patch(accounts::update::handler)
                .delete(accounts::delete::handler),
        )
        .route(
            "/institutions/{code}/accounts/{user_id}/password-reset",
            post(accounts::reset::handler),
        )
        .route(
            "/institutions/{code}/accounts/{user_id}/lock",
            post(accounts::lock::lock),
        )
        .route(
            "/institutions/{code}/accounts/{user_id}/unlock",
            post(accounts::lock::unlock),
        )
        .route(
            "/institutions/{code}/bulk-registrations",
            post(bulk::upload::handler)
                .layer(DefaultBodyLimit::max(policies::bulk::MAX_FILE_BYTES))
                .get(bulk::list::handler),
        )
        .route(
            "/institutions/{code}/bulk-registrations/{reception_number}",
            get(bulk::get::handler),
        )
        .route(
            "/institutions/{code}/bulk-registrations/{reception_number}/result.csv",
            get(bulk::result::handler),
        )
        .route(
            "/institutions/{code}/accounts/{user_id}/notice.pdf",
            get(notices::single::handler),
        )
        .route(
            "/institutions/{code}/notices",
            post(notices::selection::handler),
        )
        .route("/audit-events.csv", get(audit_export::handler))
        .route("/password-policy/check", post(password_policy::handler))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        // Responses may carry initial passwords and personal data: never cache them.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
}
