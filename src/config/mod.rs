//! `alerts.toml`: schema, loading, and validation that reports every error at once.
//!
//! `schema.rs` is the file's shape (pure serde data), `types.rs` the human-written value
//! types. `load.rs` turns text into a validated [`Config`] or a list of [`ConfigError`]s
//! with key paths and line numbers, in three passes: TOML syntax, each section and entry
//! on its own (`sections.rs`, with `locate.rs` finding key paths and lines and
//! `messages.rs` rewording serde's errors), then cross-references (`validate.rs`);
//! `secrets.rs` reads `*_file` / `*_env` secrets; `silence_on_ack.rs` resolves where acks
//! silence Alertmanager.

mod credentials;
pub mod irc;
mod load;
mod locate;
mod messages;
pub mod notifier;
mod schedules;
pub mod schema;
mod secrets;
mod sections;
mod silence_on_ack;
mod storage;
#[cfg(test)]
mod tests;
pub mod types;
mod validate;
pub mod watchdog;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use credentials::{BASIC_AUTH, Credential, HookAuth, MASTER_TOKEN, Presented, Scope, Scopes};
pub use load::{ConfigError, ConfigErrors, load_file, load_str};
pub use notifier::*;
pub use schedules::{RotationConfig, RotationType, RuleConfig, ScheduleConfig, changed_members};
pub use schema::*;
pub use silence_on_ack::SilenceOnAck;
pub use types::{ByteSize, HumanDuration, RateLimit, Secret};

use crate::engine::Matcher;

/// A config that passed every check: references resolve, secrets are read, matchers parse.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file as written (after defaults).
    pub file: ConfigFile,
    /// Where it was read from, for reload and messages.
    pub path: Option<PathBuf>,
    /// Credentials the HTTP routes accept, each with its scopes; none means open (bind
    /// to loopback then).
    pub hook_auth: HookAuth,
    /// Secrets of each notifier (`password`, `auth_token`, ...), by notifier name.
    pub notifier_secrets: BTreeMap<String, BTreeMap<&'static str, Secret>>,
    /// `routes` with their matchers parsed, in file order.
    pub routes: Vec<Route>,
    /// `[sources.irc]` passwords.
    pub irc_secrets: IrcSecrets,
    /// `[sources.alertmanager] silence_on_ack`, resolved; `None` when acks silence nothing.
    pub silence_on_ack: Option<SilenceOnAck>,
    /// Rotations and schedules, compiled: who is on call when.
    pub calendar: crate::schedule::Calendar,
    /// Contacts' quiet hours, compiled.
    pub quiet_hours: BTreeMap<String, crate::schedule::QuietHours>,
    /// `[storage] url` and what goes with it, read: `Some` when the store is PostgreSQL.
    pub postgres: Option<crate::store::postgres::PgConfig>,
    /// What is valid but weak, in file order: `check-config` prints it and the daemon
    /// logs it at start.
    pub warnings: Vec<ConfigError>,
}

/// The secrets of `[sources.irc]`.
#[derive(Debug, Clone, Default)]
pub struct IrcSecrets {
    /// `PASS` (a bouncer's `user/network:password`).
    pub password: Option<Secret>,
    /// SASL PLAIN password.
    pub sasl_password: Option<Secret>,
}

/// A route with parsed matchers.
#[derive(Debug, Clone)]
pub struct Route {
    pub matchers: Vec<Matcher>,
    pub policy: String,
}

impl Config {
    /// One line per section, for `check-config` and the startup log.
    pub fn summary(&self) -> String {
        let f = &self.file;
        let names = |m: Vec<&String>| {
            m.into_iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let notifiers: Vec<String> = f
            .notifiers
            .iter()
            .map(|(n, c)| format!("{n} ({})", c.type_name()))
            .collect();
        format!(
            "contacts: {} [{}]\nnotifiers: {} [{}]\npolicies: {} [{}]\nroutes: {}\nlisten: {}  {}  ack_timeout: {:?}",
            f.contacts.len(),
            names(f.contacts.keys().collect()),
            f.notifiers.len(),
            notifiers.join(", "),
            f.policies.len(),
            names(f.policies.keys().collect()),
            f.routes.len(),
            f.server.listen,
            match &self.postgres {
                Some(pg) => format!("store: {}", pg.url),
                None => format!("data_dir: {}", f.storage.data_dir.display()),
            },
            f.defaults.ack_timeout,
        )
    }
}
