//! OpenID Provider metadata (OpenID Connect Discovery 1.0 §3) and the JWK Set.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use serde_json::json;

use super::AppState;
use crate::keys::ALGORITHMS;

pub const JWKS_PATH: &str = "/jwks.json";

/// Builds the discovery document once. It lists only what this server implements.
pub fn document(issuer: &str) -> Bytes {
    let doc = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ALGORITHMS,
        "scopes_supported": ["openid", "profile", "institution"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
            "institution_code", "institution_kind", "account_type", "user_id", "name", "name_kana"
        ],
        "ui_locales_supported": ["ja", "en"],
    });
    Bytes::from(serde_json::to_vec(&doc).expect("JSON of a JSON value"))
}

const CACHE: &str = "public, max-age=300";

pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, CACHE),
        ],
        state.discovery.clone(),
    )
}

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, CACHE),
        ],
        state.keys.current().jwks(),
    )
}
