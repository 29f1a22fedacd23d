//! The supervisor: connects (TCP, optional TLS, each bounded in time), runs a
//! [`Session`] over the connection, paces what is sent, and reconnects with jittered
//! backoff whenever the session or the socket gives up. Nothing else in tocsin touches
//! the socket: announcements and command answers come in through an [`IrcHandle`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::intake::Intake;
use super::replay::{Mark, Tally};
use super::sendq::{Pacer, SendQueue};
use super::session::{Ask, Event, Session, SessionConfig};
use super::text::{clean_line, payload_budget, split_to_fit};
use super::wire::{self, Read};
use crate::config::irc::IrcSourceConfig;
use crate::config::{Config, IrcSecrets};
use crate::engine::AlertBatch;
use crate::runtime::{Importance, Supervisor, TaskHandle};
use crate::source::irc::{Patterns, Reading};
use crate::time::{Clock, Timestamp, human};

/// Where alert lines and commands go: the runtime implements it on the engine.
#[async_trait]
pub trait Desk: Send + Sync + 'static {
    /// An alert line matched a pattern.
    async fn alert(&self, batch: AlertBatch) -> Result<(), String>;
    /// A command from chat; the answer is said back to `ask.reply_to`.
    async fn command(&self, ask: Ask, link: &LinkStatus) -> String;
    /// The replay mark an earlier run kept (how far it had heard the channels); `None`
    /// on a first start, or when it cannot be read (then said in the log).
    async fn replay_mark(&self) -> Option<Mark>;
    /// Keeps the replay mark for the next run. Called only once every alert line heard
    /// before it is recorded.
    async fn save_replay_mark(&self, mark: &Mark) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Connecting,
    /// Registered, and (through a bouncer) the bouncer's network is connected.
    Up,
    /// Registered with a bouncer whose own IRC network is not connected.
    UpstreamDown,
    Down,
}

/// What the link looks like now, for `!status`, `/api/v1/channels` and metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkStatus {
    pub state: LinkState,
    #[serde(with = "crate::time::rfc3339")]
    pub since: Timestamp,
    /// Why it is not up, or what it is connected to.
    pub detail: String,
    pub server: String,
    pub nick: String,
    pub joined: Vec<String>,
    pub caps: Vec<String>,
    /// Whether the IRC network itself (not just a bouncer) answers.
    pub probe: ProbeStatus,
    /// Alert lines ignored since start because their sender was not logged in to the
    /// pattern's `from_account`.
    pub forged_lines: u64,
}

/// The end-to-end check: did the network (not just the bouncer) answer our own WHOIS?
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeStatus {
    /// `None` until the first answer or timeout on this connection.
    pub ok: Option<bool>,
    pub detail: String,
    /// When `ok` last changed.
    #[serde(with = "crate::time::rfc3339")]
    pub since: Timestamp,
}

impl ProbeStatus {
    fn unknown(since: Timestamp) -> Self {
        ProbeStatus {
            ok: None,
            detail: NOT_PROBED.into(),
            since,
        }
    }
}

const NOT_PROBED: &str = "not checked yet on this connection";

/// How often what the link has heard (PONGs move it in a quiet channel) is saved as the
/// replay mark; an alert line saves it at once.
const MARK_EVERY: Duration = Duration::from_secs(10);

/// A line to a nick is delivered only if the server does not answer 401 (no such nick)
/// within this of writing it: one round trip, through a bouncer too.
const NICK_ABSENT_WITHIN: Duration = Duration::from_secs(3);

/// How long a stopping link waits for its alert lines and the last replay mark to be
/// recorded.
const FLUSH: Duration = Duration::from_secs(3);

/// How a `say` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SayError {
    #[error("the IRC link is down: {0}")]
    Down(String),
    #[error("not in {0}: {1}")]
    NotJoined(String, String),
    #[error("the IRC send queue is full (a storm of announcements); not queued")]
    Full,
    #[error("the line was not written within {0}")]
    Timeout(String),
    /// The server answered 401: nobody holds the nick, so nobody read the page.
    #[error("{0} is not on IRC (401 No such nick): nobody read it")]
    NoSuchNick(String),
}

