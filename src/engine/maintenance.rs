//! Maintenance windows: planned work whose alerts are recorded and open incidents as
//! usual, but page nobody while the window lasts. When it ends (or is ended early),
//! every incident it held that is still open pages from step 1; one resolved meanwhile
//! never pages. Every window ends at most `[defaults] max_maintenance` away; moving
//! its end is an input of its own, recorded.

use super::escalation::Live;
use super::incidents::Engine;
use super::model::{Actor, Effect, IncidentId, Refusal};
use super::window::{Window, WindowId, WindowRecord, check_window};
use crate::time::Timestamp;

/// Window `id`'s end moved `more` later: what "extend it by an hour" means in chat and
/// on the web view's button. The engine checks the new end like any other.
pub fn later_end(
    windows: &[WindowRecord],
    id: WindowId,
    more: std::time::Duration,
) -> Result<Timestamp, Refusal> {
    windows
        .iter()
        .find(|w| w.id == id)
        .map(|w| w.to.plus(more))
        .ok_or(Refusal::NoMaintenance(id))
}

impl Engine {
    pub(super) fn start_maintenance(
        &mut self,
        now: Timestamp,
        matchers: Vec<String>,
        (from, to): (Timestamp, Timestamp),
        comment: String,
        by: &Actor,
        fx: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let record = WindowRecord::made(
            self.next_maintenance_id,
            matchers,
            (from, to),
            comment,
            by,
            now,
        );
        let longest = self.config().max_maintenance;
        let window =
            check_window("maintenance window", record.clone(), now, longest).map_err(|e| {
                Refusal::BadMaintenance(format!("{e}; extend it when the work runs long"))
            })?;
        self.next_maintenance_id += 1;
        self.maintenance.push(window);
        self.maintenance_dirty = true;
        fx.push(Effect::Maintenance(record));
        Ok(())
    }

    /// Moves a window's end to `to`: later (the work runs long) or earlier, but in the
    /// future and at most `max_maintenance` away.
    pub(super) fn extend_maintenance(
        &mut self,
        now: Timestamp,
        id: WindowId,
        to: Timestamp,
        by: &Actor,
        fx: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let longest = self.config().max_maintenance;
        let Some(w) = self.maintenance.iter_mut().find(|w| w.record.id == id) else {
            return Err(Refusal::NoMaintenance(id));
        };
        if to <= now || to <= w.record.from {
            return Err(Refusal::BadMaintenance(
                "the new end must be in the future and after the start; to end it now, end it"
                    .into(),
            ));
        }
        if to.since(w.record.from.max(now)) > longest {
            return Err(Refusal::BadMaintenance(format!(
                "a maintenance window ends at most {} from now; extend it again later",
                crate::time::human(longest)
            )));
        }
        w.record.to = to;
        self.maintenance_dirty = true;
        fx.push(Effect::MaintenanceEnd {
            id,
            to,
            by: by.name.clone(),
            at: now,
        });
        Ok(())
    }

    /// Ends a window now (before it started, it never starts).
    pub(super) fn end_maintenance(
        &mut self,
        now: Timestamp,
        id: WindowId,
        by: &Actor,
        fx: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let Some(w) = self.maintenance.iter_mut().find(|w| w.record.id == id) else {
            return Err(Refusal::NoMaintenance(id));
        };
        w.record.to = now;
        self.maintenance_dirty = true;
        fx.push(Effect::MaintenanceEnd {
            id,
            to: now,
            by: by.name.clone(),
            at: now,
        });
        Ok(())
    }

    /// The window that holds an incident with `labels` at `now`: the first made of those
    /// active that match.
    pub(super) fn holding(&self, live: &Live, now: Timestamp) -> Option<&Window> {
        if !self.maintenance.iter().any(|w| w.record.active(now)) {
            return None;
        }
        let labels = live.labels.to_map();
        self.maintenance
            .iter()
            .find(|w| w.record.active(now) && w.matches(&labels))
    }

    /// At a window's start or end (or after one was made or moved), holds and releases
    /// the open incidents it concerns.
    pub(super) fn sweep_maintenance(&mut self, now: Timestamp, fx: &mut Vec<Effect>) {
        let due = self.maintenance_next.is_some_and(|t| t <= now);
        if !self.maintenance_dirty && !due {
            return;
        }
        let ids: Vec<IncidentId> = self.open.keys().copied().collect();
        for id in ids {
            let Some(live) = self.open.get(&id) else {
                continue;
            };
            let want = self.holding(live, now).map(|w| w.record.clone());
            let have = live.esc.held_by;
            if want.as_ref().map(|w| w.id) == have {
                continue;
            }
            let mut live = self.open.remove(&id).expect("just found");
            {
                let mut cx = self.ctx(now, fx);
                match want {
                    Some(w) => live.hold(&mut cx, &w, have),
                    None => live.release(&mut cx),
                }
                live.advance(&mut cx);
            }
            self.put_back(now, live, fx);
        }
        self.maintenance.retain(|w| w.record.to > now);
        self.maintenance_dirty = false;
        self.maintenance_next = self
            .maintenance
            .iter()
            .flat_map(|w| [w.record.from, w.record.to])
            .filter(|t| *t > now)
            .min();
    }

    /// Windows back from the store on start, and the next id to hand out. Answers those
    /// whose matchers no longer parse, left out. The first input sweeps: a window that
    /// started or ended while tocsin was down holds or releases then.
    pub fn restore_maintenance(
        &mut self,
        windows: Vec<WindowRecord>,
        next_id: WindowId,
    ) -> Vec<(WindowId, String)> {
        self.next_maintenance_id = next_id.max(1);
        let mut broken = Vec::new();
        self.maintenance = windows
            .into_iter()
            .filter_map(|r| {
                let id = r.id;
                Window::new(r).map_err(|e| broken.push((id, e))).ok()
            })
            .collect();
        self.maintenance.sort_by_key(|w| w.record.id);
        self.maintenance_dirty = true;
        broken
    }

    /// The maintenance windows in force or ahead, in the order they were made.
    pub fn maintenance(&self) -> impl Iterator<Item = &WindowRecord> {
        self.maintenance.iter().map(|w| &w.record)
    }
}
