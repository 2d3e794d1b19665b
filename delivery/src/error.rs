//! The one error type of delivery: refused for good, or try again later.

/// Why a code was not delivered. The reason is built from provider error codes and HTTP
/// statuses only, never from the message, so it never contains the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The destination (number, address) or the request was refused: sending again will not
    /// help. The sign-in flow should ask for another destination or method.
    #[error("{driver}: the destination was refused ({reason})")]
    Rejected {
        driver: &'static str,
        reason: String,
    },
    /// The provider is down, slow or misbehaving: a later retry may succeed.
    #[error("{driver}: the provider is unavailable ({reason})")]
    Unavailable {
        driver: &'static str,
        reason: String,
    },
}

impl DeliveryError {
    pub fn rejected(driver: &'static str, reason: impl Into<String>) -> Self {
        DeliveryError::Rejected {
            driver,
            reason: reason.into(),
        }
    }

    pub fn unavailable(driver: &'static str, reason: impl Into<String>) -> Self {
        DeliveryError::Unavailable {
            driver,
            reason: reason.into(),
        }
    }

    /// Whether sending the same message later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Unavailable { .. })
    }
}
