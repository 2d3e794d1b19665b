//! Signing keys: created at first start, sealed at rest with the KEK, parsed once into memory, and
//! published (public parts only) as JWKS.
//!
//! Every node loads every published key from the database and reloads periodically, so a key
//! created or rotated on one node reaches the others. The active key of an algorithm is the newest
//! one that is not retired.

use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::{Value, json};
use service::{Clock, Sealer};
use store::{SigningKey, Store};

/// The algorithms Sekimori signs with, each with its own active key.
pub const ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed for {0}")]
    Generate(&'static str),
    #[error("signing key {kid} cannot be opened: {reason}")]
    Open { kid: String, reason: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

pub struct LoadedKey {
    pub kid: String,
    pub alg: String,
    signer: Signer,
}

impl LoadedKey {
    /// Signs `message` (the JWS signing input) with the pre-parsed key.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.signer {
            Signer::Rsa(key) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .expect("RSA signing with a valid key");
                sig
            }
            Signer::Ecdsa(key) => key
                .sign(&rng, message)
                .expect("ECDSA signing with a valid key")
                .as_ref()
                .to_vec(),
            Signer::Ed25519(key) => key.sign(message).as_ref().to_vec(),
        }
    }
}

/// A published public key, parsed once for verification.
struct Verifier {
    alg: String,
    public: Vec<u8>,
    rsa: Option<signature::RsaPublicKeyComponents<Vec<u8>>>,
}

impl Verifier {
    fn from_jwk(alg: &str, jwk: &Value) -> Option<Self> {
        let field = |name: &str| {
            jwk.get(name)?
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        };
        let (public, rsa) = match alg {
            "RS256" => (
                Vec::new(),
                Some(signature::RsaPublicKeyComponents {
                    n: field("n")?,
                    e: field("e")?,
                }),
            ),
            "ES256" => {
                let mut point = vec![4u8];
                point.extend(field("x")?);
                point.extend(field("y")?);
                (point, None)
            }
            "EdDSA" => (field("x")?, None),
            _ => return None,
        };
        Some(Self {
            alg: alg.to_owned(),
            public,
            rsa,
        })
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match (self.alg.as_str(), &self.rsa) {
            ("RS256", Some(rsa)) => rsa
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            ("ES256", _) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public)
                    .verify(message, sig)
                    .is_ok()
            }
            ("EdDSA", _) => signature::UnparsedPublicKey::new(&signature::ED25519, &self.public)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// An immutable view of the published keys.
pub struct KeySet {
    keys: Vec<LoadedKey>,
    verifiers: std::collections::HashMap<String, Verifier>,
    jwks: Bytes,
}

impl KeySet {
    /// Verifies a signature made by the published key `kid`, which must be of `alg`.
    pub fn verify(&self, kid: &str, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        self.verifiers
            .get(kid)
            .is_some_and(|v| v.alg == alg && v.verify(message, sig))
    }

