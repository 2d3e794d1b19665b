//! [`Channels`]: the one driver per method, chosen once at startup from [`DeliveryConfig`], with
//! the production guard (STYLE practice 8): no development outbox and no plain SMTP when
//! `production` is true.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Channel, DeliveryConfig, SmtpTls};
use crate::voice::JAPANESE_VOICES;
use crate::{
    AwsCredentials, Deliver, DeliveryError, Message, Method, OutboxDriver, Receipt, SmtpDriver,
    SnsDriver, VoiceDriver, WebhookDriver,
};

/// Maps each second-factor method to its driver. Itself a [`Deliver`]: it dispatches on
/// [`Message::method`], so the sign-in flow holds one `Arc<dyn Deliver>`.
#[derive(Clone)]
pub struct Channels {
    email: Arc<dyn Deliver>,
    sms: Arc<dyn Deliver>,
    voice: Arc<dyn Deliver>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("email", &self.email.name())
            .field("sms", &self.sms.name())
            .field("voice", &self.voice.name())
            .finish()
    }
}

/// The drivers that can serve each method.
fn allowed(method: Method) -> &'static [Channel] {
    match method {
        Method::Email => &[Channel::Outbox, Channel::Smtp, Channel::Webhook],
        Method::Sms => &[Channel::Outbox, Channel::Sns, Channel::Webhook],
        Method::Voice => &[Channel::Outbox, Channel::Voice, Channel::Webhook],
    }
}

fn required(key: &str, value: &str, channel: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{key}: required when a method uses {channel}"))
    } else {
        Ok(())
    }
}

impl Channels {
    /// Builds the drivers from the configuration; AWS drivers use the default credential
    /// chain. `outbox_path` is the development outbox file (`SEKIMORI__OUTBOX__PATH`).
    /// In production the outbox and `delivery.smtp.tls = "none"` are refused. Errors name the
    /// key, e.g. `delivery.sms: the development outbox is refused in production`.
    pub fn build(
        config: &DeliveryConfig,
        outbox_path: &Path,
        production: bool,
    ) -> Result<Channels, String> {
        Channels::build_with(
            config,
            outbox_path,
            production,
            AwsCredentials::DefaultChain,
        )
    }

    /// [`Channels::build`] with the AWS credentials given explicitly (tests against local
    /// peers use [`AwsCredentials::Static`]).
    pub fn build_with(
        config: &DeliveryConfig,
        outbox_path: &Path,
        production: bool,
        aws: AwsCredentials,
    ) -> Result<Channels, String> {
        crate::install_crypto_provider();
        if !(1..=60).contains(&config.timeout_secs) {
            return Err("delivery.timeout_secs: must be 1-60".to_owned());
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let choices = [
            (Method::Email, "delivery.email", config.email),
            (Method::Sms, "delivery.sms", config.sms),
            (Method::Voice, "delivery.voice", config.voice),
        ];
        for (method, key, channel) in choices {
            if !allowed(method).contains(&channel) {
                let names: Vec<&str> = allowed(method).iter().map(|c| c.as_str()).collect();
                return Err(format!(
                    "{key}: {} cannot deliver {}; choose one of {}",
                    channel.as_str(),
                    method.as_str(),
                    names.join(", ")
                ));
            }
            if production && channel == Channel::Outbox {
                return Err(format!(
                    "{key}: the development outbox is refused in production"
                ));
            }
        }
        let uses = |channel: Channel| choices.iter().any(|(_, _, c)| *c == channel);

        // One instance per driver, shared by the methods that use it: the outbox's lock then
        // covers every line written to the file.
        let outbox: Arc<dyn Deliver> = Arc::new(OutboxDriver::new(outbox_path));
        let smtp: Option<Arc<dyn Deliver>> = if uses(Channel::Smtp) {
            if production && config.smtp.tls == SmtpTls::None {
                return Err("delivery.smtp.tls: plain SMTP is refused in production".to_owned());
            }
            Some(Arc::new(SmtpDriver::new(&config.smtp, timeout)?))
        } else {
            None
        };
        let sns: Option<Arc<dyn Deliver>> = if uses(Channel::Sns) {
            required("delivery.sns.region", &config.sns.region, "sns")?;
            Some(Arc::new(SnsDriver::new(
                config.sns.clone(),
                aws.clone(),
                timeout,
            )))
        } else {
            None
        };
        let voice: Option<Arc<dyn Deliver>> = if uses(Channel::Voice) {
            let settings = &config.voice_provider;
            required("delivery.voice_provider.region", &settings.region, "voice")?;
            required(
                "delivery.voice_provider.origination_identity",
                &settings.origination_identity,
                "voice",
            )?;
            if !settings.voice_id.is_empty()
                && !JAPANESE_VOICES.contains(&settings.voice_id.to_ascii_uppercase().as_str())
            {
                return Err(format!(
                    "delivery.voice_provider.voice_id: the call is read in Japanese; choose one of {}",
                    JAPANESE_VOICES.join(", ")
                ));
            }
            Some(Arc::new(VoiceDriver::new(settings.clone(), aws, timeout)))
        } else {
            None
        };
        let webhook: Option<Arc<dyn Deliver>> = if uses(Channel::Webhook) {
            Some(Arc::new(WebhookDriver::new(&config.webhook, timeout)?))
        } else {
            None
        };

        let pick = |channel: Channel| -> Arc<dyn Deliver> {
            let chosen = match channel {
                Channel::Outbox => None,
                Channel::Smtp => smtp.clone(),
                Channel::Sns => sns.clone(),
                Channel::Voice => voice.clone(),
                Channel::Webhook => webhook.clone(),
            };
            // Every chosen driver was built above; the outbox is the fallback for `Outbox`.
            chosen.unwrap_or_else(|| Arc::clone(&outbox))
        };
        Ok(Channels {
            email: pick(config.email),
            sms: pick(config.sms),
            voice: pick(config.voice),
        })
    }

    /// Channels from given drivers, e.g. one [`crate::RecordingDriver`] for every method in
    /// tests.
    pub fn from_drivers(
        email: Arc<dyn Deliver>,
        sms: Arc<dyn Deliver>,
        voice: Arc<dyn Deliver>,
    ) -> Channels {
        Channels { email, sms, voice }
    }

    /// The driver serving `method`.
    pub fn driver(&self, method: Method) -> &Arc<dyn Deliver> {
        match method {
            Method::Email => &self.email,
            Method::Sms => &self.sms,
            Method::Voice => &self.voice,
        }
    }
}

#[async_trait]
impl Deliver for Channels {
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError> {
        let driver = self.driver(msg.method);
        let result = driver.deliver(msg).await;
        if let Err(err) = &result {
            // The error never holds the code; the destination stays out of logs.
            tracing::warn!(method = msg.method.as_str(), error = %err, "second-factor delivery failed");
        }
        result
    }

