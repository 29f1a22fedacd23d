//! A real IRC network for tests: InspIRCd 3 with Anope 2 services linked to it (SASL
//! PLAIN, NickServ accounts, `account-tag`, `server-time`), the ZNC 1.8 bouncer in front
//! of it, and [`Human`], a scripted IRC client over a raw TCP stream that plays the
//! people in the channel (and, through ZNC, can look at what the agent's bouncer sees).
//!
//! Everything runs from Debian's packages (see /work/shared/recipes/README.md, sections
//! 1b and 2) in a temp dir, on free ports on 127.0.0.1. The config templates are in
//! `tests/it/ircnet/`. As root, Anope and ZNC run as `nobody` (`setpriv`): as root,
//! Anope pauses 3 s and ZNC 30 s. Every process is killed (SIGKILL) and reaped on drop.

#![allow(
    dead_code,
    reason = "a harness for the IRC tests: not every part is used by every build's tests"
)]

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;
use tocsin::irc::text::strip_formatting;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::harness::free_port;

const INSPIRCD: &str = "/usr/sbin/inspircd";
const ANOPE: &str = "/usr/sbin/anope";
const ZNC: &str = "/usr/bin/znc";
const SETPRIV: &str = "/usr/bin/setpriv";

const INSPIRCD_CONF: &str = include_str!("ircnet/inspircd.conf");
const SERVICES_CONF: &str = include_str!("ircnet/services.conf");
const ZNC_CONF: &str = include_str!("ircnet/znc.conf");
const SASL_REGISTRY: &str = include_str!("ircnet/sasl.registry");

/// `nobody`/`nogroup` on Debian.
const NOBODY: u32 = 65534;

/// InspIRCd listens after about 0.01 s and Anope links 0.02–0.07 s later (recipe); generous
/// for a busy machine.
const IRCD_READY: Duration = Duration::from_secs(10);

/// After `restart_ircd`: Anope retries its uplink every second (`retrywait`).
const RELINK: Duration = Duration::from_secs(10);

/// ZNC's listener accepted after 0.6–3.4 s in the recipe (it loads every module first).
const ZNC_READY: Duration = Duration::from_secs(20);

/// From ZNC listening until it is registered upstream and in its channels: `ConnectDelay`
/// 1 s plus InspIRCd's registration delay (up to 1 s) plus SASL.
const ZNC_UPSTREAM: Duration = Duration::from_secs(15);

/// From connecting until `001`. InspIRCd 3.15 completes a registration only on its
/// once-a-second tick, so every connect takes up to 1 s (measured: 1.00 s nearly every
/// time, with or without CAP, since each connect starts just after the previous tick):
/// connect clients in parallel (`tokio::join!`) where a test needs several.
const REGISTRATION: Duration = Duration::from_secs(10);

/// The ZNC user in `tests/it/ircnet/znc.conf` (password `agentpass`, network `local`).
pub const ZNC_USER: &str = "agent";
/// What a client of ZNC sends as `PASS` to attach to the bot's network.
pub const ZNC_PASS_LINE: &str = "agent/local:agentpass";

/// The channel ZNC joins when started with [`Znc::start`].
pub const ALERTS: &str = "#alerts";

/// The capabilities a [`Human`] asks for, each that the server offers.
const WANTED_CAPS: [&str; 6] = [
    "server-time",
    "message-tags",
    "account-tag",
    "extended-join",
    "account-notify",
    "batch",
];

// ---------------------------------------------------------------------------------
// InspIRCd + Anope
// ---------------------------------------------------------------------------------

/// InspIRCd with Anope linked to it, in a temp dir, on free ports.
pub struct IrcNet {
    irc_port: u16,
    link_port: u16,
    ircd_dir: PathBuf,
    ircd: Option<Proc>,
    anope: Proc,
    /// Removed after the processes are killed (fields drop after `Drop::drop`).
    _dir: TempDir,
}

impl IrcNet {
    /// Starts InspIRCd, then Anope, and returns once Anope is linked (it logs
    /// `services.test.local (Services) is done syncing`; SASL works from then on).
    pub async fn start() -> IrcNet {
        require(INSPIRCD, "inspircd");
        require(ANOPE, "anope");
        let t0 = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir for InspIRCd and Anope");
        let root = is_root();
        let irc_port = free_port();
        let link_port = free_port();

        let ircd_dir = dir.path().join("inspircd");
        fs::create_dir(&ircd_dir).unwrap();
        write_ircd_conf(&ircd_dir, irc_port, link_port, true);
        fs::write(ircd_dir.join("motd.txt"), "tocsin test network\n").unwrap();

        let anope_dir = dir.path().join("anope");
        for sub in ["db", "logs"] {
            fs::create_dir_all(anope_dir.join(sub)).unwrap();
        }
        let conf = SERVICES_CONF
            .replace("${DIR}", &anope_dir.display().to_string())
            .replace("${LINK_PORT}", &link_port.to_string());
        fs::write(anope_dir.join("services.conf"), conf).unwrap();
        fs::write(anope_dir.join("services.motd"), "tocsin test services\n").unwrap();
        if root {
            // nobody must get through the 0700 temp dir to its own dir.
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
            chown_nobody(&anope_dir);
        }

        let mut ircd = spawn_ircd(&ircd_dir, root);
        wait_for_port(irc_port, &mut ircd).await;
        wait_for_port(link_port, &mut ircd).await;
        let ircd_at = t0.elapsed();

        let mut args = vec![
            format!("--confdir={}", anope_dir.display()),
            format!("--dbdir={}", anope_dir.join("db").display()),
            format!("--logdir={}", anope_dir.join("logs").display()),
            "--modulesdir=/usr/lib/anope".to_string(),
            "--nofork".to_string(),
        ];
        let anope_cmd = if root {
            args.splice(0..0, nobody_args(ANOPE));
            SETPRIV
        } else {
            ANOPE
        };
        let anope = Proc::spawn("anope", anope_cmd, &args, dir.path().join("anope.out"));
        let mut net = IrcNet {
            irc_port,
            link_port,
            ircd_dir,
            ircd: Some(ircd),
            anope,
            _dir: dir,
        };
        net.wait_linked(1, IRCD_READY).await;
        eprintln!(
            "ircnet: InspIRCd listening after {ircd_at:?}, Anope linked after {:?}",
            t0.elapsed()
        );
        net
    }

