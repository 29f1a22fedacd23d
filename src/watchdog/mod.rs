//! The meta-watchdog: every channel of the alert path is watched, and a channel that
//! goes dark is an incident, paged through the channels that still work.
//!
//! - [`board`]: the pure health board (checks, deadlines, hold-down, decisions).
//! - [`outage`]: a decision as an engine input (a firing or resolved watchdog alert).
//! - [`probes`]: the IO that feeds the board: notifier checks, peers, the outside ping.
//! - [`self_test`]: the scheduled test page.
//!
//! [`Watchdog`] is the shared handle: sources report heartbeats, the dispatcher asks
//! whether a notifier may be used and reports how sends went, the API shows the board.
//! [`run`] evaluates the board twice a second and turns outages into incidents.

pub mod board;
pub mod outage;
pub mod probes;
pub mod self_test;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use board::{Board, ChannelView, Decision, Gate, Health, Kind};

use crate::config::Config;
use crate::engine::IncidentState;
use crate::irc::{LinkState, LinkStatus};
use crate::metrics::{ChannelLabel, Metrics};
use crate::runtime::EngineHandle;
use crate::store::{ListQuery, Store};
use crate::time::Clock;

/// The channel of the Alertmanager webhook.
pub const ALERTMANAGER: &str = "source:alertmanager";
/// The channel of the IRC link (alerts in, announcements and commands both ways).
pub const IRC: &str = "source:irc";

/// How often the board is evaluated: the resolution of every bound it enforces.
const EVALUATE_EVERY: Duration = Duration::from_millis(500);

/// The channel name of a notifier.
pub fn notifier_channel(name: &str) -> String {
    format!("notifier:{name}")
}

/// The channel name of a heartbeat URL.
pub fn heartbeat_channel(name: &str) -> String {
    format!("heartbeat:{name}")
}

/// The channel name of a peer.
pub fn peer_channel(url: &str) -> String {
    format!("peer:{}", url.trim_end_matches('/'))
}

pub struct Watchdog {
    board: Mutex<Board>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// `[sources.alertmanager] heartbeat.within`.
    am_within: Option<Duration>,
    /// `(period, grace)` of each heartbeat URL.
    heartbeats: BTreeMap<String, (Duration, Duration)>,
    /// Notifiers watched as channels (every one but `irc`, whose channel is the link).
    notifiers: BTreeSet<String>,
    /// Notifiers with a check of their own: never sent a trial page while down.
    checked: BTreeSet<String>,
    notifier_failures: u32,
    retry_down_after: Duration,
    peer_timeout: Duration,
}

