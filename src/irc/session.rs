//! One IRC connection's protocol state, as a pure machine: a received line and the time
//! in, lines to send and events out. The link (`link.rs`) does the IO around it.
//!
//! It registers (CAP 302, SASL PLAIN, PASS for bouncers), keeps the link honest with its
//! own PING deadline, joins and rejoins, learns who is behind each nick, and hands on
//! chat lines as alert candidates or commands — never a replayed one as a command.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine as _;

use super::accounts::Accounts;
use super::command::{self, ChatCommand};
use super::mask::CaseMapping;
use super::replay::{Freshness, Mark, Replay, Tally};
use super::wire::{Msg, Source, raw};
use crate::time::Timestamp;

/// Capabilities tocsin asks for when offered.
const WANTED_CAPS: &[&str] = &[
    "server-time",
    "batch",
    "message-tags",
    "account-tag",
    "account-notify",
    "extended-join",
    "cap-notify",
];

/// The WHOX query token that marks our own account queries.
const WHOX_TOKEN: &str = "152";

/// How long a command waits for the WHOIS that tells who sent it. WHOIS lines go at the
/// chat pace, taking turns with pages, so a few queued ones need some seconds to go out.
const WHOIS_TIMEOUT: Duration = Duration::from_secs(30);

/// Commands whose sender tocsin waits to learn by WHOIS, at most (distinct nicks). A PM
/// flood from many hosts would otherwise queue one WHOIS per sender; past the cap a
/// command is answered "try again" instead.
const MAX_WHOIS: usize = 8;

/// Alert lines waiting for their sender's WHOIS, at most; past it a line is dropped and
/// said in the log (one sender's lines wait behind one WHOIS, answered in seconds).
const MAX_WAITING_LINES: usize = 1000;

/// Rejoin a channel we are not in (kicked, or the bouncer's upstream came back) this often.
const REJOIN_EVERY: Duration = Duration::from_secs(15);

/// The first end-to-end probe goes out this soon after the welcome (or after
/// `probe_interval`, when that is shorter), so a fresh link is proven quickly.
const FIRST_PROBE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub nick: String,
    pub username: String,
    pub realname: String,
    pub password: Option<String>,
    pub sasl: Option<(String, String)>,
    pub channels: Vec<String>,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub register_timeout: Duration,
    /// WHOIS our own nick this often once registered: only the network behind a
    /// bouncer answers it, where the bouncer answers PINGs itself ...
    pub probe_interval: Duration,
    /// ... and report the network unreachable when its 318 is not back within this.
    pub probe_timeout: Duration,
    /// Masks of the senders whose alert lines count only from a services account
    /// (patterns with `from_account`): their lines wait for a WHOIS like commands do
    /// when neither the account tag nor the map says who they are.
    pub account_masks: Vec<String>,
}

/// What the link must do or know after a line or a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A protocol line to send ahead of chat (PONG, CAP, JOIN, the probe's WHOIS).
    Send(String),
    /// A WHOIS asking who sent a command or an alert line: sent at the chat pace.
    Whois(String),
    /// An answer the session gives itself (too busy to learn who asked), said to `to`.
    Reply {
        to: String,
        text: String,
    },
    /// The welcome (001). `bouncer_only` when it came from ZNC itself: its upstream
    /// network is not connected.
    Registered {
        server: String,
        bouncer_only: bool,
    },
    Joined(String),
    /// We are no longer in a channel (kicked, parted, refused).
    Left {
        channel: String,
        reason: String,
    },
    /// A live line that is not a command: maybe an alert.
    Said(Said),
    /// A command, with what is known of who sent it.
    Command(Ask),
    /// A command or line ignored, and why (for the log).
    Ignored(String),
    /// A bouncer's replay of history ended: what was read of it and what was dropped.
    Replayed(Tally),
    /// The bouncer reports its upstream network state (ZNC `*status`).
    Upstream {
        connected: bool,
        detail: String,
    },
    /// The end-to-end probe: the network answered the WHOIS of our own nick (`ok`), or
    /// not within `probe_timeout`. A failure does not drop the link: the bouncer is
    /// fine, the network behind it is not answering.
    Probe {
        ok: bool,
        detail: String,
    },
    /// The server says nobody holds this nick (401), in answer to a line to it.
    NoSuchNick(String),
    /// The link is unusable; drop it and reconnect.
    Dead(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub hostmask: String,
    /// `None` for a private message.
    pub channel: Option<String>,
    pub text: String,
    pub at: Timestamp,
    /// The sender's services account when known: from the account tag, the map
    /// account-notify keeps, or (for senders in `account_masks`) a WHOIS.
    pub account: Option<String>,
}

