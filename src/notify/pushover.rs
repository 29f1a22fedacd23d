//! `type = "pushover"`: not written yet.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Acker, Message, Notifier, NotifyError};
use crate::config::{PushoverConfig, Secret};

pub struct PushoverNotifier {}

impl PushoverNotifier {
    pub fn new(
        _cfg: &PushoverConfig,
        _app_token: Option<Secret>,
        _acker: Option<Arc<dyn Acker>>,
    ) -> Result<Self, NotifyError> {
        Err(NotifyError::permanent(
            "the pushover notifier is not available yet",
        ))
    }
}

#[async_trait]
impl Notifier for PushoverNotifier {
    fn kind(&self) -> &'static str {
        "pushover"
    }

    async fn send(&self, _msg: &Message) -> Result<(), NotifyError> {
        Err(NotifyError::permanent(
            "the pushover notifier is not available yet",
        ))
    }
}
