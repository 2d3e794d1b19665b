//! Real protocol peers for the second-factor tests (see the `test-peers` crate), plus what only
//! these tests need.

pub use test_peers::*;

/// AWS credentials for local peers: nothing of the developer's AWS setup is read.
pub fn test_credentials() -> delivery::AwsCredentials {
    delivery::AwsCredentials::Static(aws_credential_types::Credentials::new(
        "test", "test", None, None, "test",
    ))
}
