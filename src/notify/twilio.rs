//! `type = "twilio"`: not written yet.

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};
use crate::config::{Secret, TwilioConfig};

pub struct TwilioNotifier {}

impl TwilioNotifier {
    pub fn new(_cfg: &TwilioConfig, _auth_token: Option<Secret>) -> Result<Self, NotifyError> {
        Err(NotifyError::permanent(
            "the twilio notifier is not available yet",
        ))
    }
}

#[async_trait]
impl Notifier for TwilioNotifier {
    fn kind(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, _msg: &Message) -> Result<(), NotifyError> {
        Err(NotifyError::permanent(
            "the twilio notifier is not available yet",
        ))
    }
}
