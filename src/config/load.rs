//! Turns `alerts.toml` text into a validated [`Config`], or into every error it has at once.
//!
//! Three passes, each collecting errors instead of stopping at the first:
//! 1. parse the TOML keeping spans; a syntax error stops here, since nothing after it can
//!    be trusted;
//! 2. deserialize each section and each named entry on its own, so one bad notifier does
//!    not hide a bad policy; an unknown key is reported, dropped, and the entry retried, so
//!    every unknown key shows up in one run;
//! 3. semantic checks: the shared name space, references, step order, matchers, addresses,
//!    reading the secrets, and building every notifier as the daemon would (without the
//!    network), so what only a notifier can judge fails here and not at start.
//!
//! Every error carries its key path (`policies.default.steps[1].after`) and, where the
//! spanned tree has it, the line.
//!
//! Relative `*_file` paths are resolved against the directory of the config file, so a
//! config and its secrets can move together.
//!
//! The passes live in their own files: `sections.rs` (pass 2), `validate.rs` (pass 3) and
//! `secrets.rs` (reading `*_file` / `*_env`); `locate.rs` maps key paths to lines and
//! `messages.rs` rewords serde's errors.

use std::env::VarError;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Config;
use super::locate::{KeyPath, line_of, span_of};

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

pub(super) fn load_with_env(
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
        warnings: Vec::new(),
    };
    let parsed = loader.sections();
    let (hook_auth, notifier_secrets, routes) = loader.check(&parsed);
    let irc_secrets = loader.check_irc(&parsed);
    let silence_on_ack = loader.check_silence_on_ack(&parsed);
    let calendar = loader.check_schedules(&parsed);
    let quiet_hours = loader.check_quiet_hours(&parsed);
    let postgres = loader.check_postgres(&parsed);
    let mut errors = loader.errors;
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line.is_none(), e.line));
        return Err(fail(errors));
    }
    let mut cfg = Config {
        warnings: loader.warnings,
        file: parsed.file,
        path: path.map(Path::to_path_buf),
        hook_auth,
        notifier_secrets,
        routes,
        irc_secrets,
        silence_on_ack,
        calendar,
        quiet_hours,
        postgres,
    };
    // Said of the secrets as read, not of a line: a short token, a token doing two jobs.
    for message in cfg.credential_warnings() {
        cfg.warnings.push(ConfigError {
            key_path: "server".to_string(),
            line: None,
            message,
        });
    }
    cfg.warnings.sort_by_key(|e| (e.line.is_none(), e.line));
    Ok(cfg)
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

pub(super) struct Loader<'a, 'i> {
    pub(super) text: &'a str,
    pub(super) root: &'a Spanned<DeValue<'i>>,
    /// Relative `*_file` paths start here: the config file's directory.
    pub(super) base_dir: PathBuf,
    pub(super) env: EnvLookup<'a>,
    pub(super) errors: Vec<ConfigError>,
    /// What is allowed but weak (a pattern that trusts a nick mask): said by
    /// `check-config` and at start, never refused.
    pub(super) warnings: Vec<ConfigError>,
}

impl Loader<'_, '_> {
    pub(super) fn err(&mut self, at: &KeyPath, message: impl Into<String>) {
        let e = self.located(at, message.into());
        self.errors.push(e);
    }

    pub(super) fn warn(&mut self, at: &KeyPath, message: impl Into<String>) {
        let w = self.located(at, message.into());
        self.warnings.push(w);
    }

    fn located(&self, at: &KeyPath, message: String) -> ConfigError {
        let line = span_of(self.root.get_ref(), at).map(|s| line_of(self.text, s.start));
        ConfigError {
            key_path: at.to_string(),
            line,
            message,
        }
    }
}