    /// Whether the key `kid` of `alg` is still published.
    pub fn has(&self, kid: &str, alg: &str) -> bool {
        self.verifiers.get(kid).is_some_and(|v| v.alg == alg)
    }

    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The newest non-retired key of `alg`.
    pub fn active(&self, alg: &str) -> Option<&LoadedKey> {
        self.keys.iter().rev().find(|k| k.alg == alg)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The shared, reloadable key set.
#[derive(Clone)]
pub struct KeyRing {
    current: Arc<RwLock<Arc<KeySet>>>,
    /// How long a retired key stays published: the longest lifetime of anything it signed, plus
    /// a margin for clock skew and for nodes that reload later.
    overlap: time::Duration,
}

/// A key that `rotate` created, and the keys of the same algorithm it retired.
#[derive(Debug, serde::Serialize)]
pub struct Rotated {
    pub alg: &'static str,
    pub kid: String,
    pub retired: Vec<String>,
}

/// Creates a new active key for each algorithm and retires the previous ones. Retired keys stay
/// in JWKS (and verify) for the overlap, then drop out; running nodes pick the change up at their
/// next reload.
pub async fn rotate(
    store: &dyn Store,
    sealer: &Sealer,
    clock: &dyn Clock,
    algs: &[&'static str],
) -> Result<Vec<Rotated>, KeyError> {
    let existing = store.list_signing_keys().await?;
    let now = clock.now();
    let mut rotated = Vec::new();
    for &alg in algs {
        let key = generate(alg, sealer, now)?;
        let kid = key.kid.clone();
        store.insert_signing_key(key).await?;
        let mut retired = Vec::new();
        for old in existing
            .iter()
            .filter(|k| k.alg == alg && k.retired_at.is_none())
        {
            store.retire_signing_key(&old.kid, now).await?;
            retired.push(old.kid.clone());
        }
        rotated.push(Rotated { alg, kid, retired });
    }
    Ok(rotated)
}

impl KeyRing {
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads every published key, creating one per algorithm where none exists yet.
    pub async fn load_or_create(
        store: &dyn Store,
        sealer: &Sealer,
        clock: &dyn Clock,
        overlap: time::Duration,
    ) -> Result<Self, KeyError> {
        let existing = store.list_signing_keys().await?;
        let mut created = Vec::new();
        for alg in ALGORITHMS {
            if !existing
                .iter()
                .any(|k| k.alg == alg && k.retired_at.is_none())
            {
                let key = generate(alg, sealer, clock.now())?;
                store.insert_signing_key(key).await?;
                created.push(alg);
            }
        }
        if !created.is_empty() {
            tracing::info!(algorithms = ?created, "created signing keys");
        }
        let set = load(store, sealer, clock.now(), overlap).await?;
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(set))),
            overlap,
        })
    }

    /// Re-reads the published keys (picks up rotations made by other nodes or the CLI).
    pub async fn reload(
        &self,
        store: &dyn Store,
        sealer: &Sealer,
        now: time::OffsetDateTime,
    ) -> Result<(), KeyError> {
        let set = load(store, sealer, now, self.overlap).await?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }
}

async fn load(
    store: &dyn Store,
    sealer: &Sealer,
    now: time::OffsetDateTime,
    overlap: time::Duration,
) -> Result<KeySet, KeyError> {
    let mut stored = store.list_signing_keys().await?;
    // A retired key is published only while tokens it signed may still be presented.
    stored.retain(|k| k.retired_at.is_none_or(|retired| retired + overlap > now));
    stored.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
    build(&stored, sealer)
}

/// The key set of the published keys `stored` (oldest first).
pub(crate) fn build(stored: &[SigningKey], sealer: &Sealer) -> Result<KeySet, KeyError> {
    let mut keys = Vec::with_capacity(stored.len());
    let mut jwks = Vec::with_capacity(stored.len());
    let mut verifiers = std::collections::HashMap::with_capacity(stored.len());
    for key in stored {
        let der = sealer
            .open(&key.private_sealed, &context(&key.kid))
            .map_err(|e| KeyError::Open {
                kid: key.kid.clone(),
                reason: e.to_string(),
            })?;
        let signer = parse(&key.alg, &der).map_err(|reason| KeyError::Open {
            kid: key.kid.clone(),
            reason,
        })?;
        jwks.push(key.public_jwk.clone());
        let verifier =
            Verifier::from_jwk(&key.alg, &key.public_jwk).ok_or_else(|| KeyError::Open {
                kid: key.kid.clone(),
                reason: "unreadable public JWK".into(),
            })?;
        verifiers.insert(key.kid.clone(), verifier);
        if key.retired_at.is_none() {
            keys.push(LoadedKey {
                kid: key.kid.clone(),
                alg: key.alg.clone(),
                signer,
            });
        }
    }
    let jwks =
        Bytes::from(serde_json::to_vec(&json!({ "keys": jwks })).expect("JSON of JSON values"));
    Ok(KeySet {
        keys,
        verifiers,
        jwks,
    })
}

fn context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

