//! Who is on call: a schedule's rules, its rotations and its overrides, combined.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{
    Calendar, Change, Finding, OnCall, OnCallContact, Override, Schedule, Shift, Via, Who,
};
use crate::time::Timestamp;

/// After this long with only rule window edges and no change, the answer holds until the
/// next rotation or override event: rule windows repeat every civil week, so a week (plus
/// a DST hour) without change has seen every one of them.
const RULES_REPEAT: Duration = Duration::from_secs(8 * 86_400);

/// How many candidate instants `until` examines before answering conservatively. Reached
/// only when handoffs change nothing for a long time (every member also named by an
/// always-on rule); the caller then asks again at that instant.
const MAX_STEPS: usize = 4096;

impl Calendar {
    /// Who is on call for `schedule` at `at`, and until when; None for an unknown schedule.
    /// `overrides` are that schedule's, in creation order.
    pub fn oncall(&self, schedule: &str, overrides: &[Override], at: Timestamp) -> Option<OnCall> {
        let schedule = self.schedules.get(schedule)?;
        let (contacts, fallback_used) = self.answer(schedule, overrides, at, true);
        let until = self.until(schedule, overrides, at, true);
        Some(OnCall {
            contacts,
            until,
            fallback_used,
        })
    }

    /// Every continuous on-call interval of each contact intersecting `[from, to)`, clipped
    /// to it, sorted by start (the fallback's included, `via` [`Via::Fallback`]). Empty for
    /// an unknown schedule.
    pub fn shifts(
        &self,
        schedule: &str,
        overrides: &[Override],
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<Shift> {
        let Some(schedule) = self.schedules.get(schedule) else {
            return Vec::new();
        };
        let mut open: Vec<(Shift, usize)> = Vec::new();
        let mut done: Vec<(Shift, usize)> = Vec::new();
        let mut seq = 0;
        for (start, end, contacts) in self.segments(schedule, overrides, from, to, true) {
            let (closed, still): (Vec<_>, Vec<_>) = open
                .into_iter()
                .partition(|(s, _)| !contacts.iter().any(|c| c.name == s.contact));
            done.extend(closed);
            open = still;
            for c in contacts {
                match open.iter_mut().find(|(s, _)| s.contact == c.name) {
                    Some((s, _)) => s.end = end,
                    None => {
                        open.push((
                            Shift {
                                contact: c.name,
                                start,
                                end,
                                via: c.via,
                            },
                            seq,
                        ));
                        seq += 1;
                    }
                }
            }
        }
        done.extend(open);
        done.sort_by_key(|(s, seq)| (s.start, *seq));
        done.into_iter().map(|(s, _)| s).collect()
    }

    /// One rotation's shifts within `[from, to)`; empty for an unknown rotation.
    pub fn rotation_shifts(&self, rotation: &str, from: Timestamp, to: Timestamp) -> Vec<Shift> {
        self.rotations
            .get(rotation)
            .map(|r| r.shifts(from, to))
            .unwrap_or_default()
    }

    /// Gaps (nobody on call, the fallback not counted) and overlaps (two or more on call)
    /// within `[from, to)`, in time order; empty for an unknown schedule.
    pub fn check(
        &self,
        schedule: &str,
        overrides: &[Override],
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<Finding> {
        let Some(schedule) = self.schedules.get(schedule) else {
            return Vec::new();
        };
        let mut findings: Vec<Finding> = Vec::new();
        for (start, end, contacts) in self.segments(schedule, overrides, from, to, false) {
            let names: Vec<String> = contacts.into_iter().map(|c| c.name).collect();
            let finding = match names.len() {
                0 => Finding::Gap { start, end },
                1 => continue,
                _ => Finding::Overlap {
                    start,
                    end,
                    contacts: names,
                },
            };
            match (findings.last_mut(), finding) {
                (Some(Finding::Gap { end: e, .. }), Finding::Gap { start: s, end }) if *e == s => {
                    *e = end;
                }
                (
                    Some(Finding::Overlap {
                        end: e,
                        contacts: before,
                        ..
                    }),
                    Finding::Overlap {
                        start: s,
                        end,
                        contacts,
                    },
                ) if *e == s && same_set(before, &contacts) => *e = end,
                (_, finding) => findings.push(finding),
            }
        }
        findings
    }

    /// The answer's constant pieces over `[from, to)`: (start, end, contacts).
    fn segments(
        &self,
        schedule: &Schedule,
        overrides: &[Override],
        from: Timestamp,
        to: Timestamp,
        with_fallback: bool,
    ) -> Vec<(Timestamp, Timestamp, Vec<OnCallContact>)> {
        let mut out = Vec::new();
        let mut t = from;
        while t < to {
            let (contacts, _) = self.answer(schedule, overrides, t, with_fallback);
            let end = self
                .until(schedule, overrides, t, with_fallback)
                .map_or(to, |u| u.min(to));
            out.push((t, end, contacts));
            t = end;
        }
        out
    }

    /// The contacts on call at `t` and whether they are the fallback.
    pub(super) fn answer(
        &self,
        schedule: &Schedule,
        overrides: &[Override],
        t: Timestamp,
        with_fallback: bool,
    ) -> (Vec<OnCallContact>, bool) {
        let mut on: Vec<OnCallContact> = Vec::new();
        let put = |on: &mut Vec<OnCallContact>, name: &str, via: Via| {
            if !on.iter().any(|c| c.name == name) {
                on.push(OnCallContact {
                    name: name.to_owned(),
                    via,
                });
            }
        };
        for rule in schedule.rules.iter() {
            if !rule.active(&schedule.time_zone, t) {
                continue;
            }
            match &rule.who {
                Who::Contact(name) => put(&mut on, name, Via::Rule),
                Who::Rotation(rotation) => {
                    if let Some(r) = self.rotations.get(rotation)
                        && let Some(name) = r.member_at(t)
                    {
                        put(&mut on, name, Via::Rotation(r.name.clone()));
                    }
                }
            }
        }
        for o in overrides.iter().filter(|o| o.from <= t && t < o.to) {
            match &o.change {
                Change::Add { contact } => put(&mut on, contact, Via::Override(o.id)),
                Change::Remove { contact } => on.retain(|c| &c.name != contact),
                Change::Replace { contact, with } if contact != with => {
                    let Some(at) = on.iter().position(|c| &c.name == contact) else {
                        continue;
                    };
                    if on.iter().any(|c| &c.name == with) {
                        on.remove(at);
                    } else {
                        on[at] = OnCallContact {
                            name: with.clone(),
                            via: Via::Override(o.id),
                        };
                    }
                }
                // Replacing someone with themselves changes nothing.
                Change::Replace { .. } => {}
            }
        }
        match &schedule.fallback {
            Some(fallback) if with_fallback && on.is_empty() => (
                vec![OnCallContact {
                    name: fallback.clone(),
                    via: Via::Fallback,
                }],
                true,
            ),
            _ => (on, false),
        }
    }

    /// The first instant after `at` when the set of names on call changes, found by
    /// visiting only the instants where something can change (rule window edges, the
    /// next handoff to a different person, override edges), never by stepping in time.
    fn until(
        &self,
        schedule: &Schedule,
        overrides: &[Override],
        at: Timestamp,
        with_fallback: bool,
    ) -> Option<Timestamp> {
        let names = |t: Timestamp| -> BTreeSet<String> {
            self.answer(schedule, overrides, t, with_fallback)
                .0
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        let current = names(at);
        let tz = &schedule.time_zone;
        let mut t = at;
        let mut quiet_since = at;
        for _ in 0..MAX_STEPS {
            let rule_edge = schedule
                .rules
                .iter()
                .filter_map(|r| r.next_edge(tz, t))
                .min();
            let rotation_change = schedule
                .rules
                .iter()
                .filter_map(|r| match &r.who {
                    Who::Rotation(name) => self.rotations.get(name),
                    Who::Contact(_) => None,
                })
                .filter_map(|r| r.next_change(t));
            let override_edge = overrides
                .iter()
                .filter(|o| o.from < o.to)
                .flat_map(|o| [o.from, o.to])
                .filter(|&e| e > t);
            let other = rotation_change.chain(override_edge).min();
            let next = match (rule_edge, other) {
                (None, None) => return None,
                (Some(r), Some(o)) if o <= r => o,
                (Some(r), _) if r.since(quiet_since) > RULES_REPEAT => other?,
                (Some(r), _) => r,
                (None, Some(o)) => o,
            };
            if names(next) != current {
                return Some(next);
            }
            if Some(next) == other {
                quiet_since = next;
            }
            t = next;
        }
        Some(t)
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}
