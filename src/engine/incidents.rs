//! The engine: open incidents, their alerts, and the deadlines that move them.
//!
//! Memory holds only what decisions need (alert keys, escalation state, deadlines);
//! labels, annotations and history go straight to the store as effects. That keeps a
//! storm of 100,000 alerts at a few megabytes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::escalation::{Ctx, Live};
use super::model::*;
use super::policy::{EscalationConfig, PolicySnapshot};
use crate::time::Timestamp;

/// How long a resolved incident's alerts are remembered, so that a late duplicate of a
/// firing notification (an HA Alertmanager peer, a retry) does not open a new incident.
pub const RECENT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Incidents that opened but matched no route get this policy: no steps, so nobody is
/// paged, and the history says why.
const UNROUTED: &str = "unrouted";

pub struct Engine {
    cfg: Arc<EscalationConfig>,
    /// Open (triggered or acknowledged) incidents by id.
    pub(super) open: HashMap<IncidentId, Live>,
    /// Open incident of each alert group.
    by_group: HashMap<String, IncidentId>,
    /// Alerts of recently resolved incidents, by group.
    recent: HashMap<String, Recent>,
    /// Resolution order of `recent`, for pruning.
    recent_order: VecDeque<(Timestamp, String, IncidentId)>,
    /// Every open incident's next deadline.
    timers: BTreeSet<(Timestamp, IncidentId)>,
    next_incident_id: IncidentId,
    next_page_id: PageId,
    /// Overrides of schedules in force or ahead, in the order they were made.
    pub(super) overrides: Vec<super::model::OverrideRecord>,
    pub(super) next_override_id: super::model::OverrideId,
    /// Silences in force or ahead, in the order they were made.
    pub(super) silences: Vec<super::window::Window>,
    pub(super) next_silence_id: super::silences::SilenceId,
    /// Maintenance windows in force or ahead, in the order they were made.
    pub(super) maintenance: Vec<super::window::Window>,
    pub(super) next_maintenance_id: super::window::WindowId,
    /// A window was made, moved or restored: the next input sweeps the open incidents.
    pub(super) maintenance_dirty: bool,
    /// The next start or end of a window, when the open incidents are swept again.
    pub(super) maintenance_next: Option<Timestamp>,
}

struct Recent {
    incident: IncidentId,
    /// fingerprint → startsAt of alerts that were part of it.
    alerts: HashMap<u64, Timestamp>,
}

/// Alerts are grouped per source, so an IRC group can never join an Alertmanager one.
fn group_id(source: &str, group_key: &str) -> String {
    let mut s = String::with_capacity(source.len() + 1 + group_key.len());
    s.push_str(source);
    s.push('\u{1f}');
    s.push_str(group_key);
    s
}

