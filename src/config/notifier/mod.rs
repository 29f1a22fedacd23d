//! `[notifiers.NAME]`: one file per `type`, each its own option struct.
//!
//! Every struct answers the same three questions so that loading and validation stay
//! generic: which secrets it reads ([`SecretRef`]), what is wrong with it on its own
//! ([`Problem`]), and how hard the dispatcher may retry and throttle it.

mod email;
mod gotify;
mod http_sms;
mod irc;
mod kannel;
mod ntfy;
mod pushover;
mod twilio;
mod webhook;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::types::{HumanDuration, RateLimit};

pub use email::{EmailConfig, SmtpRelay, SmtpSecurity};
pub use gotify::GotifyConfig;
pub use http_sms::{HttpSmsBody, HttpSmsConfig};
pub use irc::IrcNotifierConfig;
pub use kannel::KannelConfig;
pub use ntfy::NtfyConfig;
pub use pushover::PushoverConfig;
pub use twilio::TwilioConfig;
pub use webhook::WebhookNotifierConfig;

/// Every notifier `type` this build knows, for error messages.
pub const NOTIFIER_TYPES: &[&str] = &[
    "log", "webhook", "email", "kannel", "twilio", "http_sms", "ntfy", "pushover", "gotify", "irc",
];

/// One notifier; `type` selects the implementation.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifierConfig {
    /// Prints pages to stderr: a fresh install pages somewhere with no servers.
    Log {},
    /// POSTs a JSON page to `url`.
    Webhook(WebhookNotifierConfig),
    /// Mail through an SMTP relay.
    Email(EmailConfig),
    /// SMS through a Kannel smsbox.
    Kannel(KannelConfig),
    /// SMS through Twilio's Messages API.
    Twilio(TwilioConfig),
    /// SMS through any HTTP gateway, by template.
    HttpSms(HttpSmsConfig),
    /// Push through an ntfy server.
    Ntfy(NtfyConfig),
    /// Push through Pushover (emergency priority with receipts).
    Pushover(PushoverConfig),
    /// Push through a Gotify server.
    Gotify(GotifyConfig),
    /// Announcements in an IRC channel (or to a nick) through `[sources.irc]`.
    Irc(IrcNotifierConfig),
}

/// A secret a notifier reads from `{base}_file` or `{base}_env`.
pub struct SecretRef<'a> {
    pub base: &'static str,
    pub file: Option<&'a Path>,
    pub env: Option<&'a str>,
    pub required: bool,
}

impl<'a> SecretRef<'a> {
    pub fn optional(
        base: &'static str,
        file: &'a Option<PathBuf>,
        env: &'a Option<String>,
    ) -> Self {
        SecretRef {
            base,
            file: file.as_deref(),
            env: env.as_deref(),
            required: false,
        }
    }

    pub fn required(
        base: &'static str,
        file: &'a Option<PathBuf>,
        env: &'a Option<String>,
    ) -> Self {
        SecretRef {
            required: true,
            ..SecretRef::optional(base, file, env)
        }
    }
}

/// Something wrong with one key of one notifier.
pub struct Problem {
    /// The key under `[notifiers.NAME]`.
    pub key: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Problem {
            key,
            message: message.into(),
        }
    }
}

/// How a destination is addressed by a notifier, for validating contact methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// Needs nothing from the contact method (log, webhook).
    None,
    /// `to` is an email address.
    Email,
    /// `to` is a phone number in international form (+15550100).
    Phone,
    /// `topic` is an ntfy topic.
    Topic,
    /// `to` is a Pushover user or group key.
    UserKey,
    /// Gotify: the app token decides where it goes.
    App,
    /// IRC: the notifier's channel, or a contact method's `to` (a nick or channel).
    Irc,
}

