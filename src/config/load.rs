//! Turns `alerts.toml` text into a validated [`Config`], or into every error it has at once.
//!
//! Three passes, each collecting errors instead of stopping at the first:
//! 1. parse the TOML keeping spans; a syntax error stops here, since nothing after it can
//!    be trusted;
//! 2. deserialize each section and each named entry on its own, so one bad notifier does
//!    not hide a bad policy; an unknown key is reported, dropped, and the entry retried, so
//!    every unknown key shows up in one run;
//! 3. semantic checks: the shared name space, references, step order, matchers, addresses,
//!    and reading the secrets.
//!
//! Every error carries its key path (`policies.default.steps[1].after`) and, where the
//! spanned tree has it, the line.
//!
//! Relative `*_file` paths are resolved against the directory of the config file, so a
//! config and its secrets can move together.

use std::collections::{BTreeMap, BTreeSet};
use std::env::VarError;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::schema::{
    AlertmanagerSourceConfig, ConfigFile, ContactConfig, DefaultsConfig, NotifierConfig,
    PolicyConfig, RouteConfig, ServerConfig, SourcesConfig, StorageConfig, WebhookNotifierConfig,
};
use super::types::Secret;
use super::{Config, HookAuth, Route};
use crate::engine::Matcher;

/// One problem in the config, located by key path and (where known) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where in the file, like `policies.default.steps[1].after`; empty for syntax errors
    /// and for errors about the file as a whole.
    pub key_path: String,
    /// 1-based line of the key (or value) the error is about.
    pub line: Option<usize>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one config, in file order; `.1` is the file they are in.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>, pub Option<PathBuf>);

impl ConfigErrors {
    /// The file the errors are about, if the config came from a file.
    pub fn path(&self) -> Option<&Path> {
        self.1.as_deref()
    }

    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    fn one(path: &Path, message: String) -> Self {
        let error = ConfigError {
            key_path: String::new(),
            line: None,
            message,
        };
        ConfigErrors(vec![error], Some(path.to_path_buf()))
    }
}

/// `alerts.toml:12: policies.default.steps[1].after: invalid duration ...`, one per line,
/// then `2 errors in alerts.toml`.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = match &self.1 {
            Some(p) => p.display().to_string(),
            None => "alerts.toml".to_string(),
        };
        for e in &self.0 {
            write!(f, "{file}")?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            if !e.key_path.is_empty() {
                write!(f, ": {}", e.key_path)?;
            }
            writeln!(f, ": {}", e.message)?;
        }
        let n = self.0.len();
        write!(f, "{n} error{} in {file}", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates the config file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "create it (the alerts.toml shipped with tocsin is a working start) or pass --config PATH"
        } else {
            "check the path and that tocsin may read it"
        };
        ConfigErrors::one(
            path,
            format!("cannot read config file {}: {e}: {what}", path.display()),
        )
    })?;
    load_str(&text, Some(path))
}

/// Validates config text; `path` is where it came from (for messages and relative `*_file`s).
pub fn load_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigErrors> {
    load_with_env(text, path, &|name| std::env::var(name))
}

/// How `*_env` secrets are looked up; tests pass a fake environment.
type EnvLookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

fn load_with_env(
    text: &str,
    path: Option<&Path>,
    env: EnvLookup<'_>,
) -> Result<Config, ConfigErrors> {
    let fail = |errors: Vec<ConfigError>| ConfigErrors(errors, path.map(Path::to_path_buf));
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => return Err(fail(vec![syntax_error(text, &e)])),
    };
    let root = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let base_dir = path
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut loader = Loader {
        text,
        root: &root,
        base_dir,
        env,
        errors: Vec::new(),
    };
    let parsed = loader.sections();
    let (hook_auth, notifier_tokens, routes) = loader.check(&parsed);
    let mut errors = loader.errors;
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line.is_none(), e.line));
        return Err(fail(errors));
    }
    Ok(Config {
        file: parsed.file,
        path: path.map(Path::to_path_buf),
        hook_auth,
        notifier_tokens,
        routes,
    })
}

fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, message) = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let column = text[line_start..start].chars().count() + 1;
            (
                Some(line_of(text, start)),
                format!(
                    "TOML syntax error at column {column}: {}",
                    e.message().trim()
                ),
            )
        }
        None => (None, format!("TOML syntax error: {}", e.message().trim())),
    };
    ConfigError {
        key_path: String::new(),
        line,
        message,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A key path like `policies.default.steps[1].after`.
#[derive(Clone, Default)]
struct KeyPath(Vec<Seg>);

#[derive(Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?
                    } else {
                        write!(f, "{k:?}")?
                    }
                }
            }
        }
        Ok(())
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The path, below `value`, of the deepest key or item whose span holds `span`.
fn path_to_span(value: &DeValue<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    let below = |seg: Seg, v: &Spanned<DeValue<'_>>| {
        if let Some(mut deeper) = path_to_span(v.get_ref(), span) {
            deeper.insert(0, seg);
            return Some(deeper);
        }
        contains(&v.span(), span).then(|| vec![seg])
    };
    match value {
        DeValue::Table(t) => t.iter().find_map(|(k, v)| {
            let seg = Seg::Key(k.get_ref().to_string());
            if contains(&k.span(), span) {
                Some(vec![seg])
            } else {
                below(seg, v)
            }
        }),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| below(Seg::Index(i), v)),
        _ => None,
    }
}