/// Alertmanager fingerprints are 16 hex digits; anything else is hashed (FNV-1a).
pub(crate) fn fingerprint_key(fp: &str) -> u64 {
    if fp.len() == 16
        && let Ok(v) = u64::from_str_radix(fp, 16)
    {
        return v;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in fp.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Engine {
    pub fn new(cfg: Arc<EscalationConfig>) -> Self {
        Engine {
            cfg,
            open: HashMap::new(),
            by_group: HashMap::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            timers: BTreeSet::new(),
            next_incident_id: 1,
            next_page_id: 1,
            overrides: Vec::new(),
            next_override_id: 1,
            silences: Vec::new(),
            next_silence_id: 1,
            maintenance: Vec::new(),
            next_maintenance_id: 1,
            maintenance_dirty: false,
            maintenance_next: None,
        }
    }

    /// Rebuilds the engine from stored state. Nothing fires here: the first `Tick` after
    /// this fires whatever came due while tocsin was down, once, and says how late.
    pub fn restore(
        cfg: Arc<EscalationConfig>,
        next_incident_id: IncidentId,
        next_page_id: PageId,
        open: Vec<RestoredIncident>,
        recent_resolved: Vec<RestoredIncident>,
    ) -> Self {
        let mut e = Engine::new(cfg);
        e.next_incident_id = next_incident_id.max(1);
        e.next_page_id = next_page_id.max(1);
        let mut resolved = recent_resolved;
        resolved.sort_by_key(|r| r.resolved_at);
        for r in resolved {
            e.restore_resolved(r);
        }
        for r in open {
            e.restore_open(r);
        }
        e
    }

    /// One open incident back from the store (see [`Engine::restore`]).
    fn restore_open(&mut self, r: RestoredIncident) {
        let gid = group_id(&r.source, &r.group_key);
        let live = Live::restored(r, gid.clone());
        let id = live.id;
        self.by_group.insert(gid, id);
        self.open.insert(id, live);
        self.reindex(id);
    }

    /// One incident resolved within [`RECENT_WINDOW`], remembered so that a late
    /// duplicate of its alerts does not open a new one. In order of resolution.
    fn restore_resolved(&mut self, r: RestoredIncident) {
        let at = r.resolved_at.unwrap_or(r.created_at);
        let alerts = r.alerts.iter().map(|(key, _, s)| (*key, *s)).collect();
        self.remember_resolved(group_id(&r.source, &r.group_key), r.id, at, alerts);
    }

    /// Ids handed out so far; the next incident gets this one.
    pub fn next_incident_id(&self) -> IncidentId {
        self.next_incident_id
    }

    /// The earliest deadline of any incident: when the runtime must send a `Tick`.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let incident = self.timers.first().map(|(t, _)| *t);
        match (incident, self.maintenance_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of open incidents (triggered or acknowledged).
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Swaps the routes and policies used for incidents that open from now on. Open
    /// incidents keep the policy they opened with.
    pub fn set_config(&mut self, cfg: Arc<EscalationConfig>) {
        self.cfg = cfg;
    }

    pub(super) fn config(&self) -> Arc<EscalationConfig> {
        self.cfg.clone()
    }

    /// Applies one input at `now`. On refusal nothing changed but the history notes the
    /// refusal carries.
    pub fn apply(&mut self, now: Timestamp, input: Input) -> Result<Vec<Effect>, Refused> {
        let mut fx = Vec::new();
        // A window that starts or ends now does so before anything else happens now:
        // a step due at the very instant a window starts is held.
        self.sweep_maintenance(now, &mut fx);
        match input {
            Input::Alerts(mut batch) => {
                self.apply_silences(now, &mut batch, &mut fx);
                if !batch.alerts.is_empty() {
                    self.on_alerts(now, batch, &mut fx)
                }
            }
            Input::Ack { id, by } => self.with_open(now, id, &mut fx, |l, cx| l.ack(cx, &by))?,
            Input::Unack { id, by } => {
                self.with_open(now, id, &mut fx, |l, cx| l.unack(cx, &by))?
            }
            Input::Snooze { id, by, duration } => {
                if duration.is_zero() {
                    return Err(Refusal::ZeroSnooze.into());
                }
                if duration > super::model::MAX_SNOOZE {
                    return Err(Refusal::SnoozeTooLong.into());
                }
                self.with_open(now, id, &mut fx, |l, cx| {
                    l.snooze(cx, &by, duration);
                    Ok(())
                })?
            }
            Input::Resolve { id, by } => self.with_open(now, id, &mut fx, |l, cx| {
                l.resolve(cx, &by, "resolved by hand".to_string());
                Ok(())
            })?,
            Input::Escalate { id, by } => self.with_open(now, id, &mut fx, |l, cx| {
                l.escalate_now(cx, &by);
                Ok(())
            })?,
            Input::PageAttempt {
                page,
                attempt,
                error,
            } => {
                // Only a line of history: the outcome comes with PageOutcome.
                if self.open.contains_key(&page.incident) || page.incident < self.next_incident_id {
                    let detail = format!(
                        "attempt {attempt} of page {} by {} failed, retrying: {error}",
                        page.id, page.notifier
                    );
                    fx.push(Effect::Event(super::model::HistoryEvent::by_engine(
                        page.incident,
                        now,
                        EventKind::PageAttempt,
                        detail,
                    )));
                }
            }
            Input::Note {
                id,
                kind,
                by,
                detail,
            } => {
                if id == 0 || id >= self.next_incident_id {
                    return Err(Refusal::NotFound(id).into());
                }
                fx.push(Effect::Event(super::model::HistoryEvent::new(
                    id, now, kind, &by, detail,
                )));
            }
            Input::Released { pages } => self.on_released(now, pages, &mut fx),
            Input::Tick => self.on_tick(now, &mut fx),
            Input::PageOutcome { page, outcome } => self.on_outcome(now, page, outcome, &mut fx),
            Input::AddOverride {
                schedule,
                change,
                from,
                to,
                by,
            } => self.add_override(now, schedule, change, (from, to), &by, &mut fx)?,
            Input::DeleteOverride { schedule, id, .. } => {
                self.delete_override(now, &schedule, id, &mut fx)?
            }
            Input::AddSilence {
                matchers,
                from,
                to,
                comment,
                by,
            } => self.add_silence(now, matchers, (from, to), comment, &by, &mut fx)?,
            Input::ExpireSilence { id, .. } => self.expire_silence(now, id, &mut fx)?,
            Input::StartMaintenance {
                matchers,
                from,
                to,
                comment,
                by,
            } => self.start_maintenance(now, matchers, (from, to), comment, &by, &mut fx)?,
            Input::ExtendMaintenance { id, to, by } => {
                self.extend_maintenance(now, id, to, &by, &mut fx)?
            }
            Input::EndMaintenance { id, by } => self.end_maintenance(now, id, &by, &mut fx)?,
            Input::AckSilenceDone {
                incident,
                done,
                until,
            } => {
                // An answer about an incident no longer open only has to be written down.
                let _ = self.with_open(now, incident, &mut fx, |l, cx| {
                    l.ack_silence_done(cx, done, until);
                    Ok(())
                });
            }
        }
        self.sweep_maintenance(now, &mut fx);
        self.prune_overrides(now);
        self.prune_silences(now);
        self.prune_recent(now);
        Ok(fx)
    }

    pub(super) fn ctx<'a>(&'a mut self, now: Timestamp, fx: &'a mut Vec<Effect>) -> Ctx<'a> {
        Ctx {
            now,
            ack_timeout: self.cfg.ack_timeout,
            max_alerts: self.cfg.max_alerts,
            next_page_id: &mut self.next_page_id,
            fx,
            roster: super::roster::Roster {
                cfg: &self.cfg,
                overrides: &self.overrides,
            },
        }
    }

    fn refusal_for_missing(&self, id: IncidentId) -> Refusal {
        if id >= 1 && id < self.next_incident_id {
            Refusal::AlreadyResolved(id)
        } else {
            Refusal::NotFound(id)
        }
    }

    /// Runs `f` on an open incident, then writes its status and moves its deadline. A
    /// refusal keeps only the history notes `f` left (nothing else changed).
    fn with_open(
        &mut self,
        now: Timestamp,
        id: IncidentId,
        fx: &mut Vec<Effect>,
        f: impl FnOnce(&mut Live, &mut Ctx<'_>) -> Result<(), Refusal>,
    ) -> Result<(), Refused> {
        let Some(mut live) = self.open.remove(&id) else {
            return Err(self.refusal_for_missing(id).into());
        };
        let mark = fx.len();
        let res = {
            let mut cx = self.ctx(now, fx);
            let r = f(&mut live, &mut cx);
            if r.is_ok() {
                live.advance(&mut cx);
            }
            r
        };
        match res {
            Ok(()) => {
                self.put_back(now, live, fx);
                Ok(())
            }
            Err(refusal) => {
                let notes = fx.split_off(mark);
                debug_assert!(notes.iter().all(|e| matches!(e, Effect::Event(_))));
                self.open.insert(id, live);
                Err(Refused { refusal, notes })
            }
        }
    }

    /// Returns an incident to the maps (or retires it when resolved) and records its status.
    pub(super) fn put_back(&mut self, now: Timestamp, live: Live, fx: &mut Vec<Effect>) {
        let id = live.id;
        fx.push(Effect::Status(live.status(now)));
        self.unindex(id, live.wake);
        if live.state == IncidentState::Resolved {
            let gid = live.group.clone();
            if self.by_group.get(&gid) == Some(&id) {
                self.by_group.remove(&gid);
            }
            let alerts = live
                .alerts
                .iter()
                .map(|(k, a)| (*k, a.starts_at()))
                .collect();
            self.remember_resolved(gid, id, now, alerts);
        } else {
            self.open.insert(id, live);
            self.reindex(id);
        }
    }

    fn unindex(&mut self, id: IncidentId, wake: Option<Timestamp>) {
        if let Some(t) = wake {
            self.timers.remove(&(t, id));
        }
    }

    fn reindex(&mut self, id: IncidentId) {
        if let Some(live) = self.open.get_mut(&id) {
            if let Some(t) = live.wake {
                self.timers.remove(&(t, id));
            }
            live.wake = live.wake_time();
            if let Some(t) = live.wake {
                self.timers.insert((t, id));
            }
        }
    }

    fn remember_resolved(
        &mut self,
        gid: String,
        id: IncidentId,
        at: Timestamp,
        alerts: HashMap<u64, Timestamp>,
    ) {
        self.recent_order.push_back((at, gid.clone(), id));
        self.recent.insert(
            gid,
            Recent {
                incident: id,
                alerts,
            },
        );
    }

    fn prune_recent(&mut self, now: Timestamp) {
        while let Some((at, _, _)) = self.recent_order.front() {
            if now.since(*at) <= RECENT_WINDOW {
                break;
            }
            let (_, gid, id) = self.recent_order.pop_front().expect("front exists");
            if self.recent.get(&gid).is_some_and(|r| r.incident == id) {
                self.recent.remove(&gid);
            }
        }
    }

    fn on_tick(&mut self, now: Timestamp, fx: &mut Vec<Effect>) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            let Some(mut live) = self.open.remove(&id) else {
                continue;
            };
            live.wake = None;
            {
                let mut cx = self.ctx(now, fx);
                live.advance(&mut cx);
            }
            self.put_back(now, live, fx);
        }
    }

    /// Held pages that flood control let go: those asking for action on an incident
    /// acked or resolved meanwhile are cancelled (nobody is woken for it); the rest go
    /// out together.
    fn on_released(&mut self, now: Timestamp, pages: Vec<Page>, fx: &mut Vec<Effect>) {
        let mut send = Vec::with_capacity(pages.len());
        for page in pages {
            let state = self
                .open
                .get(&page.incident)
                .map(|l| (l.state, &l.acked_by));
            let why_not = match state {
                _ if !page.kind.needs_action() => None,
                Some((IncidentState::Triggered, _)) => None,
                Some((st, by)) => Some(format!(
                    "held by flood control while the incident was {} (by {})",
                    st.as_str(),
                    by.as_deref().unwrap_or("tocsin")
                )),
                None => Some("held by flood control while the incident was resolved".into()),
            };
            match why_not {
                None => send.push(page),
                Some(reason) => self.on_outcome(now, page, Outcome::Cancelled { reason }, fx),
            }
        }
        if !send.is_empty() {
            fx.push(Effect::Send { pages: send });
        }
    }

    fn on_outcome(&mut self, now: Timestamp, page: Page, outcome: Outcome, fx: &mut Vec<Effect>) {
        fx.push(Effect::PageDone {
            page: page.id,
            at: now,
            outcome: outcome.clone(),
        });
        let dest = match &page.to {
            Some(to) => format!("{} via {} ({to})", page.target, page.notifier),
            None => format!("{} via {}", page.target, page.notifier),
        };
        let (kind, detail) = match &outcome {
            Outcome::Delivered { attempts } => (
                EventKind::PageDelivered,
                format!(
                    "{} page to {dest} delivered (attempt {attempts})",
                    page.kind.as_str()
                ),
            ),
            Outcome::Failed {
                attempts,
                permanent,
                error,
            } => (
                EventKind::PageFailed,
                format!(
                    "{} page to {dest} failed after {attempts} attempt(s){}: {error}",
                    page.kind.as_str(),
                    if *permanent { " (permanent)" } else { "" }
                ),
            ),
            Outcome::Cancelled { reason } => (
                EventKind::PageCancelled,
                format!("{} page to {dest} not sent: {reason}", page.kind.as_str()),
            ),
            Outcome::Placed {
                attempts,
                reference,
            } => (
                EventKind::PagePlaced,
                format!(
                    "{} call to {dest} placed ({reference}, attempt {attempts}); delivered once a key is pressed",
                    page.kind.as_str()
                ),
            ),
            Outcome::NotReached { reason } => (
                EventKind::PageNotReached,
                format!(
                    "{} call to {dest} did not reach anyone: {reason}",
                    page.kind.as_str()
                ),
            ),
        };
        fx.push(Effect::Event(HistoryEvent::by_engine(
            page.incident,
            now,
            kind,
            detail,
        )));
        let unreached = match &outcome {
            Outcome::Failed { error, .. } => Some(error),
            Outcome::NotReached { reason } => Some(reason),
            _ => None,
        };
        if let Some(error) = unreached
            && let Some(mut live) = self.open.remove(&page.incident)
        {
            let changed = {
                let mut cx = self.ctx(now, fx);
                live.failover(&mut cx, &page, error)
            };
            if changed {
                self.put_back(now, live, fx);
            } else {
                self.open.insert(live.id, live);
            }
        }
    }

    fn on_alerts(&mut self, now: Timestamp, batch: AlertBatch, fx: &mut Vec<Effect>) {
        let gid = group_id(&batch.source, &batch.group_key);
        if let Some(&id) = self.by_group.get(&gid) {
            let mut live = self
                .open
                .remove(&id)
                .expect("by_group points at an open incident");
            let changed = {
                let mut cx = self.ctx(now, fx);
                live.merge_alerts(&mut cx, batch)
            };
            if changed {
                self.put_back(now, live, fx);
            } else {
                self.open.insert(id, live);
            }
            return;
        }

        // No open incident: only alerts that are firing and not a late copy of something
        // already resolved may open one.
        let recent = self.recent.get(&gid);
        let fresh: Vec<AlertIn> = batch
            .alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .filter(|a| {
                recent
                    .and_then(|r| r.alerts.get(&fingerprint_key(&a.fingerprint)))
                    .is_none_or(|seen| a.starts_at > *seen)
            })
            .cloned()
            .collect();
        if fresh.is_empty() {
            return;
        }
        let id = self.next_incident_id;
        self.next_incident_id += 1;
        let chosen = batch
            .policy
            .as_ref()
            .and_then(|name| self.cfg.policies.get(name).cloned())
            .or_else(|| self.cfg.route(&batch.labels));
        let (policy, routed) = match chosen {
            Some(p) => (p, true),
            None => (
                Arc::new(PolicySnapshot {
                    name: UNROUTED.to_string(),
                    repeat: 0,
                    repeat_after: Duration::ZERO,
                    steps: Vec::new(),
                    page_recovery: false,
                    resolve_on_ack: false,
                }),
                false,
            ),
        };
        fx.push(Effect::Opened(IncidentOpened {
            id,
            source: batch.source.clone(),
            group_key: batch.group_key.clone(),
            title: batch.title.clone(),
            labels: batch.labels.clone(),
            created_at: now,
            policy: policy.clone(),
        }));
        let detail = if routed {
            format!(
                "opened with {} firing alert(s); policy {} ({} step(s), repeat {})",
                fresh.len(),
                policy.name,
                policy.steps.len(),
                policy.repeat
            )
        } else {
            format!(
                "opened with {} firing alert(s); no route matched its labels, so nobody is paged: add a route without matchers as the last route",
                fresh.len()
            )
        };
        fx.push(Effect::Event(HistoryEvent::by_engine(
            id,
            now,
            EventKind::Opened,
            detail,
        )));
        let mut live = Live::open(id, gid.clone(), policy, &batch.labels, now);
        let truncated = batch.truncated;
        let holding = self.holding(&live, now).map(|w| w.record.clone());
        {
            let mut cx = self.ctx(now, fx);
            live.add_fresh(&mut cx, fresh, truncated);
            if let Some(w) = holding {
                live.hold(&mut cx, &w, None);
            }
            live.advance(&mut cx);
        }
        self.by_group.insert(gid, id);
        self.put_back(now, live, fx);
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("open", &self.open.len())
            .field("recent", &self.recent.len())
            .field("timers", &self.timers.len())
            .field("next_incident_id", &self.next_incident_id)
            .finish()
    }
}
