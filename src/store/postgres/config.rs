//! Where the PostgreSQL store is and how to reach it: `[storage] url`, the password from
//! a file or the environment (never in the url), and TLS from the url's `sslmode` and
//! `sslrootcert`, which tokio-postgres alone does not verify.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Secret;

/// How long connecting may take before the store is called unreachable: a dead database
/// must fail a commit fast, not hang the engine loop.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest a statement may run; past it the server cancels it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A session idle inside a transaction this long is ended by the server. What it guards:
/// a leader paused (SIGSTOP, a frozen VM) in the middle of a commit holds the lease row;
/// the server ends its transaction so that another instance can take over.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(3);

/// Default leadership lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Shortest and longest lease `[storage] lease` accepts.
pub const LEASE_RANGE: (Duration, Duration) = (Duration::from_secs(3), Duration::from_secs(300));

/// What the connection is encrypted with and what it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTls {
    /// Plain TCP (or a Unix socket): only for a database on this machine or a trusted link.
    Disable,
    /// Encrypted, the server's certificate not checked (libpq's `require`): protects
    /// against a passive listener, not against someone in the middle.
    Require,
    /// Encrypted, the certificate checked against `root` (PEM) or the system's roots,
    /// and the host name checked against it.
    VerifyFull { root: Option<PathBuf> },
}

impl PgTls {
    pub fn mode(&self) -> &'static str {
        match self {
            PgTls::Disable => "disable",
            PgTls::Require => "require",
            PgTls::VerifyFull { .. } => "verify-full",
        }
    }
}

/// Everything needed to reach the database. `Debug` never prints the password.
#[derive(Clone)]
pub struct PgConfig {
    /// The url as written, without `sslmode`/`sslrootcert` (they are in `tls`).
    pub url: String,
    pub password: Option<Secret>,
    pub tls: PgTls,
    /// Whether `sslmode` was written (rather than the default for the host).
    pub tls_explicit: bool,
    /// Leadership lease.
    pub lease: Duration,
    /// This instance's name in status.
    pub instance: String,
    /// Longest a statement may run on the server; the store gives up waiting for an
    /// answer a little after (a frozen server answers nothing at all).
    pub statement_timeout: Duration,
    /// What tokio-postgres connects with (hosts, port, user, database, timeouts).
    pub(super) pg: tokio_postgres::Config,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("lease", &self.lease)
            .field("instance", &self.instance)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// Why a `[storage] url` cannot be used; each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgConfigError {
    #[error(
        "url is not a postgres:// url ({0}): write it like \"postgres://tocsin@db1:5432/tocsin\""
    )]
    NotAUrl(String),
    #[error(
        "url holds a password: remove it from the url (it would show in logs and `ps`) and put it in password_file (or password_env)"
    )]
    PasswordInUrl,
    #[error(
        "sslmode = {0:?} is not supported: write sslmode=verify-full (encrypted, the server's certificate and name checked), require (encrypted, not checked) or disable"
    )]
    SslMode(String),
    #[error("sslrootcert is only read with sslmode=verify-full")]
    RootWithoutVerify,
    #[error("url has no user: write it like \"postgres://tocsin@db1:5432/tocsin\"")]
    NoUser,
}