/// Rate limits of one notifier (GoAlert's field-tested defaults unless set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Limits per destination (one phone number, one mailbox, one topic), all of which
    /// must allow a send, like `["1/1m", "5/15m", "11/1h", "21/3h"]`.
    pub per_destination: Option<Vec<RateLimit>>,
    /// Limit over every page of this notifier, like `"5/5s"`.
    pub overall: Option<RateLimit>,
    /// Set to false to send every page at once, whatever the rate (not recommended).
    pub enabled: Option<bool>,
}

/// The default limits for a kind of channel.
fn sms_like() -> Vec<RateLimit> {
    vec![
        RateLimit::new(1, 60),
        RateLimit::new(5, 15 * 60),
        RateLimit::new(11, 60 * 60),
        RateLimit::new(21, 3 * 60 * 60),
    ]
}

impl NotifierConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            NotifierConfig::Log {} => "log",
            NotifierConfig::Webhook(_) => "webhook",
            NotifierConfig::Email(_) => "email",
            NotifierConfig::Kannel(_) => "kannel",
            NotifierConfig::Twilio(_) => "twilio",
            NotifierConfig::HttpSms(_) => "http_sms",
            NotifierConfig::Ntfy(_) => "ntfy",
            NotifierConfig::Pushover(_) => "pushover",
            NotifierConfig::Gotify(_) => "gotify",
            NotifierConfig::Irc(_) => "irc",
        }
    }

    /// Whether the notifier can be checked without sending a page (`[watchdog] checks`).
    pub fn has_check(&self) -> bool {
        !matches!(self, NotifierConfig::Log {} | NotifierConfig::Irc(_))
    }

    /// Whether replies to this notifier's messages can ack (SMS).
    pub fn is_sms(&self) -> bool {
        matches!(
            self,
            NotifierConfig::Kannel(_) | NotifierConfig::Twilio(_) | NotifierConfig::HttpSms(_)
        )
    }

    pub fn address(&self) -> Address {
        match self {
            NotifierConfig::Log {} | NotifierConfig::Webhook(_) => Address::None,
            NotifierConfig::Email(_) => Address::Email,
            NotifierConfig::Kannel(_) | NotifierConfig::Twilio(_) | NotifierConfig::HttpSms(_) => {
                Address::Phone
            }
            NotifierConfig::Ntfy(_) => Address::Topic,
            NotifierConfig::Pushover(_) => Address::UserKey,
            NotifierConfig::Gotify(_) => Address::App,
            NotifierConfig::Irc(_) => Address::Irc,
        }
    }

    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        match self {
            NotifierConfig::Log {} => Vec::new(),
            NotifierConfig::Webhook(c) => c.secrets(),
            NotifierConfig::Email(c) => c.secrets(),
            NotifierConfig::Kannel(c) => c.secrets(),
            NotifierConfig::Twilio(c) => c.secrets(),
            NotifierConfig::HttpSms(c) => c.secrets(),
            NotifierConfig::Ntfy(c) => c.secrets(),
            NotifierConfig::Pushover(c) => c.secrets(),
            NotifierConfig::Gotify(c) => c.secrets(),
            NotifierConfig::Irc(c) => c.secrets(),
        }
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut out = match self {
            NotifierConfig::Log {} => Vec::new(),
            NotifierConfig::Webhook(c) => c.problems(),
            NotifierConfig::Email(c) => c.problems(),
            NotifierConfig::Kannel(c) => c.problems(),
            NotifierConfig::Twilio(c) => c.problems(),
            NotifierConfig::HttpSms(c) => c.problems(),
            NotifierConfig::Ntfy(c) => c.problems(),
            NotifierConfig::Pushover(c) => c.problems(),
            NotifierConfig::Gotify(c) => c.problems(),
            NotifierConfig::Irc(c) => c.problems(),
        };
        if let Some((timeout, attempts)) = self.timeout_and_attempts() {
            if timeout.is_zero() {
                out.push(Problem::new(
                    "timeout",
                    "timeout must be more than 0s, like \"10s\"",
                ));
            }
            if attempts == 0 {
                out.push(Problem::new(
                    "max_attempts",
                    "max_attempts must be at least 1",
                ));
            }
        }
        out
    }

    /// Per-attempt timeout and attempts for transient failures; `None` for `log`.
    pub fn timeout_and_attempts(&self) -> Option<(Duration, u32)> {
        let (t, a): (&HumanDuration, u32) = match self {
            NotifierConfig::Log {} => return None,
            NotifierConfig::Webhook(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::Email(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::Kannel(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::Twilio(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::HttpSms(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::Ntfy(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::Pushover(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::Gotify(c) => (&c.timeout, c.max_attempts),
            NotifierConfig::Irc(c) => (&c.timeout, c.max_attempts),
        };
        Some((t.0, a))
    }

    fn limits_config(&self) -> Option<&LimitsConfig> {
        Some(match self {
            NotifierConfig::Log {} => return None,
            NotifierConfig::Webhook(c) => &c.limits,
            NotifierConfig::Email(c) => &c.limits,
            NotifierConfig::Kannel(c) => &c.limits,
            NotifierConfig::Twilio(c) => &c.limits,
            NotifierConfig::HttpSms(c) => &c.limits,
            NotifierConfig::Ntfy(c) => &c.limits,
            NotifierConfig::Pushover(c) => &c.limits,
            NotifierConfig::Gotify(c) => &c.limits,
            NotifierConfig::Irc(c) => &c.limits,
        })
    }

    /// The limits in force: what the file says, else GoAlert's defaults for the kind of
    /// channel (SMS and phone-ringing push: 1/min, 5/15 min, 11/h, 21/3 h; mail and other
    /// push: 1/min; every notifier 5 per 5 s overall). `log` is never limited.
    pub fn limits(&self) -> Limits {
        let Some(c) = self.limits_config() else {
            return Limits::default();
        };
        let unset = c.per_destination.is_none() && c.overall.is_none();
        // Machines (webhooks) set their own pace unless the file says otherwise, as in
        // GoAlert; people's channels always have limits unless turned off.
        if c.enabled == Some(false) || (unset && matches!(self, NotifierConfig::Webhook(_))) {
            return Limits::default();
        }
        let per_destination = c.per_destination.clone().unwrap_or_else(|| match self {
            NotifierConfig::Kannel(_)
            | NotifierConfig::Twilio(_)
            | NotifierConfig::HttpSms(_)
            | NotifierConfig::Pushover(_) => sms_like(),
            // A webhook's destination is a machine; it only gets the overall limit.
            NotifierConfig::Webhook(_) => Vec::new(),
            // A channel reads fast but servers pace at ~1 line per 2 s: five lines, then
            // one bundle per half minute instead of an hour-long queue under a storm.
            NotifierConfig::Irc(_) => vec![RateLimit::new(5, 30)],
            _ => vec![RateLimit::new(1, 60)],
        });
        Limits {
            per_destination,
            overall: Some(c.overall.unwrap_or(RateLimit::new(5, 5))),
        }
    }
}

/// Limits in force for one notifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_destination: Vec<RateLimit>,
    pub overall: Option<RateLimit>,
}

/// `url` must be an absolute http(s) URL with a host, as the HTTP client parses it.
pub(crate) fn check_http_url(key: &'static str, url: &str, out: &mut Vec<Problem>) {
    let problem = match reqwest::Url::parse(url) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            format!("{key} {url:?} must start with http:// or https://")
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            format!("{key} {url:?} has no host: write it like \"https://host:port/path\"")
        }
        Ok(_) => return,
        Err(e) => {
            format!("{key} {url:?} is not a URL ({e}): write it like \"https://host:port/path\"")
        }
    };
    out.push(Problem::new(key, problem));
}

pub(crate) fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

pub(crate) fn default_attempts() -> u32 {
    3
}

/// One SMS is one 160-character GSM-7 segment unless more are allowed.
pub(crate) fn default_segments() -> u8 {
    1
}
