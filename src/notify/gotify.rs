//! `type = "gotify"`: not written yet.

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};
use crate::config::{GotifyConfig, Secret};

pub struct GotifyNotifier {}

impl GotifyNotifier {
    pub fn new(_cfg: &GotifyConfig, _app_token: Option<Secret>) -> Result<Self, NotifyError> {
        Err(NotifyError::permanent(
            "the gotify notifier is not available yet",
        ))
    }
}

#[async_trait]
impl Notifier for GotifyNotifier {
    fn kind(&self) -> &'static str {
        "gotify"
    }

    async fn send(&self, _msg: &Message) -> Result<(), NotifyError> {
        Err(NotifyError::permanent(
            "the gotify notifier is not available yet",
        ))
    }
}