/// A command from someone, to be authorized and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub nick: String,
    pub hostmask: String,
    /// The services account, `None` when not logged in (or it could not be learned).
    pub account: Option<String>,
    /// How the account was learned: `account-tag`, `account-notify`, `whois`, `none`.
    pub account_via: &'static str,
    /// Where the answer goes: the channel, or the nick for a private message.
    pub reply_to: String,
    pub private: bool,
    pub command: Result<ChatCommand, String>,
    /// The text as said (cleaned), for the history of a refused command.
    pub text: String,
}

pub struct Session {
    cfg: SessionConfig,
    /// Kept across connections (and across runs, through the mark the link keeps in
    /// the store): what was seen, read and heard.
    replay: Replay,
    // Per connection:
    nick: String,
    /// ZNC welcomed us (irc.znc.in) on this connection: only then do senders at
    /// `znc.in` speak for the bouncer. On a direct link anyone could set that host.
    znc_welcome: bool,
    connected_at: Timestamp,
    registered: bool,
    offered: BTreeSet<String>,
    enabled: BTreeSet<String>,
    cap_requests: usize,
    cap_ended: bool,
    sasl_busy: bool,
    whox: bool,
    joined: BTreeSet<String>,
    accounts: Accounts,
    /// How this network folds nicks and channels (ISUPPORT `CASEMAPPING`).
    casemap: CaseMapping,
    /// Commands per sender: a flood of them must not flood the server with WHOIS.
    pace: super::pace::CommandPace,
    whois: HashMap<String, Option<String>>,
    /// `user@host` of each nick a WHOIS (311) answered about: the answer counts only for
    /// the sender it was asked for, not for whoever holds the nick by then.
    whois_hosts: HashMap<String, String>,
    pending: Vec<Pending>,
    next_ping: Option<Timestamp>,
    ping_deadline: Option<Timestamp>,
    ping_token: u64,
    next_join: Option<Timestamp>,
    next_probe: Option<Timestamp>,
    /// When the outstanding probe fails; `None` when no probe is waiting.
    probe_deadline: Option<Timestamp>,
    /// When the outstanding probe's WHOIS went out; kept past its deadline so a late
    /// answer is recognised (and not mistaken for the next probe's).
    probe_sent_at: Option<Timestamp>,
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Self {
        Session {
            nick: cfg.nick.clone(),
            znc_welcome: false,
            cfg,
            replay: Replay::default(),
            connected_at: Timestamp(0),
            registered: false,
            offered: BTreeSet::new(),
            enabled: BTreeSet::new(),
            cap_requests: 0,
            cap_ended: false,
            sasl_busy: false,
            whox: false,
            joined: BTreeSet::new(),
            accounts: Accounts::default(),
            casemap: CaseMapping::default(),
            pace: super::pace::CommandPace::default(),
            whois: HashMap::new(),
            whois_hosts: HashMap::new(),
            pending: Vec::new(),
            next_ping: None,
            ping_deadline: None,
            ping_token: 0,
            next_join: None,
            next_probe: None,
            probe_deadline: None,
            probe_sent_at: None,
        }
    }

    pub fn nick(&self) -> &str {
        &self.nick
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }

    pub fn joined(&self) -> impl Iterator<Item = &String> {
        self.joined.iter()
    }

    /// A nick or channel as this network folds it, to compare names.
    pub fn fold(&self, name: &str) -> String {
        self.casemap.fold(name)
    }

    pub fn is_joined(&self, channel: &str) -> bool {
        self.joined.contains(&self.casemap.fold(channel))
    }

    /// Takes up the replay filter where an earlier run left it (its [`Mark`], from the
    /// store): history said after it is read, history before it is not.
    pub fn restore_replay(&mut self, mark: &Mark) {
        self.replay.restore(mark);
    }

    /// How far the replay filter has heard, to keep for the next run.
    pub fn replay_mark(&self) -> Option<Mark> {
        self.replay.mark()
    }

