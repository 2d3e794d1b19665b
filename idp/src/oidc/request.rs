//! A validated authorization request, carried through the login pages as a sealed hidden field
//! so that any node can continue it (no server-side state before sign-in).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use service::Sealer;

/// How long a person has to finish the login pages for one authorization request.
pub const PENDING_SECONDS: i64 = 30 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `acr_values` demanded a second factor (`urn:sekimori:acr:mfa` without the password
    /// level): only a session with a second factor will do, and a new sign-in asks for one
    /// wherever the person is.
    #[serde(default)]
    pub step_up: bool,
}

/// Seals a value for a hidden form field: AES-GCM under the KEK, bound to `purpose`.
pub fn seal_json<T: Serialize>(sealer: &Sealer, purpose: &str, value: &T) -> String {
    let json = serde_json::to_vec(value).expect("plain records serialize");
    URL_SAFE_NO_PAD.encode(sealer.seal(&json, purpose))
}

/// Opens a sealed hidden field; `None` when it was tampered with, is for another purpose, or
/// does not parse.
pub fn open_json<T: DeserializeOwned>(sealer: &Sealer, purpose: &str, blob: &str) -> Option<T> {
    if blob.len() > 16 * 1024 {
        return None;
    }
    let sealed = URL_SAFE_NO_PAD.decode(blob).ok()?;
    let json = sealer.open(&sealed, purpose).ok()?;
    serde_json::from_slice(&json).ok()
}
