//! Who may call tocsin over HTTP: the master token (`server.auth_token_*`), basic auth,
//! and named tokens (`[server.tokens.NAME]`) that may do only what their scopes say.
//!
//! A credential is found by comparing what a request carries with every configured
//! secret, always all of them and each as a SHA-256 digest, so neither the time taken
//! nor an early exit tells a guesser which entry, or how much of one, matched.

use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::types::Secret;

/// What a credential may do. Each route needs exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /hooks/alertmanager`.
    Hooks,
    /// `/hooks/heartbeat/*`.
    Heartbeat,
    /// `/hooks/sms/kannel`, the one route that takes its token in the URL.
    Sms,
    /// The API's GETs, the web view's pages and `/metrics`.
    Read,
    /// Ack, unack, resolve and snooze, by API or the web view's buttons.
    Act,
    /// `/-/reload` and whatever else administers tocsin.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Hooks,
        Scope::Heartbeat,
        Scope::Sms,
        Scope::Read,
        Scope::Act,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Hooks => "hooks",
            Scope::Heartbeat => "heartbeat",
            Scope::Sms => "sms",
            Scope::Read => "read",
            Scope::Act => "act",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// The master token's and basic auth's: everything.
    pub fn all() -> Scopes {
        Scopes::from_iter(Scope::ALL)
    }

    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(it: I) -> Self {
        Scopes(it.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Scope::ALL
            .iter()
            .filter(|s| self.contains(**s))
            .map(|s| s.as_str())
            .collect();
        write!(f, "[{}]", names.join(", "))
    }
}

/// How a credential is presented.
#[derive(Debug, Clone)]
pub enum Presented {
    /// `Authorization: Bearer <token>` (or, for `sms` only, `token=` in the URL).
    Bearer(Secret),
    /// `Authorization: Basic`, as Alertmanager's `basic_auth` sends it.
    Basic { username: String, password: Secret },
}

/// One accepted credential.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Where it is configured, like `server.tokens.am`: named in logs and in the reload
    /// answer, never its secret.
    pub name: String,
    pub presented: Presented,
    pub scopes: Scopes,
}

impl Credential {
    /// The secret material as one string, for digests that must change when it does.
    pub fn material(&self) -> String {
        match &self.presented {
            Presented::Bearer(t) => format!("bearer {}", t.expose()),
            Presented::Basic { username, password } => {
                format!("basic {username}:{}", password.expose())
            }
        }
    }
}

/// Every credential tocsin accepts; none means open (bind to loopback then).
#[derive(Debug, Clone, Default)]
pub struct HookAuth {
    pub credentials: Vec<Credential>,
}

/// The name of the master token in logs and reload answers.
pub const MASTER_TOKEN: &str = "server.auth_token";
/// The name of basic auth in logs and reload answers.
pub const BASIC_AUTH: &str = "server.basic_auth";

impl HookAuth {
    pub fn is_open(&self) -> bool {
        self.credentials.is_empty()
    }

    /// The master token (all scopes), which the CLI sends.
    pub fn master_token(&self) -> Option<&Secret> {
        self.credentials
            .iter()
            .find(|c| c.name == MASTER_TOKEN)
            .and_then(|c| match &c.presented {
                Presented::Bearer(t) => Some(t),
                Presented::Basic { .. } => None,
            })
    }

    pub fn has_bearer(&self) -> bool {
        self.credentials
            .iter()
            .any(|c| matches!(c.presented, Presented::Bearer(_)))
    }

    pub fn has_basic(&self) -> bool {
        self.credentials
            .iter()
            .any(|c| matches!(c.presented, Presented::Basic { .. }))
    }

    /// The bearer credential `token` is, compared with every one.
    pub fn by_token(&self, token: &[u8]) -> Option<&Credential> {
        let given = Sha256::digest(token);
        self.credentials
            .iter()
            .filter(|c| match &c.presented {
                Presented::Bearer(t) => same_digest(&given, t.expose().as_bytes()),
                Presented::Basic { .. } => false,
            })
            // Every entry was compared; duplicates are refused when the config loads.
            .fold(None, |found, c| found.or(Some(c)))
    }

    /// The basic-auth credential `username:password` is, compared with every one.
    pub fn by_password(&self, username: &[u8], password: &[u8]) -> Option<&Credential> {
        let (user, pass) = (Sha256::digest(username), Sha256::digest(password));
        self.credentials
            .iter()
            .filter(|c| match &c.presented {
                Presented::Basic {
                    username: u,
                    password: p,
                } => {
                    // `&` not `&&`: the password is compared whether the name matched or not.
                    same_digest(&user, u.as_bytes()) & same_digest(&pass, p.expose().as_bytes())
                }
                Presented::Bearer(_) => false,
            })
            .fold(None, |found, c| found.or(Some(c)))
    }

