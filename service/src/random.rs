//! Random values from the operating system's CSPRNG.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `n` random bytes from the OS CSPRNG.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("the OS random source is available");
    out
}

/// A URL-safe random token carrying 256 bits (cookie values, secrets, handles).
pub fn token() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<32>())
}
