//! The OpenID Provider endpoints: authorization, token, userinfo, and what they share (the
//! validated authorization request, claims, code issuance, signing).

pub mod authorize;
pub mod error;
pub mod introspect;
pub mod jwt;
pub mod logout;
pub mod machine;
pub mod refresh_value;
pub mod request;
pub mod token;
pub mod userinfo;

use policies::InstitutionKind;
use serde_json::{Map, Value, json};
use store::Account;

/// `acr` of a sign-in with a password only.
pub const ACR_PASSWORD: &str = "urn:sekimori:acr:password";
/// `acr` of a sign-in with a password and a second factor.
pub const ACR_MFA: &str = "urn:sekimori:acr:mfa";

/// Scopes this provider understands.
pub const SCOPES: &[&str] = &[
    "openid",
    "profile",
    "institution",
    "offline_access",
    "admin",
];

/// The claims an account releases for the given scopes (OpenID Connect Core §5.4 style): `profile`
/// releases the names, `institution` the institution, type and user ID.
pub fn account_claims(
    account: &Account,
    kind: InstitutionKind,
    scopes: &[String],
) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(account.id.to_string()));
    if scopes.iter().any(|s| s == "profile") {
        claims.insert("name".into(), json!(account.name));
        claims.insert("name_kana".into(), json!(account.name_kana));
    }
    if scopes.iter().any(|s| s == "institution") {
        claims.insert(
            "institution_code".into(),
            json!(account.institution_code.as_str()),
        );
        claims.insert("institution_kind".into(), json!(kind.as_str()));
        claims.insert("account_type".into(), json!(account.account_type.as_str()));
        claims.insert("user_id".into(), json!(account.user_id));
    }
    claims
}

/// SHA-256, base64url: how codes and session IDs are stored.
pub fn hash_handle(handle: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, handle.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}