impl PgConfig {
    /// Reads `url` (with `password`), the lease and instance at their defaults.
    pub fn parse(url: &str, password: Option<Secret>) -> Result<PgConfig, PgConfigError> {
        let mut parsed = url::Url::parse(url).map_err(|e| PgConfigError::NotAUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(PgConfigError::NotAUrl(format!(
                "the scheme is {:?}",
                parsed.scheme()
            )));
        }
        if parsed.password().is_some() {
            return Err(PgConfigError::PasswordInUrl);
        }
        let (mut mode, mut root, mut rest) = (None, None, Vec::new());
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "sslmode" => mode = Some(v.into_owned()),
                "sslrootcert" => root = Some(PathBuf::from(v.as_ref())),
                "password" => return Err(PgConfigError::PasswordInUrl),
                _ => rest.push((k.into_owned(), v.into_owned())),
            }
        }
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
        let shown = parsed.to_string();
        let mut pg: tokio_postgres::Config = shown
            .parse()
            .map_err(|e: tokio_postgres::Error| PgConfigError::NotAUrl(e.to_string()))?;
        if pg.get_user().is_none_or(str::is_empty) {
            return Err(PgConfigError::NoUser);
        }
        let local = pg.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => is_loopback(name),
            tokio_postgres::config::Host::Unix(_) => true,
        });
        let tls_explicit = mode.is_some();
        let tls = match mode.as_deref() {
            None if local => PgTls::Disable,
            None | Some("verify-full") => PgTls::VerifyFull { root: root.take() },
            Some("require") => PgTls::Require,
            Some("disable") => PgTls::Disable,
            Some(other) => return Err(PgConfigError::SslMode(other.to_string())),
        };
        if root.is_some() && !matches!(tls, PgTls::VerifyFull { .. }) {
            return Err(PgConfigError::RootWithoutVerify);
        }
        if let Some(p) = &password {
            pg.password(p.expose());
        }
        pg.connect_timeout(CONNECT_TIMEOUT)
            .keepalives_idle(Duration::from_secs(10))
            .tcp_user_timeout(Duration::from_secs(10))
            .application_name("tocsin");
        // tokio-postgres's own TLS negotiation: ours decides what is checked.
        pg.ssl_mode(match tls {
            PgTls::Disable => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(PgConfig {
            url: shown_with_tls(&shown, &tls),
            password,
            tls,
            tls_explicit,
            lease: DEFAULT_LEASE,
            instance: host_name(),
            statement_timeout: STATEMENT_TIMEOUT,
            pg,
        })
    }

    /// Whether every host is this machine (loopback or a Unix socket).
    pub fn is_local(&self) -> bool {
        self.pg.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => is_loopback(name),
            tokio_postgres::config::Host::Unix(_) => true,
        })
    }

    /// What the pools and the listener connect with: the url's settings and the
    /// server-side limits of a session.
    pub(super) fn session(&self) -> tokio_postgres::Config {
        let mut pg = self.pg.clone();
        pg.options(format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            self.statement_timeout.as_millis(),
            IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
        ));
        pg
    }

    /// How long the store waits for the database to answer one operation before it
    /// calls it unreachable: the server's own limit, plus a connection's setup.
    pub fn answer_timeout(&self) -> Duration {
        self.statement_timeout + CONNECT_TIMEOUT
    }

    /// The database's name, for messages.
    pub fn dbname(&self) -> &str {
        self.pg.get_dbname().unwrap_or("")
    }

    /// Whether TLS can be set up as configured (the `sslrootcert` file read); the
    /// message says what is wrong.
    pub fn check_tls(&self) -> Result<(), String> {
        self.connector().map(drop)
    }

    /// The TLS connector the pools and the listener connect with.
    pub(super) fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        super::tls::connector(&self.tls)
    }
}

/// The url as shown in messages: what was written, the TLS mode said.
fn shown_with_tls(url: &str, tls: &PgTls) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    match tls {
        PgTls::VerifyFull { root: Some(root) } => format!(
            "{url}{sep}sslmode=verify-full&sslrootcert={}",
            root.display()
        ),
        other => format!("{url}{sep}sslmode={}", other.mode()),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// This machine's name (the default `[storage] instance`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tocsin".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_with_where_it_goes() {
        for url in [
            "postgres://tocsin:hunter2@db1/tocsin",
            "postgres://tocsin@db1/tocsin?password=hunter2",
        ] {
            let e = PgConfig::parse(url, None).unwrap_err();
            assert_eq!(e, PgConfigError::PasswordInUrl);
            assert!(e.to_string().contains("password_file"), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_remote_host_is_verified_unless_told_otherwise_and_a_local_one_is_plain() {
        let c = PgConfig::parse("postgres://tocsin@db1:5432/tocsin", None).unwrap();
        assert_eq!(c.tls, PgTls::VerifyFull { root: None });
        assert!(!c.tls_explicit);
        let c = PgConfig::parse(
            "postgres://tocsin@db1/tocsin?sslmode=verify-full&sslrootcert=/etc/tocsin/ca.pem",
            None,
        )
        .unwrap();
        assert_eq!(
            c.tls,
            PgTls::VerifyFull {
                root: Some("/etc/tocsin/ca.pem".into())
            }
        );
        let c = PgConfig::parse("postgres://tocsin@db1/tocsin?sslmode=require", None).unwrap();
        assert_eq!((c.tls.clone(), c.tls_explicit), (PgTls::Require, true));
        let c = PgConfig::parse("postgres://tocsin@127.0.0.1:5432/tocsin", None).unwrap();
        assert_eq!(c.tls, PgTls::Disable);
        let c = PgConfig::parse(
            "postgres://tocsin@localhost/tocsin?sslmode=verify-full",
            None,
        )
        .unwrap();
        assert!(matches!(c.tls, PgTls::VerifyFull { .. }));
        assert_eq!(
            PgConfig::parse("postgres://tocsin@db1/tocsin?sslmode=prefer", None).unwrap_err(),
            PgConfigError::SslMode("prefer".into())
        );
        assert_eq!(
            PgConfig::parse(
                "postgres://tocsin@db1/tocsin?sslmode=require&sslrootcert=/ca",
                None
            )
            .unwrap_err(),
            PgConfigError::RootWithoutVerify
        );
        assert_eq!(
            PgConfig::parse("postgres://db1/tocsin", None).unwrap_err(),
            PgConfigError::NoUser
        );
    }

    #[test]
    fn debug_never_prints_the_password() {
        let c =
            PgConfig::parse("postgres://tocsin@db1/tocsin", Some(Secret::new("hunter2"))).unwrap();
        let shown = format!("{c:?} {}", c.url);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!format!("{:?}", c.pg).contains("hunter2"));
    }
}