    /// Capabilities in force on this connection.
    pub fn caps(&self) -> impl Iterator<Item = &String> {
        self.enabled.iter()
    }

    /// A fresh TCP connection: forget its predecessor, and say hello.
    pub fn connect(&mut self, now: Timestamp) -> Vec<Event> {
        self.nick = self.cfg.nick.clone();
        self.znc_welcome = false;
        self.connected_at = now;
        self.registered = false;
        self.offered.clear();
        self.enabled.clear();
        self.cap_requests = 0;
        self.cap_ended = false;
        self.sasl_busy = false;
        self.whox = false;
        self.casemap = CaseMapping::default();
        self.accounts.set_casemapping(self.casemap);
        self.joined.clear();
        self.accounts.clear();
        self.whois.clear();
        self.whois_hosts.clear();
        self.pending.clear();
        self.next_ping = None;
        self.ping_deadline = None;
        self.next_join = None;
        self.next_probe = None;
        self.probe_deadline = None;
        self.probe_sent_at = None;
        let mut out: Vec<Event> = self
            .replay
            .summary()
            .map(Event::Replayed)
            .into_iter()
            .collect();
        self.replay.connected(now);
        out.push(Event::Send("CAP LS 302".into()));
        if let Some(p) = &self.cfg.password {
            out.push(Event::Send(raw("PASS", &[p])));
        }
        out.push(Event::Send(raw("NICK", &[&self.nick])));
        out.push(Event::Send(raw(
            "USER",
            &[&self.cfg.username, "0", "*", &self.cfg.realname],
        )));
        out
    }

    /// The earliest moment [`Session::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let register =
            (!self.registered).then(|| self.connected_at.plus(self.cfg.register_timeout));
        [
            register,
            self.next_ping,
            self.ping_deadline,
            self.next_join,
            self.next_probe,
            self.probe_deadline,
            self.pending.iter().map(|p| p.deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers: registration and PONG deadlines, the next PING, rejoins, the end-to-end
    /// probe and its deadline, WHOIS answers that never came.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .replay
            .summary()
            .map(Event::Replayed)
            .into_iter()
            .collect();
        if !self.registered && now >= self.connected_at.plus(self.cfg.register_timeout) {
            out.push(Event::Dead(format!(
                "no welcome (001) within {}s of connecting: the server or bouncer accepted the connection but does not answer (hung, or waiting for a password)",
                self.cfg.register_timeout.as_secs()
            )));
            return out;
        }
        if let Some(d) = self.ping_deadline
            && now >= d
        {
            out.push(Event::Dead(format!(
                "no PONG within {}s: the link is dead even if the socket looks open (a hung bouncer or VM keeps the connection and sends nothing)",
                self.cfg.ping_timeout.as_secs()
            )));
            return out;
        }
        if let Some(p) = self.next_ping
            && now >= p
        {
            self.ping_token += 1;
            out.push(Event::Send(raw(
                "PING",
                &[&format!("tocsin-{}", self.ping_token)],
            )));
            if self.ping_deadline.is_none() {
                self.ping_deadline = Some(now.plus(self.cfg.ping_timeout));
            }
            self.next_ping = Some(now.plus(self.cfg.ping_interval));
        }
        self.tick_probe(now, &mut out);
        if let Some(j) = self.next_join
            && now >= j
        {
            self.next_join = None;
            out.extend(self.join_missing(now));
        }
        let (expired, waiting): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|p| now >= p.deadline);
        self.pending = waiting;
        for p in expired {
            out.push(Event::Ignored(format!(
                "WHOIS {} got no answer within {}s; treating the sender as not logged in",
                p.nick,
                WHOIS_TIMEOUT.as_secs()
            )));
            out.push(match p.release(None) {
                Event::Command(mut ask) => {
                    ask.account_via = "none";
                    Event::Command(ask)
                }
                other => other,
            });
        }
        out
    }