fn parse(alg: &str, der: &[u8]) -> Result<Signer, String> {
    match alg {
        "RS256" => RsaKeyPair::from_pkcs8(der)
            .map(Signer::Rsa)
            .map_err(|e| e.to_string()),
        "ES256" => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(Signer::Ecdsa)
            .map_err(|e| e.to_string()),
        "EdDSA" => Ed25519KeyPair::from_pkcs8(der)
            .map(Signer::Ed25519)
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown algorithm {other}")),
    }
}

/// Generates a key of `alg`, returning the record to store: the public JWK and the sealed PKCS#8.
pub fn generate(
    alg: &'static str,
    sealer: &Sealer,
    now: time::OffsetDateTime,
) -> Result<SigningKey, KeyError> {
    let fail = || KeyError::Generate(alg);
    let (der, members) = match alg {
        "RS256" => {
            let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| fail())?;
            let der = key.as_der().map_err(|_| fail())?.as_ref().to_vec();
            let public = key.public_key();
            let n = b64(public.modulus().big_endian_without_leading_zero());
            let e = b64(public.exponent().big_endian_without_leading_zero());
            (der, json!({ "e": e, "kty": "RSA", "n": n }))
        }
        "ES256" => {
            let key = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| fail())?;
            let der = key.to_pkcs8v1().map_err(|_| fail())?.as_ref().to_vec();
            // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
            let point = key.public_key().as_ref();
            if point.len() != 65 {
                return Err(fail());
            }
            (
                der,
                json!({ "crv": "P-256", "kty": "EC", "x": b64(&point[1..33]), "y": b64(&point[33..]) }),
            )
        }
        "EdDSA" => {
            let key = Ed25519KeyPair::generate().map_err(|_| fail())?;
            let der = key.to_pkcs8().map_err(|_| fail())?.as_ref().to_vec();
            (
                der,
                json!({ "crv": "Ed25519", "kty": "OKP", "x": b64(key.public_key().as_ref()) }),
            )
        }
        _ => return Err(fail()),
    };
    // RFC 7638 thumbprint of the required members (serde_json keeps keys sorted) as the key ID.
    let thumbprint =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, members.to_string().as_bytes());
    let kid = b64(thumbprint.as_ref());
    let mut jwk = members;
    let object = jwk.as_object_mut().expect("a JSON object");
    object.insert("kid".into(), Value::String(kid.clone()));
    object.insert("alg".into(), Value::String(alg.into()));
    object.insert("use".into(), Value::String("sig".into()));
    Ok(SigningKey {
        private_sealed: sealer.seal(&der, &context(&kid)),
        kid,
        alg: alg.into(),
        public_jwk: jwk,
        created_at: now,
        retired_at: None,
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_verifiably_and_publish_no_private_member() {
        let sealer = Sealer::new(&[9u8; 32]).unwrap();
        for alg in ALGORITHMS {
            let record = generate(alg, &sealer, time::OffsetDateTime::UNIX_EPOCH).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(
                    record.public_jwk.get(private).is_none(),
                    "{alg} leaks {private}"
                );
            }
            let der = sealer
                .open(&record.private_sealed, &context(&record.kid))
                .unwrap();
            let key = LoadedKey {
                kid: record.kid.clone(),
                alg: alg.into(),
                signer: parse(alg, &der).unwrap(),
            };
            let sig = key.sign(b"payload");
            let jwk = &record.public_jwk;
            let field = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
            let ok = match alg {
                "RS256" => signature::RsaPublicKeyComponents {
                    n: field("n"),
                    e: field("e"),
                }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, b"payload", &sig)
                .is_ok(),
                "ES256" => {
                    let mut point = vec![4u8];
                    point.extend(field("x"));
                    point.extend(field("y"));
                    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(b"payload", &sig)
                        .is_ok()
                }
                _ => signature::UnparsedPublicKey::new(&signature::ED25519, field("x"))
                    .verify(b"payload", &sig)
                    .is_ok(),
            };
            assert!(ok, "{alg} signature does not verify with its JWK");
        }
    }
}