enum Request {
    Say {
        target: String,
        text: String,
        notice: bool,
        written: oneshot::Sender<Result<(), SayError>>,
    },
}

/// How the rest of tocsin talks through the link.
#[derive(Clone)]
pub struct IrcHandle {
    tx: mpsc::Sender<Request>,
    status: watch::Receiver<LinkStatus>,
}

impl IrcHandle {
    /// Says `text` (cleaned, split to fit) to a channel or nick, and waits until the
    /// last line is written to the connection, at most `timeout`.
    pub async fn say(
        &self,
        target: &str,
        text: &str,
        notice: bool,
        timeout: Duration,
    ) -> Result<(), SayError> {
        let (written, rx) = oneshot::channel();
        let req = Request::Say {
            target: target.to_string(),
            text: text.to_string(),
            notice,
            written,
        };
        let down = || SayError::Down("tocsin is shutting down".into());
        self.tx.send(req).await.map_err(|_| down())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SayError::Down(
                "the connection dropped before the line was written".into(),
            )),
            Err(_) => Err(SayError::Timeout(human(timeout))),
        }
    }

    /// Watches state changes (tests, the watchdog).
    pub fn watch(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }
}

/// Everything the link needs, from the config.
pub struct LinkConfig {
    pub server: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub session: SessionConfig,
    pub connect_timeout: Duration,
    pub reconnect_max: Duration,
    pub flood_burst: u32,
    pub flood_interval: Duration,
    pub patterns: Patterns,
}

impl LinkConfig {
    pub fn from_config(cfg: &Config, irc: &IrcSourceConfig) -> Result<Self, String> {
        let IrcSecrets {
            password,
            sasl_password,
        } = &cfg.irc_secrets;
        let tls = if irc.tls {
            Some(Arc::new(tls_config(irc, cfg)?))
        } else {
            None
        };
        Ok(LinkConfig {
            server: irc.server.clone(),
            tls,
            session: SessionConfig {
                nick: irc.nick.clone(),
                username: irc.username().to_string(),
                realname: irc.realname.clone(),
                password: password.as_ref().map(|p| p.expose().to_string()),
                sasl: irc
                    .sasl_username
                    .clone()
                    .zip(sasl_password.as_ref().map(|p| p.expose().to_string())),
                channels: irc.channels.clone(),
                ping_interval: irc.ping_interval.0,
                ping_timeout: irc.ping_timeout.0,
                register_timeout: irc.register_timeout.0,
                probe_interval: irc.probe_interval.0,
                probe_timeout: irc.probe_timeout.0,
                account_masks: irc
                    .patterns
                    .iter()
                    .filter(|p| p.from_account.is_some())
                    .map(|p| p.from.clone())
                    .collect(),
            },
            connect_timeout: irc.connect_timeout.0,
            reconnect_max: irc.reconnect_max.0,
            flood_burst: irc.flood_burst,
            flood_interval: irc.flood_interval.0,
            patterns: Patterns::new(&irc.patterns)?,
        })
    }
}

