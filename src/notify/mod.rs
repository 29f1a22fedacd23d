//! Notifiers: one file per way of delivering a page, behind [`Notifier`].
//!
//! A notifier makes one attempt and says whether a failure is worth retrying; the
//! dispatcher ([`crate::runtime`]) owns retries (backon, jittered, bounded) so every
//! notifier gets the same policy, and reports the final outcome to the engine, which
//! fails over to the contact's next method.

pub(crate) mod email;
pub mod flood;
pub(crate) mod gotify;
pub(crate) mod http_sms;
pub mod irc;
pub(crate) mod kannel;
mod log;
pub mod message;
pub(crate) mod ntfy;
pub(crate) mod pushover;
pub mod sms_text;
pub mod test_page;
pub(crate) mod twilio;
pub(crate) mod twilio_voice;
pub mod twiml;
pub mod voice_calls;
pub(crate) mod webhook;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Config, Limits, NotifierConfig, NotifierSecrets};
use crate::engine::{Actor, IncidentId};

pub use log::LogNotifier;
pub use message::{Item, Message};
pub use webhook::WebhookNotifier;

/// What kind of failure an attempt met, as data: metrics count failures by it
/// (`tocsin_notification_failures_total{kind}`) and the watchdog and logs read it
/// instead of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No answer in time.
    Timeout,
    /// The connection could not be made (refused, unreachable, DNS).
    Refused,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The service answered with an HTTP error status.
    Http(u16),
    /// The mail relay answered with an SMTP error code.
    Smtp(u16),
    /// The service refused the credentials (HTTP 401/403, SMTP 535).
    Auth,
    /// The destination cannot be reached by this notifier (no number, a bad mailbox).
    BadAddress,
    /// The notifier's own configuration cannot work.
    Config,
    /// Anything else (a local write, a response that made no sense).
    Other,
}

impl FailureKind {
    /// The metric label: low cardinality, so statuses and codes by class.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Refused => "refused",
            FailureKind::Tls => "tls",
            FailureKind::Http(s) if s >= 500 => "http_5xx",
            FailureKind::Http(_) => "http_4xx",
            FailureKind::Smtp(c) if c >= 500 => "smtp_5xx",
            FailureKind::Smtp(_) => "smtp_4xx",
            FailureKind::Auth => "auth",
            FailureKind::BadAddress => "bad_address",
            FailureKind::Config => "config",
            FailureKind::Other => "other",
        }
    }

    /// Every label [`FailureKind::as_str`] gives, so the series start at 0.
    pub const LABELS: &[&str] = &[
        "timeout",
        "refused",
        "tls",
        "http_5xx",
        "http_4xx",
        "smtp_5xx",
        "smtp_4xx",
        "auth",
        "bad_address",
        "config",
        "other",
    ];
}

/// Why one attempt failed, and whether another attempt could succeed. The message never
/// holds a secret: URLs are shown through [`redact`] where the error is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// Timeouts, connection errors, 5xx, 429, SMTP 4xx: worth retrying.
    pub transient: bool,
    pub kind: FailureKind,
    pub message: String,
}

impl NotifyError {
    pub fn new(kind: FailureKind, transient: bool, message: impl Into<String>) -> Self {
        NotifyError {
            transient,
            kind,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        NotifyError::new(FailureKind::Other, true, message)
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        NotifyError::new(FailureKind::Other, false, message)
    }

    /// A notifier configuration that cannot work.
    pub fn config(message: impl Into<String>) -> Self {
        NotifyError::new(FailureKind::Config, false, message)
    }

    /// A destination this notifier cannot reach; the contact's next method should go.
    pub fn bad_address(message: impl Into<String>) -> Self {
        NotifyError::new(FailureKind::BadAddress, false, message)
    }

    /// A request that got no HTTP answer: timeouts, refused connections and TLS
    /// failures are worth retrying. `what` says what was tried ("POST
    /// https://api.pushover.net/1/messages.json"), with its URL already redacted.
    pub fn from_request(what: &str, e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            FailureKind::Timeout
        } else if is_tls(e) {
            FailureKind::Tls
        } else if e.is_connect() {
            FailureKind::Refused
        } else {
            FailureKind::Other
        };
        // reqwest's own text names the URL, credentials and query included.
        let mut why = e.to_string();
        if let Some(url) = e.url() {
            why = why.replace(url.as_str(), &redact(url));
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            why.push_str(": ");
            why.push_str(&s.to_string());
            source = s.source();
        }
        NotifyError::new(kind, true, format!("{what} failed: {why}"))
    }
}

