//! What the IRC link's alert lines and commands do to incidents: the engine records
//! them, the store answers questions, and every answer is one short line.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tracing::{info, warn};

use super::EngineHandle;
use crate::config::Config;
use crate::engine::{
    Actor, AlertBatch, AlertStatus, EscalationConfig, EventKind, IncidentId, IncidentState, Input,
    Via,
};
use crate::irc::command::{AckTarget, ChatCommand, HELP, Maint, quoted};
use crate::irc::mask::{mask_matches, same_name};
use crate::irc::replay::Mark;
use crate::irc::session::Ask;
use crate::irc::{Desk, LinkStatus};
use crate::metrics::{Metrics, SourceLabel};
use crate::notify::message::clean;
use crate::schedule::{OnCall, wall};
use crate::source::irc::shared_labels;
use crate::store::{ListQuery, Store};
use crate::time::{Clock, Timestamp, human};

/// Where the IRC link's replay mark is kept in the store.
const REPLAY_MARK: &str = "irc.replay";

/// Most incidents one `!ack all` acts on; more is a storm better handled in bulk
/// elsewhere, and the answer must fit a line.
const ACK_ALL_MAX: usize = 50;

/// Schedules one `!oncall` lists at most, a line each; the rest are named, to be asked
/// one by one.
const ONCALL_MAX: usize = 6;

pub struct IrcDesk {
    pub engine: EngineHandle,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// Channel health, for `!status`.
    pub watchdog: Arc<crate::watchdog::Watchdog>,
    /// The engine's config as of the last reload: `!oncall` asks its calendar, the one
    /// that decides who is paged.
    escalation: tokio::sync::watch::Receiver<Arc<EscalationConfig>>,
    /// (contact, irc_account, irc_mask)
    ackers: Vec<(String, Option<String>, Option<String>)>,
    allow_masks: bool,
    /// Credentials are configured, so `!incidents` and `!status` answer ackers only,
    /// like the API's reads: they name incidents, who acked, and the links tocsin
    /// depends on, to anyone in the channel or anyone who sends a private message.
    private_reads: bool,
}

impl IrcDesk {
    pub fn new(
        cfg: &Config,
        engine: EngineHandle,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        watchdog: Arc<crate::watchdog::Watchdog>,
        escalation: tokio::sync::watch::Receiver<Arc<EscalationConfig>>,
    ) -> Self {
        IrcDesk {
            engine,
            store,
            metrics,
            clock,
            watchdog,
            escalation,
            ackers: cfg
                .file
                .contacts
                .iter()
                .map(|(n, c)| (n.clone(), c.irc_account.clone(), c.irc_mask.clone()))
                .collect(),
            allow_masks: cfg.file.sources.irc.as_ref().is_some_and(|i| i.allow_masks),
            private_reads: !cfg.hook_auth.is_open(),
        }
    }

    /// The contact a command speaks for: by services account, or (only where allowed,
    /// for networks without services) by `nick!user@host` mask.
    fn contact(&self, ask: &Ask) -> Option<String> {
        if let Some(account) = &ask.account
            && let Some((name, ..)) = self
                .ackers
                .iter()
                .find(|(_, a, _)| a.as_deref().is_some_and(|a| same_name(a, account)))
        {
            return Some(name.clone());
        }
        if self.allow_masks {
            return self
                .ackers
                .iter()
                .find(|(_, _, m)| m.as_deref().is_some_and(|m| mask_matches(m, &ask.hostmask)))
                .map(|(n, ..)| n.clone());
        }
        None
    }

    /// The labels the line's group shares, from the group's open incident in the store:
    /// the link records its lines one at a time, so the previous one is in.
    async fn group_labels(&self, batch: &AlertBatch) -> BTreeMap<String, String> {
        let open = match self
            .store
            .open_incident_of_group(&batch.source, &batch.group_key)
            .await
        {
            Ok(open) => open,
            Err(e) => {
                warn!(group = %batch.group_key, error = %e, "cannot read the IRC alert's open incident; its labels become the line's");
                return batch.labels.clone();
            }
        };
        let Some(open) = open else {
            return shared_labels(batch, None, BTreeMap::new());
        };
        let firing = open
            .alerts
            .into_iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .map(|a| (a.fingerprint, a.labels))
            .collect();
        shared_labels(batch, Some(&open.labels), firing)
    }

