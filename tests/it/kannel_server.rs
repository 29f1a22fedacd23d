//! A real Kannel (Debian's bearerbox + smsbox) with the fake SMSC client from
//! kannel-extras standing in for the phone network: what tocsin sends arrives at the
//! "phone" (fakesmsc's output), and what the phone types (an MO message) comes back to
//! tocsin through smsbox's sms-service.
//!
//! bearerbox serves one fakesmsc at a time, so [`Kannel::send_from_phone`] replaces the
//! running fakesmsc with one that sends the message; every fakesmsc writes its own log,
//! and [`Kannel::messages`] reads them all.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::harness::free_port;

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

/// Measured 0.1–0.9 s for each box; generous for a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The sendsms-user in tests/it/kannel.conf.
pub const SENDSMS_USER: &str = "agent";
pub const SENDSMS_PASSWORD: &str = "smspass";

/// The short number phones send their replies to.
pub const SHORT_CODE: &str = "1000";

/// Ports picked before anything starts: tocsin's config needs the sendsms URL and
/// Kannel's needs tocsin's, so one of them must know its ports first.
#[derive(Debug, Clone, Copy)]
pub struct KannelPorts {
    pub admin: u16,
    pub smsbox: u16,
    pub fakesmsc: u16,
    pub sendsms: u16,
}

impl KannelPorts {
    pub fn pick() -> KannelPorts {
        KannelPorts {
            admin: free_port(),
            smsbox: free_port(),
            fakesmsc: free_port(),
            sendsms: free_port(),
        }
    }

    /// What tocsin's kannel notifier calls.
    pub fn sendsms_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.sendsms)
    }
}

/// One SMS the fake SMSC received from Kannel (mobile-terminated: to a phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    pub from: String,
    pub to: String,
    /// `text` for GSM-7, `ucs-2` for UCS-2.
    pub coding: String,
    /// Decoded, whatever the coding.
    pub text: String,
}

/// bearerbox, smsbox and a fakesmsc, killed (in reverse order) when dropped.
pub struct Kannel {
    dir: TempDir,
    ports: KannelPorts,
    bearerbox: Child,
    smsbox: Child,
    phone: Option<Child>,
    /// fakesmsc processes started so far; each has its own log.
    phones: usize,
}

