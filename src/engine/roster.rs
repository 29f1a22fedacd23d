//! Who a schedule has on call, as the engine asks it when a step fires, and the
//! overrides that change it: made, refused and taken back here, like every decision.

use super::incidents::Engine;
use super::model::{Actor, Change, Effect, OverrideId, OverrideRecord, Refusal};
use super::policy::{EscalationConfig, MethodSnapshot};
use crate::schedule::{OnCall, Override};
use crate::time::Timestamp;

/// The longest override: one meant for longer is a change to the rotation.
pub const MAX_OVERRIDE: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// What a step needs to page a schedule: the config (calendar and every contact's
/// methods) and the overrides in force.
pub(crate) struct Roster<'a> {
    pub cfg: &'a EscalationConfig,
    pub overrides: &'a [OverrideRecord],
}

impl Roster<'_> {
    /// Who `schedule` has on call at `at`; `None` when the config no longer has it.
    pub fn oncall(&self, schedule: &str, at: Timestamp) -> Option<OnCall> {
        self.cfg.oncall(schedule, self.overrides, at)
    }

    pub fn methods(&self, contact: &str) -> Option<&[MethodSnapshot]> {
        self.cfg.contacts.get(contact).map(Vec::as_slice)
    }
}

/// The overrides of one schedule, in the order they were made (the order they apply).
pub fn overrides_of(all: &[OverrideRecord], schedule: &str) -> Vec<Override> {
    all.iter()
        .filter(|o| o.schedule == schedule)
        .map(OverrideRecord::as_override)
        .collect()
}

impl Engine {
    pub(super) fn add_override(
        &mut self,
        now: Timestamp,
        schedule: String,
        change: Change,
        (from, to): (Timestamp, Timestamp),
        by: &Actor,
        fx: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let cfg = self.config();
        if !cfg.calendar.schedules.contains_key(&schedule) {
            return Err(Refusal::UnknownSchedule(schedule));
        }
        let record = OverrideRecord {
            id: self.next_override_id,
            schedule,
            change,
            from,
            to,
            by: by.name.clone(),
            created_at: now,
        };
        for person in record.people() {
            if !cfg.contacts.contains_key(person) {
                return Err(Refusal::UnknownContact(person.to_string()));
            }
        }
        if let Change::Replace { contact, with } = &record.change
            && contact == with
        {
            return Err(Refusal::BadOverride("a replace needs two different people"));
        }
        if to <= from {
            return Err(Refusal::BadOverride("an override must end after it starts"));
        }
        if to <= now {
            return Err(Refusal::BadOverride(
                "that override would end in the past; pick a later end",
            ));
        }
        if to.since(from) > MAX_OVERRIDE {
            return Err(Refusal::BadOverride(
                "an override lasts at most a year; change the rotation instead",
            ));
        }
        let people = record.people();
        if let Some((other, who)) = self.overrides.iter().find_map(|o| {
            let overlaps = o.from < record.to && record.from < o.to;
            let shared = o.people().into_iter().find(|p| people.contains(p))?;
            overlaps.then(|| (o.id, shared.to_string()))
        }) {
            return Err(Refusal::OverrideConflict {
                id: other,
                contact: who,
            });
        }
        self.next_override_id += 1;
        self.overrides.push(record.clone());
        fx.push(Effect::Override(record));
        Ok(())
    }

    pub(super) fn delete_override(
        &mut self,
        now: Timestamp,
        schedule: &str,
        id: OverrideId,
        fx: &mut Vec<Effect>,
    ) -> Result<(), Refusal> {
        let Some(i) = self
            .overrides
            .iter()
            .position(|o| o.id == id && o.schedule == schedule)
        else {
            return Err(Refusal::NoOverride {
                schedule: schedule.to_string(),
                id,
            });
        };
        self.overrides.remove(i);
        fx.push(Effect::OverrideDeleted { id, at: now });
        Ok(())
    }

    /// Overrides that ended change nobody's pages any more; the store keeps them for
    /// the shifts view of the past.
    pub(super) fn prune_overrides(&mut self, now: Timestamp) {
        self.overrides.retain(|o| o.to > now);
    }

    /// Overrides back from the store on start, and the next id to hand out.
    pub fn restore_overrides(&mut self, overrides: Vec<OverrideRecord>, next_id: OverrideId) {
        self.next_override_id = next_id.max(1);
        self.overrides = overrides;
        self.overrides.sort_by_key(|o| o.id);
    }

    /// The overrides in force or ahead, in the order they were made.
    pub fn overrides(&self) -> &[OverrideRecord] {
        &self.overrides
    }
}
