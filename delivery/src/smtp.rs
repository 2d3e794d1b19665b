//! E-mail through an SMTP relay (lettre, tokio, rustls with aws-lc-rs).
//!
//! One connection per message: codes are rare and a pool would keep idle TLS sessions to the
//! relay for nothing. `tls = "none"` exists for local peers; [`crate::Channels::build`] refuses
//! it in production.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpSettings, SmtpTls};
use crate::{Deliver, DeliveryError, Message, Method, Receipt, render};

const NAME: &str = "smtp";

/// Sends e-mail codes through a relay.
#[derive(Clone)]
pub struct SmtpDriver {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the password; show only the sender.
        f.debug_struct("SmtpDriver")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpDriver {
    /// Checks the settings and prepares the transport; nothing connects until the first
    /// message. Errors name the configuration key.
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> Result<Self, String> {
        // lettre's rustls client needs a process-wide provider; see the crate documentation.
        crate::install_crypto_provider();
        if settings.host.is_empty() {
            return Err("delivery.smtp.host: required when a method uses smtp".to_owned());
        }
        if settings.port == 0 {
            return Err("delivery.smtp.port: must be 1-65535".to_owned());
        }
        let from: Mailbox = settings.from.parse().map_err(|_| {
            "delivery.smtp.from: not a valid sender (addr@example.jp or Name <addr@example.jp>)"
                .to_owned()
        })?;
        let builder = match settings.tls {
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &settings.host,
            )),
        }
        .map_err(|_| "delivery.smtp.host: not a valid host name for TLS".to_owned())?;
        let mut builder = builder.port(settings.port).timeout(Some(timeout));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.expose().to_owned(),
            ));
        }
        Ok(SmtpDriver {
            transport: builder.build(),
            from,
        })
    }
}

/// 5xx replies about the mailbox or the address (55x, 501, 553) refuse the destination; other
/// failures (4xx, authentication, TLS, network, timeout) may pass later.
fn classify(err: &lettre::transport::smtp::Error) -> DeliveryError {
    if err.is_timeout() {
        return DeliveryError::unavailable(NAME, "timeout");
    }
    match err.status() {
        Some(code) => {
            let code = code.to_string();
            if err.is_permanent() && (code.starts_with("55") || code == "501" || code == "553") {
                DeliveryError::rejected(NAME, format!("SMTP {code}"))
            } else {
                DeliveryError::unavailable(NAME, format!("SMTP {code}"))
            }
        }
        None if err.is_tls() => DeliveryError::unavailable(NAME, "TLS failure"),
        None => DeliveryError::unavailable(NAME, "cannot reach the relay"),
    }
}

#[async_trait]
impl Deliver for SmtpDriver {
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError> {
        if msg.method != Method::Email {
            return Err(DeliveryError::rejected(NAME, "SMTP delivers e-mail only"));
        }
        let to: Mailbox = msg
            .checked_destination(NAME)?
            .parse()
            .map_err(|_| DeliveryError::rejected(NAME, "the address is not deliverable"))?;
        let (subject, body) = render::email(msg);
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| DeliveryError::rejected(NAME, "the message could not be built"))?;
        let response = self.transport.send(email).await.map_err(|e| classify(&e))?;
        Ok(Receipt::new(
            NAME,
            response.message().next().map(str::to_owned),
        ))
    }

    fn name(&self) -> &'static str {
        NAME
    }
}
