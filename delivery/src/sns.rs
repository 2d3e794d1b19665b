//! SMS through AWS SNS `Publish` to a phone number, as a transactional message
//! (`AWS.SNS.SMS.SMSType = Transactional`: higher delivery priority than promotional).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::{BehaviorVersion, Region};
use aws_sdk_sns::types::MessageAttributeValue;
use tokio::sync::OnceCell;

use crate::aws::{AwsCredentials, classify, timeouts};
use crate::config::AwsSettings;
use crate::{Deliver, DeliveryError, Message, Method, Receipt, render};

const NAME: &str = "sns";

/// SNS error codes that mean the number or the request is refused.
const REJECTED: &[&str] = &[
    "InvalidParameter",
    "InvalidParameterValue",
    "ValidationException",
    "EndpointDisabled",
    "OptedOut",
];

/// Sends SMS codes through SNS. The client is created at the first delivery (resolving the
/// default credential chain is asynchronous), then reused.
#[derive(Debug)]
pub struct SnsDriver {
    settings: AwsSettings,
    credentials: AwsCredentials,
    timeout: Duration,
    client: OnceCell<Client>,
}

impl SnsDriver {
    pub fn new(settings: AwsSettings, credentials: AwsCredentials, timeout: Duration) -> Self {
        SnsDriver {
            settings,
            credentials,
            timeout,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let (timeout_config, retry_config) = timeouts(self.timeout);
                let region = Region::new(self.settings.region.clone());
                match &self.credentials {
                    AwsCredentials::Static(credentials) => {
                        let mut builder = aws_sdk_sns::Config::builder()
                            .behavior_version(BehaviorVersion::latest())
                            .region(region)
                            .credentials_provider(credentials.clone())
                            .timeout_config(timeout_config)
                            .retry_config(retry_config);
                        if !self.settings.endpoint.is_empty() {
                            builder = builder.endpoint_url(&self.settings.endpoint);
                        }
                        Client::from_conf(builder.build())
                    }
                    AwsCredentials::DefaultChain => {
                        let mut loader = aws_config::defaults(BehaviorVersion::latest())
                            .region(region)
                            .timeout_config(timeout_config)
                            .retry_config(retry_config);
                        if !self.settings.endpoint.is_empty() {
                            loader = loader.endpoint_url(&self.settings.endpoint);
                        }
                        Client::new(&loader.load().await)
                    }
                }
            })
            .await
    }
}

#[async_trait]
impl Deliver for SnsDriver {
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError> {
        if msg.method != Method::Sms {
            return Err(DeliveryError::rejected(NAME, "SNS delivers SMS only"));
        }
        let to = msg.checked_destination(NAME)?;
        let sms_type = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("Transactional")
            .build()
            .map_err(|_| DeliveryError::unavailable(NAME, "could not build the SMS type"))?;
        let output = self
            .client()
            .await
            .publish()
            .phone_number(&to)
            .message(render::sms(msg))
            .message_attributes("AWS.SNS.SMS.SMSType", sms_type)
            .send()
            .await
            .map_err(|e| classify(NAME, &e, REJECTED))?;
        Ok(Receipt::new(NAME, output.message_id))
    }

    fn name(&self) -> &'static str {
        NAME
    }
}
