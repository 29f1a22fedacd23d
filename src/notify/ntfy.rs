//! `type = "ntfy"`: not written yet.

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};
use crate::config::{NtfyConfig, Secret};

pub struct NtfyNotifier {}

impl NtfyNotifier {
    pub fn new(_cfg: &NtfyConfig, _token: Option<Secret>) -> Result<Self, NotifyError> {
        Err(NotifyError::permanent(
            "the ntfy notifier is not available yet",
        ))
    }
}

#[async_trait]
impl Notifier for NtfyNotifier {
    fn kind(&self) -> &'static str {
        "ntfy"
    }

    async fn send(&self, _msg: &Message) -> Result<(), NotifyError> {
        Err(NotifyError::permanent(
            "the ntfy notifier is not available yet",
        ))
    }
}
