//! The OpenAPI 3.1 document of the admin API, generated from the handlers' `#[utoipa::path]`
//! annotations and the request/response types, served at `/admin/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    accounts, audit_export, bulk, error, institutions, notices, password_policy, settings, wire,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sekimori admin API",
        description = "Institutions, accounts, settings and the audit export of the Sekimori \
            OpenID Provider (SPEC §9, §12). Authenticate with an access token issued by \
            Sekimori with the `admin` scope. Every error is application/problem+json."
    ),
    paths(
        institutions::create::handler,
        institutions::list::handler,
        institutions::get::handler,
        institutions::update::handler,
        settings::handler,
        accounts::create::handler,
        accounts::search::handler,
        accounts::get::handler,
        accounts::update::handler,
        accounts::delete::handler,
        accounts::reset::handler,
        accounts::lock::lock,
        accounts::lock::unlock,
        bulk::upload::handler,
        bulk::list::handler,
        bulk::get::handler,
        bulk::result::handler,
        notices::single::handler,
        notices::selection::handler,
        audit_export::handler,
        password_policy::handler,
    ),
    components(schemas(error::Problem, error::FieldError, wire::AccountView, wire::InstitutionView)),
    modifiers(&BearerScheme),
    tags(
        (name = "institutions", description = "Operators only"),
        (name = "accounts", description = "The account hierarchy of SPEC §2"),
        (name = "bulk-registrations", description = "Bulk CSV registration (SPEC §9, §12)"),
        (name = "notices", description = "ID/password notices (PDF)"),
        (name = "audit", description = "Audit export"),
        (name = "password-policy", description = "Password policy check"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /admin/v1/openapi.json` (no authentication: the document holds no data).
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