    /// One received line.
    pub fn handle(&mut self, m: &Msg, now: Timestamp) -> Vec<Event> {
        // Any line proves the link carries bytes; the PONG deadline wants its own PONG
        // though, so a chatty but wedged bouncer is still caught.
        let mut out = Vec::new();
        let time = m.tag("time").and_then(Timestamp::parse_rfc3339);
        self.replay.received(m.tag("batch"), time, now);
        match m.command.as_str() {
            "PING" => out.push(Event::Send(raw("PONG", &[m.param(0)]))),
            "PONG" => {
                let token = m.params.last().map_or("", String::as_str);
                if token == format!("tocsin-{}", self.ping_token) {
                    self.ping_deadline = None;
                }
            }
            "CAP" => self.on_cap(m, &mut out),
            "AUTHENTICATE" if m.param(0) == "+" => self.on_authenticate(&mut out),
            "903" | "907" if self.sasl_busy => {
                self.sasl_busy = false;
                self.maybe_end_caps(&mut out);
            }
            "902" | "904" | "905" | "906" => {
                let who = self.cfg.sasl.as_ref().map_or("", |s| s.0.as_str());
                out.push(Event::Dead(format!(
                    "SASL login as {who:?} failed ({} {}): check sasl_username and the password",
                    m.command,
                    m.params.last().map_or("", String::as_str)
                )));
            }
            "464" => out.push(Event::Dead(
                "the server refused the password (464): check password_file; a ZNC bouncer wants user/network:password"
                    .into(),
            )),
            "ERROR" => out.push(Event::Dead(format!(
                "the server closed the link: {}",
                m.param(0)
            ))),
            "001" => self.on_welcome(m, now, &mut out),
            "005" => {
                for token in &m.params[1.min(m.params.len())..] {
                    if token == "WHOX" {
                        self.whox = true;
                    }
                    if let Some(v) = token.strip_prefix("CASEMAPPING=") {
                        self.casemap = CaseMapping::from_isupport(v);
                        self.accounts.set_casemapping(self.casemap);
                    }
                }
            }
            "433" if !self.registered => {
                self.nick.push('_');
                out.push(Event::Send(raw("NICK", &[&self.nick])));
            }
            "JOIN" => self.on_join(m, &mut out),
            "PART" => {
                let chan = m.param(0).to_string();
                self.on_leave(m.nick(), &chan, "parted", &mut out, now);
            }
            "KICK" => {
                let chan = m.param(0).to_string();
                let who = m.param(1).to_string();
                let reason = format!(
                    "kicked by {}: {}",
                    m.nick().unwrap_or("the server"),
                    m.param(2)
                );
                self.on_leave(Some(&who), &chan, &reason, &mut out, now);
            }
            "QUIT" => {
                if let Some(n) = m.nick() {
                    self.accounts.forget(n);
                }
            }
            "NICK" => {
                if let Some(old) = m.nick() {
                    let new = m.param(0);
                    if self.casemap.same(old, &self.nick) {
                        self.nick = new.to_string();
                    } else {
                        self.accounts.rename(old, new);
                    }
                }
            }
            "ACCOUNT" => {
                if let Some(n) = m.nick() {
                    self.accounts.set(n, Some(m.param(0)));
                }
            }
            "354" if m.param(1) == WHOX_TOKEN => {
                // me token user host nick account
                self.accounts.set(m.param(4), Some(m.param(5)));
            }
            "311" => {
                // me nick user host * :realname
                self.whois_hosts.insert(
                    self.casemap.fold(m.param(1)),
                    format!("{}@{}", m.param(2), m.param(3)),
                );
            }
            "330" => {
                self.whois
                    .insert(self.casemap.fold(m.param(1)), Some(m.param(2).to_string()));
            }
            "318" => {
                self.on_end_of_whois(m.param(1), &mut out);
                if self.casemap.same(m.param(1), &self.nick) {
                    self.on_probe_answer(now, &mut out);
                }
            }
            // me nick :No such nick/channel
            "401" => out.push(Event::NoSuchNick(m.param(1).to_string())),
            "471" | "473" | "474" | "475" | "403" | "405" => out.push(Event::Left {
                channel: m.param(1).to_string(),
                reason: format!("cannot join ({}): {}", m.command, m.param(2)),
            }),
            "BATCH" => {
                let r = m.param(0);
                if let Some(r) = r.strip_prefix('+') {
                    self.replay.batch_start(r, m.param(1), m.param(2));
                } else if let Some(r) = r.strip_prefix('-')
                    && let Some(tally) = self.replay.batch_end(r)
                {
                    out.push(Event::Replayed(tally));
                }
            }
            "PRIVMSG" | "NOTICE" => self.on_chat(m, now, &mut out),
            _ => {}
        }
        out
    }

