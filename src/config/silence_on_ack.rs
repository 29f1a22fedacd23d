//! `[sources.alertmanager] silence_on_ack`, checked and resolved: URLs parsed, credentials
//! read, durations above zero. The client that uses it is [`crate::source::am_silence`].

use std::time::Duration;

use super::credentials::Presented;
use super::load::Loader;
use super::locate::KeyPath;
use super::notifier::check_http_url;
use super::sections::Parsed;

/// `silence_on_ack` as the client uses it.
#[derive(Debug, Clone)]
pub struct SilenceOnAck {
    /// Alertmanager peers in the order they are tried; at least one.
    pub urls: Vec<reqwest::Url>,
    /// How long a silence lasts from the moment it is made or extended.
    pub duration: Duration,
    /// Bound on one request to one peer.
    pub timeout: Duration,
    /// What every request carries: a bearer token or basic auth (its `Debug` is redacted).
    pub auth: Option<Presented>,
}

impl Loader<'_, '_> {
    /// `[sources.alertmanager] silence_on_ack`, or `None` when it is absent or wrong (the
    /// errors said, each at its key).
    pub(super) fn check_silence_on_ack(&mut self, p: &Parsed) -> Option<SilenceOnAck> {
        let c = p
            .file
            .sources
            .alertmanager
            .as_ref()?
            .silence_on_ack
            .as_ref()?;
        let at = KeyPath::default()
            .key("sources")
            .key("alertmanager")
            .key("silence_on_ack");
        let errors_before = self.errors.len();
        if c.url.0.is_empty() {
            self.err(
                &at.key("url"),
                "url is an empty list: name Alertmanager, like \"http://alertmanager:9093\", or each peer of an HA pair",
            );
        }
        let mut urls = Vec::new();
        for (i, u) in c.url.0.iter().enumerate() {
            let key = if c.url.0.len() == 1 {
                at.key("url")
            } else {
                at.key("url").index(i)
            };
            let mut problems = Vec::new();
            check_http_url("url", u, &mut problems);
            let parsed = reqwest::Url::parse(u).ok();
            match (problems.pop(), parsed) {
                (Some(problem), _) => self.err(&key, problem.message),
                // Two Authorization headers, and a secret written into alerts.toml.
                (None, Some(url)) if !url.username().is_empty() || url.password().is_some() => {
                    let msg = format!(
                        "{:?} carries credentials: secrets are never inline, so write the URL without them and use basic_auth = {{ username = \"...\", password_file = \"...\" }} or bearer_token_file",
                        crate::notify::redact(&url)
                    );
                    self.err(&key, msg);
                }
                (None, url) => urls.extend(url),
            }
        }
        if c.duration.0.is_zero() {
            self.err(
                &at.key("for"),
                "for must be more than 0s: how long a silence lasts before tocsin extends it, like \"2h\"",
            );
        }
        if c.timeout.0.is_zero() {
            self.err(
                &at.key("timeout"),
                "timeout must be more than 0s, like \"5s\"",
            );
        }
        let token = self.secret(
            &at,
            "bearer_token",
            c.bearer_token_file.as_deref(),
            c.bearer_token_env.as_deref(),
        );
        let basic = c
            .basic_auth
            .as_ref()
            .and_then(|b| self.basic_auth(&at.key("basic_auth"), b));
        if c.basic_auth.is_some() && (c.bearer_token_file.is_some() || c.bearer_token_env.is_some())
        {
            self.err(
                &at.key("basic_auth"),
                "set either bearer_token_file/bearer_token_env or basic_auth, not both: Alertmanager takes one Authorization header",
            );
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(SilenceOnAck {
            urls,
            duration: c.duration.0,
            timeout: c.timeout.0,
            auth: token.map(Presented::Bearer).or(basic),
        })
    }
}
