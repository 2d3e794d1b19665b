//! Sealing secrets at rest (private signing keys, initial passwords) with AES-256-GCM under the
//! key-encryption key (KEK). A sealed value is `version (1 byte) || nonce (12) || ciphertext+tag`;
//! the associated data binds it to its purpose and owner so a sealed value cannot be moved to
//! another row and still open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the key-encryption key must be 32 bytes")]
    BadKey,
    #[error("sealed value cannot be opened with this key-encryption key")]
    Open,
}

pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(kek: &[u8]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, kek).map_err(|_| SealError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SealError::Open);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
            .map_err(|_| SealError::Open)?;
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal(b"secret", "initial-password:abc");
        assert_eq!(
            sealer.open(&sealed, "initial-password:abc").unwrap(),
            b"secret"
        );
        assert!(sealer.open(&sealed, "initial-password:other").is_err());
        assert!(
            Sealer::new(&[8u8; 32])
                .unwrap()
                .open(&sealed, "initial-password:abc")
                .is_err()
        );
        assert!(sealer.open(&sealed[..5], "initial-password:abc").is_err());
        assert!(Sealer::new(&[1u8; 16]).is_err());
    }
}