fn is_tls(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            return true;
        }
        source = s.source();
    }
    false
}

/// A URL as errors and logs may show it: no password, no query (tokens and Kannel's
/// `password=` travel there), no fragment.
pub fn redact(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("redacted"));
    }
    let had_query = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    let mut s = u.to_string();
    if had_query {
        s.push_str("?…");
    }
    s
}

/// [`redact`] for a URL that is still text (from the config); text that does not parse
/// is shown up to its first `?` and without anything before an `@`.
pub fn redact_text(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => redact(&u),
        Err(_) => {
            let no_query = url.split('?').next().unwrap_or_default();
            match (no_query.find("://"), no_query.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    format!("{}://…@{}", &no_query[..scheme], &no_query[at + 1..])
                }
                _ => no_query.to_string(),
            }
        }
    }
}

/// How a send that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// In the recipient's hands (the server took the mail, the push service the message).
    Delivered,
    /// On its way, the person not yet reached: a call is ringing. The notifier reports
    /// how it ends (a key pressed, or nobody) to the engine itself.
    Placed {
        /// The provider's id for it (Twilio's `CallSid`), for the history.
        reference: String,
    },
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
    /// Calls in progress, whose callbacks the daemon's HTTP server answers; `None`
    /// outside the daemon, where nothing would answer them.
    pub calls: Option<Arc<voice_calls::CallBook>>,
    /// `server.public_url` without a trailing slash: where a provider calls tocsin back.
    pub public_url: String,
}

/// One way to deliver a page. (`Any`: a notifier built on a reload looks at the one it
/// replaces, to take over what that one still tracks.)
#[async_trait]
pub trait Notifier: Any + Send + Sync + 'static {
    /// The `type` in alerts.toml, for logs and metrics.
    fn kind(&self) -> &'static str;

    /// One delivery attempt. Must be bounded in time by the notifier's own timeouts.
    async fn send(&self, msg: &Message) -> Result<Sent, NotifyError>;

    /// Whether the service behind the notifier answers, without sending a page
    /// (`[watchdog] checks`); `Ok` says what answered.
    async fn check(&self) -> Result<String, NotifyError> {
        Ok("nothing to check".to_string())
    }

    /// The incident was acknowledged or resolved: stop whatever still rings for it
    /// (Pushover emergency receipts). Most notifiers have nothing to stop.
    async fn closed(&self, _incident: IncidentId) {}

    /// A reload put a rebuilt notifier of the same name in this one's place, and that
    /// one took over what this one tracked ([`build`]'s `previous`): stop background work
    /// the successor does now. Sends already under way still finish here.
    fn replaced(&self) {}
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

/// A notifier of the config that could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[error("notifiers.{name}: {error}")]
pub struct BuildError {
    /// The notifier's name in alerts.toml.
    pub name: String,
    pub error: NotifyError,
}

/// Every notifier of a config that could not be built, one per line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct BuildErrors(pub Vec<BuildError>);

impl std::fmt::Display for BuildErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl BuildContext {
    /// Nothing to ack through and no IRC link: what `check-config` and `test-notify` build
    /// with. Building never touches the network, so this finds the mistakes only a
    /// notifier can see (a relay URL's TLS mode, a template) without sending anything.
    pub fn offline() -> Self {
        BuildContext {
            acker: None,
            irc: None,
            tasks: None,
            calls: None,
            public_url: String::new(),
        }
    }
}

