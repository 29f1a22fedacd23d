//! On-call schedules: who is on call at an instant, over a range, and where nobody is.
//!
//! Pure: no IO, no clock reads. Time comes in and goes out as [`Timestamp`] (UTC
//! millis); inside, wall clocks are `jiff` civil times in each rotation's or schedule's
//! IANA zone, because a handoff is a promise about the wall clock ("Monday 09:00 in
//! Chicago"), not a number of seconds. A shift stored as start + fixed seconds drifts by
//! an hour at every DST change, which is the bug this module exists to avoid.
//!
//! The DST rules, applied to every rotation handoff and rule window edge
//! (`wall::instant`):
//! - a wall time that does not exist (spring forward) happens at the transition instant,
//!   the first instant after the gap (02:30 → 03:00 in Chicago);
//! - a wall time that occurs twice (fall back) happens at its first occurrence;
//! - hourly rotations stay on the wall-clock hour; a monthly handoff on the 29th–31st
//!   falls on the last day of a shorter month and comes back the month after.
//!
//! A rotation's position is always computed from its `start` (shift n since start),
//! never from a stored counter, so a restart or a config reload cannot skip anyone.

mod calendar;
pub mod ics;
mod quiet;
mod rotation;
mod rule;
pub(crate) mod wall;

pub use quiet::QuietHours;
pub use wall::describe;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use crate::time::Timestamp;

/// How a rotation's shift length is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// Wall-clock hours: a 2-hour rotation started on an even hour hands off on even hours.
    Hourly,
    /// Calendar days at the start's wall time (23 or 25 real hours across DST).
    Daily,
    /// Seven calendar days at the start's wall time.
    Weekly,
    /// Calendar months on the start's day of month, clamped to shorter months.
    Monthly,
}

/// Contacts taking turns, handing off on a wall clock.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The config name, reported as the `via` of its shifts.
    pub name: String,
    /// The zone whose wall clock the handoffs follow.
    pub time_zone: jiff::tz::TimeZone,
    pub every: Every,
    /// Shift length in units of `every`, >= 1.
    pub shift: u32,
    /// A handoff, wall clock in `time_zone`: shift 0 starts here; before it nobody is on call.
    pub start: jiff::civil::DateTime,
    /// Member lists in force: the first has from = None (since start); a later one takes effect at the
    /// first handoff at or after `from` (the lead stores a version when the config's list changes, so the
    /// current shift keeps its person). Position is ALWAYS computed from `start` (shift index n since
    /// start), never a counter: the member of shift n is `versions[v].members[n % len]` where v is the last
    /// version in force at that shift's start.
    pub versions: Vec<Members>,
}

/// One member list of a rotation and when it took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    /// None: in force since the rotation's start.
    pub from: Option<Timestamp>,
    /// Contacts in order; a contact may appear more than once.
    pub members: Vec<String>,
}

/// Whom a schedule rule puts on call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// The rotation's current member.
    Rotation(String),
    /// One contact.
    Contact(String),
}

/// One line of a schedule: who, and on which days and hours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub who: Who,
    /// Mon..Sun; None = every day. Applies to the day a window starts, so a Friday
    /// 22:00–06:00 window runs into Saturday morning.
    pub days: Option<[bool; 7]>,
    /// Both or neither; `to <= from` wraps past midnight; neither = all day.
    pub from: Option<jiff::civil::Time>,
    pub to: Option<jiff::civil::Time>,
}

/// A named union of rules, paged like a contact.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub name: String,
    /// The zone of the rules' days and hours.
    pub time_zone: jiff::tz::TimeZone,
    /// Paged when the rules and overrides leave nobody on call.
    pub fallback: Option<String>,
    pub rules: Vec<Rule>,
}

/// What an override does while it lasts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Puts `contact` on call as well.
    Add { contact: String },
    /// Takes `contact` off call (nothing when they are not on call).
    Remove { contact: String },
    /// Puts `with` on call instead of `contact`, only while `contact` is on call.
    Replace { contact: String, with: String },
}

/// A run-time change to a schedule over `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub id: u64,
    pub change: Change,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// Everything needed to answer "who is on call": built once per config load.
#[derive(Clone, Debug, Default)]
pub struct Calendar {
    pub rotations: BTreeMap<String, Rotation>,
    pub schedules: BTreeMap<String, Schedule>,
}

/// Why a contact is on call, for the history and the shifts view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// The named rotation's current member.
    Rotation(String),
    /// A rule naming the contact.
    Rule,
    /// The override with this id (an add, or the `with` of a replace).
    Override(u64),
    /// Nobody else is on call.
    Fallback,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Rotation(name) => f.write_str(name),
            Via::Rule => f.write_str("rule"),
            Via::Override(id) => write!(f, "override {id}"),
            Via::Fallback => f.write_str("fallback"),
        }
    }
}

/// One person on call and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCallContact {
    pub name: String,
    pub via: Via,
}

/// The answer to "who is on call at T".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCall {
    /// In first-seen order (rule order, then overrides), without duplicates.
    pub contacts: Vec<OnCallContact>,
    /// The next instant the set of names changes; None = never.
    pub until: Option<Timestamp>,
    /// Nobody was on call, so `contacts` is the schedule's fallback.
    pub fallback_used: bool,
}

/// One continuous on-call interval of one contact, `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shift {
    pub contact: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Why the contact is on call at `start`.
    pub via: Via,
}

/// A problem `tocsin schedules check` reports ahead of time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Nobody on call (the fallback is not counted: it is the alarm, not the plan).
    Gap { start: Timestamp, end: Timestamp },
    /// Two or more on call at once.
    Overlap {
        start: Timestamp,
        end: Timestamp,
        contacts: Vec<String>,
    },
}
