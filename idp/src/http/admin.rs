//! The admin API's authentication: `admin_api::BearerAuth` implemented with this provider's own
//! access-token verification (`oidc::userinfo::verify_bearer`: signature, issuer, audience,
//! expiry, a live grant and an account that is enabled, unlocked and not deleted), plus the
//! `admin` scope, which only a person's grant carries.

use admin_api::{AuthError, BearerAuth, Caller};
use async_trait::async_trait;
use axum::http::HeaderMap;

use crate::http::AppState;
use crate::oidc::userinfo::{BearerError, Principal, verify_bearer};

pub struct AdminBearer(pub AppState);

#[async_trait]
impl BearerAuth for AdminBearer {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let verified = verify_bearer(&self.0, headers).await.map_err(|e| match e {
            BearerError::Missing => AuthError::Missing,
            BearerError::Invalid => AuthError::Invalid,
            BearerError::InsufficientScope => AuthError::InsufficientScope,
            BearerError::Server(e) => AuthError::Internal(e.to_string()),
        })?;
        // Only a person's sign-in can carry `admin`; client_credentials tokens never do.
        match verified.principal {
            Principal::Grant { grant, account } if grant.scopes.iter().any(|s| s == "admin") => {
                Ok(Caller {
                    account,
                    scopes: grant.scopes,
                })
            }
            _ => Err(AuthError::InsufficientScope),
        }
    }
}

/// The admin API's router with its state, built from the server's shared services.
pub fn router(state: &AppState) -> axum::Router {
    admin_api::router(admin_api::AdminState {
        admin: state.admin.clone(),
        provisioner: state.provisioner.clone(),
        bulk: state.bulk.clone(),
        notices: state.notices.clone(),
        auth: std::sync::Arc::new(AdminBearer(state.clone())),
    })
}
