//! Who may change state from the web pages: the login session and its CSRF value, and
//! the cookies that carry them. Whether a form comes from tocsin's own page at all is
//! decided before any of this, in `http/cross_site.rs`.
//!
//! Every value here is signed with the ack-link key ([`AckKey::sign_value`]), each for
//! its own purpose, so none can pass for an ack link or for the other:
//!
//! - the session cookie signs `<nonce> <credential>` until its expiry, where
//!   `<credential>` is a keyed digest of the token or password logged in with, so
//!   changing or removing that credential ends its sessions (and no other). The
//!   session may do what that credential's scopes allow, as configured now: narrowing
//!   them on reload narrows the sessions too;
//! - the CSRF value signs the session's nonce with the session's expiry: it is derived
//!   from the session, and a page's forms carry it in a hidden field.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::ack_link::AckKey;
use crate::config::{Credential, HookAuth, Scope, Scopes};
use crate::time::Timestamp;

/// The login cookie.
pub(super) const SESSION_COOKIE: &str = "tocsin_session";
/// Remembers the name a person acted as, to prefill the next form.
pub(super) const NAME_COOKIE: &str = "tocsin_name";
/// How long a login lasts.
pub(super) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long the remembered name lasts.
const NAME_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

const SESSION_PURPOSE: &str = "web-session";
const CSRF_PURPOSE: &str = "web-csrf";

/// The value of cookie `name` in the request, if any.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The remembered name (`tocsin_name`), decoded.
pub(super) fn remembered_name(headers: &HeaderMap) -> Option<String> {
    let raw = cookie(headers, NAME_COOKIE)?;
    let decoded = url::form_urlencoded::parse(format!("n={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let name = clean_name(&decoded);
    (!name.is_empty()).then_some(name)
}

/// A name to act as: no control characters, trimmed, at most 64 characters.
pub(super) fn clean_name(s: &str) -> String {
    crate::notify::message::clean(s).chars().take(64).collect()
}

/// `Set-Cookie` values. `secure` when people reach tocsin over https (its public_url).
fn set_cookie(name: &str, value: &str, max_age: Duration, http_only: bool, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={}; SameSite=Strict{}{}",
        max_age.as_secs(),
        if http_only { "; HttpOnly" } else { "" },
        if secure { "; Secure" } else { "" },
    )
}

pub(super) fn name_cookie(name: &str, secure: bool) -> HeaderValue {
    let value: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    header_value(set_cookie(NAME_COOKIE, &value, NAME_LIFETIME, true, secure))
}

pub(super) fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    header_value(set_cookie(
        SESSION_COOKIE,
        token,
        SESSION_LIFETIME,
        true,
        secure,
    ))
}

pub(super) fn clear_session_cookie(secure: bool) -> HeaderValue {
    header_value(set_cookie(SESSION_COOKIE, "", Duration::ZERO, true, secure))
}

fn header_value(s: String) -> HeaderValue {
    // Names are URL-encoded and tokens are base64url: always a valid header value.
    HeaderValue::from_str(&s).expect("cookie values are ASCII without control characters")
}

/// A valid login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Session {
    nonce: String,
    expires: Timestamp,
    /// What the credential logged in with may do.
    scopes: Scopes,
}

impl Session {
    pub(super) fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// The hidden `csrf` value of this session's forms.
    pub(super) fn csrf(&self, key: &AckKey) -> String {
        key.sign_value(CSRF_PURPOSE, &self.nonce, self.expires)
    }

    /// Whether `given` is this session's CSRF value (the MAC is compared in constant time).
    pub(super) fn csrf_ok(&self, key: &AckKey, given: &str, now: Timestamp) -> bool {
        key.verify_value(CSRF_PURPOSE, given, now)
            .is_some_and(|(nonce, expires)| nonce == self.nonce && expires == self.expires)
    }
}

/// A keyed fingerprint of one credential: it reveals nothing about it, and changes when
/// it does.
fn credential_id(key: &AckKey, c: &Credential) -> String {
    key.digest(&format!("web credential {} {}", c.name, c.material()))
}

/// A new session's cookie value, after the credential was checked.
pub(super) fn new_session(key: &AckKey, c: &Credential, now: Timestamp) -> String {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).expect("the OS random source works");
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    key.sign_value(
        SESSION_PURPOSE,
        &format!("{nonce} {}", credential_id(key, c)),
        now.plus(SESSION_LIFETIME),
    )
}

