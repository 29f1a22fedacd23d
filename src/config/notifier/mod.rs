//! `[notifiers.NAME]`: one file per `type`, each its own option struct implementing
//! [`NotifierKind`], registered once in [`KINDS`].
//!
//! Loading, validation, the dispatcher's retries and limits, the watchdog and the
//! builder only ask a notifier's config the questions of [`NotifierKind`]: which secrets
//! it reads ([`SecretRef`]), what is wrong with it on its own ([`Problem`]), how a
//! contact method addresses it, how hard it may be retried and throttled, and how the
//! notifier is built. Adding a type is its config file here, its notifier file in
//! `src/notify/`, and one line in [`KINDS`]; no `match` elsewhere names the types.

mod address;
mod email;
mod gotify;
mod http_sms;
mod irc;
mod kannel;
mod log;
mod ntfy;
mod pushover;
mod twilio;
mod twilio_voice;
mod webhook;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::DeValue;

use super::load::Loader;
use super::locate::KeyPath;
use super::types::{HumanDuration, RateLimit, Secret};
use crate::notify::{BuildContext, Notifier, NotifyError};

pub use address::Address;
pub use email::{EmailConfig, SmtpRelay, SmtpSecurity};
pub use gotify::GotifyConfig;
pub use http_sms::{HttpSmsBody, HttpSmsConfig};
pub use irc::IrcNotifierConfig;
pub use kannel::KannelConfig;
pub use log::LogConfig;
pub use ntfy::NtfyConfig;
pub use pushover::PushoverConfig;
pub use twilio::TwilioConfig;
pub use twilio_voice::TwilioVoiceConfig;
pub use webhook::WebhookNotifierConfig;

/// Every notifier `type` this build knows, in the order error messages list them.
pub(super) const KINDS: &[Kind] = &[
    kind::<LogConfig>("log"),
    kind::<WebhookNotifierConfig>("webhook"),
    kind::<EmailConfig>("email"),
    kind::<KannelConfig>("kannel"),
    kind::<TwilioConfig>("twilio"),
    kind::<TwilioVoiceConfig>("twilio_voice"),
    kind::<HttpSmsConfig>("http_sms"),
    kind::<NtfyConfig>("ntfy"),
    kind::<PushoverConfig>("pushover"),
    kind::<GotifyConfig>("gotify"),
    kind::<IrcNotifierConfig>("irc"),
];

/// The names of every notifier `type`, for messages: `log, webhook, email, ...`.
pub fn notifier_types() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The secrets of one notifier, by the `base` of their keys (`password` for
/// `password_file` / `password_env`).
pub type NotifierSecrets = BTreeMap<&'static str, Secret>;

/// What one notifier `type` is; its option struct implements it.
pub trait NotifierKind: Any + fmt::Debug + Send + Sync {
    /// How a contact method addresses a destination of this type.
    fn address(&self) -> Address;

    /// Whether a contact method's `to` / `topic` give it a destination it can use; `Err`
    /// names the key and what is wrong (`ty` is the type's name, for the message). By
    /// default, what [`Address::check`] says.
    fn check_method(
        &self,
        ty: &str,
        to: Option<&str>,
        topic: Option<&str>,
    ) -> Result<(), (&'static str, String)> {
        self.address().check(ty, to, topic)
    }

    /// The secrets it reads.
    fn secrets(&self) -> Vec<SecretRef<'_>> {
        Vec::new()
    }

    /// What is wrong with it on its own, by key (checks every type shares, like a zero
    /// `timeout`, are made for it).
    fn problems(&self) -> Vec<Problem> {
        Vec::new()
    }

    /// Its per-attempt timeout, attempts for transient failures and `limits` table;
    /// `None` for a notifier that can neither fail that way nor be limited (`log`).
    fn delivery(&self) -> Option<Delivery<'_>>;

    /// What its pages reach, which sets the limits when the file sets none and whether
    /// replies can ack. Most reach a person's inbox or app.
    fn reaches(&self) -> Reaches {
        Reaches::Inbox
    }

    /// Whether it can be checked without sending a page (`[watchdog] checks`).
    fn has_check(&self) -> bool {
        true
    }

    /// Whether it sends through the IRC link of `[sources.irc]`: its health is the
    /// link's (the watchdog watches the link, not the notifier), and it cannot tell
    /// anyone that the link is down.
    fn through_irc_link(&self) -> bool {
        false
    }

    /// The notifier, from this config and its secrets. Never touches the network:
    /// check-config builds every notifier this way to find what only it can judge.
    /// `previous` is the notifier of the same name this one replaces on a reload, to
    /// take over what it still tracks (Pushover's receipts).
    fn build(
        &self,
        name: &str,
        secrets: &NotifierSecrets,
        cx: &BuildContext,
        previous: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError>;
}

/// One registered notifier type: its `type` in alerts.toml and how its table is read.
pub(super) struct Kind {
    pub(super) name: &'static str,
    /// Reads the table (without `type`) through the loader, which locates errors.
    pub(super) read: ReadFn,
    /// Reads it through plain serde, for [`NotifierConfig`]'s `Deserialize`.
    parse: ParseFn,
}

type ReadFn = for<'a, 'i> fn(
    &mut Loader<'a, 'i>,
    &KeyPath,
    &Spanned<DeValue<'i>>,
) -> Option<Arc<dyn NotifierKind>>;

type ParseFn = fn(toml::Table) -> Result<Arc<dyn NotifierKind>, toml::de::Error>;

const fn kind<T: NotifierKind + DeserializeOwned>(name: &'static str) -> Kind {
    Kind {
        name,
        read: read::<T>,
        parse: parse::<T>,
    }
}

fn read<'i, T: NotifierKind + DeserializeOwned>(
    loader: &mut Loader<'_, 'i>,
    at: &KeyPath,
    table: &Spanned<DeValue<'i>>,
) -> Option<Arc<dyn NotifierKind>> {
    loader
        .entry::<T>(at, table)
        .map(|c| Arc::new(c) as Arc<dyn NotifierKind>)
}

