//! Notifiers: one file per way of delivering a page, behind [`Notifier`].
//!
//! A notifier makes one attempt and says whether a failure is worth retrying; the
//! dispatcher ([`crate::runtime`]) owns retries (backon, jittered, bounded) so every
//! notifier gets the same policy, and reports the final outcome to the engine, which
//! fails over to the contact's next method.

mod log;
pub mod message;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Config, NotifierConfig};

pub use log::LogNotifier;
pub use message::Message;
pub use webhook::WebhookNotifier;

/// Why one attempt failed, and whether another attempt could succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// Timeouts, connection errors, 5xx, 429, SMTP 4xx: worth retrying.
    pub transient: bool,
    pub message: String,
}

impl NotifyError {
    pub fn transient(message: impl Into<String>) -> Self {
        NotifyError {
            transient: true,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        NotifyError {
            transient: false,
            message: message.into(),
        }
    }
}

/// One way to deliver a page.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The `type` in alerts.toml, for logs and metrics.
    fn kind(&self) -> &'static str;

    /// One delivery attempt. Must be bounded in time by the notifier's own timeouts.
    async fn send(&self, msg: &Message) -> Result<(), NotifyError>;
}

/// A configured notifier with the retry budget the dispatcher gives it.
#[derive(Clone)]
pub struct NotifierEntry {
    pub notifier: Arc<dyn Notifier>,
    /// Attempts for transient failures, the first included.
    pub max_attempts: u32,
    /// Retries stop once this much time has passed since the first attempt.
    pub retry_budget: Duration,
}

/// Builds every notifier named in the config.
pub fn build_all(cfg: &Config) -> Result<BTreeMap<String, NotifierEntry>, NotifyError> {
    let mut out = BTreeMap::new();
    for (name, nc) in &cfg.file.notifiers {
        let entry = match nc {
            NotifierConfig::Log {} => NotifierEntry {
                notifier: Arc::new(LogNotifier::stderr()),
                max_attempts: 1,
                retry_budget: Duration::ZERO,
            },
            NotifierConfig::Webhook(w) => NotifierEntry {
                notifier: Arc::new(WebhookNotifier::new(
                    &w.url,
                    w.timeout.0,
                    cfg.notifier_tokens.get(name).cloned(),
                )?),
                max_attempts: w.max_attempts.max(1),
                retry_budget: Duration::from_secs(60),
            },
        };
        out.insert(name.clone(), entry);
    }
    Ok(out)
}