    fn count(&self, command: &str, outcome: &str) {
        self.metrics.irc_command(command, outcome);
    }

    async fn refuse(&self, ask: &Ask, cmd: &ChatCommand) -> String {
        let who = match &ask.account {
            Some(a) => format!("account {a}"),
            None => "not logged in".to_string(),
        };
        warn!(nick = %ask.nick, hostmask = ?ask.hostmask, %who, via = ask.account_via, text = ?ask.text, "IRC command refused");
        self.count(command_name(cmd), "refused");
        let id = match cmd {
            ChatCommand::Ack(AckTarget::One(id))
            | ChatCommand::Unack(id)
            | ChatCommand::Snooze(id, _)
            | ChatCommand::Resolve(id) => Some(*id),
            _ => None,
        };
        if let Some(id) = id {
            // Recorded on the incident it names, so whoever looks there sees the attempt.
            let _ = self
                .engine
                .submit(Input::Note {
                    id,
                    kind: EventKind::Refused,
                    by: Actor::new(clean(&ask.hostmask), Via::Irc),
                    detail: format!(
                        "IRC command {:?} from {} ({who}): not an acker; nothing done",
                        ask.text, ask.hostmask
                    ),
                })
                .await;
        }
        match &ask.account {
            None => "sorry, only identified ackers can do that: log in to your services account (NickServ) first".into(),
            Some(a) => format!("sorry, account {a} is not an acker here (contacts' irc_account in alerts.toml)"),
        }
    }

    async fn act(&self, contact: &str, cmd: &ChatCommand) -> Result<String, String> {
        let by = Actor::new(contact, Via::Irc);
        match *cmd {
            ChatCommand::Ack(AckTarget::One(id)) => {
                self.submit(Input::Ack { id, by }).await?;
                Ok(format!(
                    "#{id} acknowledged by {contact}; escalation stopped"
                ))
            }
            ChatCommand::Ack(AckTarget::All) => {
                let open = self
                    .store
                    .incidents(ListQuery::newest(
                        Some(IncidentState::Triggered),
                        ACK_ALL_MAX,
                    ))
                    .await
                    .map_err(|e| format!("cannot list incidents: {e}"))?
                    .incidents;
                if open.is_empty() {
                    return Ok("nothing to ack: no incident is triggered".into());
                }
                // Submitted together, the acks share one commit instead of fifty.
                let mut acks = tokio::task::JoinSet::new();
                for inc in &open {
                    let (engine, id, by) = (self.engine.clone(), inc.id, by.clone());
                    acks.spawn(
                        async move { engine.submit(Input::Ack { id, by }).await.map(|()| id) },
                    );
                }
                let mut done: Vec<IncidentId> =
                    acks.join_all().await.into_iter().flatten().collect();
                done.sort_unstable();
                let done: Vec<String> = done.iter().map(|id| format!("#{id}")).collect();
                Ok(format!("acknowledged by {contact}: {}", done.join(" ")))
            }
            ChatCommand::Unack(id) => {
                self.submit(Input::Unack { id, by }).await?;
                Ok(format!("#{id} is triggered again; escalation resumes"))
            }
            ChatCommand::Snooze(id, duration) => {
                self.submit(Input::Snooze { id, by, duration }).await?;
                let until = self.clock.now().plus(duration);
                Ok(format!(
                    "#{id} snoozed for {} (until {}) by {contact}",
                    human(duration),
                    until.to_rfc3339()
                ))
            }
            ChatCommand::Resolve(id) => {
                self.submit(Input::Resolve { id, by }).await?;
                Ok(format!("#{id} resolved by {contact}"))
            }
            _ => Err("not a state change".into()),
        }
    }

    async fn submit(&self, input: Input) -> Result<(), String> {
        // The engine's refusal is the answer ("#42 was already acknowledged by alice").
        self.engine
            .submit(input)
            .await
            .map_err(|e| clean(&e.to_string()))
    }