    /// The port for IRC clients.
    pub fn port(&self) -> u16 {
        self.irc_port
    }

    /// Registers `account` with NickServ (password `password`, e-mail
    /// `<account>@example.com`) from a throwaway client with that nick, which then quits.
    pub async fn register(&self, account: &str, password: &str) {
        let client = Human::connect(self.irc_port, account, Login::None).await;
        client
            .say(
                "NickServ",
                &format!("REGISTER {password} {account}@example.com"),
            )
            .await;
        // Anope bolds the nick: `Nickname \x02alice\x02 registered.`
        let done = format!("Nickname {account} registered.");
        let reply = client
            .wait_for(
                &format!("NickServ to register {account}"),
                REGISTRATION,
                |l| {
                    let m = Msg::parse(l);
                    m.command == "900"
                        || (m.nick() == "NickServ" && strip_formatting(m.trailing()) != done)
                },
            )
            .await;
        assert_eq!(
            Msg::parse(&reply).command,
            "900",
            "NickServ refused to register {account}: {reply}"
        );
        client.quit().await;
    }

    /// SIGKILLs InspIRCd (and reaps it): every client's connection drops, ZNC's upstream
    /// among them, and Anope starts retrying its uplink every second.
    pub async fn kill_ircd(&mut self) {
        if let Some(mut ircd) = self.ircd.take() {
            ircd.kill();
        }
    }

    /// Starts InspIRCd again on the same ports (after [`IrcNet::kill_ircd`]) and waits
    /// until Anope has linked to it again (1–3 s: Anope retries every second).
    ///
    /// The client port opens only once Anope is linked (InspIRCd starts without it and
    /// binds it on a rehash, SIGHUP). Otherwise ZNC, which also retries every second,
    /// got in first (3 runs out of 3), found no `sasl` capability, and its sasl module (with
    /// `require_auth`) answered "Disabling network, we require authentication." and
    /// never reconnected by itself.
    pub async fn restart_ircd(&mut self) {
        assert!(
            self.ircd.is_none(),
            "restart_ircd: InspIRCd is still running"
        );
        let t0 = Instant::now();
        let linked = self.links();
        write_ircd_conf(&self.ircd_dir, self.irc_port, self.link_port, false);
        let mut ircd = spawn_ircd(&self.ircd_dir, is_root());
        wait_for_port(self.link_port, &mut ircd).await;
        self.ircd = Some(ircd);
        self.wait_linked(linked + 1, RELINK).await;
        let relinked = t0.elapsed();
        write_ircd_conf(&self.ircd_dir, self.irc_port, self.link_port, true);
        let ircd = self.ircd.as_mut().unwrap();
        ircd.signal("HUP");
        wait_for_port(self.irc_port, ircd).await;
        eprintln!(
            "ircnet: InspIRCd restarted, Anope relinked after {relinked:?}, clients port open after {:?}",
            t0.elapsed()
        );
    }

    /// How many times Anope has finished linking so far.
    fn links(&self) -> usize {
        self.anope
            .output()
            .matches("services.test.local (Services) is done syncing")
            .count()
    }

