//! The recording fake (STYLE practice 8): keeps every message in memory so tests of the sign-in
//! flow can read the code back, and can be told to fail.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::{Deliver, DeliveryError, Message, Receipt};

const NAME: &str = "recording";

/// Accepts (or, when told, refuses) every message and remembers what it accepted.
#[derive(Debug, Default)]
pub struct RecordingDriver {
    sent: Mutex<Vec<Message>>,
    failure: Mutex<Option<DeliveryError>>,
}

impl RecordingDriver {
    pub fn new() -> Self {
        RecordingDriver::default()
    }

    /// Every accepted message, oldest first, with its destination normalised (E.164, lower-case
    /// domain).
    pub fn messages(&self) -> Vec<Message> {
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The code of the newest message sent to `to`.
    pub fn last_code_for(&self, to: &str) -> Option<String> {
        self.messages()
            .into_iter()
            .rev()
            .find(|m| m.to == to)
            .map(|m| m.code)
    }

    /// From now on, answer every delivery with `failure` (`None`: accept again).
    pub fn fail_with(&self, failure: Option<DeliveryError>) {
        *self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = failure;
    }
}

#[async_trait]
impl Deliver for RecordingDriver {
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError> {
        let to = msg.checked_destination(NAME)?;
        if let Some(failure) = self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
        {
            return Err(failure);
        }
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Message { to, ..msg.clone() });
        Ok(Receipt::new(NAME, None))
    }

    fn name(&self) -> &'static str {
        NAME
    }
}