/// Drops the key whose span is `span` (an unknown key serde stopped at), anywhere below `value`.
fn remove_key_at(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(t) => {
            let hit = t
                .iter()
                .find(|(k, _)| k.span() == *span)
                .map(|(k, _)| k.get_ref().to_string());
            if let Some(name) = hit {
                t.remove(name.as_str());
                return true;
            }
            t.iter_mut().any(|(_, v)| remove_key_at(v.get_mut(), span))
        }
        DeValue::Array(a) => a.iter_mut().any(|v| remove_key_at(v.get_mut(), span)),
        _ => false,
    }
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [`a`, `b`]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name.to_string(), expected))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Says what to write instead of an unknown key.
fn unknown_key_message(name: &str, expected: &[String], path: &str) -> String {
    let file_key = format!("{name}_file");
    if expected.contains(&file_key) {
        return format!(
            "secrets are never inline: use {name}_file or {name}_env (a file only tocsin can read, or an environment variable)"
        );
    }
    if path == "sources.irc" {
        return "the IRC source is not available in this build yet (the README describes it)"
            .to_string();
    }
    if expected.is_empty() {
        // Only a `log` notifier has no options at all.
        return format!("unknown key `{name}`: a log notifier has no options besides `type`");
    }
    let list = expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match expected.iter().min_by_key(|e| edit_distance(name, e)) {
        Some(close) if edit_distance(name, close) <= 2 => {
            format!("unknown key `{name}`: did you mean `{close}`? (allowed here: {list})")
        }
        _ => format!("unknown key `{name}` (allowed here: {list})"),
    }
}

/// Keys whose values are durations, so a bare number gets a hint.
const DURATION_KEYS: &[&str] = &["after", "repeat_after", "ack_timeout", "timeout", "within"];

/// Rewords serde's message about a bad value for people editing TOML.
fn value_message(message: &str, path: &KeyPath) -> String {
    let message = message.replacen("missing field", "missing required key", 1);
    let is_duration =
        matches!(path.0.last(), Some(Seg::Key(k)) if DURATION_KEYS.contains(&k.as_str()));
    if is_duration && message.starts_with("invalid type") {
        return format!("{message}: durations are quoted, like \"30s\", \"5m\" or \"1h 30m\"");
    }
    message
}

/// The sections `alerts.toml` may have; anything else at the top level is an error.
const SECTIONS: &[&str] = &[
    "server",
    "storage",
    "defaults",
    "notifiers",
    "contacts",
    "policies",
    "routes",
    "sources",
];

/// Notifier types described in the design that this build does not have yet.
const LATER_NOTIFIERS: &str = "email, kannel, twilio, http_sms, ntfy, pushover, gotify";

/// A `log` notifier has no options besides `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

/// What pass 2 produced: the entries that deserialized, and the names that exist at all
/// (so a reference to a broken entry is not reported a second time as dangling).
#[derive(Default)]
struct Parsed {
    file: ConfigFile,
    /// Original index of each route in `file.routes`.
    route_index: Vec<usize>,
    /// Whether `routes` was given at all (a missing or empty list is its own error).
    route_count: usize,
    notifier_names: BTreeSet<String>,
    contact_names: BTreeSet<String>,
    policy_names: BTreeSet<String>,
}

struct Loader<'a, 'i> {
    text: &'a str,
    root: &'a Spanned<DeValue<'i>>,
    /// Relative `*_file` paths start here: the config file's directory.
    base_dir: PathBuf,
    env: EnvLookup<'a>,
    errors: Vec<ConfigError>,
}

impl<'a, 'i> Loader<'a, 'i> {
    fn err(&mut self, at: &KeyPath, message: impl Into<String>) {
        let line = self.span_of(at).map(|s| line_of(self.text, s.start));
        self.errors.push(ConfigError {
            key_path: at.to_string(),
            line,
            message: message.into(),
        });
    }

