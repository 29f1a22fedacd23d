//! Signed ack links: `{public_url}/ack/{token}`.
//!
//! A token names the incidents it may ack, the contact it acks as, and when it expires,
//! signed with HMAC-SHA256 under a key that lives in the data dir. Nothing is stored per
//! link: a forged or altered token fails the MAC, an old one fails the expiry, and a used
//! one is recognised from the incident's history (the ack is recorded "via link <id>").
//!
//! Whoever can read the key can forge links that ack as anyone, and web sessions. It is
//! created on first start as a whole or not at all (written to a temporary file, fsynced,
//! renamed into place, the dir fsynced), mode 0600; at every start it must still be a
//! plain file of tocsin's user that nobody else can read or write, or tocsin refuses to
//! start and says what to do.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::data_dir::{DataDir, DataDirError};
use crate::engine::IncidentId;
use crate::time::Timestamp;

/// The key file's name inside the data dir.
pub const KEY_FILE: &str = "ack-link.key";
/// Where a new key is written before it is renamed to [`KEY_FILE`]; one left by a crash
/// is replaced.
const KEY_TMP: &str = "ack-link.key.tmp";
/// The key's length in bytes.
const KEY_LEN: usize = 32;
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

/// Why the key cannot be used; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(
        "{path} is a symbolic link: the key must be a plain file in the data dir. Replace the link with a copy of the key (mode 0600, owned by tocsin's user), or delete it to make a new key (old ack links stop working)"
    )]
    Symlink { path: String },
    #[error("{path} is not a plain file: delete it to make a new key (old ack links stop working)")]
    NotAFile { path: String },
    #[error(
        "{path} belongs to uid {owner}, not to uid {ours} that tocsin runs as: someone else could have written it. If it is your key, `chown {ours} {path}`; otherwise delete it to make a new key (old ack links stop working)"
    )]
    OtherOwner { path: String, owner: u32, ours: u32 },
    #[error(
        "{path} can be read or written by other users (mode {mode:04o}): anyone who read it can forge ack links. If nobody else could have, `chmod 600 {path}`; otherwise delete it to make a new key (old ack links stop working)"
    )]
    OpenToOthers { path: String, mode: u32 },
    #[error(
        "{path} is {len} bytes, not {KEY_LEN}: delete it to make a new key (old ack links stop working)"
    )]
    WrongSize { path: String, len: u64 },
    #[error("{path} changed while it was read; start tocsin again")]
    Replaced { path: String },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyError {
    let path = path.display().to_string();
    move |source| KeyError::Io { what, path, source }
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

    /// The key itself, for `tocsin migrate` to copy into a shared store.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key
    }

    /// Reads the key from `data_dir`, or creates it there (readable by tocsin only).
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let dir = DataDir::prepare(data_dir)?;
        let ours = dir.our_uid()?;
        Self::load_as(&dir, ours)
    }

    /// [`AckKey::load_or_create`] for a process running as `ours`.
    fn load_as(dir: &DataDir, ours: u32) -> Result<Self, KeyError> {
        let path = dir.path().join(KEY_FILE);
        let shown = || path.display().to_string();
        let io = |what| io_err(what, &path);
        // Never followed: a link planted here would lend tocsin someone else's key.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Self::create(dir),
            Err(e) => return Err(io("read")(e)),
        };
        if meta.file_type().is_symlink() {
            return Err(KeyError::Symlink { path: shown() });
        }
        if !meta.is_file() {
            return Err(KeyError::NotAFile { path: shown() });
        }
        if meta.uid() != ours {
            return Err(KeyError::OtherOwner {
                path: shown(),
                owner: meta.uid(),
                ours,
            });
        }
        if meta.len() == 0 {
            // What a crash while an older tocsin first wrote it leaves: it never signed
            // anything (the key was used only once it was on disk), so nothing is lost.
            tracing::warn!(path = %path.display(), "the ack link key is empty (left by a crash while it was written); making a new one");
            return Self::create(dir);
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::OpenToOthers {
                path: shown(),
                mode,
            });
        }
        let f = std::fs::File::open(&path).map_err(io("open"))?;
        let opened = f.metadata().map_err(io("read"))?;
        if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            return Err(KeyError::Replaced { path: shown() });
        }
        let mut bytes = Vec::with_capacity(KEY_LEN + 1);
        f.take(KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io("read"))?;
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongSize {
                path: shown(),
                len: opened.len(),
            })?;
        Ok(AckKey { key })
    }

    /// Makes a new key and puts it in place whole: a crash at any point leaves either
    /// no key (the next start makes one) or this one.
    fn create(dir: &DataDir) -> Result<Self, KeyError> {
        let path = dir.path().join(KEY_FILE);
        let tmp = dir.path().join(KEY_TMP);
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)
            .map_err(|e| io_err("make a key for", &path)(std::io::Error::other(e)))?;
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove the leftover", &tmp)(e)),
        }
        let mut f = dir.create_file(KEY_TMP)?;
        f.write_all(&key).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("write", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io_err("rename the new key to", &path))?;
        dir.sync()?;
        tracing::info!(path = %path.display(), "made a new ack link key");
        Ok(AckKey { key })
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
        assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [KEY_FILE], "no temporary file is left behind");
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn set_mode(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A data dir as mkdir makes it under umask 0022, with a key already in it.
    fn open_dir_with_key() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, [5u8; KEY_LEN]).unwrap();
        set_mode(&path, 0o600);
        (dir, path)
    }

    #[test]
    fn a_key_other_users_can_read_is_refused_saying_how_to_fix_it() {
        for open in [0o644, 0o640, 0o604, 0o620] {
            let (dir, path) = open_dir_with_key();
            set_mode(&path, open);
            let e = AckKey::load_or_create(dir.path()).unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, KeyError::OpenToOthers { .. }),
                "{open:o}: {msg}"
            );
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{open:o}: the error says the fix: {msg}"
            );
            assert_eq!(mode(&path), open, "refused, not silently changed");
        }
        let (dir, path) = open_dir_with_key();
        assert_eq!(
            AckKey::load_or_create(dir.path()).unwrap().key,
            [5; KEY_LEN]
        );
        assert_eq!(mode(dir.path()), 0o700, "the data dir is made private");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_key_planted_as_a_link_is_not_followed() {
        let (dir, path) = open_dir_with_key();
        // Someone else's key, and a link to it where tocsin looks for its own.
        let planted = dir.path().join("elsewhere.key");
        std::fs::rename(&path, &planted).unwrap();
        std::os::unix::fs::symlink(&planted, &path).unwrap();
        let e = AckKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, KeyError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A dangling link is no way in either: nothing is created through it.
        std::fs::remove_file(&planted).unwrap();
        let e = AckKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, KeyError::Symlink { .. }), "{e}");
        assert!(!planted.exists(), "no key was written through the link");
    }

    #[test]
    fn a_key_another_user_owns_is_refused() {
        let (dir, path) = open_dir_with_key();
        let dir = DataDir::prepare(dir.path()).unwrap();
        let ours = dir.our_uid().unwrap();
        // As tocsin running as someone else than the key's owner.
        let e = AckKey::load_as(&dir, ours + 1).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, KeyError::OtherOwner { .. }), "{msg}");
        assert!(msg.contains(&format!("belongs to uid {ours}")), "{msg}");
        assert!(
            msg.contains(&format!("chown {} {}", ours + 1, path.display())),
            "{msg}"
        );
        assert_eq!(AckKey::load_as(&dir, ours).unwrap().key, [5; KEY_LEN]);
    }

    #[test]
    fn a_key_left_empty_by_a_crash_is_replaced_and_tocsin_starts() {
        let (dir, path) = open_dir_with_key();
        std::fs::write(&path, b"").unwrap();
        // And the temporary file of a creation that crashed before its rename.
        std::fs::write(dir.path().join(KEY_TMP), b"half").unwrap();
        let key = AckKey::load_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), key.key);
        assert_eq!(mode(&path), 0o600);
        assert!(!dir.path().join(KEY_TMP).exists());
        // A key of another length was written by someone else: not replaced.
        std::fs::write(&path, b"short").unwrap();
        let e = AckKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, KeyError::WrongSize { len: 5, .. }), "{e}");
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
