//! What the sign-in flow hands to a driver, and what comes back.

use std::fmt;

use policies::{EmailAddress, PhoneChannel, PhoneNumber};
use time::Duration;

use crate::DeliveryError;

/// The second-factor methods (SPEC §7): `email` (1), `sms` (2), `voice` (3). The store's enum is
/// reused so that the sign-in flow passes the registered method straight through.
pub use store::SecondFactorMethod as Method;

/// The language of the text around the code. Voice calls are always Japanese (SPEC §7: "a phone
/// call reading the code in Japanese").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Locale {
    #[default]
    Ja,
    En,
}

/// One code to send. `Debug` never shows the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub method: Method,
    /// An e-mail address for [`Method::Email`], an E.164 number (`+8190…`) for SMS and voice.
    pub to: String,
    /// The one-time code: ASCII digits only (4-10 of them).
    pub code: String,
    pub locale: Locale,
    /// How long the code is valid, shown in the text (SPEC §7: 5 minutes by default).
    pub lifetime: Duration,
}

impl Message {
    /// A message with the default 5-minute lifetime.
    pub fn new(
        method: Method,
        to: impl Into<String>,
        code: impl Into<String>,
        locale: Locale,
    ) -> Self {
        Message {
            method,
            to: to.into(),
            code: code.into(),
            locale,
            lifetime: Duration::minutes(5),
        }
    }

    /// Sets the lifetime shown in the text (the deployment's `OtpPolicy::lifetime`).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The lifetime in whole minutes, at least 1, for the text.
    pub fn lifetime_minutes(&self) -> i64 {
        ((self.lifetime.whole_seconds() + 59) / 60).max(1)
    }

    /// Checks the code and the destination for this message's method, as every driver does
    /// before anything leaves the process: e-mail addresses through `policies::EmailAddress`,
    /// numbers through `policies::PhoneNumber` (SMS only to mobiles). Returns the normalised
    /// destination.
    pub fn checked_destination(&self, driver: &'static str) -> Result<String, DeliveryError> {
        let code_ok =
            (4..=10).contains(&self.code.len()) && self.code.bytes().all(|b| b.is_ascii_digit());
        if !code_ok {
            return Err(DeliveryError::rejected(
                driver,
                "the code must be 4-10 ASCII digits",
            ));
        }
        let refused = |v: policies::Violation| DeliveryError::rejected(driver, v.to_string());
        match self.method {
            Method::Email => Ok(EmailAddress::parse(&self.to).map_err(refused)?.to_string()),
            Method::Sms | Method::Voice => {
                let phone = PhoneNumber::parse(&self.to).map_err(refused)?;
                let channel = if self.method == Method::Sms {
                    PhoneChannel::Sms
                } else {
                    PhoneChannel::Voice
                };
                phone.check_for(channel).map_err(refused)?;
                Ok(phone.as_e164().to_owned())
            }
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("method", &self.method)
            .field("to", &self.to)
            .field("code", &"***")
            .field("locale", &self.locale)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Proof that a driver accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The driver's [`crate::Deliver::name`].
    pub driver: &'static str,
    /// The provider's message ID when it gives one (SNS, voice, SMTP queue ID).
    pub provider_id: Option<String>,
}

impl Receipt {
    pub fn new(driver: &'static str, provider_id: Option<String>) -> Self {
        Receipt {
            driver,
            provider_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_code() {
        let msg = Message::new(Method::Sms, "+819012345678", "482913", Locale::Ja);
        let debug = format!("{msg:?}");
        assert!(!debug.contains("482913"), "{debug}");
    }

    #[test]
    fn destinations_are_checked_per_method() {
        let ok = Message::new(Method::Sms, "090-1234-5678", "123456", Locale::Ja);
        assert_eq!(ok.checked_destination("t").unwrap(), "+819012345678");
        let fixed = Message::new(Method::Sms, "+81312345678", "123456", Locale::Ja);
        let err = fixed.checked_destination("t").unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("phone.sms_mobile_only"), "{err}");
        let voice = Message::new(Method::Voice, "+81312345678", "123456", Locale::Ja);
        assert!(voice.checked_destination("t").is_ok());
        let email = Message::new(Method::Email, "Taro@Example.JP", "123456", Locale::Ja);
        assert_eq!(email.checked_destination("t").unwrap(), "Taro@example.jp");
        let bad_code = Message::new(Method::Email, "taro@example.jp", "12a456", Locale::Ja);
        let err = bad_code.checked_destination("t").unwrap_err();
        assert!(!err.to_string().contains("12a456"));
        let foreign = Message::new(Method::Sms, "+12065550100", "123456", Locale::Ja);
        assert!(matches!(
            foreign.checked_destination("t"),
            Err(DeliveryError::Rejected { .. })
        ));
    }

    #[test]
    fn lifetime_rounds_up_to_minutes() {
        let msg = Message::new(Method::Email, "a@b.jp", "123456", Locale::Ja);
        assert_eq!(msg.lifetime_minutes(), 5);
        assert_eq!(
            msg.clone()
                .with_lifetime(Duration::seconds(61))
                .lifetime_minutes(),
            2
        );
        assert_eq!(msg.with_lifetime(Duration::ZERO).lifetime_minutes(), 1);
    }
}