    /// Span of the last key (or array item) of `at` that exists in the file.
    fn span_of(&self, at: &KeyPath) -> Option<Range<usize>> {
        let mut cur = self.root.get_ref();
        let mut best = None;
        for seg in &at.0 {
            let next = match (cur, seg) {
                (DeValue::Table(t), Seg::Key(k)) => {
                    t.get_key_value(k.as_str()).map(|(k, v)| (k.span(), v))
                }
                (DeValue::Array(a), Seg::Index(i)) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((span, v)) = next else { break };
            best = Some(span);
            cur = v.get_ref();
        }
        best
    }

    /// Deserializes one entry; reports each unknown key (retrying without it) and the
    /// first other error.
    fn entry<T: DeserializeOwned>(
        &mut self,
        at: &KeyPath,
        value: &Spanned<DeValue<'i>>,
    ) -> Option<T> {
        let mut value = value.clone();
        loop {
            let e = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let Some(span) = e.span() else {
                self.err(at, e.message());
                return None;
            };
            let mut path = at.clone();
            path.0
                .extend(path_to_span(value.get_ref(), &span).unwrap_or_default());
            let key_path = path.to_string();
            let message = match unknown_field(e.message()) {
                Some((name, expected)) => unknown_key_message(&name, &expected, &key_path),
                None => value_message(e.message(), &path),
            };
            self.errors.push(ConfigError {
                key_path,
                line: Some(line_of(self.text, span.start)),
                message,
            });
            let retry =
                unknown_field(e.message()).is_some() && remove_key_at(value.get_mut(), &span);
            if !retry {
                return None;
            }
        }
    }

    /// The named entries of a `[section.NAME]` table.
    fn named(&mut self, section: &str) -> Vec<(String, KeyPath, &'a Spanned<DeValue<'i>>)> {
        let at = KeyPath::default().key(section);
        let root: &'a DeValue<'i> = self.root.get_ref();
        let DeValue::Table(root) = root else {
            return Vec::new();
        };
        match root.get(section).map(Spanned::get_ref) {
            None => Vec::new(),
            Some(DeValue::Table(t)) => t
                .iter()
                .map(|(k, v)| (k.get_ref().to_string(), at.key(k.get_ref()), v))
                .collect(),
            Some(other) => {
                let msg = format!(
                    "`{section}` must be a table of named entries, not {}: write [{section}.NAME]",
                    with_article(other.type_str())
                );
                self.err(&at, msg);
                Vec::new()
            }
        }
    }

    /// Pass 2: every section and entry on its own.
    fn sections(&mut self) -> Parsed {
        let mut p = Parsed::default();
        let root: &'a DeValue<'i> = self.root.get_ref();
        let DeValue::Table(root) = root else { return p };
        for (k, _) in root.iter() {
            if !SECTIONS.contains(&k.get_ref().as_ref()) {
                let msg = format!(
                    "unknown section `{}` (the sections are: {})",
                    k.get_ref(),
                    SECTIONS.join(", ")
                );
                self.err(&KeyPath::default().key(k.get_ref()), msg);
            }
        }
        let section = |name: &str| root.get(name).map(|v| (KeyPath::default().key(name), v));
        if let Some((at, v)) = section("server") {
            p.file.server = self.entry::<ServerConfig>(&at, v).unwrap_or_default();
        }
        if let Some((at, v)) = section("storage") {
            p.file.storage = self.entry::<StorageConfig>(&at, v).unwrap_or_default();
        }
        if let Some((at, v)) = section("defaults") {
            p.file.defaults = self.entry::<DefaultsConfig>(&at, v).unwrap_or_default();
        }
        if let Some((at, v)) = section("sources") {
            p.file.sources = self.entry::<SourcesConfig>(&at, v).unwrap_or_default();
        }
        for (name, at, v) in self.named("notifiers") {
            if let Some(n) = self.notifier(&at, v) {
                p.file.notifiers.insert(name.clone(), n);
            }
            p.notifier_names.insert(name);
        }
        for (name, at, v) in self.named("contacts") {
            if let Some(c) = self.entry::<ContactConfig>(&at, v) {
                p.file.contacts.insert(name.clone(), c);
            }
            p.contact_names.insert(name);
        }
        for (name, at, v) in self.named("policies") {
            if let Some(c) = self.entry::<PolicyConfig>(&at, v) {
                p.file.policies.insert(name.clone(), c);
            }
            p.policy_names.insert(name);
        }
        if let Some((at, v)) = section("routes") {
            match v.get_ref() {
                DeValue::Array(routes) => {
                    p.route_count = routes.len();
                    for (i, r) in routes.iter().enumerate() {
                        if let Some(route) = self.entry::<RouteConfig>(&at.index(i), r) {
                            p.file.routes.push(route);
                            p.route_index.push(i);
                        }
                    }
                }
                other => {
                    let msg = format!(
                        "`routes` is a list, not {}: write each route as [[routes]] (double brackets)",
                        with_article(other.type_str())
                    );
                    self.err(&at, msg);
                    p.route_count = 1; // reported already; do not also say "no routes"
                }
            }
        }
        p
    }

    /// Notifiers are read by hand (not through the `type`-tagged enum) so that errors
    /// inside one keep their spans and an unknown `type` gets a useful answer.
    fn notifier(&mut self, at: &KeyPath, v: &Spanned<DeValue<'i>>) -> Option<NotifierConfig> {
        let DeValue::Table(t) = v.get_ref() else {
            self.err(
                at,
                format!(
                    "a notifier is a table, not {}: write [notifiers.NAME] with type = \"log\"",
                    with_article(v.get_ref().type_str())
                ),
            );
            return None;
        };
        let Some(ty) = t.get("type") else {
            self.err(
                at,
                "missing required key `type`: set type = \"log\" or type = \"webhook\"",
            );
            return None;
        };
        let Some(ty) = ty.get_ref().as_str() else {
            self.err(
                &at.key("type"),
                "`type` is a string: \"log\" or \"webhook\"",
            );
            return None;
        };
        let mut rest = t.clone();
        rest.remove("type");
        let rest = Spanned::new(v.span(), DeValue::Table(rest));
        match ty {
            "log" => self
                .entry::<NoOptions>(at, &rest)
                .map(|_| NotifierConfig::Log {}),
            "webhook" => self
                .entry::<WebhookNotifierConfig>(at, &rest)
                .map(NotifierConfig::Webhook),
            other => {
                let msg = format!(
                    "unknown notifier type {other:?}: this build supports \"log\" and \"webhook\"; other types ({LATER_NOTIFIERS}) are not available in this build (the README describes them)"
                );
                self.err(&at.key("type"), msg);
                None
            }
        }
    }

    /// Pass 3: everything that needs more than one entry, or the outside world.
    fn check(&mut self, p: &Parsed) -> (HookAuth, BTreeMap<String, Secret>, Vec<Route>) {
        self.check_names(p);
        self.check_contacts(p);
        self.check_policies(p);
        let routes = self.check_routes(p);
        let hook_auth = self.check_server(&p.file.server);
        let mut tokens = BTreeMap::new();
        for (name, n) in &p.file.notifiers {
            let at = KeyPath::default().key("notifiers").key(name);
            if let NotifierConfig::Webhook(w) = n {
                if !is_http_url(&w.url) {
                    self.err(
                        &at.key("url"),
                        format!("url {:?} must start with http:// or https://", w.url),
                    );
                }
                if w.timeout.0.is_zero() {
                    self.err(
                        &at.key("timeout"),
                        "timeout must be more than 0s, like \"10s\"",
                    );
                }
                if w.max_attempts == 0 {
                    self.err(&at.key("max_attempts"), "max_attempts must be at least 1");
                }
                let token = self.secret(
                    &at,
                    "bearer_token",
                    w.bearer_token_file.as_deref(),
                    w.bearer_token_env.as_deref(),
                );
                if let Some(token) = token {
                    tokens.insert(name.clone(), token);
                }
            }
        }
        if let Some(AlertmanagerSourceConfig {
            heartbeat: Some(hb),
        }) = &p.file.sources.alertmanager
        {
            let at = KeyPath::default()
                .key("sources")
                .key("alertmanager")
                .key("heartbeat");
            if hb.alertname.trim().is_empty() {
                self.err(
                    &at.key("alertname"),
                    "alertname is empty: write the always-firing alert's name, like \"Watchdog\"",
                );
            }
            if hb.within.0.is_zero() {
                self.err(
                    &at.key("within"),
                    "within must be more than 0s, like \"10m\"",
                );
            }
        }
        (hook_auth, tokens, routes)
    }

    /// Contacts, notifiers and policies share one name space, and names are plain.
    fn check_names(&mut self, p: &Parsed) {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let sections = [
            ("notifiers", &p.notifier_names),
            ("contacts", &p.contact_names),
            ("policies", &p.policy_names),
        ];
        for (section, names) in sections {
            for name in names {
                let at = KeyPath::default().key(section).key(name);
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                {
                    self.err(
                        &at,
                        format!("name {name:?} may only have letters, digits, '_', '.' and '-'"),
                    );
                }
                match seen.get(name.as_str()) {
                    Some(first) => {
                        let first_at = KeyPath::default().key(first).key(name);
                        let line = self
                            .span_of(&first_at)
                            .map(|s| format!(" (line {})", line_of(self.text, s.start)))
                            .unwrap_or_default();
                        let msg = format!(
                            "name {name:?} is used by both {first_at}{line} and {at}: contacts, notifiers and policies share one name space, so rename one"
                        );
                        self.err(&at, msg);
                    }
                    None => {
                        seen.insert(name, section);
                    }
                }
            }
        }
    }

    fn check_contacts(&mut self, p: &Parsed) {
        for (name, c) in &p.file.contacts {
            let at = KeyPath::default().key("contacts").key(name);
            if c.methods.is_empty() && c.irc_account.is_none() {
                self.err(&at, format!("contact {name} has no methods: nobody can be paged; add methods = [{{ notifier = \"...\", to = \"...\" }}]"));
            }
            for (i, m) in c.methods.iter().enumerate() {
                if !p.notifier_names.contains(&m.notifier) {
                    let what = what_is(p, &m.notifier);
                    let msg = format!(
                        "unknown notifier {:?}{what} (notifiers: {})",
                        m.notifier,
                        list(&p.notifier_names)
                    );
                    self.err(&at.key("methods").index(i).key("notifier"), msg);
                }
            }
        }
    }

    fn check_policies(&mut self, p: &Parsed) {
        for (name, policy) in &p.file.policies {
            let at = KeyPath::default().key("policies").key(name);
            if policy.steps.is_empty() {
                self.err(&at.key("steps"), "a policy needs at least one step, like { after = \"0s\", notify = [\"oncall\"] }");
                continue;
            }
            for (i, step) in policy.steps.iter().enumerate() {
                let step_at = at.key("steps").index(i);
                if step.notify.is_empty() {
                    self.err(
                        &step_at.key("notify"),
                        "this step notifies nobody: name contacts or notifiers",
                    );
                }
                for (j, target) in step.notify.iter().enumerate() {
                    if !p.contact_names.contains(target) && !p.notifier_names.contains(target) {
                        let what = what_is(p, target);
                        let msg = format!(
                            "unknown contact or notifier {target:?}{what} (contacts: {}; notifiers: {})",
                            list(&p.contact_names),
                            list(&p.notifier_names)
                        );
                        self.err(&step_at.key("notify").index(j), msg);
                    }
                }
                if i > 0 && step.after < policy.steps[i - 1].after {
                    let msg = format!(
                        "after = {:?} is earlier than the previous step's {:?}: `after` is counted from the start of the pass, so steps must not go back in time",
                        step.after,
                        policy.steps[i - 1].after
                    );
                    self.err(&step_at.key("after"), msg);
                }
            }
            let last = policy.steps.last().map(|s| s.after).unwrap_or_default();
            let gap = policy.repeat_after.unwrap_or(last);
            if policy.repeat > 0 && gap.0.is_zero() {
                let (key, why) = match policy.repeat_after {
                    Some(_) => ("repeat_after", "repeat_after is 0s"),
                    None => ("repeat", "the last step's `after` is 0s"),
                };
                let msg = format!(
                    "the policy would repeat with no pause between passes ({why}): set repeat_after to the pause, like \"30m\""
                );
                self.err(&at.key(key), msg);
            }
        }
    }

    fn check_routes(&mut self, p: &Parsed) -> Vec<Route> {
        let at = KeyPath::default().key("routes");
        if p.route_count == 0 {
            self.err(&at, "no routes: add a [[routes]] with policy = \"default\" (a route without matchers catches every incident)");
        }
        let mut routes = Vec::new();
        let mut catch_all: Option<usize> = None;
        for (route, &i) in p.file.routes.iter().zip(&p.route_index) {
            let route_at = at.index(i);
            if let Some(c) = catch_all {
                let msg = format!(
                    "this route is never used: routes[{c}] has no matchers and catches every incident first; move the catch-all route last"
                );
                self.err(&route_at, msg);
            }
            if route.matchers.is_empty() && catch_all.is_none() {
                catch_all = Some(i);
            }
            if !p.policy_names.contains(&route.policy) {
                let what = what_is(p, &route.policy);
                let msg = format!(
                    "unknown policy {:?}{what} (policies: {})",
                    route.policy,
                    list(&p.policy_names)
                );
                self.err(&route_at.key("policy"), msg);
            }
            let mut matchers = Vec::new();
            for (j, m) in route.matchers.iter().enumerate() {
                match Matcher::parse(m) {
                    Ok(m) => matchers.push(m),
                    Err(e) => self.err(&route_at.key("matchers").index(j), e),
                }
            }
            routes.push(Route {
                matchers,
                policy: route.policy.clone(),
            });
        }
        routes
    }

    fn check_server(&mut self, s: &ServerConfig) -> HookAuth {
        let at = KeyPath::default().key("server");
        if let Err(e) = s.listen.parse::<SocketAddr>() {
            let msg = format!(
                "listen = {:?} is not IP:PORT ({e}): write it like \"127.0.0.1:9797\" or \"[::]:9797\"",
                s.listen
            );
            self.err(&at.key("listen"), msg);
        }
        if !is_http_url(&s.public_url) {
            let msg = format!(
                "public_url {:?} must start with http:// or https:// (ack links are built from it)",
                s.public_url
            );
            self.err(&at.key("public_url"), msg);
        }
        if s.max_body.0 == 0 {
            self.err(
                &at.key("max_body"),
                "max_body must be more than 0, like \"1MiB\"",
            );
        }
        let mut auth = HookAuth {
            bearer: self.secret(
                &at,
                "auth_token",
                s.auth_token_file.as_deref(),
                s.auth_token_env.as_deref(),
            ),
            basic: None,
        };
        if let Some(b) = &s.basic_auth {
            let at = at.key("basic_auth");
            if b.username.is_empty() {
                self.err(&at.key("username"), "username is empty");
            }
            if b.password_file.is_none() && b.password_env.is_none() {
                self.err(&at, "basic_auth needs password_file or password_env");
            }
            let password = self.secret(
                &at,
                "password",
                b.password_file.as_deref(),
                b.password_env.as_deref(),
            );
            auth.basic = password.map(|p| (b.username.clone(), p));
        }
        auth
    }

    /// Reads `{base}_file` or `{base}_env` under `at`; `None` when neither is set or on error.
    fn secret(
        &mut self,
        at: &KeyPath,
        base: &str,
        file: Option<&Path>,
        env: Option<&str>,
    ) -> Option<Secret> {
        let file_key = format!("{base}_file");
        let env_key = format!("{base}_env");
        match (file, env) {
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.err(
                    &at.key(&env_key),
                    format!("set only one of {file_key} and {env_key}"),
                );
                None
            }
            (Some(file), None) => {
                let full = self.base_dir.join(file);
                match std::fs::read_to_string(&full) {
                    Err(e) => {
                        let msg = format!(
                            "cannot read secret file {} ({e}): create it, or fix the path",
                            full.display()
                        );
                        self.err(&at.key(&file_key), msg);
                        None
                    }
                    Ok(s) => {
                        let s = s.trim_end_matches(['\r', '\n']);
                        if s.is_empty() {
                            self.err(
                                &at.key(&file_key),
                                format!("secret file {} is empty", full.display()),
                            );
                            return None;
                        }
                        Some(Secret::new(s))
                    }
                }
            }
            (None, Some(var)) => match (self.env)(var) {
                Ok(s) if !s.is_empty() => Some(Secret::new(s)),
                Ok(_) => {
                    self.err(
                        &at.key(&env_key),
                        format!("environment variable {var} is empty"),
                    );
                    None
                }
                Err(VarError::NotPresent) => {
                    let msg = format!(
                        "environment variable {var:?} is not set: export it before starting tocsin, or use {file_key}"
                    );
                    self.err(&at.key(&env_key), msg);
                    None
                }
                Err(VarError::NotUnicode(_)) => {
                    self.err(
                        &at.key(&env_key),
                        format!("environment variable {var} is not valid UTF-8"),
                    );
                    None
                }
            },
        }
    }
}

