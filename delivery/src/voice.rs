//! Voice calls through AWS End User Messaging SMS and Voice v2 `SendVoiceMessage`: Amazon Polly
//! reads the SSML of [`render::voice_ssml`] with a Japanese voice. The call's time to live is the
//! code's lifetime: a call placed after the code expired would only confuse.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::Client;
use aws_sdk_pinpointsmsvoicev2::config::{BehaviorVersion, Region};
use aws_sdk_pinpointsmsvoicev2::types::{VoiceId, VoiceMessageBodyTextType};
use tokio::sync::OnceCell;

use crate::aws::{AwsCredentials, classify, timeouts};
use crate::config::VoiceSettings;
use crate::{Deliver, DeliveryError, Message, Method, Receipt, render};

const NAME: &str = "voice";

/// The Japanese voices of the API's `VoiceId`; the first is the default.
pub(crate) const JAPANESE_VOICES: &[&str] = &["TAKUMI", "MIZUKI"];

/// Error codes that mean the number or the request is refused (opted out, blocked country,
/// invalid number).
const REJECTED: &[&str] = &["ValidationException", "ConflictException"];

/// Calls a phone and reads the code. The client is created at the first delivery.
#[derive(Debug)]
pub struct VoiceDriver {
    settings: VoiceSettings,
    voice_id: VoiceId,
    credentials: AwsCredentials,
    timeout: Duration,
    client: OnceCell<Client>,
}

impl VoiceDriver {
    /// `settings.voice_id` empty means `TAKUMI`; [`crate::Channels::build`] checks it is a
    /// Japanese voice.
    pub fn new(settings: VoiceSettings, credentials: AwsCredentials, timeout: Duration) -> Self {
        let voice_id = if settings.voice_id.is_empty() {
            JAPANESE_VOICES[0].to_owned()
        } else {
            settings.voice_id.to_ascii_uppercase()
        };
        VoiceDriver {
            voice_id: VoiceId::from(voice_id.as_str()),
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
                        let mut builder = aws_sdk_pinpointsmsvoicev2::Config::builder()
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
impl Deliver for VoiceDriver {
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError> {
        if msg.method != Method::Voice {
            return Err(DeliveryError::rejected(
                NAME,
                "the voice provider places calls only",
            ));
        }
        let to = msg.checked_destination(NAME)?;
        // The API accepts 5 seconds to 3 days.
        let ttl = i32::try_from(msg.lifetime.whole_seconds().clamp(5, 259_200)).unwrap_or(300);
        let output = self
            .client()
            .await
            .send_voice_message()
            .destination_phone_number(&to)
            .origination_identity(&self.settings.origination_identity)
            .message_body(render::voice_ssml(msg))
            .message_body_text_type(VoiceMessageBodyTextType::Ssml)
            .voice_id(self.voice_id.clone())
            .time_to_live(ttl)
            .send()
            .await
            .map_err(|e| classify(NAME, &e, REJECTED))?;
        Ok(Receipt::new(NAME, output.message_id))
    }

    fn name(&self) -> &'static str {
        NAME
    }
}
