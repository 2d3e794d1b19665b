//! What a refresh token looks like on the wire, and how a presented one finds its row.
//!
//! A token is base64url (no padding) of 52 bytes: its grant's ID (16), its generation in the
//! family (4, big-endian) and a 256-bit secret (32). The row is keyed by the first two and keeps
//! only the SHA-256 of the secret, which is compared in constant time. Clients must treat the
//! value as opaque; the layout lets a rotation spend a row and insert its successor beside it
//! (migration 0010). Tokens issued before that migration are 43 characters of random base64url
//! and are found by the hash of the whole token instead.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use store::{RefreshKey, RefreshToken, RefreshTokenId};
use uuid::Uuid;

const SECRET_BYTES: usize = 32;
const VALUE_BYTES: usize = 16 + 4 + SECRET_BYTES;
/// The length of a token's base64url text.
const VALUE_CHARS: usize = (VALUE_BYTES * 4).div_ceil(3);

/// A new token `id`: the value to hand out and the hash its row keeps. None if the generation
/// does not fit the token's four bytes (a family rotated four billion times).
pub fn issue(id: RefreshTokenId) -> Option<(String, String)> {
    let generation = u32::try_from(id.generation).ok()?;
    let secret = service::random::bytes::<SECRET_BYTES>();
    let mut value = [0u8; VALUE_BYTES];
    value[..16].copy_from_slice(id.grant_id.as_bytes());
    value[16..20].copy_from_slice(&generation.to_be_bytes());
    value[20..].copy_from_slice(&secret);
    Some((URL_SAFE_NO_PAD.encode(value), hash(&secret)))
}

/// A presented refresh token: where its row is and the hash the row must hold.
pub struct Presented {
    pub key: RefreshKey,
    secret_hash: String,
}

impl Presented {
    /// Every string parses: one that is not of the current format is looked up as a token of
    /// the format before migration 0010, and an unknown one simply finds no row.
    pub fn parse(value: &str) -> Self {
        if value.len() == VALUE_CHARS
            && let Ok(bytes) = URL_SAFE_NO_PAD.decode(value)
            && let Ok(bytes) = <[u8; VALUE_BYTES]>::try_from(bytes.as_slice())
        {
            let grant_id = Uuid::from_bytes(bytes[..16].try_into().expect("16 bytes"));
            let generation = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
            return Self {
                key: RefreshKey::Id(RefreshTokenId {
                    grant_id,
                    generation: i64::from(generation),
                }),
                secret_hash: hash(&bytes[20..]),
            };
        }
        let token_hash = super::hash_handle(value);
        Self {
            key: RefreshKey::Legacy {
                token_hash: token_hash.clone(),
            },
            secret_hash: token_hash,
        }
    }

    /// Whether `row` is this token: the key found it, and the secret must match in constant time.
    /// A legacy row was found by its hash already; the comparison holds for it as well.
    pub fn matches(&self, row: &RefreshToken) -> bool {
        let key_matches = match &self.key {
            RefreshKey::Id(id) => *id == row.id(),
            RefreshKey::Legacy { .. } => row.generation < 0,
        };
        let secret_matches = aws_lc_rs::constant_time::verify_slices_are_equal(
            self.secret_hash.as_bytes(),
            row.secret_hash.as_bytes(),
        )
        .is_ok();
        key_matches && secret_matches
    }
}

/// SHA-256, base64url: a secret of 256 random bits needs no slow hash (nothing to guess).
fn hash(secret: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, secret).as_ref())
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn row(id: RefreshTokenId, secret_hash: String) -> RefreshToken {
        let now = OffsetDateTime::UNIX_EPOCH;
        RefreshToken {
            grant_id: id.grant_id,
            generation: id.generation,
            secret_hash,
            institution_settings_version: 1,
            created_at: now,
            idle_expires_at: now,
            absolute_expires_at: now,
            used_at: None,
        }
    }

    #[test]
    fn an_issued_token_names_its_row_and_matches_only_its_own_secret() {
        let id = RefreshTokenId {
            grant_id: Uuid::now_v7(),
            generation: 7,
        };
        let (value, secret_hash) = issue(id).expect("fits");
        assert_eq!(value.len(), VALUE_CHARS);
        let presented = Presented::parse(&value);
        assert_eq!(presented.key, RefreshKey::Id(id));
        assert!(presented.matches(&row(id, secret_hash.clone())));

        let (_, other_secret) = issue(id).expect("fits");
        assert!(!presented.matches(&row(id, other_secret)));
        assert!(!presented.matches(&row(id.successor(), secret_hash)));
    }

    #[test]
    fn a_changed_character_is_another_token() {
        let id = RefreshTokenId {
            grant_id: Uuid::now_v7(),
            generation: 0,
        };
        let (value, secret_hash) = issue(id).expect("fits");
        let mut altered = value.into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert!(!Presented::parse(&altered).matches(&row(id, secret_hash)));
    }

    #[test]
    fn other_strings_are_looked_up_as_tokens_of_the_old_format() {
        for value in [
            "",
            "short",
            &"*".repeat(VALUE_CHARS),
            &service::random::token(),
        ] {
            let presented = Presented::parse(value);
            let hash = super::super::hash_handle(value);
            assert_eq!(
                presented.key,
                RefreshKey::Legacy {
                    token_hash: hash.clone()
                },
                "{value:?}"
            );
            let legacy = RefreshTokenId {
                grant_id: Uuid::now_v7(),
                generation: -1,
            };
            assert!(presented.matches(&row(legacy, hash.clone())));
            let current = RefreshTokenId {
                generation: 0,
                ..legacy
            };
            assert!(!presented.matches(&row(current, hash)));
        }
    }

    #[test]
    fn generations_beyond_four_bytes_are_not_issued() {
        let grant_id = Uuid::now_v7();
        for (generation, fits) in [
            (0, true),
            (i64::from(u32::MAX), true),
            (1 << 32, false),
            (-1, false),
        ] {
            let id = RefreshTokenId {
                grant_id,
                generation,
            };
            assert_eq!(issue(id).is_some(), fits, "{generation}");
        }
    }
}