impl Kannel {
    /// Starts Kannel on `ports`, with replies from phones sent to `mo_url`, and a
    /// fakesmsc that receives messages; returns once sendsms accepts connections.
    pub async fn start(ports: KannelPorts, mo_url: &str) -> Kannel {
        for bin in [BEARERBOX, SMSBOX, FAKESMSC] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install Kannel with apt-get install kannel kannel-extras (scripts/test.sh does it)"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir for Kannel");
        let template = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/kannel.conf"),
        )
        .expect("tests/it/kannel.conf");
        let conf = template
            .replace("${DIR}", &dir.path().display().to_string())
            .replace("${KANNEL_ADMIN_PORT}", &ports.admin.to_string())
            .replace("${KANNEL_SMSBOX_PORT}", &ports.smsbox.to_string())
            .replace("${KANNEL_FAKESMSC_PORT}", &ports.fakesmsc.to_string())
            .replace("${KANNEL_SENDSMS_PORT}", &ports.sendsms.to_string())
            .replace("${MO_URL}", mo_url);
        let conf_path = dir.path().join("kannel.conf");
        std::fs::write(&conf_path, conf).unwrap();

        let mut bearerbox = spawn(BEARERBOX, &["-v", "1"], &conf_path, dir.path(), "bearerbox");
        for port in [ports.admin, ports.smsbox] {
            wait_for_port(port, &mut bearerbox, "bearerbox", dir.path()).await;
        }
        let mut kannel = Kannel {
            smsbox: spawn(SMSBOX, &["-v", "1"], &conf_path, dir.path(), "smsbox"),
            bearerbox,
            dir,
            ports,
            phone: None,
            phones: 0,
        };
        kannel.start_phone(&["-m", "0", "0 0 text x"]);
        wait_for_port(
            ports.sendsms,
            &mut kannel.smsbox,
            "smsbox",
            kannel.dir.path(),
        )
        .await;
        kannel
    }

    /// Replaces the running fakesmsc with one started with `args`.
    fn start_phone(&mut self, args: &[&str]) {
        if let Some(mut old) = self.phone.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        self.phones += 1;
        let log = std::fs::File::create(self.phone_log(self.phones)).unwrap();
        let port = self.ports.fakesmsc.to_string();
        let child = Command::new(FAKESMSC)
            .args(["-H", "127.0.0.1", "-r", &port, "-i", "0.1"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {FAKESMSC}: {e}"));
        self.phone = Some(child);
    }

    fn phone_log(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("fakesmsc-{n}.log"))
    }

    /// The phone `from` sends `text` to the short code, as a subscriber would.
    pub fn send_from_phone(&mut self, from: &str, text: &str) {
        let msg = format!("{from} {SHORT_CODE} text {text}");
        self.start_phone(&["-m", "1", &msg]);
    }

    /// Every message the fake SMSC received so far, oldest first.
    pub fn messages(&self) -> Vec<Sms> {
        (1..=self.phones)
            .flat_map(|n| {
                let log = std::fs::read_to_string(self.phone_log(n)).unwrap_or_default();
                log.lines().filter_map(parse_mt).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Waits until a message matches `pred`.
    ///
    /// # Panics
    /// On timeout, with what arrived and Kannel's logs.
    pub async fn wait_for_sms(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Sms) -> bool,
    ) -> Sms {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| pred(m)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; the phone got {:#?}\n{}",
                self.messages(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The logs of every Kannel process, for failure messages.
    pub fn logs(&self) -> String {
        let mut names = vec!["bearerbox.out".to_string(), "smsbox.out".to_string()];
        names.extend((1..=self.phones).map(|n| format!("fakesmsc-{n}.log")));
        names
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
                format!("--- {n} ---\n{text}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        let children = [
            self.phone.as_mut(),
            Some(&mut self.smsbox),
            Some(&mut self.bearerbox),
        ];
        for child in children.into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts a Kannel box with its output in `{name}.out`.
fn spawn(bin: &str, args: &[&str], conf: &Path, dir: &Path, name: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
    Command::new(bin)
        .args(args)
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"))
}

/// Waits until `port` accepts a connection; panics with the log if `child` exits.
async fn wait_for_port(port: u16, child: &mut Child, name: &str, dir: &Path) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{name} exited with {status} before listening on {port}:\n{}",
                std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default()
            );
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on {port} within {READY_TIMEOUT:?}:\n{}",
            std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `... Got message 1: <TOCSIN +15550100 text [#1] TRIGGERED ...>` → the message.
fn parse_mt(line: &str) -> Option<Sms> {
    let at = line.find("Got message ")?;
    let rest = &line[at..];
    let inner = rest.get(rest.find(": <")? + 3..rest.rfind('>')?)?;
    let mut parts = inner.splitn(4, ' ');
    let (from, to, coding) = (parts.next()?, parts.next()?, parts.next()?);
    let raw = parts.next().unwrap_or("");
    let text = if coding == "ucs-2" {
        // fakesmsc prints UCS-2 as URL-encoded UTF-16BE bytes.
        let bytes = url_decode(raw);
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        raw.to_string()
    };
    Some(Sms {
        from: from.to_string(),
        to: to.to_string(),
        coding: coding.to_string(),
        text,
    })
}

fn url_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    out
}

#[test]
fn fakesmsc_lines_are_read() {
    let m = parse_mt(
        "2026-11-21 19:41:22 [3113] [0] DEBUG: Got message 1: <ALERTS +15551234567 text DiskFull firing: <x> 42>",
    )
    .unwrap();
    assert_eq!(
        (
            m.from.as_str(),
            m.to.as_str(),
            m.coding.as_str(),
            m.text.as_str()
        ),
        ("ALERTS", "+15551234567", "text", "DiskFull firing: <x> 42")
    );
    let u =
        parse_mt("... INFO: Got message 2: <TOCSIN +15550100 ucs-2 x%C1v%D8%5D%F2n%E1>").unwrap();
    assert_eq!(u.text, "磁盘已满");
    assert!(parse_mt("INFO: fakesmsc: sent message 1").is_none());
}