    async fn wait_linked(&mut self, links: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.links() < links {
            if let Some(status) = self.anope.exited() {
                panic!(
                    "anope exited with {status} before linking to InspIRCd:\n{}\n{}",
                    self.anope.tail(),
                    self.ircd.as_ref().map(Proc::tail).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "anope did not link to InspIRCd within {timeout:?}:\n{}\n{}",
                self.anope.tail(),
                self.ircd.as_ref().map(Proc::tail).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for IrcNet {
    fn drop(&mut self) {
        self.anope.kill();
        if let Some(ircd) = self.ircd.as_mut() {
            ircd.kill();
        }
    }
}

/// Renders `inspircd.conf` into `dir`; without the clients' port unless `clients`.
fn write_ircd_conf(dir: &Path, irc_port: u16, link_port: u16, clients: bool) {
    let conf: String = INSPIRCD_CONF
        .lines()
        .filter(|l| clients || !(l.starts_with("<bind ") && l.contains(r#"type="clients""#)))
        .map(|l| format!("{l}\n"))
        .collect();
    let conf = conf
        .replace("${DIR}", &dir.display().to_string())
        .replace("${IRC_PORT}", &irc_port.to_string())
        .replace("${LINK_PORT}", &link_port.to_string());
    fs::write(dir.join("inspircd.conf"), conf).unwrap();
}

fn spawn_ircd(dir: &Path, root: bool) -> Proc {
    let mut args = vec![
        format!("--config={}", dir.join("inspircd.conf").display()),
        "--nofork".to_string(),
    ];
    if root {
        args.push("--runasroot".to_string());
    }
    // Appends: a restarted InspIRCd keeps the first one's output.
    Proc::spawn("inspircd", INSPIRCD, &args, dir.join("inspircd.out"))
}

// ---------------------------------------------------------------------------------
// ZNC
// ---------------------------------------------------------------------------------

/// ZNC 1.8 in a temp dir: user `agent` (password `agentpass`), network `local` on the
/// given IRC server, in `#alerts` (or the channels given), with no flood queue and
/// 1-second reconnects.
pub struct Znc {
    port: u16,
    /// A second, TLS listener and the CA that signed its certificate.
    tls: Option<(u16, PathBuf)>,
    channels: Vec<String>,
    data_dir: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
    _dir: TempDir,
}

impl Znc {
    /// Starts ZNC for the IRC server on `irc_port`, logging in upstream with SASL PLAIN
    /// as `upstream_sasl` = (account, password) if given, and returns once it is
    /// registered upstream and has joined `#alerts`.
    pub async fn start(irc_port: u16, upstream_sasl: Option<(&str, &str)>) -> Znc {
        Znc::start_in(irc_port, upstream_sasl, &[ALERTS]).await
    }

    /// [`Znc::start`] with the channels ZNC joins.
    pub async fn start_in(
        irc_port: u16,
        upstream_sasl: Option<(&str, &str)>,
        channels: &[&str],
    ) -> Znc {
        Znc::start_with(irc_port, upstream_sasl, channels, false).await
    }

    /// [`Znc::start`] with a second listener speaking TLS, its certificate (for
    /// 127.0.0.1) signed by a throwaway CA: see [`Znc::tls_port`] and [`Znc::ca_file`].
    pub async fn start_tls(irc_port: u16, upstream_sasl: Option<(&str, &str)>) -> Znc {
        require("/usr/bin/openssl", "openssl");
        Znc::start_with(irc_port, upstream_sasl, &[ALERTS], true).await
    }

    pub fn tls_port(&self) -> u16 {
        self.tls.as_ref().expect("started with Znc::start_tls").0
    }

    /// The PEM of the CA that signed the TLS listener's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.tls.as_ref().expect("started with Znc::start_tls").1
    }

    async fn start_with(
        irc_port: u16,
        upstream_sasl: Option<(&str, &str)>,
        channels: &[&str],
        tls: bool,
    ) -> Znc {
        require(ZNC, "znc");
        let t0 = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir for ZNC");
        let root = is_root();
        let port = free_port();
        let data_dir = dir.path().join("znc");
        fs::create_dir_all(data_dir.join("configs")).unwrap();
        let chans: String = channels
            .iter()
            .map(|c| format!("\t\t<Chan {c}>\n\t\t</Chan>\n"))
            .collect();
        let conf = ZNC_CONF
            .replace("${ZNC_PORT}", &port.to_string())
            .replace("${IRC_PORT}", &irc_port.to_string())
            .replace(
                "${NETWORK_MODULES}",
                if upstream_sasl.is_some() {
                    "LoadModule = sasl"
                } else {
                    ""
                },
            )
            .replace("${CHANNELS}", &chans);
        let tls = tls.then(|| {
            let tls_port = free_port();
            let ca = make_certificates(dir.path(), &data_dir.join("znc.pem"));
            (tls_port, ca)
        });
        let conf = match &tls {
            None => conf,
            Some((tls_port, _)) => conf.replacen(
                "</Listener>",
                &format!(
                    "</Listener>\n<Listener tls>\n\tHost = 127.0.0.1\n\tPort = {tls_port}\n\tIPv4 = true\n\tIPv6 = false\n\tSSL = true\n\tAllowIRC = true\n\tAllowWeb = false\n</Listener>"
                ),
                1,
            ),
        };
        fs::write(data_dir.join("configs/znc.conf"), conf).unwrap();
        if let Some((account, password)) = upstream_sasl {
            let sasl = data_dir.join("users/agent/networks/local/moddata/sasl");
            fs::create_dir_all(&sasl).unwrap();
            let registry = SASL_REGISTRY
                .replace("${SASL_ACCOUNT}", &registry_escape(account))
                .replace("${SASL_PASSWORD}", &registry_escape(password));
            fs::write(sasl.join(".registry"), registry).unwrap();
        }
        if root {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
            chown_nobody(&data_dir);
        }
        let mut znc = Znc {
            port,
            tls,
            channels: channels.iter().map(|c| c.to_string()).collect(),
            log: dir.path().join("znc.out"),
            data_dir,
            proc: None,
            _dir: dir,
        };
        znc.spawn().await;
        let listening = t0.elapsed();
        znc.wait_connected().await;
        eprintln!(
            "ircnet: ZNC listening after {listening:?}, connected upstream and in {:?} after {:?}",
            znc.channels,
            t0.elapsed()
        );
        znc
    }

    /// The port ZNC's clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `PASS` a client sends to attach to the bot's network.
    pub fn pass_line(&self) -> &'static str {
        ZNC_PASS_LINE
    }

    /// Waits until ZNC is registered upstream and in all its channels, by attaching a
    /// client (which then quits; the channel buffers are kept, see
    /// `AutoClearChanBuffer = false`).
    pub async fn wait_connected(&self) {
        let t0 = Instant::now();
        let probe = Human::connect_within(
            self.port,
            ZNC_USER,
            Login::Pass(ZNC_PASS_LINE),
            ZNC_UPSTREAM,
        )
        .await;
        let nick = probe.nick();
        for chan in &self.channels {
            let left = ZNC_UPSTREAM.saturating_sub(t0.elapsed());
            probe
                .wait_for(&format!("ZNC to join {chan}"), left, |l| {
                    is_join(&Msg::parse(l), &nick, chan)
                })
                .await;
        }
        probe.quit().await;
    }

    /// SIGSTOP: ZNC hangs like an unresponsive VM. Connections stay open, new ones are
    /// still accepted by the kernel, and nothing is answered until [`Znc::resume`].
    pub fn pause(&self) {
        self.running().signal("STOP");
    }

    /// SIGCONT after [`Znc::pause`].
    pub fn resume(&self) {
        self.running().signal("CONT");
    }

    /// SIGKILLs ZNC and reaps it: attached clients read EOF, new connects are refused.
    pub async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts ZNC again (after [`Znc::kill`]) on the same port with the same data dir,
    /// and returns once it listens (not waiting for upstream: see
    /// [`Znc::wait_connected`]).
    pub async fn restart(&mut self) {
        assert!(self.proc.is_none(), "Znc::restart: ZNC is still running");
        let t0 = Instant::now();
        self.spawn().await;
        eprintln!("ircnet: ZNC restarted, listening after {:?}", t0.elapsed());
    }

    async fn spawn(&mut self) {
        let mut args = vec![
            "--foreground".to_string(),
            "--datadir".to_string(),
            self.data_dir.display().to_string(),
        ];
        let cmd = if is_root() {
            args.splice(0..0, nobody_args(ZNC));
            SETPRIV
        } else {
            ZNC
        };
        let mut p = Proc::spawn("znc", cmd, &args, self.log.clone());
        wait_for_port_within(self.port, &mut p, ZNC_READY).await;
        self.proc = Some(p);
    }

    fn running(&self) -> &Proc {
        self.proc.as_ref().expect("ZNC is not running")
    }
}

impl Drop for Znc {
    fn drop(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill();
        }
    }
}

/// ZNC's `.registry` escapes every byte but letters and digits as `%xx;`.
fn registry_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02x};")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Human: a scripted IRC client
// ---------------------------------------------------------------------------------

/// How a [`Human`] logs in.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// No login: a user without an account.
    None,
    /// SASL PLAIN as (account, password).
    Sasl(&'a str, &'a str),
    /// `PASS`, e.g. `agent/local:agentpass` to attach to ZNC.
    Pass(&'a str),
}

/// How the server side ended a [`Human`]'s connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// An orderly close (read returned 0 bytes).
    Eof,
    /// A read failed, e.g. connection reset.
    Error(String),
}

/// A person on IRC, scripted: a raw TCP connection whose every received line is kept
/// (lossily decoded, without the CRLF), with PINGs answered by a background reader.
pub struct Human {
    shared: Arc<Shared>,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    reader: JoinHandle<()>,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every change of `state`.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    lines: Vec<String>,
    closed: Option<Closed>,
    /// Capabilities the server ACKed.
    caps: BTreeSet<String>,
    /// Our nick as the server last told us (001, NICK).
    nick: String,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap());
        self.changed.send_modify(|n| *n += 1);
    }
}

impl Human {
    /// Connects to 127.0.0.1:`port` as `nick`, negotiates the capabilities (among
    /// server-time, message-tags, account-tag, extended-join, account-notify, batch) that
    /// the server offers, logs in as `login` says, and returns after `001`. Through ZNC,
    /// that is the upstream server's `001`, not ZNC's own `irc.znc.in` one.
    ///
    /// # Panics
    /// When the server does not offer SASL but `login` asks for it (is Anope linked?),
    /// when the login fails, or when there is no `001` within 10 s.
    pub async fn connect(port: u16, nick: &str, login: Login<'_>) -> Human {
        Human::connect_within(port, nick, login, REGISTRATION).await
    }