    fn on_cap(&mut self, m: &Msg, out: &mut Vec<Event>) {
        let sub = m.param(1).to_ascii_uppercase();
        let list = m.params.last().map_or("", String::as_str);
        let names = || {
            list.split_whitespace()
                .map(|c| c.split('=').next().unwrap_or(c))
        };
        match sub.as_str() {
            "LS" => {
                self.offered.extend(names().map(str::to_string));
                let more = m.params.len() >= 4 && m.param(2) == "*";
                if !more {
                    self.request_caps(out);
                }
            }
            "NEW" => {
                // ZNC offers account-notify and extended-join only after registration.
                let new: Vec<String> = names().map(str::to_string).collect();
                self.offered.extend(new.iter().cloned());
                for cap in new {
                    if self.wants(&cap) && !self.enabled.contains(&cap) {
                        out.push(Event::Send(raw("CAP", &["REQ", &cap])));
                    }
                }
            }
            "DEL" => {
                for cap in names() {
                    self.offered.remove(cap);
                    self.enabled.remove(cap);
                }
            }
            "ACK" => {
                for cap in names() {
                    let cap = cap.trim_start_matches('-');
                    self.enabled.insert(cap.to_string());
                    if cap == "sasl" && self.cfg.sasl.is_some() && !self.registered {
                        self.sasl_busy = true;
                        out.push(Event::Send("AUTHENTICATE PLAIN".into()));
                    }
                }
                self.cap_requests = self.cap_requests.saturating_sub(1);
                self.maybe_end_caps(out);
            }
            "NAK" => {
                self.cap_requests = self.cap_requests.saturating_sub(1);
                self.maybe_end_caps(out);
            }
            _ => {}
        }
    }

    fn wants(&self, cap: &str) -> bool {
        WANTED_CAPS.contains(&cap) || (cap == "sasl" && self.cfg.sasl.is_some())
    }

    fn request_caps(&mut self, out: &mut Vec<Event>) {
        if self.cap_ended {
            return;
        }
        if self.cfg.sasl.is_some() && !self.offered.contains("sasl") {
            out.push(Event::Dead(
                "SASL is configured but the server does not offer it (is the services link up? for a bouncer use password_file instead)"
                    .into(),
            ));
            return;
        }
        // One REQ per capability: a REQ is all-or-nothing, and ZNC NAKs a whole line
        // for one capability it does not have.
        let wanted: Vec<String> = self
            .offered
            .iter()
            .filter(|c| self.wants(c))
            .cloned()
            .collect();
        for cap in wanted {
            self.cap_requests += 1;
            out.push(Event::Send(raw("CAP", &["REQ", &cap])));
        }
        self.maybe_end_caps(out);
    }

    fn maybe_end_caps(&mut self, out: &mut Vec<Event>) {
        if !self.cap_ended && !self.registered && self.cap_requests == 0 && !self.sasl_busy {
            self.cap_ended = true;
            out.push(Event::Send("CAP END".into()));
        }
    }