fn parse<T: NotifierKind + DeserializeOwned>(
    table: toml::Table,
) -> Result<Arc<dyn NotifierKind>, toml::de::Error> {
    let c: T = toml::Value::Table(table).try_into()?;
    Ok(Arc::new(c))
}

impl Kind {
    /// The registered type called `name`.
    pub(super) fn named(name: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.name == name)
    }
}

/// One notifier of the file: its `type` and its options.
#[derive(Clone)]
pub struct NotifierConfig {
    type_name: &'static str,
    options: Arc<dyn NotifierKind>,
}

/// The options' own `Debug` (plain data, secrets redacted): a reload compares it to tell
/// whether a notifier changed.
impl fmt::Debug for NotifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.type_name, self.options)
    }
}

/// `{ type = "...", ... }`, the options of that type.
impl<'de> Deserialize<'de> for NotifierConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let ty = match table.remove("type") {
            Some(toml::Value::String(ty)) => ty,
            _ => {
                return Err(D::Error::custom(format!(
                    "`type` is required, one of {}",
                    notifier_types()
                )));
            }
        };
        let kind = Kind::named(&ty).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown notifier type {ty:?}: the types are {}",
                notifier_types()
            ))
        })?;
        let options = (kind.parse)(table).map_err(D::Error::custom)?;
        Ok(NotifierConfig::new(kind, options))
    }
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

/// What a notifier's options say about sending: the keys every sending type has.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub timeout: Duration,
    pub max_attempts: u32,
    pub limits: &'a LimitsConfig,
}

impl<'a> Delivery<'a> {
    pub fn of(timeout: HumanDuration, max_attempts: u32, limits: &'a LimitsConfig) -> Option<Self> {
        Some(Delivery {
            timeout: timeout.0,
            max_attempts,
            limits,
        })
    }
}

/// What a notifier's pages reach: the limits a person or machine there needs when the
/// file sets none (GoAlert's defaults), and whether replies from there can ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaches {
    /// A mailbox or a push app: 1 per minute per destination.
    Inbox,
    /// A phone by SMS: 1/min, 5/15 min, 11/h, 21/3 h; its replies can ack.
    Phone,
    /// A phone that rings until acknowledged (Pushover emergency): paced like SMS.
    Ringing,
    /// A voice call: 1 per minute and 3 per 15 minutes per number, GoAlert's voice limits
    /// (a call wakes the house; more than that is harassment, not escalation).
    Call,
    /// A chat channel: reads fast, but servers pace at ~1 line per 2 s, so five lines,
    /// then one bundle per half minute instead of an hour-long queue under a storm.
    Chat,
    /// A machine (a webhook): it sets its own pace; limited only when the file says so.
    Machine,
}

impl Reaches {
    fn default_per_destination(self) -> Vec<RateLimit> {
        match self {
            Reaches::Inbox => vec![RateLimit::new(1, 60)],
            Reaches::Phone | Reaches::Ringing => sms_like(),
            Reaches::Call => vec![RateLimit::new(1, 60), RateLimit::new(3, 15 * 60)],
            Reaches::Chat => vec![RateLimit::new(5, 30)],
            Reaches::Machine => Vec::new(),
        }
    }
}