/// `"a table"`, `"an integer"`: for messages about a value of the wrong kind.
fn with_article(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty())
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "none defined".to_string();
    }
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `", which is a contact"` when a reference names the wrong kind of thing.
fn what_is(p: &Parsed, name: &str) -> &'static str {
    if p.contact_names.contains(name) {
        ", which is a contact"
    } else if p.notifier_names.contains(name) {
        ", which is a notifier"
    } else if p.policy_names.contains(name) {
        ", which is a policy"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The design's example, with only the notifier types this build has.
    const DESIGN_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:9797"
public_url = "http://127.0.0.1:9797"
max_body = "1MiB"

[storage]
data_dir = "tocsin-data"

[defaults]
ack_timeout = "30m"

[notifiers.console]
type = "log"
[notifiers.hook]
type = "webhook"
url = "http://127.0.0.1:8080/page"

[contacts.alice]
irc_account = "alice"
methods = [
  { notifier = "console", to = "alice" },
  { notifier = "hook", to = "alice", after = "2m" },
]
[contacts.bob]
methods = [{ notifier = "console", to = "bob" }]

[policies.default]
repeat = 2
steps = [
  { after = "0s",  notify = ["console", "alice"] },
  { after = "10m", notify = ["bob"] },
  { after = "20m", notify = ["alice", "bob", "hook"] },
]

[[routes]]
matchers = ['severity="critical"']
policy = "default"
[[routes]]
policy = "default"

[sources.alertmanager]
heartbeat = { alertname = "Watchdog", within = "10m" }
"#;

    fn no_env(_: &str) -> Result<String, VarError> {
        Err(VarError::NotPresent)
    }

    fn load(text: &str) -> Result<Config, ConfigErrors> {
        load_with_env(text, None, &no_env)
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        match load(text) {
            Ok(_) => panic!("config loaded but should not have"),
            Err(e) => e.0,
        }
    }

    /// The design example with `from` replaced by `to` (first occurrence).
    fn edit(from: &str, to: &str) -> String {
        assert!(DESIGN_EXAMPLE.contains(from), "{from}");
        DESIGN_EXAMPLE.replacen(from, to, 1)
    }

    fn line_containing(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).expect(needle) + 1
    }

    #[test]
    fn design_example_loads_and_summary_counts_everything() {
        let c = load(DESIGN_EXAMPLE).unwrap();
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].matchers.len(), 1);
        assert!(c.routes[1].matchers.is_empty());
        assert!(c.hook_auth.is_open());
        let s = c.summary();
        assert!(s.contains("contacts: 2 [alice, bob]"), "{s}");
        assert!(
            s.contains("notifiers: 2 [console (log), hook (webhook)]"),
            "{s}"
        );
        assert!(s.contains("policies: 1 [default]"), "{s}");
        assert!(s.contains("routes: 2"), "{s}");
    }

    #[test]
    fn shipped_alerts_toml_loads_on_a_fresh_machine() {
        let c = load_str(include_str!("../../alerts.toml"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.file.server.listen, "127.0.0.1:9797");
        assert!(c.file.notifiers.contains_key("console"));
        assert!(c.file.policies.contains_key("default"));
        assert!(
            c.routes.last().unwrap().matchers.is_empty(),
            "last route is the catch-all"
        );
        assert!(
            c.file
                .sources
                .alertmanager
                .as_ref()
                .unwrap()
                .heartbeat
                .is_some()
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_path_and_line() {
        let text = edit("type = \"log\"", "type = \"log\"\ncolour = \"red\"");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "notifiers.console.colour");
        assert_eq!(errs[0].line, Some(line_containing(&text, "colour")));
        assert!(errs[0].message.contains("colour"), "{}", errs[0].message);
    }

    #[test]
    fn every_unknown_key_of_one_entry_is_reported() {
        let text = edit(
            "max_body = \"1MiB\"",
            "max_body = \"1MiB\"\nlisten_addr = \"x\"\nmax_bodyy = 3",
        );
        let errs = errors(&text);
        let paths: Vec<_> = errs.iter().map(|e| e.key_path.as_str()).collect();
        assert_eq!(paths, ["server.listen_addr", "server.max_bodyy"]);
        assert!(
            errs[1].message.contains("did you mean `max_body`"),
            "{}",
            errs[1].message
        );
    }

    #[test]
    fn two_bad_entries_give_two_errors() {
        let text = edit(
            "url = \"http://127.0.0.1:8080/page\"",
            "url = \"http://127.0.0.1:8080/page\"\ntimeout = \"soon\"",
        )
        .replacen("repeat = 2", "repeat = \"twice\"", 1);
        let errs = errors(&text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].key_path, "notifiers.hook.timeout");
        assert_eq!(errs[0].line, Some(line_containing(&text, "\"soon\"")));
        assert_eq!(errs[1].key_path, "policies.default.repeat");
        assert_eq!(errs[1].line, Some(line_containing(&text, "twice")));
    }

    #[test]
    fn route_to_missing_policy_is_reported() {
        let text = edit(
            "policy = \"default\"\n[[routes]]",
            "policy = \"dflt\"\n[[routes]]",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "routes[0].policy");
        assert_eq!(errs[0].line, Some(line_containing(&text, "\"dflt\"")));
        assert!(
            errs[0].message.contains("unknown policy \"dflt\""),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn step_paging_nobody_known_is_reported() {
        let text = edit("notify = [\"bob\"]", "notify = [\"carol\"]");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "policies.default.steps[1].notify[0]");
        assert_eq!(errs[0].line, Some(line_containing(&text, "carol")));
        assert!(
            errs[0].message.contains("alice, bob"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn method_through_missing_notifier_is_reported() {
        let text = edit(
            "{ notifier = \"console\", to = \"bob\" }",
            "{ notifier = \"pager\", to = \"bob\" }",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "contacts.bob.methods[0].notifier");
    }

    #[test]
    fn contact_named_like_a_notifier_is_a_clash() {
        let text = edit(
            "[contacts.bob]",
            "[contacts.console]\nirc_account = \"c\"\n[contacts.bob]",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "contacts.console");
        let msg = &errs[0].message;
        assert!(
            msg.contains("notifiers.console") && msg.contains("contacts.console"),
            "{msg}"
        );
    }

    #[test]
    fn duration_typo_names_key_path_and_line() {
        let text = edit("after = \"10m\"", "after = \"5mn\"");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "policies.default.steps[1].after");
        assert_eq!(errs[0].line, Some(line_containing(&text, "5mn")));
        assert!(
            errs[0].message.contains("invalid duration \"5mn\""),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn inline_secret_points_to_file_or_env() {
        let text = edit(
            "max_body = \"1MiB\"",
            "max_body = \"1MiB\"\nauth_token = \"hunter2\"",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "server.auth_token");
        assert!(
            errs[0]
                .message
                .contains("secrets are never inline: use auth_token_file or auth_token_env"),
            "{}",
            errs[0].message
        );
        assert!(!format!("{errs:?}").contains("hunter2"));
    }

    #[test]
    fn secrets_come_from_file_and_env_and_never_reach_debug() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "file-secret-123\n").unwrap();
        let text = edit(
            "max_body = \"1MiB\"",
            "max_body = \"1MiB\"\nauth_token_file = \"token\"",
        )
        .replacen(
            "url = \"http://127.0.0.1:8080/page\"",
            "url = \"http://127.0.0.1:8080/page\"\nbearer_token_env = \"HOOK_TOKEN\"",
            1,
        );
        let env = |name: &str| match name {
            "HOOK_TOKEN" => Ok("env-secret-456".to_string()),
            _ => Err(VarError::NotPresent),
        };
        let config = dir.path().join("alerts.toml");
        let c = load_with_env(&text, Some(&config), &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.hook_auth.bearer.as_ref().unwrap().expose(),
            "file-secret-123"
        );
        assert_eq!(c.notifier_tokens["hook"].expose(), "env-secret-456");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("file-secret-123") && !debug.contains("env-secret-456"),
            "{debug}"
        );

        let errs = load_with_env(&text, Some(&config), &no_env).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "notifiers.hook.bearer_token_env");
        assert!(
            errs[0].message.contains("HOOK_TOKEN"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn unreadable_secret_file_names_the_path() {
        let text = edit(
            "max_body = \"1MiB\"",
            "max_body = \"1MiB\"\nauth_token_file = \"/nonexistent/tocsin-token\"",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "server.auth_token_file");
        assert_eq!(
            errs[0].line,
            Some(line_containing(&text, "auth_token_file"))
        );
        assert!(
            errs[0].message.contains("/nonexistent/tocsin-token"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn basic_auth_without_password_and_both_sources_are_errors() {
        let text = edit(
            "max_body = \"1MiB\"",
            "max_body = \"1MiB\"\nauth_token_file = \"/t\"\nauth_token_env = \"T\"\nbasic_auth = { username = \"am\" }",
        );
        let errs = errors(&text);
        let paths: Vec<_> = errs.iter().map(|e| e.key_path.as_str()).collect();
        assert_eq!(
            paths,
            ["server.auth_token_env", "server.basic_auth"],
            "{errs:?}"
        );
    }

    #[test]
    fn routes_after_a_catch_all_are_unreachable() {
        let text = format!(
            "{DESIGN_EXAMPLE}\n[[routes]]\nmatchers = ['team=\"db\"']\npolicy = \"default\"\n"
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "routes[2]");
        assert!(errs[0].message.contains("routes[1]"), "{}", errs[0].message);
    }

    #[test]
    fn bad_matcher_names_route_and_matcher_index() {
        let text = edit(
            "matchers = ['severity=\"critical\"']",
            "matchers = ['severity=\"critical\"', 'team~db']",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "routes[0].matchers[1]");
    }

    #[test]
    fn steps_going_back_in_time_and_gapless_repeat_are_errors() {
        let text = edit("{ after = \"20m\"", "{ after = \"5m\"");
        let errs = errors(&text);
        assert_eq!(
            errs[0].key_path, "policies.default.steps[2].after",
            "{errs:?}"
        );

        let text = DESIGN_EXAMPLE
            .replace("after = \"10m\"", "after = \"0s\"")
            .replace("after = \"20m\"", "after = \"0s\"");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "policies.default.repeat");
        assert!(
            errs[0].message.contains("set repeat_after"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn unknown_notifier_type_lists_what_exists() {
        let text = edit("type = \"webhook\"", "type = \"email\"");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key_path, "notifiers.hook.type");
        let msg = &errs[0].message;
        assert!(
            msg.contains("\"log\" and \"webhook\"") && msg.contains("pushover"),
            "{msg}"
        );
    }

    #[test]
    fn contact_without_methods_or_irc_account_is_an_error() {
        let text = edit("methods = [{ notifier = \"console\", to = \"bob\" }]", "");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0]
                .message
                .contains("contact bob has no methods: nobody can be paged"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn syntax_error_gives_a_line_and_stops() {
        let text = "[server]\nlisten = \"127.0.0.1:9797\n[[routes]]\npolicy = \"nope\"\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, Some(2));
        assert_eq!(errs[0].key_path, "");
        assert!(
            errs[0].message.starts_with("TOML syntax error"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn display_lists_each_error_with_file_and_line_then_a_count() {
        let text = edit("after = \"10m\"", "after = \"5mn\"").replacen(
            "policy = \"default\"",
            "policy = \"dflt\"",
            1,
        );
        let e = load_with_env(&text, Some(Path::new("alerts.toml")), &no_env).unwrap_err();
        let shown = e.to_string();
        let lines: Vec<_> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        let step_line = line_containing(&text, "5mn");
        assert!(
            lines[0].starts_with(&format!(
                "alerts.toml:{step_line}: policies.default.steps[1].after: invalid duration \"5mn\""
            )),
            "{shown}"
        );
        assert!(
            lines[1].contains(": routes[0].policy: unknown policy"),
            "{shown}"
        );
        assert_eq!(lines[2], "2 errors in alerts.toml");
    }

    #[test]
    fn missing_config_file_says_which_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.toml");
        let e = load_file(&path).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.path(), Some(path.as_path()));
        let msg = &e.0[0].message;
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("--config"),
            "{msg}"
        );
    }
}