    async fn connect_within(port: u16, nick: &str, login: Login<'_>, timeout: Duration) -> Human {
        let t0 = Instant::now();
        let left = || timeout.saturating_sub(t0.elapsed());
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("{nick} connecting to 127.0.0.1:{port}: {e}"));
        stream.set_nodelay(true).unwrap();
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                nick: nick.to_string(),
                ..State::default()
            }),
            changed: watch::channel(0).0,
        });
        let writer = Arc::new(tokio::sync::Mutex::new(wr));
        let reader = tokio::spawn(read_loop(rd, writer.clone(), shared.clone()));
        let human = Human {
            shared,
            writer,
            reader,
        };

        if let Login::Pass(pass) = login {
            human.send_raw(&format!("PASS {pass}")).await;
        }
        human.send_raw("CAP LS 302").await;
        human.send_raw(&format!("NICK {nick}")).await;
        human.send_raw(&format!("USER {nick} 0 * :{nick}")).await;

        // CAP LS 302 may come in several lines: `CAP * LS * :...` until `CAP * LS :...`.
        let offered: Vec<String> = human
            .wait_until(&format!("{nick}: CAP LS"), left(), true, |s| {
                let mut caps = Vec::new();
                for m in s.lines.iter().map(|l| Msg::parse(l)) {
                    if m.command == "CAP" && m.params.get(1) == Some(&"LS") {
                        let (more, list) = match m.params.get(2) {
                            Some(&"*") if m.params.len() > 3 => (true, m.trailing()),
                            _ => (false, m.trailing()),
                        };
                        caps.extend(
                            list.split_whitespace()
                                .map(|c| c.split_once('=').map_or(c, |(name, _)| name).to_string()),
                        );
                        if !more {
                            return Some(caps);
                        }
                    }
                }
                None
            })
            .await;
        let mut request: Vec<&str> = WANTED_CAPS
            .into_iter()
            .filter(|c| offered.iter().any(|o| o == c))
            .collect();
        if let Login::Sasl(..) = login {
            assert!(
                offered.iter().any(|c| c == "sasl"),
                "{nick}: the server on port {port} does not offer sasl (is Anope linked?): CAP LS {offered:?}"
            );
            request.push("sasl");
        }
        let from = human.shared.state.lock().unwrap().lines.len();
        // One REQ per cap: a REQ is ACKed or NAKed as a whole.
        for cap in &request {
            human.send_raw(&format!("CAP REQ :{cap}")).await;
        }
        human
            .wait_until(&format!("{nick}: CAP ACK/NAK"), left(), true, |s| {
                let answers = s.lines[from..]
                    .iter()
                    .map(|l| Msg::parse(l))
                    .filter(|m| {
                        m.command == "CAP" && matches!(m.params.get(1), Some(&"ACK" | &"NAK"))
                    })
                    .count();
                (answers >= request.len()).then_some(())
            })
            .await;

        if let Login::Sasl(account, password) = login {
            assert!(
                human.caps().iter().any(|c| c == "sasl"),
                "{nick}: the server NAKed sasl:\n{}",
                human.recent()
            );
            let from = human.shared.state.lock().unwrap().lines.len();
            human.send_raw("AUTHENTICATE PLAIN").await;
            human
                .wait_since(from, &format!("{nick}: AUTHENTICATE +"), left(), |l| {
                    let m = Msg::parse(l);
                    m.command == "AUTHENTICATE" || is_sasl_failure(&m)
                })
                .await;
            let blob = base64::engine::general_purpose::STANDARD
                .encode(format!("{account}\0{account}\0{password}"));
            human.send_raw(&format!("AUTHENTICATE {blob}")).await;
            let done = human
                .wait_since(from, &format!("{nick}: SASL result"), left(), |l| {
                    let m = Msg::parse(l);
                    m.command == "903" || is_sasl_failure(&m)
                })
                .await;
            assert_eq!(
                Msg::parse(&done).command,
                "903",
                "{nick}: SASL PLAIN as {account} failed: {done}"
            );
        }
        human.send_raw("CAP END").await;

        let through_znc = matches!(login, Login::Pass(_));
        let welcome = human
            .wait_until(&format!("{nick}: 001"), left(), true, |s| {
                s.lines.iter().find_map(|l| {
                    let m = Msg::parse(l);
                    if matches!(m.command, "432" | "433" | "464" | "465" | "ERROR") {
                        return Some(Err(l.clone()));
                    }
                    (m.command == "001" && !(through_znc && m.source == "irc.znc.in"))
                        .then_some(Ok(()))
                })
            })
            .await;
        if let Err(line) = welcome {
            panic!("{nick} was refused: {line}\n{}", human.recent());
        }
        human
    }

    /// Joins `chan` and waits for the server's echo of our JOIN. Returns at once when
    /// already in `chan` (through ZNC, when ZNC was in it before this client attached).
    pub async fn join(&self, chan: &str) {
        let nick = self.nick();
        let (from, joined) = {
            let s = self.shared.state.lock().unwrap();
            let mut joined = false;
            for m in s.lines.iter().map(|l| Msg::parse(l)) {
                if is_join(&m, &nick, chan) {
                    joined = true;
                } else if is_part(&m, &nick, chan) {
                    joined = false;
                }
            }
            (s.lines.len(), joined)
        };
        if joined {
            return;
        }
        self.send_raw(&format!("JOIN {chan}")).await;
        self.wait_since(from, &format!("our JOIN {chan}"), REGISTRATION, |l| {
            is_join(&Msg::parse(l), &nick, chan)
        })
        .await;
    }

    /// Sends `line` + CRLF.
    ///
    /// # Panics
    /// When the write fails.
    pub async fn send_raw(&self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.send_bytes(&bytes).await;
    }

    /// Sends exactly `bytes` (no CRLF is added), e.g. a line that is not UTF-8.
    ///
    /// # Panics
    /// When the write fails: see [`Human::try_send_bytes`].
    pub async fn send_bytes(&self, bytes: &[u8]) {
        if let Err(e) = self.try_send_bytes(bytes).await {
            panic!(
                "{}: writing {:?}: {e}",
                self.nick(),
                String::from_utf8_lossy(bytes)
            );
        }
    }

    /// Sends exactly `bytes`, returning the write's error (e.g. EPIPE after the server
    /// died).
    pub async fn try_send_bytes(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// `PRIVMSG target :text`.
    pub async fn say(&self, target: &str, text: &str) {
        self.send_raw(&format!("PRIVMSG {target} :{text}")).await;
    }

    /// The first line received so far, or later within `timeout`, that matches `pred`.
    ///
    /// # Panics
    /// On timeout, or when the connection closes first, naming `what` with the last 30
    /// lines received.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_since(0, what, timeout, pred).await
    }

    /// How many lines were received so far: a mark for [`Human::wait_since`].
    pub fn mark(&self) -> usize {
        self.shared.state.lock().unwrap().lines.len()
    }

    /// [`Human::wait_for`] among the lines received after `mark` (from [`Human::mark`]).
    pub async fn wait_since(
        &self,
        mark: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_until(what, timeout, true, |s| {
            s.lines.get(mark..)?.iter().find(|l| pred(l)).cloned()
        })
        .await
    }

    /// Waits until the server closes the connection, and says how.
    ///
    /// # Panics
    /// When it is still open after `timeout`.
    pub async fn wait_closed(&self, timeout: Duration) -> Closed {
        self.wait_until("the connection to close", timeout, false, |s| {
            s.closed.clone()
        })
        .await
    }

    /// Whether (and how) the server closed the connection so far.
    pub fn closed(&self) -> Option<Closed> {
        self.shared.state.lock().unwrap().closed.clone()
    }

    async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        fail_on_close: bool,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before checking, so no change between check and wait is missed.
        let mut changes = self.shared.changed.subscribe();
        loop {
            {
                let s = self.shared.state.lock().unwrap();
                if let Some(v) = check(&s) {
                    return v;
                }
                if fail_on_close && let Some(closed) = &s.closed {
                    panic!(
                        "{}: the connection closed ({closed:?}) while waiting for {what}; last lines:\n{}",
                        s.nick,
                        tail(&s.lines)
                    );
                }
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                panic!(
                    "{}: timed out after {timeout:?} waiting for {what}; last lines:\n{}",
                    self.nick(),
                    self.recent()
                );
            }
        }
    }

    /// Every line received so far, oldest first, without the CRLF.
    pub fn lines(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().lines.clone()
    }

    /// The capabilities the server ACKed (also those requested after a `CAP NEW`).
    pub fn caps(&self) -> Vec<String> {
        let s = self.shared.state.lock().unwrap();
        s.caps.iter().cloned().collect()
    }

    /// Our nick, as the server last told us.
    pub fn nick(&self) -> String {
        self.shared.state.lock().unwrap().nick.clone()
    }

    /// The last 30 lines, for failure messages.
    fn recent(&self) -> String {
        tail(&self.shared.state.lock().unwrap().lines)
    }

    /// Sends QUIT and waits (at most 2 s) for the server to close the connection.
    pub async fn quit(self) {
        if self.try_send_bytes(b"QUIT :bye\r\n").await.is_ok() {
            let mut changes = self.shared.changed.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while self.closed().is_none() {
                    if changes.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        }
    }
}