/// The default limits of channels that reach a phone (SMS, emergency push): GoAlert's.
pub(crate) fn sms_like() -> Vec<RateLimit> {
    vec![
        RateLimit::new(1, 60),
        RateLimit::new(5, 15 * 60),
        RateLimit::new(11, 60 * 60),
        RateLimit::new(21, 3 * 60 * 60),
    ]
}

impl NotifierConfig {
    pub(super) fn new(kind: &Kind, options: Arc<dyn NotifierKind>) -> Self {
        NotifierConfig {
            type_name: kind.name,
            options,
        }
    }

    /// The `type` in alerts.toml.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The options, when they are of type `T` (for checks about one type, like an irc
    /// notifier's channel being one the link joins).
    pub fn get<T: NotifierKind>(&self) -> Option<&T> {
        let options: &dyn Any = &*self.options;
        options.downcast_ref()
    }

    /// See [`NotifierKind::has_check`].
    pub fn has_check(&self) -> bool {
        self.options.has_check()
    }

    /// Whether its pages are calls the provider reports on through tocsin's URLs
    /// ([`Reaches::Call`]): those reports not arriving is the channel failing.
    pub fn calls_back(&self) -> bool {
        self.options.reaches() == Reaches::Call
    }

    /// Whether it sends SMS, whose replies can ack ([`Reaches::Phone`]).
    pub fn is_sms(&self) -> bool {
        self.options.reaches() == Reaches::Phone
    }

    /// See [`NotifierKind::through_irc_link`].
    pub fn through_irc_link(&self) -> bool {
        self.options.through_irc_link()
    }

    /// See [`NotifierKind::address`].
    pub fn address(&self) -> Address {
        self.options.address()
    }

    /// See [`NotifierKind::check_method`].
    pub fn check_method(
        &self,
        to: Option<&str>,
        topic: Option<&str>,
    ) -> Result<(), (&'static str, String)> {
        self.options.check_method(self.type_name, to, topic)
    }

    /// See [`NotifierKind::secrets`].
    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        self.options.secrets()
    }

    /// What is wrong with it on its own: its type's problems, and a zero `timeout` or
    /// `max_attempts`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = self.options.problems();
        if let Some(Delivery {
            timeout,
            max_attempts: attempts,
            ..
        }) = self.options.delivery()
        {
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
        self.options.delivery().map(|d| (d.timeout, d.max_attempts))
    }

    /// The limits in force: what the file says, else GoAlert's defaults for the kind of
    /// channel (SMS and phone-ringing push: 1/min, 5/15 min, 11/h, 21/3 h; voice calls:
    /// 1/min, 3/15 min; mail and other push: 1/min; every notifier 5 per 5 s overall).
    /// `log` is never limited.
    pub fn limits(&self) -> Limits {
        let Some(Delivery { limits: c, .. }) = self.options.delivery() else {
            return Limits::default();
        };
        let reaches = self.options.reaches();
        let unset = c.per_destination.is_none() && c.overall.is_none();
        if c.enabled == Some(false) || (unset && reaches == Reaches::Machine) {
            return Limits::default();
        }
        let per_destination = c
            .per_destination
            .clone()
            .unwrap_or_else(|| reaches.default_per_destination());
        Limits {
            per_destination,
            overall: Some(c.overall.unwrap_or(RateLimit::new(5, 5))),
        }
    }

    /// See [`NotifierKind::build`].
    pub fn build(
        &self,
        name: &str,
        secrets: &NotifierSecrets,
        cx: &BuildContext,
        previous: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        self.options.build(name, secrets, cx, previous)
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
    // The problem is shown wherever config errors go: never with a password or token.
    let shown = crate::notify::redact_text(url);
    let problem = match reqwest::Url::parse(url) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            format!("{key} {shown:?} must start with http:// or https://")
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            format!("{key} {shown:?} has no host: write it like \"https://host:port/path\"")
        }
        Ok(_) => return,
        Err(e) => {
            format!("{key} {shown:?} is not a URL ({e}): write it like \"https://host:port/path\"")
        }
    };
    out.push(Problem::new(key, problem));
}

/// The secret `base` of `secrets`, if it was set.
pub(crate) fn secret(secrets: &NotifierSecrets, base: &str) -> Option<Secret> {
    secrets.get(base).cloned()
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
