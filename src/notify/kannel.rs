//! `type = "kannel"`: not written yet.

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};
use crate::config::{KannelConfig, Secret};

pub struct KannelNotifier {}

impl KannelNotifier {
    pub fn new(_cfg: &KannelConfig, _password: Option<Secret>) -> Result<Self, NotifyError> {
        Err(NotifyError::permanent(
            "the kannel notifier is not available yet",
        ))
    }
}

#[async_trait]
impl Notifier for KannelNotifier {
    fn kind(&self) -> &'static str {
        "kannel"
    }

    async fn send(&self, _msg: &Message) -> Result<(), NotifyError> {
        Err(NotifyError::permanent(
            "the kannel notifier is not available yet",
        ))
    }
}
