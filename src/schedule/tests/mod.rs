//! Tables with literal instants: each row is a handoff or an answer a pager relies on.

mod overrides;
mod property;
mod rotations_dst;
mod rules;
mod scale;

use std::collections::BTreeMap;

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;

use super::{Calendar, Every, Members, Rotation, Rule, Schedule, Who};
use crate::time::Timestamp;

pub(super) fn at(s: &str) -> Timestamp {
    Timestamp::at(s)
}

pub(super) fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|e| panic!("zone {name}: {e}"))
}

pub(super) fn wall(s: &str) -> DateTime {
    s.parse().unwrap_or_else(|e| panic!("civil {s}: {e}"))
}

pub(super) fn clock(s: &str) -> Time {
    s.parse().unwrap_or_else(|e| panic!("time {s}: {e}"))
}

pub(super) fn rotation(
    zone: &str,
    every: Every,
    shift: u32,
    start: &str,
    members: &[&str],
) -> Rotation {
    Rotation {
        name: "ops".into(),
        time_zone: tz(zone),
        every,
        shift,
        start: wall(start),
        versions: vec![Members {
            from: None,
            members: members.iter().map(|m| m.to_string()).collect(),
        }],
    }
}

/// The first `count` handoffs as RFC 3339 instants.
pub(super) fn handoffs(r: &Rotation, count: i64) -> Vec<String> {
    (0..count)
        .map(|n| r.handoff(n).unwrap().to_rfc3339())
        .collect()
}

pub(super) fn rule(who: Who) -> Rule {
    Rule {
        who,
        days: None,
        from: None,
        to: None,
    }
}

pub(super) fn contact(name: &str) -> Who {
    Who::Contact(name.into())
}

/// A calendar with the rotation `ops` and the schedule `primary` in Chicago.
pub(super) fn calendar(ops: Rotation, rules: Vec<Rule>, fallback: Option<&str>) -> Calendar {
    let mut rotations = BTreeMap::new();
    rotations.insert(ops.name.clone(), ops);
    let mut schedules = BTreeMap::new();
    schedules.insert(
        "primary".to_string(),
        Schedule {
            name: "primary".into(),
            time_zone: tz("America/Chicago"),
            fallback: fallback.map(str::to_owned),
            rules,
        },
    );
    Calendar {
        rotations,
        schedules,
    }
}

/// The names on call for `primary` at `t`.
pub(super) fn names(cal: &Calendar, overrides: &[super::Override], t: &str) -> Vec<String> {
    cal.oncall("primary", overrides, at(t))
        .expect("primary exists")
        .contacts
        .into_iter()
        .map(|c| c.name)
        .collect()
}
