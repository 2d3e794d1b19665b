//! Second-factor delivery (SPEC §7 "Delivery drivers behind one trait"): a one-time code leaves
//! Sekimori through exactly one [`Deliver`] implementation per method.
//!
//! - [`Message`] is what the sign-in flow hands over: method, destination, code, locale. The
//!   driver renders the text ([`render`]): a Japanese (or English) e-mail, a short SMS, or SSML
//!   read by a Japanese voice, the code digit by digit, twice.
//! - Drivers: [`OutboxDriver`] (development: one JSON line per code in a file, SPEC §12),
//!   [`SmtpDriver`] (lettre), [`SnsDriver`] (AWS SNS Publish), [`VoiceDriver`] (AWS End User
//!   Messaging SMS and Voice v2 `SendVoiceMessage`), [`WebhookDriver`] (signed HTTPS POST to
//!   another carrier) and [`RecordingDriver`] (the in-memory fake for tests).
//! - [`Channels`] maps each method to its driver, built once at startup from [`DeliveryConfig`];
//!   in production it refuses the outbox and plain SMTP, naming the key.
//!
//! Every failure is a [`DeliveryError`]: `Rejected` (the destination is refused, permanent) or
//! `Unavailable` (the provider is down or slow, retryable). Neither the code nor the message text
//! ever appears in an error, a `Debug` output or a log line.
//!
//! # TLS
//!
//! The SMTP driver uses rustls with the aws-lc-rs provider; other crates in the binary enable
//! rustls's ring provider, so rustls cannot pick a process default by itself. The binary should
//! call [`install_crypto_provider`] first thing in `main`, before any TLS client exists.
//! [`Channels::build`] calls it too, so forgetting it is harmless; it is idempotent.

mod aws;
mod channels;
pub mod config;
mod error;
mod message;
mod outbox;
mod recording;
pub mod render;
mod smtp;
mod sns;
mod voice;
mod webhook;

pub use aws::AwsCredentials;
pub use channels::Channels;
pub use config::{
    AwsSettings, Channel, DeliveryConfig, Secret, SmtpSettings, SmtpTls, VoiceSettings,
    WebhookSettings,
};
pub use error::DeliveryError;
pub use message::{Locale, Message, Method, Receipt};
pub use outbox::{OutboxDriver, OutboxLine};
pub use recording::RecordingDriver;
pub use smtp::SmtpDriver;
pub use sns::SnsDriver;
pub use voice::VoiceDriver;
pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookDriver, signature};

use async_trait::async_trait;

/// One way of getting a code to a person. Implementations are cheap to share (`Arc<dyn
/// Deliver>`) and safe to call concurrently.
#[async_trait]
pub trait Deliver: Send + Sync {
    /// Sends `msg`, or says why not. Never panics; never puts the code in the error.
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError>;

    /// A short, stable name for logs and receipts (`"outbox"`, `"smtp"`, …).
    fn name(&self) -> &'static str;
}

/// Installs rustls's aws-lc-rs provider as the process default, once. Returns quietly when a
/// provider is already installed (by this function or by the binary).
pub fn install_crypto_provider() {
    // An `Err` only means another provider was installed first, which is what we want anyway.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