    async fn list(&self) -> String {
        // Asked by state: a list of the newest incidents of any state could be all
        // resolved ones and hide what is open.
        let mut open = Vec::new();
        for state in [IncidentState::Triggered, IncidentState::Acknowledged] {
            match self
                .store
                .incidents(ListQuery::newest(Some(state), 200))
                .await
            {
                Ok(v) => open.extend(v.incidents),
                Err(e) => return format!("cannot list incidents: {e}"),
            }
        }
        open.sort_by_key(|i| std::cmp::Reverse(i.id));
        if open.is_empty() {
            return "no open incidents".into();
        }
        let now = self.clock.now();
        let mut s = format!("{} open:", open.len());
        for (i, inc) in open.iter().enumerate() {
            let state = match inc.state {
                IncidentState::Acknowledged => format!(
                    "acked by {}",
                    clean(inc.acked_by.as_deref().unwrap_or("someone"))
                ),
                _ => format!("step {}", inc.step),
            };
            let item = format!(
                " #{} {} ({state}, {});",
                inc.id,
                clean(&inc.title),
                human(now.since(inc.created_at))
            );
            if s.len() + item.len() > 360 {
                s.push_str(&format!(" +{} more", open.len() - i));
                break;
            }
            s.push_str(&item);
        }
        s
    }

    /// One line per schedule asked about: who is on call, why, and until when on the
    /// schedule's wall clock.
    async fn oncall(&self, asked: Option<&str>) -> String {
        let cfg = self.escalation.borrow().clone();
        let schedules = &cfg.calendar.schedules;
        let names: Vec<&String> = match asked {
            None => schedules.keys().collect(),
            Some(a) => match schedules
                .keys()
                .find(|n| *n == a)
                .or_else(|| schedules.keys().find(|n| n.eq_ignore_ascii_case(a)))
            {
                Some(n) => vec![n],
                None => {
                    let known: Vec<&str> = schedules.keys().map(String::as_str).collect();
                    if known.is_empty() {
                        return format!("no schedule {}: none is configured", quoted(a));
                    }
                    return format!("no schedule {}; schedules: {}", quoted(a), known.join(", "));
                }
            },
        };
        if names.is_empty() {
            return "no schedules are configured ([schedules] in alerts.toml)".into();
        }
        let now = self.clock.now();
        let overrides = match self.store.overrides(None, now).await {
            Ok(o) => o,
            Err(e) => return format!("cannot read the schedules' overrides: {e}"),
        };
        let mut lines = Vec::new();
        for name in names.iter().take(ONCALL_MAX) {
            let mine = crate::engine::overrides_of(&overrides, name);
            let (Some(sch), Some(oc)) =
                (schedules.get(*name), cfg.calendar.oncall(name, &mine, now))
            else {
                continue;
            };
            lines.push(oncall_line(name, &oc, &sch.time_zone, now));
        }
        if names.len() > ONCALL_MAX {
            let rest: Vec<&str> = names[ONCALL_MAX..].iter().map(|n| n.as_str()).collect();
            lines.push(format!("and {}: ask !oncall NAME", rest.join(", ")));
        }
        lines.join("\n")
    }

    async fn status(&self, link: &LinkStatus) -> String {
        let counts = self.store.counts().await.unwrap_or_default();
        let n = |s| counts.get(&s).copied().unwrap_or(0);
        let channels = self.watchdog.channels();
        let down: Vec<String> = channels
            .iter()
            .filter(|c| c.state == crate::watchdog::Health::Down)
            .map(|c| format!("{} ({})", c.name, c.reason))
            .collect();
        let health = if down.is_empty() {
            format!("all {} channels up", channels.len())
        } else {
            format!("DOWN: {}", down.join("; "))
        };
        format!(
            "tocsin {}: {} triggered, {} acknowledged; {health}; IRC {:?} via {} as {} in {}",
            env!("CARGO_PKG_VERSION"),
            n(IncidentState::Triggered),
            n(IncidentState::Acknowledged),
            link.state,
            link.server,
            link.nick,
            if link.joined.is_empty() {
                "no channel".to_string()
            } else {
                link.joined.join(" ")
            }
        )
    }
}

fn command_name(cmd: &ChatCommand) -> &'static str {
    match cmd {
        ChatCommand::Ack(_) => "ack",
        ChatCommand::Unack(_) => "unack",
        ChatCommand::Snooze(..) => "snooze",
        ChatCommand::Resolve(_) => "resolve",
        ChatCommand::Incidents => "incidents",
        ChatCommand::Oncall(_) => "oncall",
        ChatCommand::Status => "status",
        ChatCommand::Help => "help",
        ChatCommand::Maint(Maint::List) => "maint",
        ChatCommand::Maint(Maint::Start { .. }) => "maint_start",
        ChatCommand::Maint(Maint::End(_)) => "maint_end",
        ChatCommand::Maint(Maint::Extend(..)) => "maint_extend",
    }
}