impl Drop for Human {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// `m` is `nick` joining `chan`.
pub fn is_join(m: &Msg, nick: &str, chan: &str) -> bool {
    m.command == "JOIN"
        && m.nick().eq_ignore_ascii_case(nick)
        && m.params
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case(chan))
}

/// `m` is `nick` leaving `chan` (PART) or being kicked from it.
fn is_part(m: &Msg, nick: &str, chan: &str) -> bool {
    let in_chan = m
        .params
        .first()
        .is_some_and(|c| c.eq_ignore_ascii_case(chan));
    match m.command {
        "PART" => in_chan && m.nick().eq_ignore_ascii_case(nick),
        "KICK" => {
            in_chan
                && m.params
                    .get(1)
                    .is_some_and(|n| n.eq_ignore_ascii_case(nick))
        }
        _ => false,
    }
}

fn is_sasl_failure(m: &Msg) -> bool {
    matches!(m.command, "902" | "904" | "905" | "906" | "907" | "908")
}

fn tail(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(30);
    lines[start..].join("\n")
}

/// Reads lines until the connection closes: stores them, answers PING, tracks caps and
/// our nick, and asks for wanted caps the server offers later (`CAP NEW`, as ZNC does
/// after `CAP END` for account-notify and extended-join).
async fn read_loop(
    mut rd: OwnedReadHalf,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    shared: Arc<Shared>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let closed = loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) => break Closed::Eof,
            Ok(n) => n,
            Err(e) => break Closed::Error(e.to_string()),
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let reply = react(&line, &shared);
            shared.update(|s| s.lines.push(line));
            if let Some(reply) = reply {
                let mut w = writer.lock().await;
                let _ = w.write_all(reply.as_bytes()).await;
            }
        }
    };
    shared.update(|s| {
        if !buf.is_empty() {
            s.lines.push(String::from_utf8_lossy(&buf).into_owned());
        }
        s.closed = Some(closed);
    });
}

