//! What the two AWS drivers share: where credentials come from, timeouts and retries, and how an
//! SDK error becomes a [`DeliveryError`].

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::config::timeout::TimeoutConfig;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use crate::DeliveryError;

/// Where the AWS drivers take their credentials from.
#[derive(Debug, Clone, Default)]
pub enum AwsCredentials {
    /// The SDK's default chain (environment, profile, web identity, ECS, IMDS), resolved at the
    /// first delivery: the production choice.
    #[default]
    DefaultChain,
    /// Fixed credentials, e.g. `Credentials::new("test", "test", None, None, "test")` for a local
    /// peer. No AWS configuration file or environment variable is read at all.
    Static(Credentials),
}

/// One attempt may take `timeout`; a failed attempt is retried once, since a code that arrives
/// after a long wait is of little use.
pub(crate) fn timeouts(timeout: Duration) -> (TimeoutConfig, RetryConfig) {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .operation_attempt_timeout(timeout)
        .operation_timeout(timeout * 2 + Duration::from_secs(1))
        .build();
    (timeouts, RetryConfig::standard().with_max_attempts(2))
}

/// Classifies an SDK error. `rejected_codes` are the service error codes that mean the request
/// itself (usually the destination) is refused; everything else is worth retrying later. The
/// reason names the error code and status only: service messages may echo the request.
pub(crate) fn classify<E, R>(
    driver: &'static str,
    err: &SdkError<E, R>,
    rejected_codes: &[&str],
) -> DeliveryError
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            if rejected_codes.contains(&code) {
                DeliveryError::rejected(driver, format!("service error {code}"))
            } else {
                DeliveryError::unavailable(driver, format!("service error {code}"))
            }
        }
        SdkError::TimeoutError(_) => DeliveryError::unavailable(driver, "timeout"),
        SdkError::DispatchFailure(_) => {
            DeliveryError::unavailable(driver, "cannot reach the provider")
        }
        SdkError::ResponseError(_) => {
            DeliveryError::unavailable(driver, "unreadable response from the provider")
        }
        SdkError::ConstructionFailure(_) => {
            DeliveryError::unavailable(driver, "the request could not be built (configuration)")
        }
        _ => DeliveryError::unavailable(driver, "unexpected SDK error"),
    }
}