/// The request's session, when its cookie is one this tocsin issued, for a credential
/// still configured as it was, and not expired.
pub(super) fn session(
    headers: &HeaderMap,
    key: &AckKey,
    auth: &HookAuth,
    now: Timestamp,
) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let (value, expires) = key.verify_value(SESSION_PURPOSE, token, now)?;
    let (nonce, id) = value.split_once(' ')?;
    let c = auth
        .credentials
        .iter()
        .find(|c| credential_id(key, c) == id)?;
    Some(Session {
        nonce: nonce.to_string(),
        expires,
        scopes: c.scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Presented, Secret};

    fn key() -> AckKey {
        AckKey::from_bytes([3; 32])
    }

    fn auth(token: &str) -> HookAuth {
        scoped(token, Scopes::all())
    }

    fn scoped(token: &str, scopes: Scopes) -> HookAuth {
        HookAuth {
            credentials: vec![Credential {
                name: "server.auth_token".into(),
                presented: Presented::Bearer(Secret::new(token)),
                scopes,
            }],
        }
    }

    /// The cookie of a new session for `auth`'s only credential.
    fn login(auth: &HookAuth, now: Timestamp) -> String {
        new_session(&key(), &auth.credentials[0], now)
    }

    #[test]
    fn a_read_only_session_may_read_and_not_act_and_follows_its_scopes_on_reload() {
        let now = Timestamp::at("2026-11-21T10:00:00Z");
        let grafana = scoped("read-only-0123456789", [Scope::Read].into_iter().collect());
        let cookie = login(&grafana, now);
        let h = headers(&[("cookie", &format!("{SESSION_COOKIE}={cookie}"))]);
        let s = session(&h, &key(), &grafana, now).expect("a session");
        assert!(s.may(Scope::Read));
        assert!(!s.may(Scope::Act), "a read-only token's session acts");
        let widened = scoped(
            "read-only-0123456789",
            [Scope::Read, Scope::Act].into_iter().collect(),
        );
        assert!(session(&h, &key(), &widened, now).unwrap().may(Scope::Act));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_session_works_until_it_expires_or_the_credentials_change() {
        let now = Timestamp::at("2026-11-21T10:00:00Z");
        let token = login(&auth("s3cret"), now);
        let h = headers(&[("cookie", &format!("a=b; {SESSION_COOKIE}={token}"))]);
        let s = session(&h, &key(), &auth("s3cret"), now).expect("valid session");
        assert!(session(&h, &key(), &auth("s3cret"), now.plus(SESSION_LIFETIME)).is_none());
        assert!(session(&h, &key(), &auth("rotated"), now).is_none());
        assert!(session(&h, &AckKey::from_bytes([4; 32]), &auth("s3cret"), now).is_none());

        let csrf = s.csrf(&key());
        assert!(s.csrf_ok(&key(), &csrf, now));
        assert!(
            !s.csrf_ok(&key(), &token, now),
            "the session is not a CSRF value"
        );
        let other = session(
            &headers(&[(
                "cookie",
                &format!("{SESSION_COOKIE}={}", login(&auth("s3cret"), now)),
            )]),
            &key(),
            &auth("s3cret"),
            now,
        )
        .unwrap();
        assert!(
            !other.csrf_ok(&key(), &csrf, now),
            "another session's CSRF value"
        );
    }

    #[test]
    fn an_ack_link_is_not_a_session_and_a_session_is_not_an_ack_link() {
        let now = Timestamp::at("2026-11-21T10:00:00Z");
        let link = key().sign(&crate::ack_link::Claims {
            incidents: vec![1],
            contact: Some("x y".into()),
            expires: now.plus(SESSION_LIFETIME),
        });
        let h = headers(&[("cookie", &format!("{SESSION_COOKIE}={link}"))]);
        assert!(session(&h, &key(), &auth("s3cret"), now).is_none());
        let cookie = login(&auth("s3cret"), now);
        assert!(
            key().verify(&cookie, now).is_err(),
            "a session acks nothing"
        );
        // Nor does a session's value pass as a CSRF value.
        let h = headers(&[("cookie", &format!("{SESSION_COOKIE}={cookie}"))]);
        let s = session(&h, &key(), &auth("s3cret"), now).expect("the session");
        assert!(!s.csrf_ok(&key(), &cookie, now));
        assert!(s.csrf_ok(&key(), &s.csrf(&key()), now));
    }

    #[test]
    fn the_remembered_name_round_trips() {
        let set = name_cookie("Zoë O'Neil; x=1", false);
        let value = set.to_str().unwrap().split(';').next().unwrap().to_string();
        let h = headers(&[("cookie", &value)]);
        assert_eq!(remembered_name(&h).as_deref(), Some("Zoë O'Neil; x=1"));
    }
}
