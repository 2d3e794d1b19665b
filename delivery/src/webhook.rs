//! A generic HTTPS webhook for carriers without a driver of their own (SPEC §7).
//!
//! Each code is one `POST` of `{"channel", "to", "text", "code", "at"}` (plus `"ssml"` for voice,
//! where `text` is a plain script for engines that do not take SSML) with the headers
//! - `X-Sekimori-Signature: sha256=<hex HMAC-SHA256 of the exact body under the secret>`,
//! - `X-Sekimori-Timestamp: <Unix seconds>`, equal to `at`, which the signature covers; a
//!   receiver should refuse a body whose `at` is more than a few minutes old (replay).
//!
//! 2xx is delivered, 4xx refuses the destination, anything else (3xx, 5xx, timeout, network) is
//! unavailable. Redirects are not followed: they would carry the code to an unconfigured host.
//! The URL must be `https://`; `http://` is accepted for loopback hosts only.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use reqwest::Url;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::WebhookSettings;
use crate::{Deliver, DeliveryError, Message, Method, Receipt, render};

const NAME: &str = "webhook";

pub const SIGNATURE_HEADER: &str = "X-Sekimori-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Sekimori-Timestamp";

/// Shortest accepted secret, in characters.
const MIN_SECRET: usize = 32;

/// `sha256=<hex>`: the signature header value for `body` under `secret`. Public so that
/// receivers written in Rust (and the tests) compute it the same way.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

#[derive(Serialize)]
struct Body<'a> {
    channel: &'static str,
    to: &'a str,
    text: String,
    code: &'a str,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssml: Option<String>,
}

/// POSTs signed codes to a configured URL.
pub struct WebhookDriver {
    url: Url,
    secret: Vec<u8>,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a token in its query; show the host only.
        f.debug_struct("WebhookDriver")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        // IPv6 hosts come bracketed: `[::1]`.
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl WebhookDriver {
    /// Checks the URL and the secret; errors name the configuration key.
    pub fn new(settings: &WebhookSettings, timeout: Duration) -> Result<Self, String> {
        let url = Url::parse(&settings.url)
            .map_err(|_| "delivery.webhook.url: not a valid absolute URL".to_owned())?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            _ => {
                return Err(
                    "delivery.webhook.url: must be https (http only for loopback hosts)".to_owned(),
                );
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("delivery.webhook.url: a host is required".to_owned());
        }
        if settings.secret.expose().chars().count() < MIN_SECRET {
            return Err(format!(
                "delivery.webhook.secret: at least {MIN_SECRET} characters are required"
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| "delivery.webhook: the HTTP client could not be created".to_owned())?;
        Ok(WebhookDriver {
            url,
            secret: settings.secret.expose().as_bytes().to_vec(),
            client,
        })
    }
}

#[async_trait]
impl Deliver for WebhookDriver {
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError> {
        let to = msg.checked_destination(NAME)?;
        let now = OffsetDateTime::now_utc();
        let at = now
            .format(&Rfc3339)
            .map_err(|_| DeliveryError::unavailable(NAME, "could not format the time"))?;
        let (text, ssml) = match msg.method {
            Method::Voice => (render::voice_text(msg), Some(render::voice_ssml(msg))),
            Method::Email | Method::Sms => (render::text(msg), None),
        };
        let body = serde_json::to_vec(&Body {
            channel: msg.method.as_str(),
            to: &to,
            text,
            code: &msg.code,
            at,
            ssml,
        })
        .map_err(|_| DeliveryError::unavailable(NAME, "could not encode the body"))?;
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, &body))
            .header(TIMESTAMP_HEADER, now.unix_timestamp().to_string())
            .body(body)
            .send()
            .await
            // reqwest's error text includes the URL; keep only the kind of failure.
            .map_err(|e| {
                let reason = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "cannot reach the webhook"
                } else {
                    "request failed"
                };
                DeliveryError::unavailable(NAME, reason)
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(Receipt::new(NAME, None))
        } else if status.is_client_error() {
            Err(DeliveryError::rejected(
                NAME,
                format!("HTTP {}", status.as_u16()),
            ))
        } else {
            Err(DeliveryError::unavailable(
                NAME,
                format!("HTTP {}", status.as_u16()),
            ))
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}