    fn on_authenticate(&mut self, out: &mut Vec<Event>) {
        let Some((user, pass)) = &self.cfg.sasl else {
            return;
        };
        let blob =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}\0{user}\0{pass}"));
        // 400-byte chunks; a final chunk of exactly 400 is followed by "+".
        let bytes = blob.as_bytes();
        for chunk in bytes.chunks(400) {
            out.push(Event::Send(format!(
                "AUTHENTICATE {}",
                std::str::from_utf8(chunk).unwrap_or("")
            )));
        }
        if bytes.len() % 400 == 0 {
            out.push(Event::Send("AUTHENTICATE +".into()));
        }
    }

    fn on_welcome(&mut self, m: &Msg, now: Timestamp, out: &mut Vec<Event>) {
        let server = match &m.source {
            Source::Server(s) => s.clone(),
            _ => String::new(),
        };
        if let Some(n) = m.params.first() {
            self.nick = n.clone();
        }
        let first = !self.registered;
        if !first {
            // The bouncer reconnected upstream: what it saw before is another session.
            self.accounts.clear();
        }
        self.registered = true;
        self.cap_ended = true;
        if first {
            self.next_ping = Some(now.plus(self.cfg.ping_interval));
            self.next_probe = Some(now.plus(self.cfg.probe_interval.min(FIRST_PROBE)));
        }
        self.znc_welcome |= server == "irc.znc.in";
        out.push(Event::Registered {
            bouncer_only: server == "irc.znc.in",
            server,
        });
        // A second 001 is ZNC relaying the real server's welcome once its upstream is
        // connected: channels are (re)joined either way.
        out.extend(self.join_missing(now));
    }

    /// The end-to-end probe's timers: a WHOIS of our own nick every `probe_interval`,
    /// and a failure when the outstanding one is not answered within `probe_timeout`.
    /// The failure leaves the link up: the bouncer answers, its network does not.
    fn tick_probe(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if let Some(d) = self.probe_deadline
            && now >= d
        {
            self.probe_deadline = None;
            out.push(Event::Probe {
                ok: false,
                detail: format!(
                    "no answer to WHOIS {} within {}s: the IRC network behind the bouncer is not answering",
                    self.nick,
                    self.cfg.probe_timeout.as_secs()
                ),
            });
        }
        if let Some(p) = self.next_probe
            && now >= p
        {
            out.push(Event::Send(raw("WHOIS", &[&self.nick])));
            if self.probe_deadline.is_none() {
                self.probe_deadline = Some(now.plus(self.cfg.probe_timeout));
                self.probe_sent_at = Some(now);
            }
            self.next_probe = Some(now.plus(self.cfg.probe_interval));
        }
    }

    /// The end of the WHOIS of our own nick: the network is there. An answer that
    /// comes after the probe already failed does not undo the failure (the next probe
    /// decides), so a network slower than `probe_timeout` does not flap.
    fn on_probe_answer(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let Some(sent) = self.probe_sent_at.take() else {
            return; // not ours: nobody asked (another client on the bouncer did)
        };
        let ms = now.since(sent).as_millis();
        if self.probe_deadline.take().is_some() {
            out.push(Event::Probe {
                ok: true,
                detail: format!("WHOIS {} answered in {ms} ms", self.nick),
            });
        } else {
            out.push(Event::Ignored(format!(
                "WHOIS {} answered after {ms} ms, later than probe_timeout ({}s); the next probe decides",
                self.nick,
                self.cfg.probe_timeout.as_secs()
            )));
        }
    }

    fn join_missing(&mut self, now: Timestamp) -> Vec<Event> {
        let missing: Vec<String> = self
            .cfg
            .channels
            .iter()
            .filter(|c| !self.joined.contains(&self.casemap.fold(c)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.next_join = Some(now.plus(REJOIN_EVERY));
        }
        missing
            .into_iter()
            .map(|c| Event::Send(raw("JOIN", &[&c])))
            .collect()
    }

    fn on_join(&mut self, m: &Msg, out: &mut Vec<Event>) {
        let Some(nick) = m.nick() else { return };
        let chan = m.param(0).to_string();
        if self.casemap.same(nick, &self.nick) {
            if self.joined.insert(self.casemap.fold(&chan)) {
                out.push(Event::Joined(chan.clone()));
            }
            if self.whox {
                out.push(Event::Send(raw(
                    "WHO",
                    &[&chan, &format!("%tnuhar,{WHOX_TOKEN}")],
                )));
            }
            if self.joined.len() >= self.cfg.channels.len() {
                self.next_join = None;
            }
        } else if self.enabled.contains("extended-join") && m.params.len() >= 2 {
            self.accounts.set(nick, Some(m.param(1)));
        }
    }

    fn on_leave(
        &mut self,
        who: Option<&str>,
        chan: &str,
        reason: &str,
        out: &mut Vec<Event>,
        now: Timestamp,
    ) {
        let Some(who) = who else { return };
        if self.casemap.same(who, &self.nick) {
            self.joined.remove(&self.casemap.fold(chan));
            // Out of the channel, tocsin no longer sees who leaves it: a nick known from
            // there could be anyone by the time it speaks. WHOIS asks again.
            self.accounts.clear();
            out.push(Event::Left {
                channel: chan.to_string(),
                reason: reason.to_string(),
            });
            self.next_join = Some(now.plus(Duration::from_secs(2)));
        } else {
            self.accounts.forget(who);
        }
    }

    fn on_chat(&mut self, m: &Msg, now: Timestamp, out: &mut Vec<Event>) {
        let target = m.param(0).to_string();
        let text = m.param(1).to_string();
        let Source::User { nick, user, host } = &m.source else {
            return;
        };
        // ZNC speaks as *status (status@znc.in) and brackets text playback as ***; only
        // a bouncer that said it is ZNC (its welcome, or its znc.in/ capabilities) is
        // believed: on a direct link `znc.in` is a host anyone's cloak could show.
        if host == "znc.in" && self.through_znc() {
            if nick == "***" {
                if let Some(tally) = self.replay.text_playback(&target, &text) {
                    out.push(Event::Replayed(tally));
                }
            } else if (user == "status" || nick.ends_with("status"))
                && let Some(e) = znc_status(&text)
            {
                if matches!(
                    e,
                    Event::Upstream {
                        connected: false,
                        ..
                    }
                ) {
                    // Nobody's comings and goings are seen until the network is back.
                    self.accounts.clear();
                }
                out.push(e);
            }
            return;
        }
        if self.casemap.same(nick, &self.nick) || is_service(nick) {
            return;
        }
        if text.starts_with('\u{1}') {
            return; // CTCP (ACTION, VERSION): never a command, never answered
        }
        let hostmask = m.hostmask().unwrap_or_default();
        let time = m.tag("time").and_then(Timestamp::parse_rfc3339);
        let private = !target.starts_with(['#', '&']);
        let key = format!("{hostmask} {target} {text}");
        let freshness = self
            .replay
            .classify(m.tag("batch"), time, m.tag("msgid"), &target, &key);
        let command = if m.command == "PRIVMSG" {
            command::parse(&text, &self.nick, private)
        } else {
            None // bots never answer NOTICEs (RFC 2812 §3.3.2): no loops
        };
        if let Some(command) = command {
            if freshness != Freshness::Live {
                if freshness == Freshness::Replayed {
                    self.replay.command_ignored();
                }
                out.push(Event::Ignored(format!(
                    "{freshness:?} command from {hostmask} ignored: {:?}",
                    super::text::clean_line(&text)
                )));
                return;
            }
            let sender = self.casemap.fold(
                hostmask
                    .split_once('!')
                    .map_or(hostmask.as_str(), |(_, uh)| uh),
            );
            if let super::pace::Verdict::Drop { first } = self.pace.check(&sender, now) {
                if first {
                    out.push(Event::Ignored(format!(
                        "{hostmask} gives more than {} commands per {} s; the rest are dropped",
                        super::pace::PER_WINDOW,
                        super::pace::WINDOW.as_secs()
                    )));
                }
                return;
            }
            let ask = Ask {
                nick: nick.clone(),
                hostmask,
                account: None,
                account_via: "none",
                reply_to: if private { nick.clone() } else { target },
                private,
                command,
                text: super::text::clean_line(&text),
            };
            self.resolve_sender(m, ask, now, out);
            return;
        }
        if self.replay.take_alert(freshness, time, &key) {
            let said = Said {
                hostmask,
                channel: (!private).then_some(target),
                text,
                at: time.unwrap_or(now),
                account: None,
            };
            self.resolve_line_sender(m, said, now, out);
        }
    }

    /// Whether this connection is to ZNC.
    fn through_znc(&self) -> bool {
        self.znc_welcome || self.offered.iter().any(|c| c.starts_with("znc.in/"))
    }
}

/// Services never give commands; their notices are not chat.
fn is_service(nick: &str) -> bool {
    [
        "nickserv",
        "chanserv",
        "memoserv",
        "operserv",
        "botserv",
        "hostserv",
        "bouncerserv",
    ]
    .iter()
    .any(|s| nick.eq_ignore_ascii_case(s))
}

/// ZNC's `*status` lines about its upstream network (untranslated English: the bot's
/// ZNC user should keep the default language).
fn znc_status(text: &str) -> Option<Event> {
    if text == "Connected!" {
        return Some(Event::Upstream {
            connected: true,
            detail: text.into(),
        });
    }
    let down = [
        "Disconnected from IRC",
        "Cannot connect to IRC",
        "IRC connection timed out",
        "Connection Refused",
        "You are currently disconnected from IRC",
    ];
    down.iter()
        .any(|d| text.starts_with(d))
        .then(|| Event::Upstream {
            connected: false,
            detail: text.into(),
        })
}

mod senders;
use senders::Pending;
#[cfg(test)]
mod tests;
