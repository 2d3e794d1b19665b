//! The `[delivery]` configuration section: which driver serves each method, and the drivers'
//! settings.
//!
//! A superset of `idp::config::DeliverySettings` (same keys, same meaning) plus `webhook` and
//! `timeout_secs`; every driver section may be omitted or partial, and [`crate::Channels::build`]
//! names the missing key of a driver that is actually chosen.
//!
//! ```toml
//! [delivery]
//! email = "smtp"          # outbox | smtp | webhook
//! sms = "sns"             # outbox | sns | webhook
//! voice = "voice"         # outbox | voice | webhook
//! timeout_secs = 10       # per attempt, every driver (1..=60)
//!
//! [delivery.smtp]
//! host = "smtp.example.jp"
//! port = 587              # default 587
//! username = ""           # empty: no AUTH
//! password = ""
//! from = "関守 <no-reply@example.jp>"
//! tls = "starttls"        # starttls (default) | tls | none (none refused in production)
//!
//! [delivery.sns]
//! region = "ap-northeast-1"
//! endpoint = ""           # empty: the AWS endpoint; tests point it at a local peer
//!
//! [delivery.voice_provider]
//! region = "ap-northeast-1"
//! endpoint = ""
//! origination_identity = "arn:aws:sms-voice:…:phone-number/…"
//! voice_id = "TAKUMI"     # TAKUMI (default) | MIZUKI: the Japanese voices
//!
//! [delivery.webhook]
//! url = "https://carrier.example.jp/sekimori"   # http only on loopback
//! secret = "…"            # HMAC-SHA256 key, at least 32 characters
//! ```

use serde::Deserialize;

/// Which driver serves a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The development outbox (refused in production).
    Outbox,
    Smtp,
    Sns,
    Voice,
    Webhook,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Outbox => "outbox",
            Channel::Smtp => "smtp",
            Channel::Sns => "sns",
            Channel::Voice => "voice",
            Channel::Webhook => "webhook",
        }
    }
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    pub email: Channel,
    pub sms: Channel,
    pub voice: Channel,
    #[serde(default)]
    pub smtp: SmtpSettings,
    #[serde(default)]
    pub sns: AwsSettings,
    #[serde(default)]
    pub voice_provider: VoiceSettings,
    #[serde(default)]
    pub webhook: WebhookSettings,
    /// Seconds per delivery attempt, for every driver (default 10; 1..=60).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    10
}

impl DeliveryConfig {
    /// Every method through the development outbox: the embedded default.
    pub fn outbox() -> Self {
        DeliveryConfig {
            email: Channel::Outbox,
            sms: Channel::Outbox,
            voice: Channel::Outbox,
            smtp: SmtpSettings::default(),
            sns: AwsSettings::default(),
            voice_provider: VoiceSettings::default(),
            webhook: WebhookSettings::default(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    #[default]
    Starttls,
    /// TLS from the first byte, usually port 465.
    Tls,
    /// No encryption: development peers only; refused in production.
    None,
}

/// `[delivery.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// Empty: no authentication.
    pub username: String,
    pub password: Secret,
    /// The sender, `addr@example.jp` or `Name <addr@example.jp>`.
    pub from: String,
    pub tls: SmtpTls,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: 587,
            username: String::new(),
            password: Secret::default(),
            from: String::new(),
            tls: SmtpTls::Starttls,
        }
    }
}

/// `[delivery.sns]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    pub region: String,
    /// Overrides the AWS endpoint (tests point it at a local peer). Empty: AWS's own.
    pub endpoint: String,
}

/// `[delivery.voice_provider]`: AWS End User Messaging SMS and Voice v2.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceSettings {
    pub region: String,
    /// Overrides the AWS endpoint. Empty: AWS's own.
    pub endpoint: String,
    /// The calling number: a phone number, its ID or ARN, or a pool ID or ARN.
    pub origination_identity: String,
    /// A Japanese Polly voice: `TAKUMI` (empty means this) or `MIZUKI`.
    pub voice_id: String,
}

/// `[delivery.webhook]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// An `https://` URL; `http://` only for loopback hosts.
    pub url: String,
    /// Key of the `X-Sekimori-Signature` HMAC-SHA256, at least 32 characters.
    pub secret: Secret,
}

/// A configuration value that must never be printed.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(empty)"
        } else {
            "Secret(***)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_shaped_sections_deserialize() {
        // The shape idp's DeliverySettings accepts today must keep working.
        let config: DeliveryConfig = serde_json::from_value(serde_json::json!({
            "email": "smtp", "sms": "sns", "voice": "voice",
            "smtp": {"host": "h", "port": 25, "username": "", "password": "p", "from": "a@b.jp", "tls": "none"},
            "sns": {"region": "ap-northeast-1", "endpoint": ""},
            "voice_provider": {"region": "r", "endpoint": "", "origination_identity": "o", "voice_id": "MIZUKI"},
        }))
        .unwrap();
        assert_eq!(config.smtp.tls, SmtpTls::None);
        assert_eq!(config.timeout_secs, 10);
        assert_eq!(format!("{:?}", config.smtp.password), "Secret(***)");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_value::<DeliveryConfig>(serde_json::json!({
            "email": "outbox", "sms": "outbox", "voice": "outbox", "smtp": {"hots": "x"},
        }))
        .unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
    }
}
