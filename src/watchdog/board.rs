//! The health of every channel, and when an outage becomes (or stops being) an incident.
//!
//! Pure: observations and the time go in, decisions come out. A channel has one or more
//! checks (the IRC link has three: the bouncer, the network behind it, the end-to-end
//! probe); the channel is as bad as its worst check, and says why with the first failing
//! check in order, so a dead bouncer is reported as the bouncer, not as the network
//! behind it. A check may carry a deadline: a heartbeat that stops arriving turns it
//! down by itself.
//!
//! Damping: a channel must stay down for `hold_down` before it becomes an incident, and
//! stay up for `hold_down` before that incident resolves. One outage is one incident,
//! however many checks fail or flap inside it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Up,
    Degraded,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

/// What kind of channel, for people and for the page's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Alerts come in through it (Alertmanager, IRC).
    Source,
    /// Pages go out through it.
    Notifier,
    /// A heartbeat URL something outside must keep calling.
    Heartbeat,
    /// Another tocsin instance.
    Peer,
    /// Who is on call: down while nobody is (the fallback is paged then). Shown beside
    /// the channels, never paged about: the fallback is the page.
    Schedule,
    /// The database several instances share: what everything else is recorded in.
    Store,
}

impl Kind {
    /// The word people read: "the notifier mail is down".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Notifier => "notifier",
            Kind::Heartbeat => "heartbeat",
            Kind::Peer => "peer",
            Kind::Schedule => "schedule",
            Kind::Store => "store",
        }
    }
}

/// A channel to watch.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    /// What tocsin can no longer see or do while it is down, for the page.
    pub blind: String,
    /// Its checks, most fundamental first.
    pub checks: Vec<&'static str>,
}

/// Whether a page may go through a notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Up or degraded: send as usual.
    Open,
    /// Down, but this page may find out whether it is back: one attempt, no retries.
    Trial,
}