/// What the reader does about `line` by itself; returns what to send back.
fn react(line: &str, shared: &Shared) -> Option<String> {
    let m = Msg::parse(line);
    match m.command {
        "PING" => Some(format!("PONG :{}\r\n", m.trailing())),
        "001" => {
            if let Some(nick) = m.params.first() {
                let nick = nick.to_string();
                shared.update(|s| s.nick = nick);
            }
            None
        }
        "NICK" => {
            let new = m.trailing().to_string();
            shared.update(|s| {
                if m.nick().eq_ignore_ascii_case(&s.nick) {
                    s.nick = new;
                }
            });
            None
        }
        "CAP" => {
            let caps = || {
                m.trailing()
                    .split_whitespace()
                    .map(|c| c.trim_start_matches('-'))
            };
            match m.params.get(1).copied() {
                Some("ACK") => shared.update(|s| {
                    for c in m.trailing().split_whitespace() {
                        match c.strip_prefix('-') {
                            Some(off) => s.caps.remove(off),
                            None => s.caps.insert(c.to_string()),
                        };
                    }
                }),
                Some("DEL") => shared.update(|s| {
                    for c in caps() {
                        s.caps.remove(c);
                    }
                }),
                Some("NEW") => {
                    let wanted: String = caps()
                        .map(|c| c.split_once('=').map_or(c, |(name, _)| name))
                        .filter(|c| WANTED_CAPS.contains(c))
                        .map(|c| format!("CAP REQ :{c}\r\n"))
                        .collect();
                    return (!wanted.is_empty()).then_some(wanted);
                }
                _ => {}
            }
            None
        }
        _ => None,
    }
}

