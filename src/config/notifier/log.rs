use std::sync::Arc;

use serde::Deserialize;

use super::Delivery;
use super::{Address, NotifierKind, NotifierSecrets};
use crate::notify::{BuildContext, LogNotifier, Notifier, NotifyError};

/// `type = "log"`: pages printed to stderr, so a fresh install pages somewhere with no
/// servers. It has no options besides `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {}

impl NotifierKind for LogConfig {
    fn address(&self) -> Address {
        Address::None
    }

    /// Writing to stderr does not time out and is not worth retrying.
    /// A log cannot fail for a while and is never rate-limited.
    fn delivery(&self) -> Option<Delivery<'_>> {
        None
    }

    fn has_check(&self) -> bool {
        false
    }

    fn build(
        &self,
        _name: &str,
        _: &NotifierSecrets,
        _: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(LogNotifier::stderr()))
    }
}