fn tls_config(irc: &IrcSourceConfig, cfg: &Config) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match &irc.tls_ca_file {
        Some(file) => {
            let base = cfg.path.as_deref().and_then(std::path::Path::parent);
            let path = base.map_or(file.clone(), |b| b.join(file));
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&path)
                .map_err(|e| format!("cannot read tls_ca_file {}: {e}", path.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "tls_ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| format!("TLS setup: {e}"))?
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// Starts the link as the supervised (essential) task `irc-link`; it runs until `stop`.
///
/// A link task that panics is started again on a fresh session, like a reconnect after
/// a process restart: what it had not announced yet is lost, and the backlog it is
/// replayed is read as after a start (commands in it never act). The handle keeps
/// working across restarts, and the link's status says down meanwhile.
pub fn start(
    cfg: LinkConfig,
    desk: Arc<dyn Desk>,
    clock: Arc<dyn Clock>,
    stop: &CancellationToken,
    tasks: &Supervisor,
) -> (IrcHandle, TaskHandle) {
    let (tx, rx) = mpsc::channel(256);
    let (status_tx, status_rx) = watch::channel(LinkStatus {
        state: LinkState::Connecting,
        since: clock.now(),
        detail: format!("connecting to {}", cfg.server),
        server: cfg.server.clone(),
        nick: cfg.session.nick.clone(),
        joined: Vec::new(),
        caps: Vec::new(),
        probe: ProbeStatus::unknown(clock.now()),
        forged_lines: 0,
    });
    // What outlives one run of the link: the requests' queue and the status.
    let cfg = Arc::new(cfg);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let task_stop = stop.clone();
    let status = status_tx;
    // A line that could not be recorded freezes the replay mark for this process, across
    // restarts of the link task too.
    let marks_frozen = Arc::new(AtomicBool::new(false));
    let task = tasks.spawn("irc-link", Importance::Essential, stop, move || {
        let (cfg, desk, clock) = (cfg.clone(), desk.clone(), clock.clone());
        let (status, rx, stop) = (status.clone(), rx.clone(), task_stop.clone());
        let marks_frozen = marks_frozen.clone();
        async move {
            let _down = DownWhenGone {
                status: status.clone(),
                clock: clock.clone(),
            };
            let link = Link {
                session: Session::new(cfg.session.clone()),
                sendq: SendQueue::new(Pacer::new(cfg.flood_burst, cfg.flood_interval)),
                cfg,
                desk,
                clock,
                status,
                rx: rx.lock_owned().await,
                missed: Vec::new(),
                to_nicks: std::collections::HashMap::new(),
                upstream: None,
                offered_mark: None,
                offered_at: None,
                marks_frozen,
            };
            link.run(stop).await
        }
    });
    (
        IrcHandle {
            tx,
            status: status_rx,
        },
        task,
    )
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An announcement that could not be made while the link was down.
struct Missed {
    target: String,
    text: String,
}

/// Marks the link down when its task ends: a panicked link must not look up to the
/// watchdog while the supervisor waits to restart it.
struct DownWhenGone {
    status: watch::Sender<LinkStatus>,
    clock: Arc<dyn Clock>,
}

impl Drop for DownWhenGone {
    fn drop(&mut self) {
        let now = self.clock.now();
        self.status.send_modify(|s| {
            if s.state != LinkState::Down {
                s.since = now;
                s.state = LinkState::Down;
            }
            s.detail = "the IRC link task stopped".into();
            s.joined.clear();
        });
    }
}

struct Link {
    cfg: Arc<LinkConfig>,
    session: Session,
    sendq: SendQueue,
    desk: Arc<dyn Desk>,
    clock: Arc<dyn Clock>,
    status: watch::Sender<LinkStatus>,
    /// Held for the life of this run; the next run after a restart takes it over.
    rx: tokio::sync::OwnedMutexGuard<mpsc::Receiver<Request>>,
    missed: Vec<Missed>,
    /// Lines to nicks written in the last [`NICK_ABSENT_WITHIN`], by folded nick: a 401
    /// for the nick turns each into a failure.
    to_nicks: std::collections::HashMap<String, Vec<oneshot::Sender<()>>>,
    /// Through a bouncer: whether its network is connected (None: not a bouncer, or
    /// not known yet).
    upstream: Option<bool>,
    /// The replay mark last handed to the worker, and when.
    offered_mark: Option<Mark>,
    offered_at: Option<Instant>,
    /// Set when an alert line could not be recorded: no later mark may be saved in this
    /// run, or a restart would skip that line in the bouncer's backlog for good.
    marks_frozen: Arc<AtomicBool>,
}

impl Link {
    /// Connects and reconnects until `stop`. The worker that records alerts and answers
    /// commands is this run's: if it panics, so does the link (and both are restarted).
    async fn run(mut self, stop: CancellationToken) {
        if let Some(mark) = self.desk.replay_mark().await {
            info!(
                heard = %mark.heard.to_rfc3339(),
                "IRC replay mark restored: backlog the bouncer replays that was said after it is read, the rest was heard before"
            );
            self.session.restore_replay(&mark);
            self.offered_mark = Some(mark);
        }
        let (mut intake, workers) = Intake::start(
            self.desk.clone(),
            self.status.subscribe(),
            self.marks_frozen.clone(),
        );
        let (mut alerts, mut commands, mut answers) =
            (workers.alerts, workers.commands, workers.answers);
        tokio::select! {
            _ = self.connect_until(&stop, &mut intake, &mut answers) => {}
            ended = &mut alerts => worker_ended(ended),
            ended = &mut commands => worker_ended(ended),
        }
        // What was heard up to the stop is kept for the next run, after the alert lines
        // heard before it. A command still with the desk finishes on its own.
        let mark = (self.session.replay_mark()).filter(|m| self.offered_mark.as_ref() != Some(m));
        let flushed = async move {
            intake.close(mark).await;
            let _ = alerts.await;
        };
        if tokio::time::timeout(FLUSH, flushed).await.is_err() {
            warn!(
                "IRC alert lines were still being recorded {} after the link stopped",
                human(FLUSH)
            );
        }
        drop(commands);
    }

    /// Connects, serves and reconnects until `stop`.
    async fn connect_until(
        &mut self,
        stop: &CancellationToken,
        intake: &mut Intake,
        answers: &mut mpsc::Receiver<(String, String)>,
    ) {
        let mut backoff = self.backoff();
        let mut down_since: Option<Timestamp> = None;
        let mut last_failure: Option<String> = None;
        loop {
            // While reconnecting, the reason the link went down stays in view: that is
            // what a page about the outage must say, not "connecting".
            let detail = match &last_failure {
                None => format!("connecting to {}", self.cfg.server),
                Some(why) => format!("reconnecting to {} after: {why}", self.cfg.server),
            };
            self.set_state(LinkState::Connecting, detail);
            self.set_probe(None, NOT_PROBED.into());
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.connect() => r,
            };
            let reason = match result {
                Ok(stream) => {
                    let registered_at = Instant::now();
                    let why = self
                        .serve(stream, stop, intake, answers, &mut down_since)
                        .await;
                    if stop.is_cancelled() {
                        return;
                    }
                    // A connection that lived a while earns a fresh, short backoff.
                    if registered_at.elapsed() > Duration::from_secs(60) {
                        backoff = self.backoff();
                    }
                    why
                }
                Err(e) => e,
            };
            self.sendq.clear();
            self.to_nicks.clear();
            self.upstream = None;
            down_since.get_or_insert(self.clock.now());
            let wait = backoff
                .next()
                .unwrap_or(self.cfg.reconnect_max)
                .min(self.cfg.reconnect_max);
            warn!(server = %self.cfg.server, %reason, retry_in = %human(wait), "IRC link down");
            self.set_state(LinkState::Down, reason.clone());
            last_failure = Some(reason);
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            // Announcements asked for while down fail at once (and are remembered).
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = &mut sleep => break,
                    Some(Request::Say { target, text, written, .. }) = self.rx.recv() => {
                        self.refuse(target, text, written);
                    }
                }
            }
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(self.cfg.reconnect_max)
            .with_jitter()
            .without_max_times()
            .build()
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, String> {
        let server = &self.cfg.server;
        let limit = self.cfg.connect_timeout;
        let tcp = tokio::time::timeout(limit, TcpStream::connect(server))
            .await
            .map_err(|_| format!("connecting to {server} timed out after {}", human(limit)))?
            .map_err(|e| format!("cannot connect to {server}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.cfg.tls else {
            return Ok(Box::new(tcp));
        };
        let host = server.rsplit_once(':').map_or(server.as_str(), |(h, _)| h);
        let name =
            rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))?;
        let stream = tokio::time::timeout(
            limit,
            tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| {
            format!(
                "TLS handshake with {server} timed out after {}",
                human(limit)
            )
        })?
        .map_err(|e| format!("TLS handshake with {server} failed: {e}"))?;
        Ok(Box::new(stream))
    }

    /// Runs one connection until it dies; returns why.
    async fn serve(
        &mut self,
        stream: Box<dyn Stream>,
        stop: &CancellationToken,
        intake: &mut Intake,
        answers: &mut mpsc::Receiver<(String, String)>,
        down_since: &mut Option<Timestamp>,
    ) -> String {
        let (r, mut w) = tokio::io::split(stream);
        let hello = self.session.connect(self.clock.now());
        if let Some(why) = self.apply(hello, intake, down_since) {
            return why;
        }
        let mut read = Box::pin(read_next(BufReader::new(r), Vec::new()));
        loop {
            let now_wall = self.clock.now();
            let timer = self
                .session
                .next_deadline()
                .map(|d| d.since(now_wall))
                .unwrap_or(Duration::from_secs(3600));
            let send_wait = match self.sendq.next(Instant::now()) {
                Ok(out) => {
                    if let Err(e) = write_line(&mut w, &out.line).await {
                        return format!("writing to {} failed: {e}", self.cfg.server);
                    }
                    if let Some(done) = out.written {
                        let _ = done.send(());
                    }
                    continue;
                }
                Err(Some(at)) => at.saturating_duration_since(Instant::now()),
                Err(None) => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = stop.cancelled() => {
                    let _ = write_line(&mut w, "QUIT :tocsin is stopping").await;
                    return "stopping".into();
                }
                // Alert lines wait for the worker: nothing more is read until they are
                // in (the server holds the rest), while pages and PONGs still go out.
                _ = intake.unhold(), if intake.is_holding() => {}
                (result, rr, bb) = &mut read, if !intake.is_holding() => {
                    let events = match result {
                        Ok(Read::Line(line)) => {
                            debug!(target: "tocsin::irc::wire", "<- {line}");
                            match wire::parse(&line) {
                                Some(m) => self.session.handle(&m, self.clock.now()),
                                None => {
                                    debug!(line = %clean_line(&line), "unparseable IRC line ignored");
                                    Vec::new()
                                }
                            }
                        }
                        Ok(Read::TooLong) => {
                            warn!("a line over {} bytes from the server was skipped", wire::MAX_LINE);
                            Vec::new()
                        }
                        Ok(Read::Eof) => return format!("{} closed the connection", self.cfg.server),
                        Err(e) => return format!("reading from {} failed: {e}", self.cfg.server),
                    };
                    read = Box::pin(read_next(rr, bb));
                    if let Some(why) = self.apply(events, intake, down_since) {
                        return why;
                    }
                }
                _ = tokio::time::sleep(timer) => {
                    let events = self.session.tick(self.clock.now());
                    if let Some(why) = self.apply(events, intake, down_since) {
                        return why;
                    }
                }
                _ = tokio::time::sleep(send_wait) => {}
                Some(req) = self.rx.recv() => self.accept(req),
                Some((to, text)) = answers.recv() => self.reply(&to, &text),
            }
        }
    }

    /// Acts on session events; `Some(reason)` when the connection must go.
    fn apply(
        &mut self,
        events: Vec<Event>,
        intake: &mut Intake,
        down_since: &mut Option<Timestamp>,
    ) -> Option<String> {
        for e in events {
            match e {
                Event::Send(line) => {
                    debug!(target: "tocsin::irc::wire", "-> {}", redact(&line));
                    self.sendq.urgent(line);
                }
                Event::Whois(line) => {
                    debug!(target: "tocsin::irc::wire", "-> {line} (paced)");
                    self.sendq.whois(line);
                }
                Event::Reply { to, text } => self.reply(&to, &text),
                Event::Registered {
                    server,
                    bouncer_only,
                } => {
                    info!(%server, nick = %self.session.nick(), bouncer_only, "IRC registered");
                    self.sendq.registered();
                    self.upstream = if bouncer_only {
                        Some(false)
                    } else {
                        self.upstream.map(|_| true)
                    };
                    self.refresh_state(&server);
                }
                Event::Upstream { connected, detail } => {
                    if connected {
                        info!(%detail, "the bouncer is connected to its IRC network");
                    } else {
                        warn!(%detail, "the bouncer lost its IRC network");
                    }
                    self.upstream = Some(connected);
                    self.refresh_state(&detail);
                }
                Event::Joined(channel) => {
                    info!(%channel, "joined");
                    if self.upstream == Some(false) {
                        // Joins are relayed by the bouncer only once its network is back.
                        self.upstream = Some(true);
                    }
                    self.refresh_state("");
                    self.announce_missed(&channel, down_since);
                }
                Event::Left { channel, reason } => {
                    warn!(%channel, %reason, "not in channel; rejoining");
                    self.refresh_state(&reason);
                }
                Event::Said(said) => match self.cfg.patterns.read(
                    &said.hostmask,
                    said.account.as_deref(),
                    said.channel.as_deref(),
                    &said.text,
                    said.at,
                ) {
                    Reading::Alert(batch) => {
                        intake.alert(batch);
                        self.offer_mark(intake, true);
                    }
                    Reading::Forged { wanted, account } => {
                        warn!(
                            from = %said.hostmask,
                            account = account.as_deref().unwrap_or("(none)"),
                            from_account = %wanted,
                            line = %clean_line(&said.text),
                            "IRC alert line ignored: its sender is not logged in to the pattern's from_account (someone else holds the nick?)"
                        );
                        self.status.send_modify(|s| s.forged_lines += 1);
                    }
                    Reading::Nothing => {}
                },
                Event::Replayed(tally) => log_replay(&tally),
                Event::NoSuchNick(nick) => {
                    for absent in self
                        .to_nicks
                        .remove(&self.session.fold(&nick))
                        .unwrap_or_default()
                    {
                        let _ = absent.send(());
                    }
                }
                Event::Command(ask) => intake.command(ask),
                Event::Probe { ok, detail } => {
                    let was = self.status.borrow().probe.ok;
                    if !ok {
                        warn!(%detail, "IRC end-to-end probe failed");
                    } else if was == Some(false) {
                        info!(%detail, "IRC end-to-end probe answered again");
                    } else {
                        debug!(%detail, "IRC end-to-end probe answered");
                    }
                    self.set_probe(Some(ok), detail);
                }
                Event::Ignored(why) => info!("{why}"),
                Event::Dead(why) => return Some(why),
            }
        }
        self.offer_mark(intake, false);
        None
    }

    /// Hands the replay mark to the worker when it moved: at once after an alert line
    /// (`now`), else at most every [`MARK_EVERY`].
    fn offer_mark(&mut self, intake: &mut Intake, now: bool) {
        let Some(mark) = self.session.replay_mark() else {
            return;
        };
        if self.offered_mark.as_ref() == Some(&mark)
            || !now && self.offered_at.is_some_and(|at| at.elapsed() < MARK_EVERY)
        {
            return;
        }
        if intake.mark(mark.clone()) {
            self.offered_mark = Some(mark);
            self.offered_at = Some(Instant::now());
        }
    }

    fn refresh_state(&mut self, detail: &str) {
        let registered = self.session.is_registered();
        let state = match (registered, self.upstream) {
            (false, _) => LinkState::Connecting,
            (true, Some(false)) => LinkState::UpstreamDown,
            (true, _) => LinkState::Up,
        };
        let joined: Vec<String> = self.session.joined().cloned().collect();
        let caps: Vec<String> = self.session.caps().cloned().collect();
        let nick = self.session.nick().to_string();
        let now = self.clock.now();
        self.status.send_modify(|s| {
            if s.state != state {
                s.since = now;
                s.state = state;
            }
            if !detail.is_empty() {
                s.detail = detail.to_string();
            }
            s.nick = nick;
            s.joined = joined;
            s.caps = caps;
        });
    }

    fn set_state(&mut self, state: LinkState, detail: String) {
        let now = self.clock.now();
        self.status.send_modify(|s| {
            if s.state != state {
                s.since = now;
                s.state = state;
            }
            s.detail = detail;
            if state != LinkState::Up {
                s.joined.clear();
            }
        });
    }

    /// The end-to-end probe's outcome; `since` moves only when `ok` changes.
    fn set_probe(&mut self, ok: Option<bool>, detail: String) {
        let now = self.clock.now();
        self.status.send_modify(|s| {
            if s.probe.ok != ok {
                s.probe.ok = ok;
                s.probe.since = now;
            }
            s.probe.detail = detail;
        });
    }

    /// A request while connected.
    fn accept(&mut self, req: Request) {
        let Request::Say {
            target,
            text,
            notice,
            written,
        } = req;
        let ready = self.session.is_registered() && self.upstream != Some(false);
        if !ready {
            return self.refuse(target, text, written);
        }
        if target.starts_with(['#', '&']) && !self.session.is_joined(&target) {
            let detail = self.status.borrow().detail.clone();
            let err = SayError::NotJoined(target.clone(), detail);
            self.missed.push(Missed { target, text });
            let _ = written.send(Err(err));
            return;
        }
        self.chat(&target, &text, notice, Some(written));
    }

    /// A request while down: fails now, and is remembered for the summary.
    fn refuse(
        &mut self,
        target: String,
        text: String,
        written: oneshot::Sender<Result<(), SayError>>,
    ) {
        let detail = self.status.borrow().detail.clone();
        // Only channels get the summary when tocsin is back; a nick's page has failed
        // over by then.
        if target.starts_with(['#', '&']) {
            self.missed.push(Missed { target, text });
        }
        let _ = written.send(Err(SayError::Down(detail)));
    }

    fn chat(
        &mut self,
        target: &str,
        text: &str,
        notice: bool,
        written: Option<oneshot::Sender<Result<(), SayError>>>,
    ) {
        let lines = self.lines(target, text, if notice { "NOTICE" } else { "PRIVMSG" });
        let (tx, rx) = oneshot::channel();
        match self.sendq.chat(lines, Some(tx)) {
            Ok(()) => {
                let absent = (!target.starts_with(['#', '&'])).then(|| self.watch_nick(target));
                let nick = target.to_string();
                if let Some(w) = written {
                    tokio::spawn(async move {
                        let mut r = rx.await.map_err(|_| {
                            SayError::Down(
                                "the connection dropped before the line was written".into(),
                            )
                        });
                        // Written to a nick: delivered unless the server says nobody has it.
                        // A link that drops meanwhile leaves it written.
                        if r.is_ok()
                            && let Some(absent) = absent
                            && let Ok(Ok(())) =
                                tokio::time::timeout(NICK_ABSENT_WITHIN, absent).await
                        {
                            r = Err(SayError::NoSuchNick(nick));
                        }
                        let _ = w.send(r);
                    });
                }
            }
            Err(_) => {
                if let Some(w) = written {
                    let _ = w.send(Err(SayError::Full));
                }
            }
        }
    }

    /// Hears a 401 about `nick` until the returned receiver is dropped.
    fn watch_nick(&mut self, nick: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        // Waiters that gave up (their window passed) go, so the map stays small.
        self.to_nicks.retain(|_, waiting| {
            waiting.retain(|w| !w.is_closed());
            !waiting.is_empty()
        });
        self.to_nicks
            .entry(self.session.fold(nick))
            .or_default()
            .push(tx);
        rx
    }

    /// An answer to a command: behind every page, in its own queue; dropped when that
    /// is full (the asker can ask again), never in a page's way.
    fn reply(&mut self, to: &str, text: &str) {
        let lines = self.lines(to, text, "PRIVMSG");
        if self.sendq.reply(lines).is_err() {
            warn!(%to, "an answer to an IRC command was dropped: too many answers are waiting");
        }
    }

    /// `text` cleaned and split into `command` lines to `target` that fit the server's
    /// limit.
    fn lines(&self, target: &str, text: &str, command: &str) -> Vec<String> {
        let budget = payload_budget(
            self.session.nick(),
            &self.cfg.session.username,
            command,
            target,
        );
        split_to_fit(&clean_line(text), budget)
            .into_iter()
            .map(|piece| wire::raw(command, &[target, &piece]))
            .collect()
    }

    /// Back in a channel after being cut off: one line says how long, and what was
    /// missed, instead of replaying every announcement.
    fn announce_missed(&mut self, channel: &str, down_since: &mut Option<Timestamp>) {
        let since = down_since.take();
        let (mine, rest): (Vec<Missed>, Vec<Missed>) = std::mem::take(&mut self.missed)
            .into_iter()
            .partition(|m| super::mask::same_name(&m.target, channel));
        self.missed = rest;
        if mine.is_empty() {
            return;
        }
        let away = since
            .map(|s| format!(" for {}", human(self.clock.now().since(s))))
            .unwrap_or_default();
        let mut line = format!(
            "tocsin was cut off from IRC{away} and missed {} announcement{}:",
            mine.len(),
            if mine.len() == 1 { "" } else { "s" }
        );
        let budget = payload_budget(
            self.session.nick(),
            &self.cfg.session.username,
            "PRIVMSG",
            channel,
        );
        let tail = " — !incidents lists what is open";
        for (i, m) in mine.iter().enumerate() {
            let item = format!(" {};", clean_line(&m.text));
            let more = format!(" +{} more", mine.len() - i);
            if line.len() + item.len() + more.len() + tail.len() > budget {
                line.push_str(&more);
                break;
            }
            line.push_str(&item);
        }
        line.push_str(tail);
        self.chat(channel, &line, false, None);
    }
}

/// Reads the next line, giving the reader back so the select loop can keep one future.
async fn read_next<R: tokio::io::AsyncBufRead + Unpin>(
    mut r: R,
    mut buf: Vec<u8>,
) -> (std::io::Result<Read>, R, Vec<u8>) {
    let result = wire::read_line(&mut r, &mut buf).await;
    (result, r, buf)
}

async fn write_line<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 2);
    bytes.extend_from_slice(line.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Passwords never reach the log.
fn redact(line: &str) -> &str {
    if line.starts_with("PASS ")
        || line.starts_with("AUTHENTICATE ") && line != "AUTHENTICATE PLAIN"
    {
        "PASS/AUTHENTICATE (redacted)"
    } else {
        line
    }
}

/// A worker ends only when its queue closes, which the link's run owns: ending while
/// the link runs is a panic, passed on so the supervisor restarts both.
fn worker_ended(ended: Result<(), tokio::task::JoinError>) {
    match ended {
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        _ => panic!("an IRC worker stopped while the link ran"),
    }
}

/// One line per replay: how much of the bouncer's backlog was read, and why the rest
/// was not.
fn log_replay(t: &Tally) {
    let since = match (t.heard_before, t.connected_at) {
        (Some(h), _) => format!("said after tocsin last heard IRC live, {}", h.to_rfc3339()),
        (None, Some(c)) => format!(
            "nothing heard before, so only lines from this connection on, {}",
            c.to_rfc3339()
        ),
        (None, None) => "nothing heard before".to_string(),
    };
    let reasons: Vec<String> = [
        (t.older, "heard before"),
        (t.duplicate, "delivered before"),
        (t.undated, "without a time tag"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect();
    let dropped = match reasons.is_empty() {
        true => "none dropped".to_string(),
        false => format!("{} dropped: {}", t.dropped(), reasons.join(", ")),
    };
    let commands = match t.commands {
        0 => String::new(),
        n => format!("; {n} command(s) not acted on (history never acts)"),
    };
    info!(
        channel = t.target.as_deref().unwrap_or(""),
        read = t.read,
        dropped = t.dropped(),
        heard_before = t.older,
        delivered_before = t.duplicate,
        undated = t.undated,
        commands = t.commands,
        "IRC backlog replayed{}: {} line(s) read ({since}); {dropped}{commands}",
        t.target
            .as_deref()
            .map(|c| format!(" in {c}"))
            .unwrap_or_default(),
        t.read,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(irc: &str) -> Config {
        let text = format!(
            "[notifiers.console]\ntype = \"log\"\n[contacts.oncall]\nmethods = [{{ notifier = \"console\" }}]\n[policies.default]\nsteps = [{{ notify = [\"console\"] }}]\n[[routes]]\npolicy = \"default\"\n[sources.irc]\nserver = \"irc.example.net:6697\"\n{irc}\n"
        );
        crate::config::load_str(&text, None).expect("valid config")
    }

    #[test]
    fn a_missing_ca_file_stops_the_start_with_its_path() {
        let cfg = config("tls = true\ntls_ca_file = \"/nonexistent/bouncer-ca.pem\"");
        let irc = cfg.file.sources.irc.as_ref().unwrap();
        let err = LinkConfig::from_config(&cfg, irc).err().expect("refused");
        assert!(err.contains("/nonexistent/bouncer-ca.pem"), "{err}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_too() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("empty.pem");
        std::fs::write(&pem, "not a certificate\n").unwrap();
        let cfg = config(&format!("tls = true\ntls_ca_file = \"{}\"", pem.display()));
        let irc = cfg.file.sources.irc.as_ref().unwrap();
        let err = LinkConfig::from_config(&cfg, irc).err().expect("refused");
        assert!(err.contains("empty.pem"), "{err}");
    }
}
