//! Shift changes as they happen: who is on call is kept in `tocsin_schedule_oncall`, and
//! for a schedule with `notify_handoff = true` the incoming person is told through their
//! first method ("You are on call for primary until Mon 09:00 CST").
//!
//! The calendar decides who is on call (pure); this task only wakes at the next instant
//! the answer changes and sends what changed. The notices are not incidents: nothing is
//! recorded, and a handoff that happened while tocsin was not running is not told late.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::dispatch::Dispatcher;
use crate::engine::{EscalationConfig, IncidentState, Page, PageKind};
use crate::metrics::{Metrics, ScheduleLabel};
use crate::store::{IncidentView, Store};
use crate::time::{Clock, Timestamp};

/// Longest sleep between looks: a reload or an override made meanwhile is seen within it.
const LOOK_EVERY: Duration = Duration::from_secs(60);

/// Runs until `stop`.
pub async fn run(
    cfg: watch::Receiver<Arc<EscalationConfig>>,
    store: Arc<dyn Store>,
    dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut cfg = cfg;
    let mut jumps = clock.jumps();
    // Who was on call at the last look, by schedule: the first look only learns it.
    let mut seen: Option<BTreeMap<String, BTreeSet<String>>> = None;
    loop {
        let now = clock.now();
        let current = cfg.borrow_and_update().clone();
        let overrides = match store.overrides(None, now).await {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "cannot read the schedules' overrides; looking again in a minute");
                Vec::new()
            }
        };
        let mut next_change: Option<Timestamp> = None;
        let mut now_on: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for name in current.calendar.schedules.keys() {
            let Some(oc) = current.oncall(name, &overrides, now) else {
                continue;
            };
            let people: BTreeSet<String> = if oc.fallback_used {
                BTreeSet::new()
            } else {
                oc.contacts.iter().map(|c| c.name.clone()).collect()
            };
            metrics
                .schedule_oncall
                .get_or_create(&ScheduleLabel {
                    schedule: name.clone(),
                })
                .set(people.len() as i64);
            next_change = match (next_change, oc.until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(before) = seen.as_ref().and_then(|s| s.get(name))
                && current.handoff_notices.contains(name)
            {
                for person in people.difference(before) {
                    notify(&current, &dispatcher, name, person, oc.until, now);
                }
            }
            now_on.insert(name.clone(), people);
        }
        seen = Some(now_on);
        let wait = next_change
            .map(|t| t.since(now).max(Duration::from_millis(10)))
            .unwrap_or(LOOK_EVERY)
            .min(LOOK_EVERY);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = crate::time::jumped(&mut jumps) => {}
            _ = cfg.changed() => {}
        }
    }
}

/// Tells `person` through their first method that their shift on `schedule` started.
fn notify(
    cfg: &EscalationConfig,
    dispatcher: &Dispatcher,
    schedule: &str,
    person: &str,
    until: Option<Timestamp>,
    now: Timestamp,
) {
    let Some(m) = cfg.contacts.get(person).and_then(|m| m.first()) else {
        warn!(
            schedule,
            contact = person,
            "{person} is on call for {schedule} but has no method to be told"
        );
        return;
    };
    let until = match (until, cfg.calendar.schedules.get(schedule)) {
        (Some(t), Some(s)) => format!(" until {}", crate::schedule::describe(t, &s.time_zone)),
        _ => String::new(),
    };
    let title = format!("You are on call for {schedule}{until}");
    info!(schedule, contact = person, notifier = %m.notifier, "{title}");
    let page = Page {
        id: 0,
        incident: 0,
        at: now,
        kind: PageKind::Notice,
        step: 0,
        cycle: 0,
        target: person.to_string(),
        contact: Some(person.to_string()),
        notifier: m.notifier.clone(),
        method: Some(0),
        to: m.to.clone(),
        topic: m.topic.clone(),
        late_by_ms: None,
        reason: format!("the shift on {schedule} started"),
        retry_until: None,
        hold_until: None,
    };
    let group = format!("tocsin:handoff:{schedule}");
    dispatcher.send_notice(
        vec![page],
        IncidentView::about_tocsin(title, &group, IncidentState::Triggered, now),
    );
}
