//! CSRF protection by signed double submit: a random value in a SameSite=Strict, HttpOnly
//! cookie, and in every form its HMAC under a key derived from the KEK. A cross-site page can
//! neither read the cookie nor compute the HMAC.

use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::session;

pub const COOKIE: &str = "sekimori_csrf";

pub struct Csrf {
    key: hmac::Key,
}

impl Csrf {
    pub fn from_kek(kek: &[u8]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, kek);
        let derived = hmac::sign(&root, b"sekimori/csrf/v1");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// The form token for this request, and the `Set-Cookie` value when a new cookie is needed.
    pub fn issue(&self, headers: &HeaderMap) -> (String, Option<String>) {
        match session::cookie(headers, COOKIE).filter(|v| v.len() == 43) {
            Some(existing) => (self.token_for(existing), None),
            None => {
                let value = service::random::token();
                (
                    self.token_for(&value),
                    Some(session::set_cookie(COOKIE, &value, "Strict", None)),
                )
            }
        }
    }

    /// Whether the posted form token matches this request's cookie (constant time).
    pub fn check(&self, headers: &HeaderMap, form_token: &str) -> bool {
        let Some(cookie) = session::cookie(headers, COOKIE) else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(form_token) else {
            return false;
        };
        hmac::verify(&self.key, cookie.as_bytes(), &tag).is_ok()
    }

    fn token_for(&self, cookie: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, cookie.as_bytes()).as_ref())
    }
}