/// One IRC line, split: `@tags :source COMMAND params... :trailing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg<'a> {
    /// Without the `@`; empty when there are none.
    pub tags: &'a str,
    /// Without the `:`; empty when there is none.
    pub source: &'a str,
    pub command: &'a str,
    /// The trailing parameter last, without its `:`.
    pub params: Vec<&'a str>,
}

impl<'a> Msg<'a> {
    pub fn parse(line: &'a str) -> Msg<'a> {
        fn word<'a>(rest: &mut &'a str) -> &'a str {
            let (w, r) = rest.split_once(' ').unwrap_or((rest, ""));
            *rest = r.trim_start_matches(' ');
            w
        }
        let mut rest = line.trim_end_matches(['\r', '\n']);
        let tags = match rest.strip_prefix('@') {
            Some(r) => {
                rest = r;
                word(&mut rest)
            }
            None => "",
        };
        let source = match rest.strip_prefix(':') {
            Some(r) => {
                rest = r;
                word(&mut rest)
            }
            None => "",
        };
        let command = word(&mut rest);
        let mut params = Vec::new();
        while !rest.is_empty() {
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing);
                break;
            }
            params.push(word(&mut rest));
        }
        Msg {
            tags,
            source,
            command,
            params,
        }
    }

    /// The nick in the source (`nick!user@host` → `nick`).
    pub fn nick(&self) -> &'a str {
        self.source.split('!').next().unwrap_or("")
    }

    /// The last parameter (a message's text), or "".
    pub fn trailing(&self) -> &'a str {
        self.params.last().copied().unwrap_or("")
    }

    /// The value of tag `key`, unescaped; `Some("")` for a tag without a value.
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags.split(';').find_map(|t| {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            (k == key).then(|| unescape_tag(v))
        })
    }
}

fn unescape_tag(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------

/// A daemon with its stdout and stderr appended to `log`; SIGKILLed and reaped on drop.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, program: &str, args: &[String], log: PathBuf) -> Proc {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({program} {args:?}): {e}"));
        Proc { name, child, log }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 40 lines of output, for failure messages.
    fn tail(&self) -> String {
        let out = self.output();
        let lines: Vec<&str> = out.lines().collect();
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill -s {sig} {}: {e}", self.name));
        assert!(status.success(), "kill -s {sig} {} failed", self.name);
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn require(bin: &str, package: &str) {
    assert!(
        Path::new(bin).exists(),
        "{package} is not installed: apt-get install {package} (scripts/test.sh installs it)"
    );
}

/// Whether this process runs as root (`/proc/self` belongs to our effective uid).
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `setpriv` arguments that run `program` as nobody.
fn nobody_args(program: &str) -> Vec<String> {
    require(SETPRIV, "util-linux");
    ["--reuid=65534", "--regid=65534", "--clear-groups", program]
        .map(String::from)
        .to_vec()
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
        .unwrap_or_else(|e| panic!("chown nobody {}: {e}", path.display()));
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_nobody(&entry.unwrap().path());
        }
    }
}

async fn wait_for_port(port: u16, p: &mut Proc) {
    wait_for_port_within(port, p, IRCD_READY).await;
}

