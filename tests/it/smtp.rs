//! `SmtpCapture`: a real SMTP server (aiosmtpd, through `smtp_capture.py`) on a port of
//! the test's choosing that keeps every mail it accepts, and `Mail`, a small reader of
//! what it kept (headers, MIME parts with their transfer encoding undone).
//!
//! Needs Debian's `python3-aiosmtpd` under `/usr/bin/python3`; a test that cannot start
//! it fails saying so, it never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Debian's interpreter, with the packages scripts/test.sh installs (a `python3` on PATH
/// may be another one without them).
pub(crate) const PYTHON: &str = "/usr/bin/python3";

/// How long the server may take to print `READY` (0.1–0.4 s measured).
const START_TIMEOUT: Duration = Duration::from_secs(10);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_capture.py")
}

/// Fails the test, saying what to install, when the server cannot run here.
fn require_aiosmtpd() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let r = CHECKED.get_or_init(|| {
        let out = std::process::Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .output()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{PYTHON} cannot import aiosmtpd: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    if let Err(e) = r {
        panic!(
            "the email tests need a real SMTP server: {e}; install it with \
             `apt-get install python3-aiosmtpd` (Debian's python3 at {PYTHON})"
        );
    }
}

/// A running capture server; killed when dropped.
pub struct SmtpCapture {
    pub port: u16,
    dir: TempDir,
    child: Child,
}

impl SmtpCapture {
    /// Starts on 127.0.0.1:`port`, with AUTH PLAIN/LOGIN required when `login` is
    /// `Some((user, password))`, and waits until it listens.
    pub async fn start(port: u16, login: Option<(&str, &str)>) -> SmtpCapture {
        require_aiosmtpd();
        let dir = tempfile::tempdir().expect("mail dir");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script())
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir.path().join("mail"));
        if let Some((user, password)) = login {
            cmd.args([user, password]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {PYTHON} {}: {e}", script().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let first = tokio::time::timeout(START_TIMEOUT, async {
            BufReader::new(stdout).lines().next_line().await
        })
        .await;
        match first {
            Ok(Ok(Some(line))) if line.starts_with("READY") => {}
            other => {
                let _ = child.start_kill();
                let out = child.wait_with_output().await.ok();
                let stderr = out
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                panic!(
                    "the SMTP capture server on port {port} did not get ready within \
                     {START_TIMEOUT:?} (first line: {other:?}); stderr:\n{stderr}"
                );
            }
        }
        SmtpCapture { port, dir, child }
    }

    /// The `smtp_url` of a plain-text relay at this server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail completely received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let dir = self.dir.path().join("mail");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut metas: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        metas.sort();
        metas
            .into_iter()
            .map(|meta| {
                let eml = meta.with_extension("eml");
                let raw = std::fs::read(&eml)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", eml.display()));
                let envelope = std::fs::read(&meta)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                Mail {
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                    envelope,
                }
            })
            .collect()
    }

    /// Waits until at least `n` mails arrived, at most `timeout`.
    ///
    /// # Panics
    /// On timeout, listing the subjects of the mails that did arrive.
    pub async fn wait_for_mails(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            if Instant::now() >= deadline {
                let subjects: Vec<_> = mails.iter().map(|m| m.header("subject")).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {n} mail(s) on port {}; got {} \
                     with subjects {subjects:?}",
                    self.port,
                    mails.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// One captured mail.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The DATA bytes as received (CRLF line ends).
    pub raw: String,
    /// `{"mail_from", "rcpt_tos", "auth_user", ...}` as the server saw the envelope.
    pub envelope: Value,
}

/// One MIME part, transfer encoding undone.
#[derive(Debug, Clone)]
pub struct Part {
    pub content_type: String,
    pub body: String,
}

/// Splits `text` (LF line ends) into unfolded headers and the body.
fn split_headers(text: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.to_string(), v.trim().to_string()));
        } else {
            headers.push((line.to_string(), String::new()));
        }
    }
    (headers, body)
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn decode_quoted_printable(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Some(h) = s.get(i + 1..i + 3)
                && let Ok(b) = u8::from_str_radix(h, 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Undoes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`), as a long or
/// non-ASCII subject is sent; whitespace between two encoded words goes.
fn decode_encoded_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let parts: Vec<&str> = word[2..].splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|t| t.find("?=")) else {
            break;
        };
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let text = &parts[2][..end];
        out.push_str(&if parts[1].eq_ignore_ascii_case("b") {
            decode(text, Some("base64"))
        } else {
            decode(&text.replace('_', " "), Some("quoted-printable"))
        });
        let consumed = 2 + parts[0].len() + 1 + parts[1].len() + 1 + end + 2;
        rest = &word[consumed..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

fn decode(body: &str, encoding: Option<&str>) -> String {
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        Some("quoted-printable") => decode_quoted_printable(body),
        Some("base64") => {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_else(|e| panic!("bad base64 body: {e}\n{body}"));
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_string(),
    }
}

impl Mail {
    fn normalized(&self) -> String {
        self.raw.replace("\r\n", "\n")
    }

    /// Every header of the mail, unfolded, in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        split_headers(&self.normalized()).0
    }

    /// The first header called `name` (any case), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        find(&self.headers(), name).map(str::to_string)
    }

    /// The `Subject` header, decoded.
    pub fn subject(&self) -> String {
        decode_encoded_words(&self.header("subject").unwrap_or_default())
    }

    /// The envelope recipients the server accepted.
    pub fn rcpt_tos(&self) -> Vec<String> {
        self.envelope["rcpt_tos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The leaf parts of a `multipart/*` mail, or the body itself as one part.
    pub fn parts(&self) -> Vec<Part> {
        let text = self.normalized();
        let (headers, body) = split_headers(&text);
        let ct = find(&headers, "content-type").unwrap_or("text/plain");
        let Some(boundary) = ct.split(';').find_map(|p| {
            p.trim()
                .strip_prefix("boundary=")
                .map(|b| b.trim_matches('"').to_string())
        }) else {
            return vec![Part {
                content_type: ct.to_string(),
                body: decode(body, find(&headers, "content-transfer-encoding")),
            }];
        };
        let delimiter = format!("--{boundary}");
        body.split(&delimiter)
            .skip(1)
            .take_while(|chunk| !chunk.starts_with("--"))
            .map(|chunk| {
                let chunk = chunk.strip_prefix('\n').unwrap_or(chunk);
                let (h, b) = split_headers(chunk);
                Part {
                    content_type: find(&h, "content-type").unwrap_or("text/plain").to_string(),
                    body: decode(
                        b.strip_suffix('\n').unwrap_or(b),
                        find(&h, "content-transfer-encoding"),
                    ),
                }
            })
            .collect()
    }

    /// The decoded body of the first part whose type starts with `mime` (`text/html`).
    ///
    /// # Panics
    /// When there is no such part, listing the parts there are.
    pub fn part(&self, mime: &str) -> String {
        let parts = self.parts();
        parts
            .iter()
            .find(|p| p.content_type.to_ascii_lowercase().starts_with(mime))
            .map(|p| p.body.clone())
            .unwrap_or_else(|| {
                let types: Vec<_> = parts.iter().map(|p| &p.content_type).collect();
                panic!(
                    "no {mime} part; parts: {types:?}\n--- mail ---\n{}",
                    self.raw
                )
            })
    }
}

/// Long subjects are cut with an ellipsis and then sent as RFC 2047 encoded words;
/// tests that filter on the subject must read through them.
#[test]
fn encoded_subjects_are_decoded_before_filtering() {
    let q = "=?utf-8?q?=5B=231=5D_TRIGGERED_source=3Airc_is_down=3A_no_working_connection?= \
             =?utf-8?q?_to_127=2E0=2E0=2E1=3A4=3A_no_PONG_within_3s=3A_the_link_is_dead?= \
             =?utf-8?q?=E2=80=A6?=";
    assert_eq!(
        decode_encoded_words(q),
        "[#1] TRIGGERED source:irc is down: no working connection to 127.0.0.1:4: no PONG \
         within 3s: the link is dead…"
    );
    let b = "=?utf-8?b?WyMxXSBUUklHR0VSRUQgc291cmNlOmlyYyBpcyBkb3duOiB44oCm?=";
    assert_eq!(
        decode_encoded_words(b),
        "[#1] TRIGGERED source:irc is down: x…"
    );
    let plain = "[#1] RESOLVED source:irc is down: a=b =? c";
    assert_eq!(decode_encoded_words(plain), plain);
}