#[async_trait]
impl Desk for IrcDesk {
    async fn alert(&self, mut batch: AlertBatch) -> Result<(), String> {
        self.metrics
            .alerts_received
            .get_or_create(&SourceLabel {
                source: batch.source.clone(),
            })
            .inc_by(batch.alerts.len() as u64);
        batch.labels = self.group_labels(&batch).await;
        self.submit(Input::Alerts(batch)).await
    }

    async fn replay_mark(&self) -> Option<Mark> {
        let json = match self.store.source_state(REPLAY_MARK).await {
            Ok(json) => json?,
            Err(e) => {
                warn!(error = %e, "cannot read the IRC replay mark: backlog the bouncer replays is read only from this connection on");
                return None;
            }
        };
        match serde_json::from_str(&json) {
            Ok(mark) => Some(mark),
            Err(e) => {
                warn!(error = %e, %json, "the stored IRC replay mark is not understood: backlog the bouncer replays is read only from this connection on");
                None
            }
        }
    }

    async fn save_replay_mark(&self, mark: &Mark) -> Result<(), String> {
        let json = serde_json::to_string(mark).map_err(|e| e.to_string())?;
        self.store
            .save_source_state(REPLAY_MARK, json, self.clock.now())
            .await
            .map_err(|e| e.to_string())
    }

    async fn command(&self, ask: Ask, link: &LinkStatus) -> String {
        let cmd = match &ask.command {
            Ok(c) => c.clone(),
            Err(why) => {
                self.count("unknown", "not_understood");
                return why.clone();
            }
        };
        match cmd {
            ChatCommand::Help => {
                self.count("help", "applied");
                HELP.to_string()
            }
            ref read @ (ChatCommand::Incidents | ChatCommand::Oncall(_) | ChatCommand::Status)
                if self.private_reads && self.contact(&ask).is_none() =>
            {
                self.refuse(&ask, read).await
            }
            ChatCommand::Incidents => {
                self.count("incidents", "applied");
                self.list().await
            }
            ChatCommand::Oncall(ref asked) => {
                self.count("oncall", "applied");
                self.oncall(asked.as_deref()).await
            }
            ChatCommand::Status => {
                self.count("status", "applied");
                self.status(link).await
            }
            ref changing => {
                let Some(contact) = self.contact(&ask) else {
                    return self.refuse(&ask, changing).await;
                };
                let done = match changing {
                    ChatCommand::Maint(m) => self.maint(&contact, m).await,
                    _ => self.act(&contact, changing).await,
                };
                match done {
                    Ok(answer) => {
                        info!(%contact, nick = %ask.nick, via = ask.account_via, text = ?ask.text, "IRC command applied");
                        self.count(command_name(changing), "applied");
                        answer
                    }
                    Err(why) => {
                        self.count(command_name(changing), "rejected");
                        why
                    }
                }
            }
        }
    }
}

/// `primary: bob (rotation ops) until Mon 09:00 CST`: who is on call and why; until is
/// on the schedule's wall clock, with the date when it is a week or more away.
fn oncall_line(name: &str, oc: &OnCall, tz: &jiff::tz::TimeZone, now: Timestamp) -> String {
    let who: Vec<String> = oc
        .contacts
        .iter()
        .map(|c| {
            let via = match &c.via {
                crate::schedule::Via::Rotation(r) => format!("rotation {r}"),
                other => other.to_string(),
            };
            format!("{} ({via})", c.name)
        })
        .collect();
    let mut line = match (oc.fallback_used, who.is_empty()) {
        (_, true) => format!("{name}: nobody on call and no fallback"),
        (true, false) => format!("{name}: nobody on call; paged instead: {}", who.join(", ")),
        (false, false) => format!("{name}: {}", who.join(", ")),
    };
    if let Some(until) = oc.until {
        let format = if until.since(now) >= std::time::Duration::from_secs(6 * 86_400) {
            "%a %d %b %H:%M %Z"
        } else {
            "%a %H:%M %Z"
        };
        line.push_str(&format!(" until {}", wall::shown(tz, until, format)));
    }
    line
}

mod maint;

#[cfg(test)]
mod tests;
