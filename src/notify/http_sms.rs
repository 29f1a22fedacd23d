//! `type = "http_sms"`: not written yet.

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};
use crate::config::{HttpSmsConfig, Secret};

pub struct HttpSmsNotifier {}

impl HttpSmsNotifier {
    pub fn new(_cfg: &HttpSmsConfig, _token: Option<Secret>) -> Result<Self, NotifyError> {
        Err(NotifyError::permanent(
            "the http_sms notifier is not available yet",
        ))
    }
}

#[async_trait]
impl Notifier for HttpSmsNotifier {
    fn kind(&self) -> &'static str {
        "http_sms"
    }

    async fn send(&self, _msg: &Message) -> Result<(), NotifyError> {
        Err(NotifyError::permanent(
            "the http_sms notifier is not available yet",
        ))
    }
}
