//! One open incident and how time, people and alerts move it.
//!
//! Steps fire at offsets from the start of a pass; a contact's methods fire at offsets
//! from when the contact was paged; a method that fails for good hands over to the next
//! method at once. Ack stops it all until the ack expires; snooze holds it for a while;
//! both end by starting again from step 1.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use super::incidents::fingerprint_key;
use super::labels::LabelSet;
use super::model::*;
use super::policy::{MethodSnapshot, PolicySnapshot, Target};
use crate::schedule::{OnCall, Via as OnCallVia};
use crate::time::{Timestamp, human};

/// A deadline met later than this is reported as late (tocsin was down or stalled).
pub const LATE_AFTER: Duration = Duration::from_secs(1);

/// What an incident needs from the engine while it changes.
pub(crate) struct Ctx<'a> {
    pub now: Timestamp,
    pub ack_timeout: Duration,
    /// Most alerts an incident keeps (at least 1).
    pub max_alerts: usize,
    pub next_page_id: &'a mut PageId,
    pub fx: &'a mut Vec<Effect>,
    /// Who schedules have on call, for steps that name one.
    pub roster: super::roster::Roster<'a>,
}

impl Ctx<'_> {
    pub(super) fn event(
        &mut self,
        id: IncidentId,
        kind: EventKind,
        actor: Option<&Actor>,
        detail: String,
    ) {
        let ev = match actor {
            Some(a) => HistoryEvent::new(id, self.now, kind, a, detail),
            None => HistoryEvent::by_engine(id, self.now, kind, detail),
        };
        self.fx.push(Effect::Event(ev));
    }

    fn page_id(&mut self) -> PageId {
        let id = *self.next_page_id;
        *self.next_page_id += 1;
        id
    }
}

/// An alert instance as the engine remembers it: its `startsAt` and whether it fires,
/// packed in 8 bytes because a storm keeps hundreds of thousands of them in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlertKey(i64);

impl AlertKey {
    pub fn new(starts_at: Timestamp, firing: bool) -> Self {
        AlertKey((starts_at.millis() << 1) | i64::from(firing))
    }

    pub fn starts_at(self) -> Timestamp {
        Timestamp(self.0 >> 1)
    }

    pub fn firing(self) -> bool {
        self.0 & 1 == 1
    }
}