    fn name(&self) -> &'static str {
        "channels"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config(email: Channel, sms: Channel, voice: Channel) -> DeliveryConfig {
        let mut config = DeliveryConfig::outbox();
        config.email = email;
        config.sms = sms;
        config.voice = voice;
        config.smtp.host = "smtp.example.jp".into();
        config.smtp.from = "関守 <no-reply@example.jp>".into();
        config.sns.region = "ap-northeast-1".into();
        config.voice_provider.region = "ap-northeast-1".into();
        config.voice_provider.origination_identity = "+81501234567".into();
        config.webhook.url = "https://carrier.example.jp/hook".into();
        config.webhook.secret = Secret::new("0123456789abcdef0123456789abcdef");
        config
    }

    fn build(config: &DeliveryConfig, production: bool) -> Result<Channels, String> {
        Channels::build(config, Path::new("/nonexistent/outbox.jsonl"), production)
    }

    #[test]
    fn production_refuses_the_outbox_naming_the_key() {
        let c = config(Channel::Smtp, Channel::Outbox, Channel::Voice);
        assert_eq!(
            build(&c, true).unwrap_err(),
            "delivery.sms: the development outbox is refused in production"
        );
        assert!(build(&c, false).is_ok());
        let c = config(Channel::Outbox, Channel::Sns, Channel::Voice);
        assert!(build(&c, true).unwrap_err().starts_with("delivery.email:"));
    }

    #[test]
    fn production_refuses_plain_smtp() {
        let mut c = config(Channel::Smtp, Channel::Sns, Channel::Voice);
        c.smtp.tls = SmtpTls::None;
        assert_eq!(
            build(&c, true).unwrap_err(),
            "delivery.smtp.tls: plain SMTP is refused in production"
        );
        assert!(build(&c, false).is_ok());
        c.smtp.tls = SmtpTls::Starttls;
        let channels = build(&c, true).unwrap();
        assert_eq!(channels.driver(Method::Email).name(), "smtp");
        assert_eq!(channels.driver(Method::Sms).name(), "sns");
        assert_eq!(channels.driver(Method::Voice).name(), "voice");
    }

    #[test]
    fn drivers_must_fit_the_method_and_be_configured() {
        let c = config(Channel::Sns, Channel::Sns, Channel::Voice);
        assert!(
            build(&c, false)
                .unwrap_err()
                .starts_with("delivery.email: sns cannot deliver email")
        );
        let mut c = config(Channel::Outbox, Channel::Sns, Channel::Outbox);
        c.sns.region.clear();
        assert!(
            build(&c, false)
                .unwrap_err()
                .starts_with("delivery.sns.region:")
        );
        let mut c = config(Channel::Outbox, Channel::Outbox, Channel::Voice);
        c.voice_provider.voice_id = "JOANNA".into();
        assert!(
            build(&c, false)
                .unwrap_err()
                .starts_with("delivery.voice_provider.voice_id:")
        );
        c.voice_provider.voice_id = "mizuki".into();
        assert!(build(&c, false).is_ok());
        let mut c = config(Channel::Smtp, Channel::Outbox, Channel::Outbox);
        c.smtp.from = "not an address".into();
        assert!(
            build(&c, false)
                .unwrap_err()
                .starts_with("delivery.smtp.from:")
        );
        let mut c = config(Channel::Outbox, Channel::Outbox, Channel::Outbox);
        c.timeout_secs = 0;
        assert!(
            build(&c, false)
                .unwrap_err()
                .starts_with("delivery.timeout_secs:")
        );
    }

    #[test]
    fn webhook_needs_https_or_loopback_and_a_long_secret() {
        let mut c = config(Channel::Webhook, Channel::Webhook, Channel::Webhook);
        assert!(build(&c, true).is_ok());
        for url in [
            "http://carrier.example.jp/hook",
            "ftp://x/y",
            "not a url",
            "http://10.0.0.1/x",
        ] {
            c.webhook.url = url.into();
            assert!(
                build(&c, false)
                    .unwrap_err()
                    .starts_with("delivery.webhook.url:"),
                "{url}"
            );
        }
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "http://[::1]:9/x",
        ] {
            c.webhook.url = url.into();
            assert!(build(&c, false).is_ok(), "{url}");
        }
        c.webhook.secret = Secret::new("short");
        let err = build(&c, false).unwrap_err();
        assert!(err.starts_with("delivery.webhook.secret:") && !err.contains("short"));
    }
}