    /// The credentials that differ between `self` (in force) and `new` (just read):
    /// added, removed, another secret, or other scopes. By name, never by secret.
    pub fn changed(&self, new: &HookAuth) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let find = |set: &HookAuth, name: &str| {
            set.credentials
                .iter()
                .find(|c| c.name == name)
                .map(|c| (c.material(), c.scopes))
        };
        for c in self.credentials.iter().chain(&new.credentials) {
            if !names.contains(&c.name) && find(self, &c.name) != find(new, &c.name) {
                names.push(c.name.clone());
            }
        }
        names.sort();
        names
    }
}

impl super::Config {
    /// What `check-config` and the start-up log warn about in the credentials: things that
    /// work, as they did before, but are weaker than they need to be.
    pub(super) fn credential_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(t) = self.hook_auth.master_token()
            && t.expose().chars().count() < 16
        {
            w.push(format!(
                "server.auth_token is {} characters long: use at least 16 (`openssl rand -hex 24`), as [server.tokens.*] must",
                t.expose().chars().count()
            ));
        }
        let kannel = self
            .file
            .notifiers
            .values()
            .any(|n| n.type_name() == "kannel");
        let sms_token = self.hook_auth.credentials.iter().any(|c| {
            c.name != MASTER_TOKEN && c.name != BASIC_AUTH && c.scopes.contains(Scope::Sms)
        });
        if kannel && self.hook_auth.master_token().is_some() && !sms_token {
            w.push(
                "Kannel's get-url carries server.auth_token, which can do everything, and sits in kannel.conf and proxy logs: give it a token of its own, [server.tokens.kannel] scopes = [\"sms\"]".to_string(),
            );
        }
        w
    }
}

/// Constant-time comparison of `given` (already a digest) with the digest of `expected`:
/// equal lengths always, so the time taken says nothing about the secret.
fn same_digest(given: &[u8], expected: &[u8]) -> bool {
    let expected = Sha256::digest(expected);
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, scopes: &[Scope]) -> Credential {
        Credential {
            name: name.into(),
            presented: Presented::Bearer(Secret::new(secret)),
            scopes: scopes.iter().copied().collect(),
        }
    }

    fn auth() -> HookAuth {
        HookAuth {
            credentials: vec![
                token(MASTER_TOKEN, "master-0123456789abcdef", &Scope::ALL),
                token("server.tokens.am", "am-0123456789abcdef", &[Scope::Hooks]),
                Credential {
                    name: BASIC_AUTH.into(),
                    presented: Presented::Basic {
                        username: "ops".into(),
                        password: Secret::new("hunter2-hunter2"),
                    },
                    scopes: Scopes::all(),
                },
            ],
        }
    }

    #[test]
    fn each_token_is_found_with_its_own_scopes_and_nothing_else_is() {
        let a = auth();
        let am = a.by_token(b"am-0123456789abcdef").expect("the am token");
        assert_eq!(am.name, "server.tokens.am");
        assert!(am.scopes.contains(Scope::Hooks));
        assert!(!am.scopes.contains(Scope::Act));
        let master = a.by_token(b"master-0123456789abcdef").expect("master");
        assert!(Scope::ALL.iter().all(|s| master.scopes.contains(*s)));
        assert!(a.by_token(b"am-0123456789abcde").is_none(), "a prefix");
        assert!(a.by_token(b"").is_none());
        assert!(a.by_token(b"hunter2-hunter2").is_none(), "a password");
        assert!(a.by_password(b"ops", b"hunter2-hunter2").is_some());
        assert!(a.by_password(b"ops", b"hunter2").is_none());
        assert!(a.by_password(b"root", b"hunter2-hunter2").is_none());
    }

    #[test]
    fn a_reload_names_the_credentials_that_changed_and_only_those() {
        let old = auth();
        let mut new = auth();
        assert!(old.changed(&new).is_empty());
        new.credentials[1] = token("server.tokens.am", "am-rotated-0123456789", &[Scope::Hooks]);
        new.credentials.push(token(
            "server.tokens.grafana",
            "g-0123456789abcdef",
            &[Scope::Read],
        ));
        assert_eq!(
            old.changed(&new),
            ["server.tokens.am", "server.tokens.grafana"]
        );
        let mut wider = auth();
        wider.credentials[1].scopes = [Scope::Hooks, Scope::Act].into_iter().collect();
        assert_eq!(old.changed(&wider), ["server.tokens.am"]);
    }
}