impl Watchdog {
    /// Registers every channel of `cfg`. Deadlines start now: a heartbeat that never
    /// comes is missed one window after the start.
    pub fn new(cfg: &Config, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Arc<Self> {
        let f = &cfg.file;
        let w = &f.watchdog;
        let now = clock.now();
        let mut board = Board::new(w.hold_down.0);
        let am_within = f
            .sources
            .alertmanager
            .as_ref()
            .and_then(|a| a.heartbeat.as_ref())
            .map(|h| h.within.0);
        board.add(
            board::Spec {
                name: ALERTMANAGER.into(),
                kind: Kind::Source,
                blind: "alerts from Alertmanager may not be arriving: the monitoring could be firing and nobody would know".into(),
                checks: vec!["heartbeat"],
            },
            now,
        );
        match (&f.sources.alertmanager, am_within) {
            (Some(am), Some(within)) => {
                let name = &am
                    .heartbeat
                    .as_ref()
                    .expect("within implies heartbeat")
                    .alertname;
                board.set(
                    ALERTMANAGER,
                    "heartbeat",
                    now,
                    Health::Up,
                    &format!("waiting for the first {name} heartbeat"),
                );
                board.expect(
                    ALERTMANAGER,
                    "heartbeat",
                    now.plus(within),
                    format!(
                        "no {name} heartbeat alert since tocsin started ({}): Alertmanager, Prometheus or the path between them is down",
                        human(within)
                    ),
                );
            }
            _ => board.set(
                ALERTMANAGER,
                "heartbeat",
                now,
                Health::Up,
                "not watched: set [sources.alertmanager] heartbeat to notice a silent Alertmanager",
            ),
        }
        if let Some(irc) = &f.sources.irc {
            let channels = irc.channels.join(", ");
            board.add(
                board::Spec {
                    name: IRC.into(),
                    kind: Kind::Source,
                    blind: format!(
                        "alerts posted in {channels} are not seen, announcements there are not sent, and !ack there does not work"
                    ),
                    checks: vec!["connection", "network", "probe"],
                },
                now,
            );
        }
        let mut notifiers = BTreeSet::new();
        for (name, n) in &f.notifiers {
            if n.through_irc_link() {
                continue;
            }
            let mut checks = vec!["sends"];
            if w.checks.contains(name) {
                checks.push("check");
            }
            if n.calls_back() {
                checks.push("callbacks");
            }
            board.add(
                board::Spec {
                    name: notifier_channel(name),
                    kind: Kind::Notifier,
                    blind: format!(
                        "pages through {name} ({}) do not arrive; they fall over to each contact's next method",
                        n.type_name()
                    ),
                    checks,
                },
                now,
            );
            notifiers.insert(name.clone());
        }
        let mut heartbeats = BTreeMap::new();
        for (name, h) in &f.heartbeats {
            let ch = heartbeat_channel(name);
            board.add(
                board::Spec {
                    name: ch.clone(),
                    kind: Kind::Heartbeat,
                    blind: format!("whatever calls /hooks/heartbeat/{name} (a job, a monitor) has stopped or cannot reach tocsin"),
                    checks: vec!["pings"],
                },
                now,
            );
            board.set(&ch, "pings", now, Health::Up, "waiting for the first ping");
            let window = h.period.0 + h.grace.0;
            board.expect(
                &ch,
                "pings",
                now.plus(window),
                format!(
                    "no ping since tocsin started ({} = period {} + grace {})",
                    human(window),
                    human(h.period.0),
                    human(h.grace.0)
                ),
            );
            heartbeats.insert(name.clone(), (h.period.0, h.grace.0));
        }
        for url in &w.peers {
            let ch = peer_channel(url);
            board.add(
                board::Spec {
                    name: ch.clone(),
                    kind: Kind::Peer,
                    blind: format!("the tocsin at {url} is not watching or paging"),
                    checks: vec!["healthz"],
                },
                now,
            );
            board.expect(
                &ch,
                "healthz",
                now.plus(w.peer_timeout.0),
                format!(
                    "{url}/healthz has not answered healthy since tocsin started ({})",
                    human(w.peer_timeout.0)
                ),
            );
        }
        Arc::new(Watchdog {
            board: Mutex::new(board),
            clock,
            metrics,
            am_within,
            heartbeats,
            notifiers,
            checked: w.checks.iter().cloned().collect(),
            notifier_failures: w.notifier_failures,
            retry_down_after: w.retry_down_after.0,
            peer_timeout: w.peer_timeout.0,
        })
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().expect("watchdog board lock")
    }

    /// The Alertmanager heartbeat alert arrived.
    pub fn alertmanager_heartbeat(&self, alertname: &str) {
        let Some(within) = self.am_within else { return };
        let now = self.clock.now();
        self.board().beat(
            ALERTMANAGER,
            "heartbeat",
            now,
            &format!("{alertname} heartbeat received at {now}"),
            now.plus(within),
            format!(
                "no {alertname} heartbeat alert since {now} ({} ago is the limit): Alertmanager, Prometheus or the path between them is down",
                human(within)
            ),
        );
    }

    /// `/hooks/heartbeat/{name}` was called; `false` when no such heartbeat exists.
    pub fn heartbeat_url(&self, name: &str) -> bool {
        let Some((period, grace)) = self.heartbeats.get(name).copied() else {
            return false;
        };
        let now = self.clock.now();
        self.board().beat(
            &heartbeat_channel(name),
            "pings",
            now,
            &format!("pinged at {now}"),
            now.plus(period + grace),
            format!(
                "no ping since {now}: expected every {} (+ {} grace)",
                human(period),
                human(grace)
            ),
        );
        true
    }

    /// Whether a page may go through `notifier` now; `Err` says why not, and the page
    /// fails over at once instead of waiting for its retries.
    pub fn gate(&self, notifier: &str) -> Result<Gate, String> {
        if !self.notifiers.contains(notifier) {
            return Ok(Gate::Open);
        }
        let trial = (!self.checked.contains(notifier)).then_some(self.retry_down_after);
        self.board()
            .gate(&notifier_channel(notifier), self.clock.now(), trial)
    }

    /// How one delivery attempt through `notifier` went. Only failures that say something
    /// about the channel count: a transient error (timeout, refused, 5xx), not a bad address.
    pub fn send_result(&self, notifier: &str, result: Result<(), (&str, bool)>) {
        if !self.notifiers.contains(notifier) {
            return;
        }
        let now = self.clock.now();
        let ch = notifier_channel(notifier);
        match result {
            Ok(()) => self.board().send_ok(&ch, now),
            Err((error, true)) => self
                .board()
                .send_failed(&ch, now, error, self.notifier_failures),
            Err((_, false)) => {}
        }
    }

    /// A provider called back about a call (`Ok`, saying which), or a call went by with
    /// no word from it (`Err`): then tocsin cannot hear how calls end or which key was
    /// pressed, and the notifier is down until a callback arrives again.
    pub fn callback_result(&self, notifier: &str, result: Result<String, String>) {
        let now = self.clock.now();
        let ch = notifier_channel(notifier);
        let mut b = self.board();
        match result {
            Ok(detail) => b.set(&ch, "callbacks", now, Health::Up, &detail),
            Err(e) => b.set(&ch, "callbacks", now, Health::Down, &e),
        }
    }

    /// A notifier's own check ran.
    pub fn check_result(&self, notifier: &str, result: Result<String, String>) {
        let now = self.clock.now();
        let ch = notifier_channel(notifier);
        let mut b = self.board();
        match result {
            Ok(detail) => {
                b.set(&ch, "check", now, Health::Up, &detail);
                // The check proves the channel works: earlier failed sends no longer count.
                if b.health(&ch) == Some(Health::Down) || b.health(&ch) == Some(Health::Degraded) {
                    b.send_ok(&ch, now);
                }
            }
            Err(e) => b.set(&ch, "check", now, Health::Down, &e),
        }
    }

    /// A peer answered `/healthz` healthy.
    pub fn peer_ok(&self, url: &str, detail: &str) {
        let now = self.clock.now();
        self.board().beat(
            &peer_channel(url),
            "healthz",
            now,
            detail,
            now.plus(self.peer_timeout),
            format!(
                "{url}/healthz has not answered healthy since {now} ({})",
                human(self.peer_timeout)
            ),
        );
    }

    /// The IRC link changed: three checks, most fundamental first.
    pub fn irc_link(&self, s: &LinkStatus) {
        let now = self.clock.now();
        let mut b = self.board();
        match s.state {
            LinkState::Up => {
                b.set(
                    IRC,
                    "connection",
                    now,
                    Health::Up,
                    &format!("connected to {} as {}", s.server, s.nick),
                );
                b.set(IRC, "network", now, Health::Up, "the network is connected");
            }
            LinkState::UpstreamDown => {
                b.set(
                    IRC,
                    "connection",
                    now,
                    Health::Up,
                    &format!("connected to the bouncer {}", s.server),
                );
                b.set(
                    IRC,
                    "network",
                    now,
                    Health::Down,
                    &format!(
                        "the bouncer at {} is up but its IRC network is not connected: {}",
                        s.server, s.detail
                    ),
                );
            }
            LinkState::Connecting | LinkState::Down => b.set(
                IRC,
                "connection",
                now,
                Health::Down,
                &format!("no working connection to {}: {}", s.server, s.detail),
            ),
        }
        match s.probe.ok {
            Some(false) => b.set(IRC, "probe", now, Health::Down, &s.probe.detail),
            Some(true) => b.set(IRC, "probe", now, Health::Up, &s.probe.detail),
            None => {}
        }
    }

    /// Every channel, as the API and `tocsin status` show it.
    pub fn channels(&self) -> Vec<ChannelView> {
        let now = self.clock.now();
        self.board().snapshot(now)
    }

    /// Open watchdog incidents found at start: their channels' recovery resolves them.
    pub async fn restore(&self, store: &dyn Store) {
        for state in [IncidentState::Triggered, IncidentState::Acknowledged] {
            // Only the first alert (when the outage began) is used.
            let query = ListQuery {
                alerts: 1,
                ..ListQuery::newest(Some(state), 10_000)
            };
            let Ok(open) = store.incidents(query).await else {
                continue;
            };
            for i in open
                .incidents
                .into_iter()
                .filter(|i| i.source == outage::SOURCE)
            {
                let since = i.alerts.first().map_or(i.created_at, |a| a.starts_at);
                let mut b = self.board();
                if b.contains(&i.group_key) {
                    b.restore_outage(&i.group_key, since, i.title.clone());
                }
            }
        }
    }

    fn evaluate(&self) -> (Vec<Decision>, Vec<ChannelView>) {
        let now = self.clock.now();
        let mut b = self.board();
        let d = b.evaluate(now);
        (d, b.snapshot(now))
    }
}

/// Evaluates the board until `stop`: outages become incidents, recoveries resolve them.
pub async fn run(wd: Arc<Watchdog>, engine: EngineHandle, stop: CancellationToken) {
    loop {
        #[cfg(test)]
        crate::runtime::supervisor::fault::maybe_panic("watchdog");
        let (decisions, views) = wd.evaluate();
        for v in &views {
            wd.metrics
                .channel_up
                .get_or_create(&ChannelLabel {
                    channel: v.name.clone(),
                })
                .set(i64::from(v.state != Health::Down));
        }
        for d in decisions {
            match &d {
                Decision::Down {
                    channel, reason, ..
                } => {
                    warn!(%channel, %reason, "channel down past the hold-down: paging through the channels that still work");
                    wd.metrics
                        .watchdog_incidents
                        .get_or_create(&ChannelLabel {
                            channel: channel.clone(),
                        })
                        .inc();
                }
                Decision::Recovered { channel, .. } => {
                    info!(%channel, "channel back past the hold-down: resolving its incident");
                }
            }
            let input = outage::input(&d);
            if let Err(e) = engine.submit(input).await {
                warn!(error = %e, "could not record a watchdog decision; it is tried again on the next start");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVALUATE_EVERY) => {}
        }
    }
}

/// `90s` → "1m 30s", for pages.
pub(crate) fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

#[cfg(test)]
mod tests;
