//! The shape of `alerts.toml`: pure data, `deny_unknown_fields` everywhere.
//!
//! Doc comments here are the user documentation of each key; `alerts.toml` at the repo
//! root shows every one of them. Cross-references (policy names, notifier names) are
//! checked in `validate.rs`, not here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::notifier::NotifierConfig;
use super::types::{ByteSize, HumanDuration};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub defaults: DefaultsConfig,
    /// Named notifiers: how a page is delivered (`type` picks the implementation).
    #[serde(default)]
    pub notifiers: BTreeMap<String, NotifierConfig>,
    /// Named people and how to reach them.
    #[serde(default)]
    pub contacts: BTreeMap<String, ContactConfig>,
    /// Named escalation policies.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicyConfig>,
    /// Contacts taking turns on call.
    #[serde(default)]
    pub rotations: BTreeMap<String, super::schedules::RotationConfig>,
    /// Who is on call, from rotations and rules; steps page them like contacts.
    #[serde(default)]
    pub schedules: BTreeMap<String, super::schedules::ScheduleConfig>,
    /// Which policy an incident gets; first match wins.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub sources: SourcesConfig,
    /// How tocsin watches its own channels.
    #[serde(default)]
    pub watchdog: super::watchdog::WatchdogConfig,
    /// Heartbeat URLs (`/hooks/heartbeat/NAME`) that must keep being called.
    #[serde(default)]
    pub heartbeats: BTreeMap<String, super::watchdog::HeartbeatUrlConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the one HTTP listener (webhook, API, ack pages, metrics).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Base URL people reach tocsin at; ack links in pages start with it.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// File holding the bearer token that `/hooks/*` and state-changing API calls require.
    pub auth_token_file: Option<PathBuf>,
    /// Environment variable holding that bearer token.
    pub auth_token_env: Option<String>,
    /// Basic auth accepted on `/hooks/*` instead of the bearer token (Alertmanager's `basic_auth`).
    pub basic_auth: Option<BasicAuthConfig>,
    /// Named tokens that may do only what their scopes say: a token handed to a cron
    /// host for heartbeats cannot resolve incidents.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenConfig>,
    /// Largest request body accepted; larger ones get 413 and are never read past the cap.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// Connections open at once; one more closes the oldest idle one. Default: a quarter
    /// of the open-file limit, at most 1024.
    pub max_connections: Option<usize>,
    /// Serve `/metrics` without credentials even when they are configured (a Prometheus
    /// that cannot send a token). Off by default: metrics name notifiers and channels.
    #[serde(default)]
    pub metrics_public: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: default_public_url(),
            auth_token_file: None,
            auth_token_env: None,
            basic_auth: None,
            tokens: BTreeMap::new(),
            max_body: default_max_body(),
            max_connections: None,
            metrics_public: false,
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9797";

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}
fn default_public_url() -> String {
    format!("http://{DEFAULT_LISTEN}")
}
fn default_max_body() -> ByteSize {
    ByteSize(1024 * 1024)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: String,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

/// `[server.tokens.NAME]`: a bearer token limited to `scopes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// File holding the token (at least 16 characters).
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the token.
    pub token_env: Option<String>,
    /// What the token may do: hooks, heartbeat, sms, read, act, admin.
    pub scopes: Vec<super::Scope>,
}

/// `[storage]`: SQLite in a data dir (one instance), or PostgreSQL at `url` (two or more
/// instances sharing state).
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "StorageFile")]
pub struct StorageConfig {
    /// Directory of the SQLite database; `tocsin run --data-dir` overrides it.
    pub data_dir: PathBuf,
    /// Whether `data_dir` was written (it may not be beside `url`).
    pub data_dir_set: bool,
    /// How long a resolved incident is kept (with its alerts, history and pages) after it
    /// resolved; older ones are deleted. `"0s"` keeps everything.
    pub retention: HumanDuration,
    /// PostgreSQL instead of SQLite: `postgres://USER@HOST:PORT/DB?sslmode=...`, no
    /// password (see `password_file`).
    pub url: Option<String>,
    /// File holding the PostgreSQL password.
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the PostgreSQL password.
    pub password_env: Option<String>,
    /// With `url`: how long a leader's lease lasts without renewal; another instance
    /// takes over within it when the leader dies.
    pub lease: HumanDuration,
    /// With `url`: this instance's name in status (default: the host name).
    pub instance: Option<String>,
}

