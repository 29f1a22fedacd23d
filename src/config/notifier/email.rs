use std::path::PathBuf;

use serde::Deserialize;

use super::{LimitsConfig, Problem, SecretRef, default_attempts};
use crate::config::types::HumanDuration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:port` (plain, or `?tls=starttls` to require STARTTLS) or
    /// `smtps://host:port` (implicit TLS).
    pub smtp_url: String,
    /// The From header, like `tocsin <tocsin@example.com>`.
    pub from: String,
    /// SMTP AUTH user; the password comes from `password_file` or `password_env`.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// How long connecting (and the TLS handshake) may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// How long one whole send may take.
    #[serde(default = "default_send_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub limits: LimitsConfig,
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn default_send_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}

impl EmailConfig {
    pub fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![if self.username.is_some() {
            SecretRef::required("password", &self.password_file, &self.password_env)
        } else {
            SecretRef::optional("password", &self.password_file, &self.password_env)
        }]
    }

    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !(self.smtp_url.starts_with("smtp://") || self.smtp_url.starts_with("smtps://")) {
            out.push(Problem::new(
                "smtp_url",
                format!(
                    "smtp_url {:?} must start with smtp:// (add ?tls=starttls to require STARTTLS) or smtps://",
                    self.smtp_url
                ),
            ));
        }
        if !self.from.contains('@') {
            out.push(Problem::new(
                "from",
                format!(
                    "from {:?} is not an address: write it like \"tocsin <tocsin@example.com>\"",
                    self.from
                ),
            ));
        }
        if self.connect_timeout.0.is_zero() {
            out.push(Problem::new(
                "connect_timeout",
                "connect_timeout must be more than 0s",
            ));
        }
        out
    }
}
