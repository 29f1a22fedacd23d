//! Notifiers: one file per way of delivering a page, behind [`Notifier`].
//!
//! A notifier makes one attempt and says whether a failure is worth retrying; the
//! dispatcher ([`crate::runtime`]) owns retries (backon, jittered, bounded) so every
//! notifier gets the same policy, and reports the final outcome to the engine, which
//! fails over to the contact's next method.

mod email;
pub mod flood;
mod gotify;
mod http_sms;
pub mod irc;
mod kannel;
mod log;
pub mod message;
mod ntfy;
mod pushover;
pub mod sms_text;
pub mod test_page;
mod twilio;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Config, Limits, NotifierConfig};
use crate::engine::{Actor, IncidentId};

pub use log::LogNotifier;
pub use message::{Item, Message};
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

/// Acks an incident on behalf of a notifier that learned of an acknowledgement (a
/// Pushover receipt); the runtime implements it on top of the engine.
#[async_trait]
pub trait Acker: Send + Sync + 'static {
    async fn ack(&self, incident: IncidentId, by: Actor) -> Result<(), String>;
}

/// What a notifier may need besides its own config when it is built.
#[derive(Clone)]
pub struct BuildContext {
    /// Set in the daemon; `None` in `tocsin test-notify`, which acks nothing.
    pub acker: Option<Arc<dyn Acker>>,
    /// The IRC link `irc` notifiers speak through (the daemon's, when configured).
    pub irc: Option<crate::irc::IrcHandle>,
    /// Runs a notifier's own background tasks (Pushover's receipt poller); the daemon's.
    pub tasks: Option<crate::runtime::Supervisor>,
}

/// One way to deliver a page.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The `type` in alerts.toml, for logs and metrics.
    fn kind(&self) -> &'static str;

    /// One delivery attempt. Must be bounded in time by the notifier's own timeouts.
    async fn send(&self, msg: &Message) -> Result<(), NotifyError>;

    /// Whether the service behind the notifier answers, without sending a page
    /// (`[watchdog] checks`); `Ok` says what answered.
    async fn check(&self) -> Result<String, NotifyError> {
        Ok("nothing to check".to_string())
    }

    /// The incident was acknowledged or resolved: stop whatever still rings for it
    /// (Pushover emergency receipts). Most notifiers have nothing to stop.
    async fn closed(&self, _incident: IncidentId) {}
}

/// A configured notifier with the retry budget the dispatcher gives it.
#[derive(Clone)]
pub struct NotifierEntry {
    pub notifier: Arc<dyn Notifier>,
    /// Attempts for transient failures, the first included.
    pub max_attempts: u32,
    /// Retries stop once this much time has passed since the first attempt (and never
    /// run past the moment the contact's next method is due).
    pub retry_budget: Duration,
    /// Flood control for this notifier.
    pub limits: Limits,
}

/// Builds every notifier named in the config.
pub fn build_all(
    cfg: &Config,
    cx: &BuildContext,
) -> Result<BTreeMap<String, NotifierEntry>, NotifyError> {
    let mut out = BTreeMap::new();
    let none = BTreeMap::new();
    for (name, nc) in &cfg.file.notifiers {
        let secrets = cfg.notifier_secrets.get(name).unwrap_or(&none);
        let secret = |k: &str| secrets.get(k).cloned();
        let notifier: Arc<dyn Notifier> = match nc {
            NotifierConfig::Log {} => Arc::new(LogNotifier::stderr()),
            NotifierConfig::Webhook(w) => Arc::new(WebhookNotifier::new(
                &w.url,
                w.timeout.0,
                secret("bearer_token"),
            )?),
            NotifierConfig::Email(c) => Arc::new(email::EmailNotifier::new(c, secret("password"))?),
            NotifierConfig::Kannel(c) => {
                Arc::new(kannel::KannelNotifier::new(c, secret("password"))?)
            }
            NotifierConfig::Twilio(c) => {
                Arc::new(twilio::TwilioNotifier::new(c, secret("auth_token"))?)
            }
            NotifierConfig::HttpSms(c) => {
                Arc::new(http_sms::HttpSmsNotifier::new(c, secret("token"))?)
            }
            NotifierConfig::Ntfy(c) => Arc::new(ntfy::NtfyNotifier::new(c, secret("token"))?),
            NotifierConfig::Pushover(c) => Arc::new(pushover::PushoverNotifier::new(
                name,
                c,
                secret("app_token"),
                cx,
            )?),
            NotifierConfig::Gotify(c) => {
                Arc::new(gotify::GotifyNotifier::new(c, secret("app_token"))?)
            }
            NotifierConfig::Irc(c) => Arc::new(irc::IrcNotifier::new(c, cx.irc.clone())),
        };
        let (timeout, attempts) = nc.timeout_and_attempts().unwrap_or((Duration::ZERO, 1));
        out.insert(
            name.clone(),
            NotifierEntry {
                notifier,
                max_attempts: attempts.max(1),
                // Room for every attempt plus the backoff between them; the dispatcher
                // shortens it further so a retry never delays the next method.
                retry_budget: timeout * attempts.max(1) + Duration::from_secs(30),
                limits: nc.limits(),
            },
        );
    }
    Ok(out)
}

/// The check of an HTTP notifier: any HTTP answer from `url`'s server proves it is
/// reachable (a GET to an API endpoint is usually refused, and that is fine).
pub(crate) async fn reachable(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<String, NotifyError> {
    let mut root = url.clone();
    root.set_path("/");
    root.set_query(None);
    let _ = root.set_password(None);
    let _ = root.set_username("");
    match client.get(root.clone()).send().await {
        Ok(r) => Ok(format!("{root} answered HTTP {}", r.status().as_u16())),
        Err(e) => Err(NotifyError::transient(format!(
            "{root} does not answer: {}",
            e.without_url()
        ))),
    }
}

/// The HTTP client every HTTP notifier uses: bounded connect and request times.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::permanent(format!("cannot build the HTTP client: {e}")))
}
