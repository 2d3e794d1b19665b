//! Compact JWS (RFC 7515) signing and verification with the key set's pre-parsed keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::keys::KeySet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("no active signing key for {0}")]
    NoKey(String),
    #[error("malformed token")]
    Malformed,
    #[error("bad signature or unknown key")]
    Signature,
    #[error("unexpected token type")]
    Type,
}

/// Signs `claims` with the active key of `alg`; `typ` is the JOSE header type (`JWT`,
/// `at+jwt`, `logout+jwt`).
pub fn sign(keys: &KeySet, alg: &str, typ: &str, claims: &Value) -> Result<String, JwtError> {
    let key = keys
        .active(alg)
        .ok_or_else(|| JwtError::NoKey(alg.to_owned()))?;
    let header = json!({ "alg": alg, "kid": key.kid, "typ": typ });
    let mut token = String::with_capacity(512);
    URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
    let sig = key.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    Ok(token)
}

/// Verifies a token signed by one of the published keys and returns its claims. Checks the
/// signature and the header type only; the caller checks `iss`, `exp`, `aud` and the rest.
pub fn verify(keys: &KeySet, token: &str, expected_typ: &str) -> Result<Value, JwtError> {
    if token.len() > 16 * 1024 {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = decode_json(header_b64)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    if !keys.verify(kid, alg, signing_input.as_bytes(), &sig) {
        return Err(JwtError::Signature);
    }
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if !typ.eq_ignore_ascii_case(expected_typ)
        && !typ.eq_ignore_ascii_case(&format!("application/{expected_typ}"))
    {
        return Err(JwtError::Type);
    }
    decode_json(claims_b64)
}

fn decode_json(part: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the hash of the access token,
/// with the hash of the ID token's algorithm (SHA-256 for RS256/ES256; SHA-512 for Ed25519, as
/// OpenID Connect relying parties expect for EdDSA).
pub fn at_hash(alg: &str, access_token: &str) -> String {
    let algorithm = if alg == "EdDSA" {
        &aws_lc_rs::digest::SHA512
    } else {
        &aws_lc_rs::digest::SHA256
    };
    let digest = aws_lc_rs::digest::digest(algorithm, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}