/// Waits until `port` accepts a connection; panics with `p`'s output if it exits first.
async fn wait_for_port_within(port: u16, p: &mut Proc, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = p.exited() {
            panic!(
                "{} exited with {status} before listening on {port}:\n{}",
                p.name,
                p.tail()
            );
        }
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not listen on {port} within {timeout:?}:\n{}",
            p.name,
            p.tail()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------
// Smoke tests: the harness works, and the behaviour tocsin relies on is real.
// ---------------------------------------------------------------------------------

const SEEN: Duration = Duration::from_secs(5);

fn privmsg_with<'a>(line: &'a str, from: &str, text: &str) -> Option<Msg<'a>> {
    let m = Msg::parse(line);
    (m.command == "PRIVMSG" && m.nick() == from && m.trailing() == text).then_some(m)
}

/// A user logged in with SASL speaks with `account=<account>` on the message (what an
/// ack's sender is checked by), and a user without an account speaks without one.
#[tokio::test(flavor = "multi_thread")]
async fn ircnet_account_tag_names_the_sasl_account_and_only_it() {
    let net = IrcNet::start().await;
    net.register("alice", "alicepass").await;

    // InspIRCd sends 001 on its once-a-second tick: connect in parallel.
    // alice's nick is not her account: the account is the identity.
    let (alice, bob, mallory) = tokio::join!(
        Human::connect(net.port(), "oncall1", Login::Sasl("alice", "alicepass")),
        Human::connect(net.port(), "bob", Login::None),
        Human::connect(net.port(), "mallory", Login::None),
    );
    assert!(
        bob.caps().iter().any(|c| c == "account-tag"),
        "account-tag is ACKed: {:?}",
        bob.caps()
    );
    tokio::join!(alice.join(ALERTS), bob.join(ALERTS), mallory.join(ALERTS));

    alice.say(ALERTS, "ack 42").await;
    let line = bob
        .wait_for("alice's ack", SEEN, |l| {
            privmsg_with(l, "oncall1", "ack 42").is_some()
        })
        .await;
    let m = Msg::parse(&line);
    assert_eq!(m.tag("account").as_deref(), Some("alice"), "{line}");
    assert!(m.tag("time").is_some(), "server-time: {line}");

    mallory.say(ALERTS, "ack 42").await;
    let line = bob
        .wait_for("mallory's ack", SEEN, |l| {
            privmsg_with(l, "mallory", "ack 42").is_some()
        })
        .await;
    assert_eq!(Msg::parse(&line).tag("account"), None, "{line}");
}

/// Through ZNC (logged in upstream with SASL as `agent`): a channel message reaches the
/// attached client, InspIRCd dying and coming back shows up as *status messages with the
/// client still attached, and ZNC dying is an EOF.
#[tokio::test(flavor = "multi_thread")]
async fn ircnet_znc_relays_the_channel_survives_the_ircd_and_eofs_when_killed() {
    let mut net = IrcNet::start().await;
    tokio::join!(
        net.register("agent", "agentpass"),
        net.register("alice", "alicepass")
    );
    let (mut znc, alice) = tokio::join!(
        Znc::start(net.port(), Some(("agent", "agentpass"))),
        Human::connect(net.port(), "alice", Login::Sasl("alice", "alicepass")),
    );
    let agent = Human::connect(znc.port(), "agent", Login::Pass(znc.pass_line())).await;
    tokio::join!(agent.join(ALERTS), alice.join(ALERTS));

    // ZNC is logged in upstream as the account agent.
    alice.send_raw("WHOIS agent").await;
    alice
        .wait_for("WHOIS agent: 330 (logged in as)", SEEN, |l| {
            let m = Msg::parse(l);
            m.command == "330" && m.params.get(1..3) == Some(&["agent", "agent"][..])
        })
        .await;

    alice.say(ALERTS, "ack 7").await;
    agent
        .wait_for("alice's message through ZNC", SEEN, |l| {
            privmsg_with(l, "alice", "ack 7").is_some()
        })
        .await;

    net.kill_ircd().await;
    agent
        .wait_for("*status: disconnected", SEEN, |l| {
            let m = Msg::parse(l);
            m.source.starts_with("*status!") && m.trailing().starts_with("Disconnected from IRC")
        })
        .await;
    let mark = agent.mark();
    net.restart_ircd().await;
    agent
        .wait_since(mark, "ZNC back in #alerts", Duration::from_secs(10), |l| {
            is_join(&Msg::parse(l), "agent", ALERTS)
        })
        .await;
    assert!(agent.closed().is_none(), "the client stays attached");

    // A killed ZNC closes the connection: an orderly EOF, or a reset when the kernel still
    // held bytes ZNC had not read (which one depends on timing, not on ZNC).
    znc.kill().await;
    match agent.wait_closed(SEEN).await {
        Closed::Eof => {}
        Closed::Error(e) if e.contains("reset") => {}
        other => panic!("the connection to a killed ZNC ended as {other:?}"),
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it; the key and certificate go
/// to `pem` (ZNC's `znc.pem`). Returns the CA's PEM file.
fn make_certificates(dir: &Path, pem: &Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tocsin test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let key = fs::read_to_string(dir.join("server.key")).unwrap();
    let cert = fs::read_to_string(dir.join("server.pem")).unwrap();
    fs::write(pem, format!("{key}{cert}")).unwrap();
    dir.join("ca.pem")
}