/// `[storage]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageFile {
    data_dir: Option<PathBuf>,
    #[serde(default = "default_retention")]
    retention: HumanDuration,
    url: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    #[serde(default = "default_lease")]
    lease: HumanDuration,
    instance: Option<String>,
}

impl From<StorageFile> for StorageConfig {
    fn from(f: StorageFile) -> Self {
        StorageConfig {
            data_dir_set: f.data_dir.is_some(),
            data_dir: f.data_dir.unwrap_or_else(default_data_dir),
            retention: f.retention,
            url: f.url,
            password_file: f.password_file,
            password_env: f.password_env,
            lease: f.lease,
            instance: f.instance,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: default_data_dir(),
            data_dir_set: false,
            retention: default_retention(),
            url: None,
            password_file: None,
            password_env: None,
            lease: default_lease(),
            instance: None,
        }
    }
}

fn default_lease() -> HumanDuration {
    HumanDuration(crate::store::postgres::DEFAULT_LEASE)
}

fn default_retention() -> HumanDuration {
    HumanDuration::from_secs(90 * 24 * 3600)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("tocsin-data")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsConfig {
    /// How long an ack holds before the incident re-triggers from step 1 ("0s" = forever).
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: HumanDuration,
    /// Most alerts one incident keeps; alerts beyond are counted (`alerts_truncated`),
    /// not stored, so one group of a million alerts cannot fill the disk or the memory.
    #[serde(default = "default_max_alerts_per_incident")]
    pub max_alerts_per_incident: u32,
    /// Farthest a maintenance window may end from when it is made or extended: planned
    /// work that runs longer is extended on purpose, never forgotten in silence.
    #[serde(default = "default_max_maintenance")]
    pub max_maintenance: HumanDuration,
    /// The `severity` label's values, least severe first: quiet hours hold pages about
    /// incidents ranked below a contact's `below`. A value not listed is never held.
    #[serde(default = "default_severity_order")]
    pub severity_order: Vec<String>,
}

fn default_severity_order() -> Vec<String> {
    ["info", "warning", "critical"].map(String::from).to_vec()
}

fn default_max_maintenance() -> HumanDuration {
    HumanDuration::from_secs(24 * 3600)
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        DefaultsConfig {
            ack_timeout: default_ack_timeout(),
            max_alerts_per_incident: default_max_alerts_per_incident(),
            max_maintenance: default_max_maintenance(),
            severity_order: default_severity_order(),
        }
    }
}

fn default_max_alerts_per_incident() -> u32 {
    1000
}

fn default_ack_timeout() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}

/// A person.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactConfig {
    /// IRC services account that may ack as this contact.
    pub irc_account: Option<String>,
    /// `nick!user@host` mask that may ack as this contact, only where the network has
    /// no services (`[sources.irc] allow_masks = true`). Weaker than an account.
    pub irc_mask: Option<String>,
    /// Ways to reach them, tried in order.
    #[serde(default)]
    pub methods: Vec<ContactMethodConfig>,
    /// Hours when pages about incidents less severe than `below` wait (held, not
    /// dropped) until the hours end, then go out as one message.
    pub quiet_hours: Option<QuietHoursConfig>,
}

/// `quiet_hours = { from = "22:00", to = "07:00", time_zone = "Europe/Berlin", below = "critical" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursConfig {
    /// Start, `HH:MM` on the zone's clock.
    pub from: String,
    /// End; at or before `from` runs past midnight.
    pub to: String,
    /// IANA zone name.
    pub time_zone: String,
    /// Incidents whose `severity` label ranks below this wait; this and above page at once.
    #[serde(default = "default_below")]
    pub below: String,
}

