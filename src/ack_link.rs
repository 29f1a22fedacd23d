//! Signed ack links: `{public_url}/ack/{token}`.
//!
//! A token names the incidents it may ack, the contact it acks as, and when it expires,
//! signed with HMAC-SHA256 under a key that lives in the data dir (created on first
//! start, mode 0600). Nothing is stored per link: a forged or altered token fails the
//! MAC, an old one fails the expiry, and a used one is recognised from the incident's
//! history (the ack is recorded "via link <id>").

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::engine::IncidentId;
use crate::time::Timestamp;

/// The key file's name inside the data dir.
pub const KEY_FILE: &str = "ack-link.key";
/// How long a link in a page works: long enough for a page read the next morning.
pub const LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Bytes of MAC kept in the token: 128 bits is beyond guessing and keeps SMS short.
const MAC_LEN: usize = 16;

/// What a link allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub incidents: Vec<IncidentId>,
    /// The contact the ack is recorded as; `None` for pages to a notifier (a shared inbox).
    pub contact: Option<String>,
    pub expires: Timestamp,
}

/// Why a link does not work; each has its own page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is incomplete or damaged; copy the whole link from the page")]
    Malformed,
    #[error("this link was not issued by this tocsin (its signature does not match)")]
    Forged,
    #[error("this link expired at {0}; ack from a newer page, the CLI or the API")]
    Expired(String),
}

#[derive(Clone)]
pub struct AckKey {
    key: [u8; 32],
}

impl std::fmt::Debug for AckKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AckKey(..)")
    }
}

