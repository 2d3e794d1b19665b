//! Compact JWS (RFC 7515) signing and verification with the key set's pre-parsed keys.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

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
    verify_remembering(keys, None, token, expected_typ)
}

/// [`verify`], trusting a signature `seen` has already verified (at unix time `now`) and
/// remembering the ones it verifies.
pub fn verify_seen(
    keys: &KeySet,
    seen: &VerifiedSignatures,
    now: i64,
    token: &str,
    expected_typ: &str,
) -> Result<Value, JwtError> {
    verify_remembering(keys, Some((seen, now)), token, expected_typ)
}

fn verify_remembering(
    keys: &KeySet,
    seen: Option<(&VerifiedSignatures, i64)>,
    token: &str,
    expected_typ: &str,
) -> Result<Value, JwtError> {
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
    let remembered = seen.map(|(seen, now)| (seen, now, VerifiedSignatures::digest(token)));
    let known = remembered
        .as_ref()
        .is_some_and(|(seen, now, digest)| seen.knows(digest, kid, *now) && keys.has(kid, alg));
    if !known && !keys.verify(kid, alg, signing_input.as_bytes(), &sig) {
        return Err(JwtError::Signature);
    }
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if !typ.eq_ignore_ascii_case(expected_typ)
        && !typ.eq_ignore_ascii_case(&format!("application/{expected_typ}"))
    {
        return Err(JwtError::Type);
    }
    let claims = decode_json(claims_b64)?;
    if !known
        && let Some((seen, now, digest)) = remembered
        && let Some(exp) = claims.get("exp").and_then(Value::as_i64)
    {
        seen.remember(digest, kid, exp, now);
    }
    Ok(claims)
}

/// The tokens whose signatures this node has verified, remembered until they expire.
///
/// A resource server introspects the same access token again and again, and verifying its
/// ECDSA or RSA signature is most of the work of an introspection. Whether a signature is valid
/// depends only on the token's bytes and the public key, so a verified one is remembered by the
/// SHA-256 digest of the whole token (a token that differs in any byte has another digest) with
/// its key ID, and trusted again only while that key is still published and the token has not
/// expired. Everything else (type, issuer, audience, expiry, the grant and account behind the
/// token) is checked on every use. Tokens themselves are not kept.
pub struct VerifiedSignatures {
    seen: Mutex<HashMap<[u8; 32], Seen>>,
    capacity: usize,
}

struct Seen {
    kid: Box<str>,
    exp: i64,
}

impl VerifiedSignatures {
    /// Remembers at most `capacity` tokens (about 80 bytes each).
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn digest(token: &str) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        bytes
    }

    fn knows(&self, digest: &[u8; 32], kid: &str, now: i64) -> bool {
        self.seen()
            .get(digest)
            .is_some_and(|seen| &*seen.kid == kid && now < seen.exp)
    }

    fn remember(&self, digest: [u8; 32], kid: &str, exp: i64, now: i64) {
        if exp <= now || self.capacity == 0 {
            return;
        }
        let mut seen = self.seen();
        if seen.len() >= self.capacity {
            seen.retain(|_, s| now < s.exp);
            // Still full of live tokens: start over rather than grow (or scan on every insert).
            if seen.len() >= self.capacity {
                seen.clear();
            }
        }
        seen.insert(
            digest,
            Seen {
                kid: kid.into(),
                exp,
            },
        );
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Seen>> {
        // Inserts and removals are single map operations: a panic elsewhere cannot leave the
        // map torn.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
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

#[cfg(test)]
mod tests {
    use service::sealing::Sealer;

    use super::*;
    use crate::keys;

    const NOW: i64 = 1_800_000_000;

    fn key_set(records: &[store::SigningKey], sealer: &Sealer) -> KeySet {
        keys::build(records, sealer).expect("key set")
    }

    fn token(keys: &KeySet, exp: i64) -> String {
        sign(keys, "ES256", "at+jwt", &json!({ "sub": "s", "exp": exp })).expect("sign")
    }

    #[test]
    fn remembered_signatures_are_trusted_only_for_the_same_token_and_key() {
        let sealer = Sealer::new(&[7u8; 32]).expect("sealer");
        let record =
            keys::generate("ES256", &sealer, time::OffsetDateTime::UNIX_EPOCH).expect("generate");
        let keys = key_set(std::slice::from_ref(&record), &sealer);
        let seen = VerifiedSignatures::new(10);
        let good = token(&keys, NOW + 60);

        let claims = verify_seen(&keys, &seen, NOW, &good, "at+jwt").expect("first");
        assert_eq!(claims["sub"], "s");
        assert_eq!(seen.seen().len(), 1);
        assert_eq!(
            verify_seen(&keys, &seen, NOW, &good, "at+jwt").expect("remembered"),
            claims
        );

        // Any other token is verified on its own: a changed payload or signature fails.
        let (head, sig) = good.rsplit_once('.').expect("three parts");
        let (header, _) = head.split_once('.').expect("three parts");
        let forged_claims =
            URL_SAFE_NO_PAD.encode(json!({ "sub": "x", "exp": NOW + 60 }).to_string());
        for forged in [
            format!("{header}.{forged_claims}.{sig}"),
            format!("{head}.{}", URL_SAFE_NO_PAD.encode([0u8; 64])),
        ] {
            assert_eq!(
                verify_seen(&keys, &seen, NOW, &forged, "at+jwt"),
                Err(JwtError::Signature)
            );
        }

        // The type is checked on every use.
        assert_eq!(
            verify_seen(&keys, &seen, NOW, &good, "logout+jwt"),
            Err(JwtError::Type)
        );
        // Not once its key is no longer published, nor after it expired.
        let without = key_set(&[], &sealer);
        assert_eq!(
            verify_seen(&without, &seen, NOW, &good, "at+jwt"),
            Err(JwtError::Signature)
        );
        assert!(!seen.knows(&VerifiedSignatures::digest(&good), &record.kid, NOW + 60));
    }

    #[test]
    fn expired_tokens_are_not_remembered_and_a_full_cache_starts_over() {
        let sealer = Sealer::new(&[7u8; 32]).expect("sealer");
        let record =
            keys::generate("ES256", &sealer, time::OffsetDateTime::UNIX_EPOCH).expect("generate");
        let keys = key_set(&[record], &sealer);
        let seen = VerifiedSignatures::new(3);
        verify_seen(&keys, &seen, NOW, &token(&keys, NOW - 1), "at+jwt").expect("valid signature");
        assert_eq!(seen.seen().len(), 0);
        for k in 0..3 {
            verify_seen(&keys, &seen, NOW, &token(&keys, NOW + 10 + k), "at+jwt").expect("valid");
        }
        assert_eq!(seen.seen().len(), 3);
        // Full of live tokens: the next one starts a new map instead of growing it.
        verify_seen(&keys, &seen, NOW, &token(&keys, NOW + 99), "at+jwt").expect("valid");
        assert_eq!(seen.seen().len(), 1);
        // Full again, with expired tokens among them: only those are dropped.
        verify_seen(&keys, &seen, NOW, &token(&keys, NOW + 1), "at+jwt").expect("valid");
        verify_seen(&keys, &seen, NOW, &token(&keys, NOW + 2), "at+jwt").expect("valid");
        verify_seen(&keys, &seen, NOW + 5, &token(&keys, NOW + 50), "at+jwt").expect("valid");
        assert_eq!(seen.seen().len(), 2);
    }
}
