use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::Mailbox;
use serde::Deserialize;

use super::Delivery;
use super::{
    Address, LimitsConfig, NotifierKind, NotifierSecrets, Problem, SecretRef, default_attempts,
    secret,
};
use crate::config::types::HumanDuration;
use crate::notify::email::EmailNotifier;
use crate::notify::{BuildContext, Notifier, NotifyError};

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
    /// Where and how to connect, or what is wrong with `smtp_url`.
    pub fn relay(&self) -> Result<SmtpRelay, String> {
        parse_smtp_url(&self.smtp_url)
    }

    /// The From header, or what is wrong with `from`.
    pub fn mailbox(&self) -> Result<Mailbox, String> {
        self.from.parse().map_err(|e| {
            format!(
                "from {:?} is not a mail address ({e}): write it like \"tocsin <tocsin@example.com>\"",
                self.from
            )
        })
    }
}

impl NotifierKind for EmailConfig {
    fn address(&self) -> Address {
        Address::Email
    }

    fn secrets(&self) -> Vec<SecretRef<'_>> {
        vec![if self.username.is_some() {
            SecretRef::required("password", &self.password_file, &self.password_env)
        } else {
            SecretRef::optional("password", &self.password_file, &self.password_env)
        }]
    }

    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Err(e) = self.relay() {
            out.push(Problem::new("smtp_url", e));
        }
        if let Err(e) = self.mailbox() {
            out.push(Problem::new("from", e));
        }
        let has_password = self.password_file.is_some() || self.password_env.is_some();
        if has_password && self.username.is_none() {
            out.push(Problem::new(
                "username",
                "a password is set but no username: add username (the SMTP AUTH user), or drop the password",
            ));
        }
        if let Ok(relay) = self.relay()
            && relay.security == SmtpSecurity::Plain
            && (self.username.is_some() || has_password)
            && !is_this_host(&relay.host)
        {
            // AUTH PLAIN and LOGIN are base64, not encryption: anyone on the path
            // between tocsin and the relay would read the password.
            out.push(Problem::new(
                "smtp_url",
                format!(
                    "smtp://{} without TLS would send username and password in clear across the network: use ?tls=starttls or smtps://, or a relay on this host (127.0.0.1, ::1, localhost)",
                    relay.host
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

    fn delivery(&self) -> Option<Delivery<'_>> {
        Delivery::of(self.timeout, self.max_attempts, &self.limits)
    }

    fn build(
        &self,
        _name: &str,
        secrets: &NotifierSecrets,
        _: &BuildContext,
        _: Option<&dyn Notifier>,
    ) -> Result<Arc<dyn Notifier>, NotifyError> {
        Ok(Arc::new(EmailNotifier::new(
            self,
            secret(secrets, "password"),
        )?))
    }
}

/// Whether `host` names this machine, where a plaintext login crosses no network.
fn is_this_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How the connection to the relay is protected, from the scheme and `?tls=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://host:port`: plaintext, for a relay on the same host or network.
    Plain,
    /// `smtp://host:port?tls=starttls`: fails unless the relay upgrades to TLS.
    StartTls,
    /// `smtps://host:port`: TLS from the first byte.
    Implicit,
}

/// The parts of `smtp_url` the transport needs.
#[derive(Debug, PartialEq, Eq)]
pub struct SmtpRelay {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
}

/// Parses `smtp_url`; every mistake names the URL and how to write it.
pub fn parse_smtp_url(raw: &str) -> Result<SmtpRelay, String> {
    let url = url::Url::parse(raw).map_err(|e| {
        format!("smtp_url {raw:?} is not a URL ({e}): write it like \"smtp://127.0.0.1:25\"")
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "smtp_url {raw:?} carries credentials: put the user in `username` and the \
             password in `password_file` (or `password_env`)"
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(format!("smtp_url {raw:?} has no host")),
    };
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(format!(
            "smtp_url {raw:?} has a path or fragment: write only scheme, host, port and ?tls="
        ));
    }
    let mut tls = None;
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), tls) {
            ("tls", None) => tls = Some(v.to_string()),
            _ => {
                return Err(format!(
                    "smtp_url {raw:?}: unknown or repeated parameter {k:?} (only ?tls=starttls)"
                ));
            }
        }
    }
    let security = match (url.scheme(), tls.as_deref()) {
        ("smtp", None) => SmtpSecurity::Plain,
        ("smtp", Some("starttls" | "required")) => SmtpSecurity::StartTls,
        ("smtps", None) => SmtpSecurity::Implicit,
        ("smtps", Some(_)) => {
            return Err(format!(
                "smtp_url {raw:?}: smtps:// is TLS from the start; drop ?tls="
            ));
        }
        ("smtp", Some(other)) => {
            return Err(format!(
                "smtp_url {raw:?}: tls={other:?} is unknown; use ?tls=starttls, or smtps:// for \
                 implicit TLS"
            ));
        }
        (scheme, _) => {
            return Err(format!(
                "smtp_url {raw:?}: scheme {scheme:?} is unknown; use smtp:// or smtps://"
            ));
        }
    };
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::Plain => 25,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Implicit => 465,
    });
    Ok(SmtpRelay {
        host,
        port,
        security,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_pick_the_protection() {
        let p = |u| parse_smtp_url(u);
        assert_eq!(
            p("smtp://127.0.0.1:2525").unwrap(),
            SmtpRelay {
                host: "127.0.0.1".into(),
                port: 2525,
                security: SmtpSecurity::Plain
            }
        );
        assert_eq!(
            p("smtp://mail.example.com?tls=starttls").unwrap(),
            SmtpRelay {
                host: "mail.example.com".into(),
                port: 587,
                security: SmtpSecurity::StartTls
            }
        );
        assert_eq!(
            p("smtps://[::1]").unwrap(),
            SmtpRelay {
                host: "::1".into(),
                port: 465,
                security: SmtpSecurity::Implicit
            }
        );
        for bad in [
            "smtp://user:pw@host",
            "smtp://host?tls=maybe",
            "smtps://host?tls=starttls",
            "http://host",
            "smtp://host/x",
            "smtp://host?tls=starttls&x=1",
        ] {
            assert!(p(bad).is_err(), "{bad} was accepted");
        }
    }
}