/// Builds one notifier from its config and its secrets (by the `base` of their keys,
/// like `password`), with the retry budget and limits its type gets. `previous` is the
/// notifier of the same name that this one replaces on a reload: a Pushover notifier
/// takes over its receipts still ringing.
pub fn build(
    name: &str,
    nc: &NotifierConfig,
    secrets: &NotifierSecrets,
    cx: &BuildContext,
    previous: Option<&dyn Notifier>,
) -> Result<NotifierEntry, NotifyError> {
    let notifier = nc.build(name, secrets, cx, previous)?;
    let (timeout, attempts) = nc.timeout_and_attempts().unwrap_or((Duration::ZERO, 1));
    Ok(NotifierEntry {
        notifier,
        max_attempts: attempts.max(1),
        // Room for every attempt plus the backoff between them; the dispatcher
        // shortens it further so a retry never delays the next method.
        retry_budget: timeout * attempts.max(1) + Duration::from_secs(30),
        limits: nc.limits(),
    })
}

/// Builds every notifier named in the config, or says which could not be built and why.
pub fn build_all(
    cfg: &Config,
    cx: &BuildContext,
) -> Result<BTreeMap<String, NotifierEntry>, BuildErrors> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let none = BTreeMap::new();
    for (name, nc) in &cfg.file.notifiers {
        let secrets = cfg.notifier_secrets.get(name).unwrap_or(&none);
        match build(name, nc, secrets, cx, None) {
            Ok(entry) => {
                out.insert(name.clone(), entry);
            }
            Err(error) => errors.push(BuildError {
                name: name.clone(),
                error,
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(BuildErrors(errors))
    }
}

/// The notifiers after a reload from `old` to `new`, and the names of those built anew.
///
/// A notifier whose config and secrets did not change is kept as it is, with its state
/// (Pushover's receipts and their poller, an HTTP client's open connections): a reload must not
/// stop a phone ringing for an open incident from acking it. A changed or added one is
/// built, and takes over from the one of the same name it replaces ([`build`]).
pub fn rebuild_all(
    old: &Config,
    running: &BTreeMap<String, NotifierEntry>,
    new: &Config,
    cx: &BuildContext,
) -> Result<(BTreeMap<String, NotifierEntry>, Vec<String>), BuildErrors> {
    let mut out = BTreeMap::new();
    let mut rebuilt = Vec::new();
    let mut errors = Vec::new();
    let none = BTreeMap::new();
    for (name, nc) in &new.file.notifiers {
        let previous = running.get(name);
        if let Some(entry) = previous
            && unchanged(old, new, name)
        {
            out.insert(name.clone(), entry.clone());
            continue;
        }
        let secrets = new.notifier_secrets.get(name).unwrap_or(&none);
        match build(name, nc, secrets, cx, previous.map(|e| &*e.notifier)) {
            Ok(entry) => {
                out.insert(name.clone(), entry);
                rebuilt.push(name.clone());
            }
            Err(error) => errors.push(BuildError {
                name: name.clone(),
                error,
            }),
        }
    }
    if errors.is_empty() {
        Ok((out, rebuilt))
    } else {
        Err(BuildErrors(errors))
    }
}

/// Whether notifier `name` is configured the same in both configs, secrets included.
/// Config types are plain data, so their `Debug` text is their value (secrets show as
/// `<redacted>` there, and are compared on their own).
fn unchanged(old: &Config, new: &Config, name: &str) -> bool {
    match (old.file.notifiers.get(name), new.file.notifiers.get(name)) {
        (Some(a), Some(b)) => {
            format!("{a:?}") == format!("{b:?}")
                && old.notifier_secrets.get(name) == new.notifier_secrets.get(name)
        }
        _ => false,
    }
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
        Err(e) => Err(NotifyError::from_request(&format!("GET {root}"), &e)),
    }
}

/// The HTTP client every HTTP notifier uses: bounded connect and request times.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("tocsin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::config(format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_in_an_error_shows_neither_password_nor_query() {
        let url =
            reqwest::Url::parse("https://ops:hunter2@hooks.example.com/page?token=abc123&x=1#frag")
                .unwrap();
        let shown = redact(&url);
        assert_eq!(shown, "https://ops:redacted@hooks.example.com/page?…");
        assert_eq!(
            redact_text("https://ops:hunter2@hooks.example.com/page?token=abc123"),
            shown
        );
        // Text that is no URL still loses what could be a secret.
        let broken = redact_text("http://ops:hunter2@exa mple.com/x?token=abc123");
        assert!(
            !broken.contains("hunter2") && !broken.contains("abc123"),
            "{broken}"
        );
    }

    #[test]
    fn http_statuses_are_kinds_with_their_retry_class() {
        let e = webhook::classify_status(reqwest::StatusCode::SERVICE_UNAVAILABLE, "busy");
        assert_eq!((e.kind, e.transient), (FailureKind::Http(503), true));
        assert_eq!(e.kind.as_str(), "http_5xx");
        let e = webhook::classify_status(reqwest::StatusCode::UNAUTHORIZED, "no");
        assert_eq!((e.kind, e.transient), (FailureKind::Auth, false));
        let e = webhook::classify_status(reqwest::StatusCode::TOO_MANY_REQUESTS, "");
        assert_eq!((e.kind.as_str(), e.transient), ("http_4xx", true));
        assert!(FailureKind::LABELS.contains(&FailureKind::Smtp(451).as_str()));
    }

    /// Two webhooks (the first with a bearer token from `token_file`) and a log, with
    /// `extra` appended.
    fn config(token_file: &std::path::Path, second_url: &str, extra: &str) -> Config {
        let text = format!(
            r#"
[notifiers.console]
type = "log"
[notifiers.hook1]
type = "webhook"
url = "http://127.0.0.1:8080/one"
bearer_token_file = "{}"
[notifiers.hook2]
type = "webhook"
url = "{second_url}"
[contacts.alice]
methods = [{{ notifier = "hook1" }}, {{ notifier = "hook2", after = "1m" }}]
[policies.default]
steps = [{{ after = "0s", notify = ["console", "alice"] }}]
[[routes]]
policy = "default"
{extra}
"#,
            token_file.display()
        );
        crate::config::load_str(&text, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn kept(
        a: &BTreeMap<String, NotifierEntry>,
        b: &BTreeMap<String, NotifierEntry>,
        n: &str,
    ) -> bool {
        Arc::ptr_eq(&a[n].notifier, &b[n].notifier)
    }

    #[test]
    fn a_reload_keeps_unchanged_notifiers_and_rebuilds_changed_or_added_ones() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("hook1-token");
        std::fs::write(&token, "first-token\n").unwrap();
        let old = config(&token, "http://127.0.0.1:8080/two", "");
        let running = build_all(&old, &BuildContext::offline()).unwrap();

        // An edit elsewhere: every notifier is kept as it is.
        let new = config(
            &token,
            "http://127.0.0.1:8080/two",
            "[defaults]\nack_timeout = \"2h\"",
        );
        let (after, rebuilt) = rebuild_all(&old, &running, &new, &BuildContext::offline()).unwrap();
        assert!(rebuilt.is_empty(), "{rebuilt:?}");
        for n in ["console", "hook1", "hook2"] {
            assert!(kept(&running, &after, n), "{n} was rebuilt");
        }

        // A rotated secret, a changed URL and a new notifier are built anew.
        std::fs::write(&token, "second-token\n").unwrap();
        let new = config(
            &token,
            "http://127.0.0.1:8080/moved",
            "[notifiers.hook3]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:8080/three\"",
        );
        let (after, rebuilt) = rebuild_all(&old, &running, &new, &BuildContext::offline()).unwrap();
        assert_eq!(rebuilt, ["hook1", "hook2", "hook3"]);
        assert!(kept(&running, &after, "console"));
        assert!(!kept(&running, &after, "hook1") && !kept(&running, &after, "hook2"));
    }
}
