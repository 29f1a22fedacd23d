//! `type = "email"`: not written yet.

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};
use crate::config::{EmailConfig, Secret};

pub struct EmailNotifier {}

impl EmailNotifier {
    pub fn new(_cfg: &EmailConfig, _password: Option<Secret>) -> Result<Self, NotifyError> {
        Err(NotifyError::permanent(
            "the email notifier is not available yet",
        ))
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        "email"
    }

    async fn send(&self, _msg: &Message) -> Result<(), NotifyError> {
        Err(NotifyError::permanent(
            "the email notifier is not available yet",
        ))
    }
}