fn default_below() -> String {
    "critical".to_string()
}

/// One way to reach a contact.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactMethodConfig {
    /// The notifier that delivers it.
    pub notifier: String,
    /// Delay after the contact is paged before this method is tried (if nobody acked).
    #[serde(default)]
    pub after: HumanDuration,
    /// Address for the notifier: an email address, a phone number, a nick.
    pub to: Option<String>,
    /// Topic for push notifiers.
    pub topic: Option<String>,
}

/// An escalation policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// How many more times the steps run after the first pass; then it stays on the last step.
    #[serde(default)]
    pub repeat: u32,
    /// Gap between the last step and the next pass; defaults to the last step's `after`.
    pub repeat_after: Option<HumanDuration>,
    pub steps: Vec<StepConfig>,
    /// Page everyone who was paged again when the incident resolves, through the method
    /// that last reached them (watchdog incidents always do).
    #[serde(default)]
    pub page_recovery: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// When this step fires, measured from the start of the pass (the incident's trigger).
    #[serde(default)]
    pub after: HumanDuration,
    /// Contacts and notifiers to page.
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Alertmanager matchers (`=`, `!=`, `=~`, `!~`) on the incident's common labels; all must match.
    #[serde(default)]
    pub matchers: Vec<String>,
    pub policy: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub alertmanager: Option<AlertmanagerSourceConfig>,
    pub irc: Option<super::irc::IrcSourceConfig>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSourceConfig {
    /// The always-firing alert that proves the pipeline works; it never opens an incident.
    pub heartbeat: Option<HeartbeatConfig>,
    /// Opt-in: an ack in tocsin silences the incident's alerts in Alertmanager, so that
    /// Alertmanager stops re-notifying the group while someone works on it.
    pub silence_on_ack: Option<SilenceOnAckConfig>,
}

/// `silence_on_ack = { url = "http://alertmanager:9093", for = "2h" }`: which Alertmanager
/// holds the silences an ack makes, and how long each lasts before tocsin extends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceOnAckConfig {
    /// Alertmanager's base URL, or a list of them for an HA pair: tried in order, and the
    /// first that takes a silence is enough, since the peers gossip it to each other.
    pub url: UrlList,
    /// How long a silence lasts. While the incident stays acked and its alerts fire it is
    /// extended before it ends, so a tocsin that dies leaves no silence behind for longer.
    #[serde(rename = "for", default = "default_silence_for")]
    pub duration: HumanDuration,
    /// Bound on one request to one Alertmanager (connect, send, answer).
    #[serde(default = "default_silence_timeout")]
    pub timeout: HumanDuration,
    /// File holding a bearer token sent as `Authorization: Bearer ...` (a proxy in front
    /// of Alertmanager, or its own `--web.config.file`).
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding that bearer token.
    pub bearer_token_env: Option<String>,
    /// Basic auth sent instead of a bearer token.
    pub basic_auth: Option<BasicAuthConfig>,
}

fn default_silence_for() -> HumanDuration {
    HumanDuration::from_secs(2 * 3600)
}

fn default_silence_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

/// One URL, or a list of them: `url = "http://a:9093"` or `url = ["http://a:9093", ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlList(pub Vec<String>);

impl<'de> Deserialize<'de> for UrlList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UrlList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a URL or a list of URLs, like \"http://alertmanager:9093\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<UrlList, E> {
                Ok(UrlList(vec![s.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<UrlList, A::Error> {
                let mut urls = Vec::new();
                while let Some(u) = seq.next_element::<String>()? {
                    urls.push(u);
                }
                Ok(UrlList(urls))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    pub alertname: String,
    /// Its absence for this long is an outage of the alert path.
    pub within: HumanDuration,
}