impl AckKey {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        AckKey { key }
    }

    /// Reads the key from `data_dir`, or creates it there (readable by tocsin only).
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} is {} bytes, not 32: delete it to make a new key (old ack links stop working)",
                            path.display(),
                            bytes.len()
                        ),
                    )
                })?;
                Ok(AckKey { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(std::io::Error::other)?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(&path)?;
                f.write_all(&key)?;
                f.sync_all()?;
                Ok(AckKey { key })
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(payload);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    pub fn sign(&self, c: &Claims) -> String {
        let ids: Vec<String> = c.incidents.iter().map(u64::to_string).collect();
        let payload = format!(
            "1|{}|{}|{}",
            c.expires.millis() / 1000,
            c.contact.as_deref().unwrap_or(""),
            ids.join(",")
        );
        format!(
            "{}.{}",
            B64.encode(payload.as_bytes()),
            B64.encode(self.mac(payload.as_bytes()))
        )
    }

    /// Signs `value` for `purpose` until `expires` (web sessions and their CSRF values).
    /// Such a token never verifies as an ack link (whose payload starts `1|`) or for
    /// another purpose.
    pub fn sign_value(&self, purpose: &str, value: &str, expires: Timestamp) -> String {
        debug_assert!(!purpose.contains('|'));
        let payload = format!("p|{purpose}|{}|{value}", expires.millis() / 1000);
        format!(
            "{}.{}",
            B64.encode(payload.as_bytes()),
            B64.encode(self.mac(payload.as_bytes()))
        )
    }

    /// The value and expiry of a token made by [`AckKey::sign_value`] for `purpose`, if
    /// its MAC is right (compared in constant time) and it has not expired.
    pub fn verify_value(
        &self,
        purpose: &str,
        token: &str,
        now: Timestamp,
    ) -> Option<(String, Timestamp)> {
        let (p, m) = token.split_once('.')?;
        let payload = B64.decode(p).ok()?;
        let mac = B64.decode(m).ok()?;
        let mut check =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        check.update(&payload);
        check.verify_truncated_left(&mac).ok()?;
        if mac.len() != MAC_LEN {
            return None;
        }
        let payload = String::from_utf8(payload).ok()?;
        let rest = payload
            .strip_prefix("p|")?
            .strip_prefix(purpose)?
            .strip_prefix('|')?;
        let (exp, value) = rest.split_once('|')?;
        let expires = Timestamp(exp.parse::<i64>().ok()?.saturating_mul(1000));
        (expires > now).then(|| (value.to_string(), expires))
    }

    /// A keyed digest of `data`: a fingerprint that reveals nothing about it.
    pub fn digest(&self, data: &str) -> String {
        let mac = self.mac(format!("d|{data}").as_bytes());
        B64.encode(mac).chars().take(16).collect()
    }

    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, LinkError> {
        let (p, m) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let payload = B64.decode(p).map_err(|_| LinkError::Malformed)?;
        let mac = B64.decode(m).map_err(|_| LinkError::Malformed)?;
        if mac.len() != MAC_LEN {
            return Err(LinkError::Forged);
        }
        let mut check =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        check.update(&payload);
        // Constant-time comparison of the truncated MAC.
        check
            .verify_truncated_left(&mac)
            .map_err(|_| LinkError::Forged)?;
        let payload = String::from_utf8(payload).map_err(|_| LinkError::Malformed)?;
        let mut parts = payload.split('|');
        let (Some("1"), Some(exp), Some(contact), Some(ids), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(LinkError::Malformed);
        };
        let exp: i64 = exp.parse().map_err(|_| LinkError::Malformed)?;
        let expires = Timestamp(exp.saturating_mul(1000));
        if now >= expires {
            return Err(LinkError::Expired(expires.to_rfc3339()));
        }
        let incidents = ids
            .split(',')
            .map(|s| s.parse::<u64>().map_err(|_| LinkError::Malformed))
            .collect::<Result<Vec<_>, _>>()?;
        if incidents.is_empty() {
            return Err(LinkError::Malformed);
        }
        Ok(Claims {
            incidents,
            contact: (!contact.is_empty()).then(|| contact.to_string()),
            expires,
        })
    }

    /// A short, stable name of one token, recorded with the ack it made ("via link 3fa9c2d1").
    pub fn token_id(token: &str) -> String {
        let mac = token.rsplit_once('.').map(|(_, m)| m).unwrap_or(token);
        mac.chars().take(10).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AckKey {
        AckKey::from_bytes([7; 32])
    }

    fn claims() -> Claims {
        Claims {
            incidents: vec![41, 42],
            contact: Some("alice".into()),
            expires: Timestamp(1_000_000_000),
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let t = key().sign(&claims());
        assert_eq!(key().verify(&t, Timestamp(999_999_000)), Ok(claims()));
        assert!(matches!(
            key().verify(&t, Timestamp(1_000_000_000)),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn a_link_for_incident_41_cannot_be_edited_into_one_for_incident_7() {
        let t = key().sign(&claims());
        let (_, mac) = t.split_once('.').unwrap();
        let forged_payload = B64.encode("1|1000000|alice|7");
        let forged = format!("{forged_payload}.{mac}");
        assert_eq!(key().verify(&forged, Timestamp(0)), Err(LinkError::Forged));
    }

    #[test]
    fn another_instances_key_does_not_verify() {
        let t = AckKey::from_bytes([8; 32]).sign(&claims());
        assert_eq!(key().verify(&t, Timestamp(0)), Err(LinkError::Forged));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for t in ["", ".", "abc", "a.b", "!!!.???", "MXwx.AAAA"] {
            assert!(key().verify(t, Timestamp(0)).is_err(), "{t}");
        }
    }

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = AckKey::load_or_create(dir.path()).unwrap();
        let b = AckKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.key, b.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_signed_value_verifies_only_for_its_purpose_and_until_it_expires() {
        let key = AckKey::from_bytes([9; 32]);
        let now = Timestamp::at("2026-11-21T10:00:00Z");
        let exp = now.plus(std::time::Duration::from_secs(60));
        let t = key.sign_value("web-csrf", "n0nce", exp);
        assert_eq!(
            key.verify_value("web-csrf", &t, now),
            Some(("n0nce".to_string(), exp))
        );
        assert_eq!(key.verify_value("web-session", &t, now), None);
        assert_eq!(key.verify_value("web-csrf", &t, exp), None, "expired");
        assert!(key.verify(&t, now).is_err(), "not an ack link");
        // Another value under the first one's MAC.
        let mac = t.split_once('.').unwrap().1;
        let payload = format!("p|web-csrf|{}|other", exp.millis() / 1000);
        let forged = format!("{}.{mac}", B64.encode(payload.as_bytes()));
        assert_eq!(key.verify_value("web-csrf", &forged, now), None);
        assert_eq!(key.digest("a"), key.digest("a"));
        assert_ne!(key.digest("a"), key.digest("b"));
    }
}