/// What the runtime must do about an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Down for `hold_down`: open the channel's watchdog incident.
    Down {
        channel: String,
        kind: Kind,
        since: Timestamp,
        reason: String,
        blind: String,
    },
    /// Up again for `hold_down`: resolve it. `since` is the outage's start, as in `Down`.
    Recovered {
        channel: String,
        since: Timestamp,
        back_since: Timestamp,
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Check {
    name: &'static str,
    health: Health,
    reason: String,
    since: Timestamp,
    /// When the check goes down by itself unless renewed, and what it then says.
    expires: Option<(Timestamp, String)>,
}

#[derive(Debug, Clone)]
struct Channel {
    kind: Kind,
    blind: String,
    checks: Vec<Check>,
    health: Health,
    reason: String,
    since: Timestamp,
    /// The outage being paged about: its start and first reason.
    outage: Option<(Timestamp, String)>,
    /// Failed sends in a row (notifiers).
    failures: u32,
    /// When a down notifier last let a page through to find out whether it is back.
    last_trial: Option<Timestamp>,
}

/// One channel as the API and `tocsin status` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelView {
    pub name: String,
    pub kind: Kind,
    pub state: Health,
    pub reason: String,
    #[serde(with = "crate::time::rfc3339")]
    pub since: Timestamp,
    /// What tocsin cannot see or do while this channel is down.
    pub blind: String,
    /// Whether a watchdog incident is open for it.
    pub paging: bool,
    pub checks: Vec<CheckView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckView {
    pub name: &'static str,
    pub state: Health,
    pub reason: String,
    #[serde(with = "crate::time::rfc3339")]
    pub since: Timestamp,
}

pub struct Board {
    hold_down: Duration,
    channels: BTreeMap<String, Channel>,
}

impl Board {
    pub fn new(hold_down: Duration) -> Self {
        Board {
            hold_down,
            channels: BTreeMap::new(),
        }
    }

    /// Starts watching a channel; every check starts up ("starting").
    pub fn add(&mut self, spec: Spec, now: Timestamp) {
        let checks = spec
            .checks
            .iter()
            .map(|&name| Check {
                name,
                health: Health::Up,
                reason: "starting".to_string(),
                since: now,
                expires: None,
            })
            .collect();
        self.channels.insert(
            spec.name,
            Channel {
                kind: spec.kind,
                blind: spec.blind,
                checks,
                health: Health::Up,
                reason: "starting".to_string(),
                since: now,
                outage: None,
                failures: 0,
                last_trial: None,
            },
        );
    }

    pub fn contains(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// Every channel on the board.
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.keys().cloned().collect()
    }

    fn check_mut(&mut self, channel: &str, check: &str) -> Option<&mut Check> {
        self.channels
            .get_mut(channel)?
            .checks
            .iter_mut()
            .find(|c| c.name == check)
    }

    /// A check's result. The check's `since` moves only when its health changes.
    pub fn set(
        &mut self,
        channel: &str,
        check: &str,
        now: Timestamp,
        health: Health,
        reason: &str,
    ) {
        if let Some(c) = self.check_mut(channel, check) {
            if c.health != health {
                c.since = now;
            }
            c.health = health;
            c.reason = reason.to_string();
            c.expires = None;
        }
        self.evaluate_channel(channel, now);
    }

    /// A heartbeat: the check is up until `until`, then down with `missing`.
    pub fn beat(
        &mut self,
        channel: &str,
        check: &str,
        now: Timestamp,
        reason: &str,
        until: Timestamp,
        missing: String,
    ) {
        self.set(channel, check, now, Health::Up, reason);
        if let Some(c) = self.check_mut(channel, check) {
            c.expires = Some((until, missing));
        }
    }

    /// Arms a deadline without a beat (at start: the first heartbeat is due by `until`).
    pub fn expect(&mut self, channel: &str, check: &str, until: Timestamp, missing: String) {
        if let Some(c) = self.check_mut(channel, check) {
            c.expires = Some((until, missing));
        }
    }

    /// A notifier's send failed with a transient error: `threshold` in a row mark its
    /// `sends` check down, fewer degraded.
    pub fn send_failed(&mut self, channel: &str, now: Timestamp, error: &str, threshold: u32) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        ch.failures += 1;
        let n = ch.failures;
        let (health, reason) = if n >= threshold {
            (
                Health::Down,
                format!("{n} sends in a row failed, the last with: {error}"),
            )
        } else {
            (
                Health::Degraded,
                format!("{n} of {threshold} sends in a row failed, the last with: {error}"),
            )
        };
        self.set(channel, "sends", now, health, &reason);
    }

    /// A notifier delivered something: its sends work.
    pub fn send_ok(&mut self, channel: &str, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        ch.failures = 0;
        ch.last_trial = None;
        self.set(
            channel,
            "sends",
            now,
            Health::Up,
            "the last send was delivered",
        );
    }

    /// Whether a page may go through this notifier now. A down notifier refuses, naming
    /// why, except that one page per `retry` goes through as a trial when `trial` is set
    /// (notifiers without a check of their own can only be proven back by sending).
    pub fn gate(
        &mut self,
        channel: &str,
        now: Timestamp,
        trial: Option<Duration>,
    ) -> Result<Gate, String> {
        self.evaluate_channel(channel, now);
        let Some(ch) = self.channels.get_mut(channel) else {
            return Ok(Gate::Open);
        };
        if ch.health != Health::Down {
            return Ok(Gate::Open);
        }
        // The first trial comes one interval after the notifier went down: the pages
        // right after the failures that marked it down must not wait for it again.
        if let Some(retry) = trial
            && now >= ch.last_trial.unwrap_or(ch.since).plus(retry)
        {
            ch.last_trial = Some(now);
            return Ok(Gate::Trial);
        }
        Err(format!(
            "{channel} is down since {} ({}); routing around it",
            ch.since, ch.reason
        ))
    }

    /// A watchdog incident for this channel is open (found in the store at start): a
    /// recovery resolves it, and staying down does not open a second one.
    pub fn restore_outage(&mut self, channel: &str, since: Timestamp, reason: String) {
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.outage = Some((since, reason));
        }
    }

    /// Expires deadlines, recomputes every channel, and says which outages to open or
    /// close.
    pub fn evaluate(&mut self, now: Timestamp) -> Vec<Decision> {
        let names: Vec<String> = self.channels.keys().cloned().collect();
        let mut out = Vec::new();
        for name in names {
            self.evaluate_channel(&name, now);
            let hold = self.hold_down;
            let ch = self.channels.get_mut(&name).expect("listed");
            match (&ch.outage, ch.health) {
                (None, Health::Down) if now >= ch.since.plus(hold) => {
                    ch.outage = Some((ch.since, ch.reason.clone()));
                    out.push(Decision::Down {
                        channel: name.clone(),
                        kind: ch.kind,
                        since: ch.since,
                        reason: ch.reason.clone(),
                        blind: ch.blind.clone(),
                    });
                }
                (Some((since, reason)), Health::Up | Health::Degraded)
                    if now >= ch.since.plus(hold) =>
                {
                    out.push(Decision::Recovered {
                        channel: name.clone(),
                        since: *since,
                        back_since: ch.since,
                        reason: reason.clone(),
                    });
                    ch.outage = None;
                }
                _ => {}
            }
        }
        out
    }

    fn evaluate_channel(&mut self, name: &str, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(name) else {
            return;
        };
        for c in &mut ch.checks {
            if let Some((at, missing)) = &c.expires
                && now >= *at
                && c.health != Health::Down
            {
                c.health = Health::Down;
                c.reason = missing.clone();
                c.since = *at;
            }
        }
        let worst = ch
            .checks
            .iter()
            .map(|c| c.health)
            .max()
            .unwrap_or(Health::Up);
        let reason = match ch.checks.iter().find(|c| c.health == worst) {
            Some(c) if worst != Health::Up => c.reason.clone(),
            _ => ch
                .checks
                .iter()
                .map(|c| c.reason.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        };
        // The channel changed when the check that changed it did: the latest change of
        // any check. Down with another reason is the same outage and keeps its start.
        if worst != ch.health {
            ch.since = ch.checks.iter().map(|c| c.since).max().unwrap_or(now);
        }
        ch.health = worst;
        ch.reason = reason;
    }

    pub fn health(&self, channel: &str) -> Option<Health> {
        self.channels.get(channel).map(|c| c.health)
    }

    pub fn snapshot(&mut self, now: Timestamp) -> Vec<ChannelView> {
        let names: Vec<String> = self.channels.keys().cloned().collect();
        for n in &names {
            self.evaluate_channel(n, now);
        }
        self.channels
            .iter()
            .map(|(name, ch)| ChannelView {
                name: name.clone(),
                kind: ch.kind,
                state: ch.health,
                reason: ch.reason.clone(),
                since: ch.since,
                blind: ch.blind.clone(),
                paging: ch.outage.is_some(),
                checks: ch
                    .checks
                    .iter()
                    .map(|c| CheckView {
                        name: c.name,
                        state: c.health,
                        reason: c.reason.clone(),
                        since: c.since,
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
