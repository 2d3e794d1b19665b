//! Keyed digests for system-generated, high-entropy secrets (client secrets and machine account
//! secrets, see `hashing`).
//!
//! argon2id exists to slow down guessing of low-entropy, human-chosen passwords. A secret drawn
//! from 256 bits of CSPRNG output cannot be guessed, so a slow hash buys nothing and would cap the
//! token endpoint at ~70 client authentications per core per second. Such secrets are stored as
//! HMAC-SHA-256 under a key derived from the key-encryption key: a stolen database alone does not
//! allow offline checks, and verification is constant time. Human passwords always use argon2id.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

const PREFIX: &str = "$hmac-sha256$v=1$";

pub struct SecretDigester {
    key: hmac::Key,
}

impl std::fmt::Debug for SecretDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigester(..)")
    }
}

impl SecretDigester {
    /// Derives the digest key from the key-encryption key, so no extra secret needs managing.
    pub fn from_kek(kek: &[u8]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, kek);
        let derived = hmac::sign(&root, b"sekimori/secret-digest/v1");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// Whether `stored` is in this digest's form (`$hmac-sha256$v=1$…`).
    pub fn is_digest(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// A short keyed fingerprint of a stored credential, put into stateless tokens so that a
    /// changed credential (a reset) invalidates them. Reveals nothing about the credential.
    pub fn fingerprint(&self, stored: &str) -> String {
        let mut input = Vec::with_capacity(stored.len() + 24);
        input.extend_from_slice(b"sekimori/fingerprint/v1\0");
        input.extend_from_slice(stored.as_bytes());
        let tag = hmac::sign(&self.key, &input);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
    }

    pub fn digest(&self, secret: &str) -> String {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(tag.as_ref()))
    }

    /// Constant-time check of a secret against a stored digest.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return false;
        };
        let Ok(tag) = STANDARD_NO_PAD.decode(encoded) else {
            return false;
        };
        hmac::verify(&self.key, secret.as_bytes(), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_secret_under_the_right_key() {
        let d = SecretDigester::from_kek(&[3u8; 32]);
        let stored = d.digest("s3cret");
        assert!(stored.starts_with(PREFIX));
        assert!(d.verify("s3cret", &stored));
        assert!(!d.verify("s3cres", &stored));
        assert!(!SecretDigester::from_kek(&[4u8; 32]).verify("s3cret", &stored));
        assert!(!d.verify("s3cret", "garbage"));
    }
}
