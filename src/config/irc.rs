//! `[sources.irc]`: the IRC link, through a bouncer (ZNC, soju) or straight to a server.
//!
//! One link serves both directions: it reads alert lines and commands, and the `irc`
//! notifier announces incidents through it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::notifier::Problem;
use super::types::HumanDuration;

/// The presets `patterns` may name instead of a regex.
pub const PATTERN_PRESETS: &[&str] = &["alertmanager-irc-relay"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcSourceConfig {
    /// `host:port` of the bouncer or server.
    pub server: String,
    /// TLS (rustls, system roots plus `tls_ca_file`).
    #[serde(default)]
    pub tls: bool,
    /// A PEM CA certificate to trust besides the system's (a self-signed bouncer).
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default = "default_nick")]
    pub nick: String,
    /// USER name; defaults to the nick. For ZNC, `user/network` also selects the network.
    pub username: Option<String>,
    #[serde(default = "default_realname")]
    pub realname: String,
    /// Server password (`PASS`); for ZNC write `user/network:password` in the file.
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// SASL PLAIN account, when talking to a server directly.
    pub sasl_username: Option<String>,
    pub sasl_password_file: Option<PathBuf>,
    pub sasl_password_env: Option<String>,
    /// Channels to join, read and announce in.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Send a PING this often ...
    #[serde(default = "default_ping_interval")]
    pub ping_interval: HumanDuration,
    /// ... and call the link dead when its PONG has not come back within this.
    #[serde(default = "default_ping_timeout")]
    pub ping_timeout: HumanDuration,
    /// Ask the network for our own WHOIS this often: a bouncer answers PINGs itself, so
    /// only an answer from the network proves the path end to end ...
    #[serde(default = "default_probe_interval")]
    pub probe_interval: HumanDuration,
    /// ... and call the network unreachable when the answer (318) has not come within
    /// this.
    #[serde(default = "default_probe_timeout")]
    pub probe_timeout: HumanDuration,
    /// TCP connect plus TLS handshake.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// From connect until the server's welcome (001).
    #[serde(default = "default_register_timeout")]
    pub register_timeout: HumanDuration,
    /// Longest wait between reconnect attempts (the backoff starts at 1 s, jittered).
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: HumanDuration,
    /// Lines sent at once before pacing starts ...
    #[serde(default = "default_flood_burst")]
    pub flood_burst: u32,
    /// ... then one line per this interval (servers drop "Excess Flood" clients).
    #[serde(default = "default_flood_interval")]
    pub flood_interval: HumanDuration,
    /// Accept commands from `nick!user@host` masks (contacts' `irc_mask`) when the
    /// network has no services accounts. Weaker: a mask is not a login.
    #[serde(default)]
    pub allow_masks: bool,
    /// Alert lines posted by bots: each becomes an alert.
    #[serde(default)]
    pub patterns: Vec<PatternConfig>,
}

/// How a bot's alert line is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// `nick!user@host` mask of the sender, `*` and `?` as wildcards.
    pub from: String,
    /// The services account the sender must be logged in to (account tag, the
    /// account-notify map, else WHOIS, as for commands): without it anyone holding the
    /// nick can post a line, and a forged "resolved" stops a real incident's paging.
    pub from_account: Option<String>,
    /// A regex with named captures: `status` (firing/resolved), `alertname`,
    /// `severity`, `group`, `summary`, and any other label.
    pub regex: Option<String>,
    /// A ready pattern instead of `regex`: "alertmanager-irc-relay".
    pub preset: Option<String>,
    /// Channels (or "private") where the pattern applies; all joined channels if unset.
    pub channels: Option<Vec<String>>,
    /// Labels added to every alert from this pattern, like `{ team = "db" }`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl IrcSourceConfig {
    pub fn username(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.nick)
    }

    /// What is wrong with the section on its own (regexes are compiled when the source
    /// is built from it, and their errors come back here through [`PatternConfig`]).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        match self.server.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => out.push(Problem::new(
                "server",
                format!(
                    "server {:?} must be host:port, like \"irc.example.net:6697\"",
                    self.server
                ),
            )),
        }
        if !is_nick(&self.nick) {
            out.push(Problem::new(
                "nick",
                format!("{:?} is not a valid IRC nick", self.nick),
            ));
        }
        for c in &self.channels {
            if !is_channel(c) {
                out.push(Problem::new(
                    "channels",
                    format!("{c:?} is not a channel name: channels start with # or &"),
                ));
            }
        }
        if self.sasl_username.is_some()
            != (self.sasl_password_file.is_some() || self.sasl_password_env.is_some())
        {
            out.push(Problem::new(
                "sasl_username",
                "SASL needs both sasl_username and sasl_password_file (or sasl_password_env)",
            ));
        }
        for (key, d) in [
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
            ("probe_interval", self.probe_interval),
            ("probe_timeout", self.probe_timeout),
            ("connect_timeout", self.connect_timeout),
            ("register_timeout", self.register_timeout),
            ("reconnect_max", self.reconnect_max),
        ] {
            if d.0.is_zero() {
                out.push(Problem::new(key, format!("{key} must be more than 0s")));
            }
        }
        if self.flood_burst == 0 {
            out.push(Problem::new(
                "flood_burst",
                "flood_burst must be at least 1",
            ));
        }
        for p in &self.patterns {
            if let Some(problem) = p.problem() {
                out.push(problem);
            }
        }
        out
    }
}

impl PatternConfig {
    fn problem(&self) -> Option<Problem> {
        match (&self.regex, &self.preset) {
            (Some(_), Some(_)) => Some(Problem::new(
                "patterns",
                "a pattern has either regex or preset, not both",
            )),
            (None, None) => Some(Problem::new(
                "patterns",
                format!(
                    "a pattern needs regex = '...' or preset = one of {}",
                    PATTERN_PRESETS.join(", ")
                ),
            )),
            (None, Some(p)) if !PATTERN_PRESETS.contains(&p.as_str()) => Some(Problem::new(
                "patterns",
                format!(
                    "unknown preset {p:?}: the presets are {}",
                    PATTERN_PRESETS.join(", ")
                ),
            )),
            (Some(r), None) => match regex::Regex::new(r) {
                Err(e) => Some(Problem::new(
                    "patterns",
                    format!("regex {r:?} does not compile: {e}"),
                )),
                Ok(re) if !re.capture_names().flatten().any(|n| n == "alertname") => {
                    Some(Problem::new(
                        "patterns",
                        format!(
                            "regex {r:?} has no (?P<alertname>...) capture: every alert needs a name"
                        ),
                    ))
                }
                Ok(_) => None,
            },
            _ => None,
        }
    }
}

/// Letters, digits and the specials RFC 2812 allows, not starting with a digit or `-`.
pub fn is_nick(s: &str) -> bool {
    let special = |c: char| "[]\\`_^{|}-".contains(c);
    !s.is_empty()
        && s.len() <= 30
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || special(c))
}

pub fn is_channel(s: &str) -> bool {
    s.len() > 1
        && s.starts_with(['#', '&'])
        && !s.chars().any(|c| c == ' ' || c == ',' || c.is_control())
}

fn default_nick() -> String {
    "tocsin".into()
}
fn default_realname() -> String {
    "tocsin alert escalation".into()
}
fn default_ping_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_ping_timeout() -> HumanDuration {
    HumanDuration::from_secs(20)
}
fn default_probe_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_probe_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_register_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_reconnect_max() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_flood_burst() -> u32 {
    5
}
fn default_flood_interval() -> HumanDuration {
    HumanDuration::from_secs(2)
}