/// Labels in 8 bytes: the engine keeps no labels, only enough to tell whether a batch
/// carries other ones than the incident has.
pub(crate) fn labels_hash(labels: &BTreeMap<String, String>) -> u64 {
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

/// An open incident, as the engine keeps it in memory.
#[derive(Debug)]
pub(crate) struct Live {
    pub id: IncidentId,
    /// Source + group key.
    pub group: String,
    pub state: IncidentState,
    pub acked_by: Option<String>,
    pub acked_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub policy: Arc<PolicySnapshot>,
    pub esc: Escalation,
    pub alerts: HashMap<u64, AlertKey>,
    pub firing: usize,
    /// The deadline under which it sits in the engine's timer index.
    pub wake: Option<Timestamp>,
    /// [`labels_hash`] of the labels it has in the store.
    pub labels_hash: u64,
    /// Those labels, compact, for maintenance windows to match.
    pub labels: LabelSet,
    /// Alerts not kept because `alerts` was full (`max_alerts_per_incident`).
    pub truncated: u64,
    /// Keys of alerts not kept, so that a redelivery of one is not counted again; it
    /// holds at most as many as `alerts` (and is empty after a restart).
    pub dropped: HashSet<u64>,
}

fn page_kind(step: u32, cycle: u32) -> PageKind {
    match (cycle, step) {
        (0, 1) => PageKind::Triggered,
        (0, _) => PageKind::Escalated,
        _ => PageKind::Reminder,
    }
}

fn late(now: Timestamp, due: Timestamp) -> Option<u64> {
    let l = now.since(due);
    (l > LATE_AFTER).then_some(l.as_millis() as u64)
}

impl Live {
    pub fn open(
        id: IncidentId,
        group: String,
        policy: Arc<PolicySnapshot>,
        labels: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Self {
        let first = policy.steps.first().map(|s| now.plus(s.after));
        Live {
            id,
            group,
            state: IncidentState::Triggered,
            acked_by: None,
            acked_at: None,
            resolved_at: None,
            policy,
            esc: Escalation {
                pass_start: now,
                next_step_at: first,
                ..Escalation::default()
            },
            alerts: HashMap::new(),
            firing: 0,
            wake: None,
            labels_hash: labels_hash(labels),
            labels: LabelSet::from_map(labels),
            truncated: 0,
            dropped: HashSet::new(),
        }
    }

    pub fn restored(r: RestoredIncident, group: String) -> Self {
        let alerts: HashMap<u64, AlertKey> = r
            .alerts
            .iter()
            .map(|(key, st, s)| (*key, AlertKey::new(*s, *st == AlertStatus::Firing)))
            .collect();
        let firing = alerts.values().filter(|a| a.firing()).count();
        Live {
            id: r.id,
            group,
            state: r.state,
            acked_by: r.acked_by,
            acked_at: r.acked_at,
            resolved_at: r.resolved_at,
            policy: r.policy,
            esc: r.escalation,
            alerts,
            firing,
            wake: None,
            labels_hash: r.labels_hash,
            labels: r.labels,
            truncated: r.alerts_truncated,
            dropped: HashSet::new(),
        }
    }

    pub fn status(&self, now: Timestamp) -> IncidentStatus {
        IncidentStatus {
            id: self.id,
            state: self.state,
            updated_at: now,
            resolved_at: self.resolved_at,
            acked_by: self.acked_by.clone(),
            acked_at: self.acked_at,
            wake_at: self.wake_time(),
            escalation: self.esc.clone(),
            alerts_truncated: self.truncated,
        }
    }

    /// The next moment something can happen to this incident without outside input.
    pub fn wake_time(&self) -> Option<Timestamp> {
        match self.state {
            IncidentState::Resolved => None,
            IncidentState::Acknowledged => {
                let ack = self.esc.snoozed_until.or(self.esc.ack_expires_at);
                match (ack, self.ack_silence_due()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            // Held by maintenance: nothing comes due until the window lets go.
            IncidentState::Triggered if self.esc.held_by.is_some() => None,
            IncidentState::Triggered => {
                let methods = self.esc.chains.iter().filter_map(|c| self.method_due(c));
                self.esc.next_step_at.into_iter().chain(methods).min()
            }
        }
    }

    fn methods_of(&self, contact: &str) -> &[MethodSnapshot] {
        self.policy
            .steps
            .iter()
            .flat_map(|s| s.targets.iter())
            .find_map(|t| match t {
                Target::Contact { name, methods } if name == contact => Some(methods.as_slice()),
                _ => None,
            })
            .or_else(|| {
                self.esc
                    .rostered
                    .iter()
                    .find(|r| r.contact == contact)
                    .map(|r| r.methods.as_slice())
            })
            .unwrap_or(&[])
    }

    fn method_due(&self, c: &MethodChain) -> Option<Timestamp> {
        self.methods_of(&c.contact)
            .get(c.next_method)
            .map(|m| c.paged_at.plus(m.after))
    }

    /// Fires everything that is due at `now`: expired acks and snoozes, steps, methods.
    pub fn advance(&mut self, cx: &mut Ctx<'_>) {
        self.tend_ack_silence(cx);
        if self.state == IncidentState::Acknowledged {
            let who = self.acked_by.clone().unwrap_or_default();
            if let Some(until) = self.esc.snoozed_until {
                if until > cx.now {
                    return;
                }
                self.retrigger(
                    cx,
                    EventKind::SnoozeEnded,
                    None,
                    format!("the snooze by {who} ended"),
                );
            } else if let Some(exp) = self.esc.ack_expires_at {
                if exp > cx.now {
                    return;
                }
                self.retrigger(
                    cx,
                    EventKind::AckExpired,
                    None,
                    format!("the ack by {who} expired after {}", human(cx.ack_timeout)),
                );
            } else {
                return;
            }
        }
        if self.state != IncidentState::Triggered || self.esc.held_by.is_some() {
            return;
        }
        // Methods already due came due before any step due now (or together with it).
        self.fire_due_methods(cx);
        self.fire_due_steps(cx);
    }

    /// Moves the step pointer to the next occurrence: the next step of this pass, the
    /// first step of the next pass, or nothing when the repeats are used up.
    fn step_pointer_forward(&mut self) {
        let steps = &self.policy.steps;
        self.esc.next_step += 1;
        if self.esc.next_step < steps.len() {
            self.esc.next_step_at = Some(self.esc.pass_start.plus(steps[self.esc.next_step].after));
        } else if self.esc.cycle < self.policy.repeat {
            self.esc.cycle += 1;
            self.esc.pass_start = self.esc.pass_start.plus(self.policy.pass_length());
            self.esc.next_step = 0;
            self.esc.next_step_at = Some(self.esc.pass_start.plus(steps[0].after));
        } else {
            self.esc.next_step_at = None;
        }
    }

    fn fire_due_steps(&mut self, cx: &mut Ctx<'_>) {
        // Collect every occurrence that is due. Normally that is one; after downtime it can
        // be several passes' worth, and each step then fires once, for its latest pass.
        let mut due: Vec<(usize, u32, Timestamp)> = Vec::new();
        while let Some(at) = self.esc.next_step_at {
            if at > cx.now {
                break;
            }
            due.push((self.esc.next_step, self.esc.cycle, at));
            self.step_pointer_forward();
        }
        if due.is_empty() {
            return;
        }
        let occurrences = due.len();
        let mut latest: Vec<(usize, u32, Timestamp)> = Vec::new();
        for d in due.into_iter().rev() {
            if !latest.iter().any(|l| l.0 == d.0) {
                latest.push(d);
            }
        }
        latest.reverse();
        if latest.len() < occurrences {
            cx.event(
                self.id,
                EventKind::CatchUp,
                None,
                format!(
                    "{} step occurrence(s) came due while tocsin was not running; each step fires once, for its latest pass",
                    occurrences
                ),
            );
        }
        for (idx, cycle, at) in latest {
            self.fire_step(cx, idx, cycle, at);
        }
    }

    fn fire_step(&mut self, cx: &mut Ctx<'_>, idx: usize, cycle: u32, due: Timestamp) {
        let policy = self.policy.clone();
        let step = &policy.steps[idx];
        let number = idx as u32 + 1;
        self.esc.step = number;
        let late_by = late(cx.now, due);
        // A schedule is asked now, as the step fires: whoever is on call at this instant.
        let resolved: Vec<Resolved> = step
            .targets
            .iter()
            .map(|t| match t {
                Target::Schedule { name } => {
                    Resolved::Schedule(name, cx.roster.oncall(name, cx.now))
                }
                other => Resolved::Plain(other),
            })
            .collect();
        let names: Vec<String> = resolved.iter().map(Resolved::describe).collect();
        let mut detail = format!(
            "step {number}/{} of policy {} (pass {}/{}): paging {}",
            policy.steps.len(),
            policy.name,
            cycle + 1,
            policy.repeat + 1,
            names.join(", ")
        );
        if let Some(ms) = late_by {
            detail.push_str(&format!(
                "; {} late, tocsin was not running when it came due",
                human(Duration::from_millis(ms))
            ));
        }
        cx.event(self.id, EventKind::Step, None, detail);
        let reason = format!("step {number} of policy {}", policy.name);
        for r in resolved {
            let t = match r {
                Resolved::Plain(t) => t,
                Resolved::Schedule(name, oncall) => {
                    self.page_schedule(cx, name, oncall, (number, cycle), late_by);
                    continue;
                }
            };
            match t {
                Target::Schedule { .. } => unreachable!("resolved above"),
                Target::Notifier { name } => {
                    let page = Page {
                        id: cx.page_id(),
                        incident: self.id,
                        at: cx.now,
                        kind: page_kind(number, cycle),
                        step: number,
                        cycle,
                        target: name.clone(),
                        contact: None,
                        notifier: name.clone(),
                        method: None,
                        to: None,
                        topic: None,
                        late_by_ms: late_by,
                        reason: reason.clone(),
                        retry_until: None,
                        hold_until: None,
                    };
                    cx.fx.push(Effect::Page(page));
                    if !self.esc.announced.contains(name) {
                        self.esc.announced.push(name.clone());
                    }
                }
                Target::Contact { name, methods } => {
                    self.page_contact(cx, name, methods.is_empty(), (number, cycle), late_by, None)
                }
            }
        }
    }

    /// Starts paging one contact from their first method; `via` is the schedule that
    /// had them on call.
    fn page_contact(
        &mut self,
        cx: &mut Ctx<'_>,
        name: &str,
        no_methods: bool,
        (number, cycle): (u32, u32),
        late_by: Option<u64>,
        via: Option<&str>,
    ) {
        if no_methods {
            cx.event(
                self.id,
                EventKind::Unreachable,
                None,
                format!("contact {name} has no contact methods; nobody was paged for them"),
            );
            return;
        }
        // A contact paged again restarts their chain from the first method.
        self.esc.chains.retain(|c| c.contact != name);
        self.esc.chains.push(MethodChain {
            contact: name.to_string(),
            step: number,
            cycle,
            paged_at: cx.now,
            next_method: 0,
            late_by_ms: late_by,
            via: via.map(str::to_string),
        });
        // Pages go out in the order the step lists its targets.
        let last = self.esc.chains.len() - 1;
        self.fire_chain(cx, last);
    }

    /// Pages whoever `schedule` has on call (its fallback when nobody is), with the
    /// methods they have now, remembered for the methods still to come.
    fn page_schedule(
        &mut self,
        cx: &mut Ctx<'_>,
        schedule: &str,
        oncall: Option<OnCall>,
        step: (u32, u32),
        late_by: Option<u64>,
    ) {
        let Some(oncall) = oncall else {
            cx.event(
                self.id,
                EventKind::Unreachable,
                None,
                format!("schedule {schedule} is no longer in the config; nobody was paged for it"),
            );
            return;
        };
        if oncall.contacts.is_empty() {
            cx.event(
                self.id,
                EventKind::Unreachable,
                None,
                format!(
                    "nobody is on call for schedule {schedule} and it has no fallback; nobody was paged for it"
                ),
            );
            return;
        }
        for person in &oncall.contacts {
            let methods = cx.roster.methods(&person.name).unwrap_or(&[]).to_vec();
            let no_methods = methods.is_empty();
            match self
                .esc
                .rostered
                .iter_mut()
                .find(|r| r.contact == person.name)
            {
                Some(r) => r.methods = methods,
                None => self.esc.rostered.push(Rostered {
                    contact: person.name.clone(),
                    methods,
                }),
            }
            self.page_contact(cx, &person.name, no_methods, step, late_by, Some(schedule));
        }
    }

    fn fire_due_methods(&mut self, cx: &mut Ctx<'_>) {
        let mut i = 0;
        while i < self.esc.chains.len() {
            if self.fire_chain(cx, i) {
                i += 1;
            }
        }
    }

    /// Sends every method of chain `i` that is due; drops the chain once all have gone
    /// out. Returns whether the chain is still there.
    fn fire_chain(&mut self, cx: &mut Ctx<'_>, i: usize) -> bool {
        loop {
            let chain = &self.esc.chains[i];
            let Some(due) = self.method_due(chain) else {
                break;
            };
            if due > cx.now {
                break;
            }
            let reason = if let (0, Some(via)) = (chain.next_method, &chain.via) {
                format!(
                    "step {} of policy {}: on call for {via}",
                    chain.step, self.policy.name
                )
            } else if chain.next_method == 0 {
                format!("step {} of policy {}", chain.step, self.policy.name)
            } else {
                format!(
                    "step {} of policy {}: method {} of {}, nobody acked",
                    chain.step,
                    self.policy.name,
                    chain.next_method + 1,
                    chain.contact
                )
            };
            let late_by = if chain.next_method == 0 {
                chain.late_by_ms
            } else {
                late(cx.now, due)
            };
            self.page_method(cx, i, late_by, reason);
        }
        if self.method_due(&self.esc.chains[i]).is_none() {
            self.esc.chains.remove(i);
            false
        } else {
            true
        }
    }

    /// Sends the next method of chain `i` and moves the chain on.
    fn page_method(&mut self, cx: &mut Ctx<'_>, i: usize, late_by: Option<u64>, reason: String) {
        let chain = self.esc.chains[i].clone();
        let methods = self.methods_of(&chain.contact);
        let m = methods[chain.next_method].clone();
        let retry_until = methods
            .get(chain.next_method + 1)
            .map(|next| chain.paged_at.plus(next.after).max(cx.now));
        let mut page = Page {
            id: cx.page_id(),
            incident: self.id,
            at: cx.now,
            kind: page_kind(chain.step, chain.cycle),
            step: chain.step,
            cycle: chain.cycle,
            target: chain.contact.clone(),
            contact: Some(chain.contact.clone()),
            notifier: m.notifier,
            method: Some(chain.next_method as u32),
            to: m.to,
            topic: m.topic,
            late_by_ms: late_by,
            reason,
            retry_until,
            hold_until: None,
        };
        let reached = (chain.contact.clone(), chain.next_method as u32);
        match self.esc.reached.iter_mut().find(|r| r.0 == chain.contact) {
            Some(r) => *r = reached,
            None => self.esc.reached.push(reached),
        }
        if let Some(until) = self.quiet_until(cx, &chain.contact) {
            page.hold_until = Some(until);
            let q = &cx.roster.cfg.quiet_hours[&chain.contact];
            let detail = format!(
                "{}'s quiet hours: the page through {} waits until {} and goes out then with whatever else waits for them, unless this incident is acked or resolved by then",
                chain.contact,
                page.notifier,
                q.describe_end(until)
            );
            cx.event(self.id, EventKind::Quiet, None, detail);
        }
        cx.fx.push(Effect::Page(page));
        self.esc.chains[i].next_method += 1;
    }

    /// When `contact`'s quiet hours end, if they are on now and this incident is less
    /// severe than what they still want at once; an unknown severity is never held.
    fn quiet_until(&self, cx: &Ctx<'_>, contact: &str) -> Option<Timestamp> {
        let cfg = cx.roster.cfg;
        let q = cfg.quiet_hours.get(contact)?;
        let labels = self.labels.to_map();
        let rank = cfg
            .severity_order
            .iter()
            .position(|s| Some(s) == labels.get("severity"))?;
        if rank >= q.below {
            return None;
        }
        q.until(cx.now)
    }

    /// A page failed for good: if it was a contact's method and the next method has not
    /// gone out yet, send it now instead of waiting for its `after`.
    pub fn failover(&mut self, cx: &mut Ctx<'_>, failed: &Page, error: &str) -> bool {
        if self.state != IncidentState::Triggered {
            return false;
        }
        let (Some(contact), Some(method)) = (&failed.contact, failed.method) else {
            return false;
        };
        let Some(i) = self.esc.chains.iter().position(|c| {
            &c.contact == contact
                && c.step == failed.step
                && c.cycle == failed.cycle
                && c.next_method == method as usize + 1
        }) else {
            return false;
        };
        let next = self.methods_of(contact)[method as usize + 1].clone();
        cx.event(
            self.id,
            EventKind::Failover,
            None,
            format!(
                "{} could not reach {contact} ({error}); trying {} now instead of after {}",
                failed.notifier,
                next.notifier,
                human(next.after)
            ),
        );
        let reason = format!(
            "failover for {contact}: {} failed ({error})",
            failed.notifier
        );
        self.page_method(cx, i, None, reason);
        if self.method_due(&self.esc.chains[i]).is_none() {
            self.esc.chains.remove(i);
        }
        true
    }

    fn retrigger(&mut self, cx: &mut Ctx<'_>, kind: EventKind, actor: Option<&Actor>, why: String) {
        self.state = IncidentState::Triggered;
        self.acked_by = None;
        self.acked_at = None;
        self.esc.ack_expires_at = None;
        self.esc.snoozed_until = None;
        self.end_ack_silence(cx);
        self.restart_pass(cx.now);
        cx.event(
            self.id,
            kind,
            actor,
            format!("{why}; escalation starts again from step 1"),
        );
    }

    /// Step 1 comes due again, counted from `now`.
    fn restart_pass(&mut self, now: Timestamp) {
        self.esc.pass_start = now;
        self.esc.cycle = 0;
        self.esc.next_step = 0;
        self.esc.next_step_at = self.policy.steps.first().map(|s| now.plus(s.after));
        self.esc.chains.clear();
    }

    /// A maintenance window takes hold of the incident (`before`: the one whose end
    /// handed it over): nothing pages until it lets go.
    pub fn hold(
        &mut self,
        cx: &mut Ctx<'_>,
        window: &super::window::WindowRecord,
        before: Option<u64>,
    ) {
        self.esc.held_by = Some(window.id);
        self.esc.chains.clear();
        let what = format!(
            "maintenance #{} ({}, until {})",
            window.id,
            window.comment,
            window.to.to_rfc3339()
        );
        let detail = match before {
            Some(old) => format!("maintenance #{old} ended; still held by {what}"),
            None => format!("held by {what}: nothing is paged until it ends"),
        };
        cx.event(self.id, EventKind::Held, None, detail);
    }

    /// The window holding the incident ended: a triggered one pages from step 1.
    pub fn release(&mut self, cx: &mut Ctx<'_>) {
        let Some(id) = self.esc.held_by.take() else {
            return;
        };
        let detail = if self.state == IncidentState::Triggered {
            self.restart_pass(cx.now);
            format!("maintenance #{id} ended; escalation starts again from step 1")
        } else {
            format!("maintenance #{id} ended")
        };
        cx.event(self.id, EventKind::HoldEnded, None, detail);
    }

    /// Status updates (ack, resolve) go to the notifiers the incident was announced on.
    fn announce(&mut self, cx: &mut Ctx<'_>, kind: PageKind, reason: &str) {
        for name in self.esc.announced.clone() {
            let page = Page {
                id: cx.page_id(),
                incident: self.id,
                at: cx.now,
                kind,
                step: 0,
                cycle: self.esc.cycle,
                target: name.clone(),
                contact: None,
                notifier: name,
                method: None,
                to: None,
                topic: None,
                late_by_ms: None,
                reason: reason.to_string(),
                retry_until: None,
                hold_until: None,
            };
            cx.fx.push(Effect::Page(page));
        }
    }

    fn stop_paging(&mut self) {
        self.esc.chains.clear();
        self.esc.next_step_at = None;
    }

    /// Acks, or refuses when it is acked already (a snooze is turned into an ack): the
    /// first ack stays, nobody is told again, and a second person's ack is a line of
    /// history.
    pub fn ack(&mut self, cx: &mut Ctx<'_>, by: &Actor) -> Result<(), Refusal> {
        if self.state == IncidentState::Acknowledged && self.esc.snoozed_until.is_none() {
            let first = self.acked_by.clone().unwrap_or_default();
            let at = self.acked_at.unwrap_or(cx.now);
            if by.name != first {
                cx.event(
                    self.id,
                    EventKind::AlsoAcked,
                    Some(by),
                    format!(
                        "also acknowledged by {}; {first} acked it first, at {at}",
                        by.name
                    ),
                );
            }
            return Err(Refusal::AlreadyAcked {
                id: self.id,
                by: first,
                at,
            });
        }
        self.state = IncidentState::Acknowledged;
        self.acked_by = Some(by.name.clone());
        self.acked_at = Some(cx.now);
        self.esc.snoozed_until = None;
        self.esc.ack_expires_at = (!cx.ack_timeout.is_zero()).then(|| cx.now.plus(cx.ack_timeout));
        self.stop_paging();
        self.silence_on_ack(cx);
        let detail = match self.esc.ack_expires_at {
            Some(t) => format!(
                "acknowledged; escalation stopped until the ack expires at {t} ({})",
                human(cx.ack_timeout)
            ),
            None => "acknowledged; escalation stopped (acks do not expire)".to_string(),
        };
        cx.event(self.id, EventKind::Acked, Some(by), detail);
        if self.policy.resolve_on_ack {
            let why = format!("acknowledged by {}, which is all it asked for", by.name);
            self.resolve_as(cx, Some(by), why);
            return Ok(());
        }
        self.announce(
            cx,
            PageKind::Acknowledged,
            &format!("acknowledged by {}", by.name),
        );
        Ok(())
    }

    /// Someone asked to escalate now (an SMS `42E`): the next step fires at once. An
    /// acked incident is un-acked first; when the policy is used up, its last step
    /// fires again.
    pub fn escalate_now(&mut self, cx: &mut Ctx<'_>, by: &Actor) {
        if self.state == IncidentState::Acknowledged {
            self.retrigger(
                cx,
                EventKind::Unacked,
                Some(by),
                "escalation asked for".to_string(),
            );
        }
        let steps = self.policy.steps.len();
        match self.esc.next_step_at {
            Some(_) => {
                cx.event(
                    self.id,
                    EventKind::EscalateNow,
                    Some(by),
                    format!(
                        "step {} of {steps} fires now, not at its delay",
                        self.esc.next_step + 1
                    ),
                );
                self.esc.next_step_at = Some(cx.now);
            }
            None => {
                cx.event(
                    self.id,
                    EventKind::EscalateNow,
                    Some(by),
                    format!("the policy is used up; step {steps} of {steps} fires again"),
                );
                let cycle = self.esc.cycle;
                self.fire_step(cx, steps - 1, cycle, cx.now);
            }
        }
    }

    pub fn unack(&mut self, cx: &mut Ctx<'_>, by: &Actor) -> Result<(), Refusal> {
        if self.state != IncidentState::Acknowledged {
            return Err(Refusal::NotAcked(self.id));
        }
        self.retrigger(
            cx,
            EventKind::Unacked,
            Some(by),
            "unacknowledged".to_string(),
        );
        Ok(())
    }

    pub fn snooze(&mut self, cx: &mut Ctx<'_>, by: &Actor, d: Duration) {
        self.state = IncidentState::Acknowledged;
        self.acked_by = Some(by.name.clone());
        self.acked_at = Some(cx.now);
        self.esc.ack_expires_at = None;
        let until = cx.now.plus(d);
        self.esc.snoozed_until = Some(until);
        self.stop_paging();
        cx.event(
            self.id,
            EventKind::Snoozed,
            Some(by),
            format!("snoozed for {} (paging holds until {until})", human(d)),
        );
        self.announce(
            cx,
            PageKind::Acknowledged,
            &format!("snoozed by {} for {}", by.name, human(d)),
        );
    }

    pub fn resolve(&mut self, cx: &mut Ctx<'_>, by: &Actor, why: String) {
        self.resolve_as(cx, Some(by), why);
    }

    fn resolve_as(&mut self, cx: &mut Ctx<'_>, by: Option<&Actor>, why: String) {
        self.state = IncidentState::Resolved;
        self.resolved_at = Some(cx.now);
        self.esc.ack_expires_at = None;
        self.esc.snoozed_until = None;
        self.end_ack_silence(cx);
        self.stop_paging();
        let reason = match by {
            Some(a) => format!("resolved by {}", a.name),
            None => why.clone(),
        };
        cx.event(self.id, EventKind::Resolved, by, why);
        self.announce(cx, PageKind::Resolved, &reason);
        if self.policy.page_recovery {
            self.page_recovery(cx, &reason);
        }
    }

    /// Tells everyone who was paged that it is over, through the method that last
    /// reached each of them.
    fn page_recovery(&mut self, cx: &mut Ctx<'_>, reason: &str) {
        for (contact, method) in self.esc.reached.clone() {
            let Some(m) = self.methods_of(&contact).get(method as usize).cloned() else {
                continue;
            };
            let page = Page {
                id: cx.page_id(),
                incident: self.id,
                at: cx.now,
                kind: PageKind::Resolved,
                step: 0,
                cycle: self.esc.cycle,
                target: contact.clone(),
                contact: Some(contact),
                notifier: m.notifier,
                method: Some(method),
                to: m.to,
                topic: m.topic,
                late_by_ms: None,
                reason: reason.to_string(),
                retry_until: None,
                hold_until: None,
            };
            cx.fx.push(Effect::Page(page));
        }
    }

    /// The first alerts of a new incident.
    pub fn add_fresh(&mut self, cx: &mut Ctx<'_>, fresh: Vec<AlertIn>, truncated: u64) {
        let before = self.truncated;
        for a in fresh {
            let key = fingerprint_key(&a.fingerprint);
            if !self.alerts.contains_key(&key) && !self.room_for(cx.max_alerts, key) {
                continue;
            }
            if self
                .alerts
                .insert(key, AlertKey::new(a.starts_at, true))
                .is_none()
            {
                self.firing += 1;
            }
            cx.fx.push(Effect::Alert(AlertRecord {
                incident: self.id,
                received_at: cx.now,
                alert: a,
            }));
        }
        self.note_capped(cx, before);
        self.note_truncated(cx, truncated);
    }

    /// Whether an alert the incident does not have yet may be kept. Beyond the cap it
    /// is not: it is counted once (a redelivery of it is recognised while the dropped
    /// ones fit in as many keys as the cap) and neither stored nor counted as firing.
    fn room_for(&mut self, max_alerts: usize, key: u64) -> bool {
        let max_alerts = max_alerts.max(1);
        if self.alerts.len() < max_alerts {
            return true;
        }
        if !self.dropped.contains(&key) {
            self.truncated += 1;
            if self.dropped.len() < max_alerts {
                self.dropped.insert(key);
            }
        }
        false
    }

    /// A line of history when alerts were just left out for the cap.
    fn note_capped(&mut self, cx: &mut Ctx<'_>, before: u64) {
        let dropped = self.truncated - before;
        if dropped > 0 {
            cx.event(
                self.id,
                EventKind::Truncated,
                None,
                format!(
                    "{dropped} alert(s) not kept: the incident has {} already (max_alerts_per_incident); they are counted ({} in all), not listed, and do not count as firing",
                    self.alerts.len(),
                    self.truncated
                ),
            );
        }
    }

    fn note_truncated(&mut self, cx: &mut Ctx<'_>, truncated: u64) {
        if truncated > 0 {
            cx.event(
                self.id,
                EventKind::Truncated,
                None,
                format!(
                    "the sender dropped {truncated} alert(s) from this notification (Alertmanager max_alerts); they are not listed here"
                ),
            );
        }
    }

    /// Alerts for an incident that is already open. Returns whether anything changed;
    /// a byte-identical redelivery changes nothing.
    pub fn merge_alerts(&mut self, cx: &mut Ctx<'_>, batch: AlertBatch) -> bool {
        let (mut new_firing, mut resolved, mut recorded) = (0usize, 0usize, 0usize);
        let capped_before = self.truncated;
        for a in batch.alerts {
            let key = fingerprint_key(&a.fingerprint);
            let known = self.alerts.get(&key).copied();
            if known.is_none() && !self.room_for(cx.max_alerts, key) {
                continue;
            }
            let record = match (a.status, known) {
                // Same alert instance again, or an older instance arriving late.
                // The same instance again (a redelivery, or an HA peer's late copy of a
                // firing notification after the resolve), or an older instance: no change.
                (AlertStatus::Firing, Some(k)) if a.starts_at <= k.starts_at() => false,
                (AlertStatus::Firing, _) => {
                    if !known.is_some_and(|k| k.firing()) {
                        self.firing += 1;
                        new_firing += 1;
                    }
                    self.alerts.insert(key, AlertKey::new(a.starts_at, true));
                    true
                }
                (AlertStatus::Resolved, Some(k)) if k.firing() && a.starts_at >= k.starts_at() => {
                    self.firing -= 1;
                    resolved += 1;
                    self.alerts.insert(key, AlertKey::new(a.starts_at, false));
                    true
                }
                (AlertStatus::Resolved, Some(_)) => false,
                // Resolved before we ever saw it fire: keep it for the record.
                (AlertStatus::Resolved, None) => {
                    self.alerts.insert(key, AlertKey::new(a.starts_at, false));
                    true
                }
            };
            if record {
                recorded += 1;
                cx.fx.push(Effect::Alert(AlertRecord {
                    incident: self.id,
                    received_at: cx.now,
                    alert: a,
                }));
            }
        }
        // The labels follow the group's latest batch (Alertmanager's commonLabels: what
        // its alerts share), unless the batch only repeats what is known (an HA peer's
        // late copy must not bring back labels a newer batch dropped).
        let hash = labels_hash(&batch.labels);
        if recorded > 0 && hash != self.labels_hash {
            self.labels_hash = hash;
            self.labels = LabelSet::from_map(&batch.labels);
            cx.fx.push(Effect::Labels {
                incident: self.id,
                labels: batch.labels,
            });
        }
        let capped = self.truncated > capped_before;
        let changed = new_firing + resolved > 0 || batch.truncated > 0 || capped;
        if new_firing + resolved > 0 {
            cx.event(
                self.id,
                EventKind::Received,
                None,
                format!(
                    "{new_firing} alert(s) newly firing, {resolved} resolved; {} of {} firing",
                    self.firing,
                    self.alerts.len()
                ),
            );
        }
        self.note_capped(cx, capped_before);
        self.note_truncated(cx, batch.truncated);
        if self.firing == 0 && self.state != IncidentState::Resolved {
            let n = self.alerts.len();
            self.resolve_as(cx, None, format!("all {n} alert(s) resolved"));
        }
        changed
    }
}

/// A step's target with any schedule asked who is on call.
enum Resolved<'p> {
    Plain(&'p Target),
    Schedule(&'p str, Option<OnCall>),
}

impl Resolved<'_> {
    /// How the step's history line names it: `primary (bob on call through rotation ops)`.
    fn describe(&self) -> String {
        match self {
            Resolved::Plain(t) => t.name().to_string(),
            Resolved::Schedule(name, None) => format!("{name} (no longer configured)"),
            Resolved::Schedule(name, Some(oc)) if oc.contacts.is_empty() => {
                format!("{name} (nobody on call, no fallback)")
            }
            Resolved::Schedule(name, Some(oc)) if oc.fallback_used => {
                let who: Vec<&str> = oc.contacts.iter().map(|c| c.name.as_str()).collect();
                format!("{name} (nobody on call: fallback {})", who.join(", "))
            }
            Resolved::Schedule(name, Some(oc)) => {
                let who: Vec<String> = oc
                    .contacts
                    .iter()
                    .map(|c| match &c.via {
                        OnCallVia::Rotation(r) => {
                            format!("{} on call through rotation {r}", c.name)
                        }
                        OnCallVia::Rule => format!("{} on call by rule", c.name),
                        OnCallVia::Override(id) => format!("{} on call by override {id}", c.name),
                        OnCallVia::Fallback => format!("{} as fallback", c.name),
                    })
                    .collect();
                format!("{name} ({})", who.join(", "))
            }
        }
    }
}
