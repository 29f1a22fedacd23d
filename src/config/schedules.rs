//! `[rotations.NAME]` and `[schedules.NAME]`: who is on call, checked and compiled into
//! the [`Calendar`] the engine and the API ask.

use std::collections::BTreeMap;

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::load::Loader;
use super::locate::KeyPath;
use super::sections::Parsed;
use crate::schedule::{
    Calendar, Every, Finding, Members, QuietHours, Rotation, Rule, Schedule, Who,
};

/// Longest shift a rotation may have, in units of its `type` (GoAlert's limit too).
const MAX_SHIFT: u32 = 9000;

/// How far ahead check-config looks for times nobody is on call.
const GAP_WARNING_AHEAD: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Contacts taking turns on a wall clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    /// IANA zone name ("America/Chicago"); handoffs stay on its wall clock across DST.
    pub time_zone: String,
    /// `hourly`, `daily`, `weekly` or `monthly`.
    #[serde(rename = "type")]
    pub every: RotationType,
    /// Shift length, in units of `type`.
    #[serde(default = "one")]
    pub shift: u32,
    /// A handoff, local time (`2027-01-04T09:00`): the first member's first shift starts
    /// here, and before it the rotation has nobody.
    pub start: String,
    /// Contacts in order; a contact may appear more than once.
    pub members: Vec<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RotationType {
    Hourly,
    Daily,
    Weekly,
    Monthly,
}

/// Who is on call, paged like a contact: `notify = ["primary"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// IANA zone name of the rules' days and hours.
    pub time_zone: String,
    /// Contact paged when the rules and overrides leave nobody on call.
    pub fallback: Option<String>,
    /// Everyone whose rule is active is on call (a union).
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Page the incoming person at the start of their shift, through their first method.
    #[serde(default)]
    pub notify_handoff: bool,
}

/// One rule: a rotation or a contact, on some days and hours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A rotation: its current member is on call while the rule is active.
    pub rotation: Option<String>,
    /// A contact, on call while the rule is active.
    pub contact: Option<String>,
    /// `mon` … `sun`; every day when left out. A window past midnight belongs to the day
    /// it starts.
    pub days: Option<Vec<String>>,
    /// Start of the daily window, `HH:MM` in the schedule's zone; with `to`.
    pub from: Option<String>,
    /// End of the daily window; `to` at or before `from` runs past midnight.
    pub to: Option<String>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Loader<'_, '_> {
    /// Checks rotations and schedules and builds the calendar; what is wrong is reported
    /// and left out, so the rest is still checked.
    pub(super) fn check_schedules(&mut self, p: &Parsed) -> Calendar {
        let mut calendar = Calendar::default();
        for (name, r) in &p.file.rotations {
            let at = KeyPath::default().key("rotations").key(name);
            let tz = self.zone(&at, &r.time_zone);
            // Only a wall clock: an offset would contradict time_zone half the year.
            let plain = matches!(r.start.len(), 16 | 19)
                && r.start.as_bytes().get(10) == Some(&b'T')
                && r.start[11..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b':');
            let start = match r.start.parse::<DateTime>() {
                Ok(dt) if plain => Some(dt),
                _ => {
                    let msg = format!(
                        "start {:?} is not a local date and time: write it like \"2027-01-04T09:00\" (no offset: it is read in time_zone)",
                        r.start
                    );
                    self.err(&at.key("start"), msg);
                    None
                }
            };
            if r.shift == 0 || r.shift > MAX_SHIFT {
                self.err(
                    &at.key("shift"),
                    format!("shift is {}: it must be 1 to {MAX_SHIFT}", r.shift),
                );
            }
            if r.members.is_empty() {
                self.err(
                    &at.key("members"),
                    "a rotation needs members: list contacts, like [\"alice\", \"bob\"]",
                );
            }
            for (i, m) in r.members.iter().enumerate() {
                self.contact_ref(p, &at.key("members").index(i), m);
            }
            if let (Some(time_zone), Some(start)) = (tz, start) {
                let every = match r.every {
                    RotationType::Hourly => Every::Hourly,
                    RotationType::Daily => Every::Daily,
                    RotationType::Weekly => Every::Weekly,
                    RotationType::Monthly => Every::Monthly,
                };
                calendar.rotations.insert(
                    name.clone(),
                    Rotation {
                        name: name.clone(),
                        time_zone,
                        every,
                        shift: r.shift.clamp(1, MAX_SHIFT),
                        start,
                        versions: vec![Members {
                            from: None,
                            members: r.members.clone(),
                        }],
                    },
                );
            }
        }
        for (name, s) in &p.file.schedules {
            let at = KeyPath::default().key("schedules").key(name);
            let tz = self.zone(&at, &s.time_zone);
            if let Some(f) = &s.fallback {
                self.contact_ref(p, &at.key("fallback"), f);
            }
            if s.rules.is_empty() {
                self.err(
                    &at.key("rules"),
                    "a schedule needs rules, like rules = [{ rotation = \"ops\" }]",
                );
            }
            let mut rules = Vec::new();
            for (i, r) in s.rules.iter().enumerate() {
                if let Some(rule) = self.rule(p, &at.key("rules").index(i), r) {
                    rules.push(rule);
                }
            }
            if let Some(time_zone) = tz {
                calendar.schedules.insert(
                    name.clone(),
                    Schedule {
                        name: name.clone(),
                        time_zone,
                        fallback: s.fallback.clone(),
                        rules,
                    },
                );
                self.warn_of_gaps(&calendar, name, &at);
            }
        }
        calendar
    }

    /// Says where nobody will be on call in the next week: the config is valid, but a
    /// page then goes to the fallback, or to nobody.
    fn warn_of_gaps(&mut self, calendar: &Calendar, name: &str, at: &KeyPath) {
        let now = crate::time::Clock::now(&crate::time::SystemClock);
        let gaps: Vec<String> = calendar
            .check(name, &[], now, now.plus(GAP_WARNING_AHEAD))
            .into_iter()
            .filter_map(|f| match f {
                Finding::Gap { start, end } => {
                    Some(format!("{} to {}", start.to_rfc3339(), end.to_rfc3339()))
                }
                Finding::Overlap { .. } => None,
            })
            .collect();
        if gaps.is_empty() {
            return;
        }
        let then = match calendar
            .schedules
            .get(name)
            .and_then(|s| s.fallback.as_ref())
        {
            Some(f) => format!("its fallback {f} is paged then"),
            None => "nobody is paged for it then (set fallback = \"...\")".to_string(),
        };
        let shown: Vec<&str> = gaps.iter().take(3).map(String::as_str).collect();
        let more = match gaps.len() {
            n if n > 3 => format!(" and {} more", n - 3),
            _ => String::new(),
        };
        let msg = format!(
            "nobody is on call in the next 7 days from {}{more}: {then}; `tocsin schedules check` lists every gap",
            shown.join(", ")
        );
        self.warn(at, msg);
    }

    /// Each contact's `quiet_hours`, checked against `[defaults] severity_order`.
    pub(super) fn check_quiet_hours(&mut self, p: &Parsed) -> BTreeMap<String, QuietHours> {
        let order = &p.file.defaults.severity_order;
        let mut out = BTreeMap::new();
        for (name, c) in &p.file.contacts {
            let Some(q) = &c.quiet_hours else { continue };
            let at = KeyPath::default()
                .key("contacts")
                .key(name)
                .key("quiet_hours");
            let from = self.clock(&at.key("from"), &q.from);
            let to = self.clock(&at.key("to"), &q.to);
            let tz = self.zone(&at, &q.time_zone);
            let below = order.iter().position(|s| s == &q.below);
            if below.is_none() {
                let msg = format!(
                    "below = {:?} is not in [defaults] severity_order ({}): name one of those",
                    q.below,
                    order.join(", ")
                );
                self.err(&at.key("below"), msg);
            }
            if let (Some(from), Some(to), Some(tz), Some(below)) = (from, to, tz, below) {
                if from == to {
                    self.err(
                        &at.key("to"),
                        "to equals from: the quiet hours would never end",
                    );
                    continue;
                }
                out.insert(name.clone(), QuietHours::new(name, from, to, tz, below));
            }
        }
        out
    }

    fn rule(&mut self, p: &Parsed, at: &KeyPath, r: &RuleConfig) -> Option<Rule> {
        let who = match (&r.rotation, &r.contact) {
            (Some(rot), None) => {
                if !p.rotation_names.contains(rot) {
                    let what = super::validate::what_is(p, rot);
                    let msg = format!(
                        "unknown rotation {rot:?}{what} (rotations: {})",
                        super::validate::list(&p.rotation_names)
                    );
                    self.err(&at.key("rotation"), msg);
                    return None;
                }
                Who::Rotation(rot.clone())
            }
            (None, Some(c)) => {
                if !self.contact_ref(p, &at.key("contact"), c) {
                    return None;
                }
                Who::Contact(c.clone())
            }
            _ => {
                self.err(
                    at,
                    "a rule names either a rotation or a contact: { rotation = \"ops\" } or { contact = \"dana\", days = [\"sat\"] }",
                );
                return None;
            }
        };
        let days = match &r.days {
            None => None,
            Some(days) => {
                let mut set = [false; 7];
                for (i, d) in days.iter().enumerate() {
                    match DAYS.iter().position(|x| x.eq_ignore_ascii_case(d)) {
                        Some(n) => set[n] = true,
                        None => {
                            let msg =
                                format!("unknown day {d:?}: the days are {}", DAYS.join(", "));
                            self.err(&at.key("days").index(i), msg);
                            return None;
                        }
                    }
                }
                if !set.contains(&true) {
                    self.err(
                        &at.key("days"),
                        "days is empty, so the rule is never active: list days or leave it out",
                    );
                    return None;
                }
                Some(set)
            }
        };
        let (from, to) = match (&r.from, &r.to) {
            (None, None) => (None, None),
            (Some(f), Some(t)) => (
                Some(self.clock(&at.key("from"), f)?),
                Some(self.clock(&at.key("to"), t)?),
            ),
            (Some(_), None) => {
                self.err(&at.key("from"), "from needs a to (the end of the window)");
                return None;
            }
            (None, Some(_)) => {
                self.err(&at.key("to"), "to needs a from (the start of the window)");
                return None;
            }
        };
        Some(Rule {
            who,
            days,
            from,
            to,
        })
    }

    fn clock(&mut self, at: &KeyPath, s: &str) -> Option<Time> {
        let ok = s.len() == 5 && s.as_bytes()[2] == b':';
        match s.parse::<Time>() {
            Ok(t) if ok => Some(t),
            _ => {
                let msg = format!("{s:?} is not a time of day: write HH:MM, like \"09:00\"");
                self.err(at, msg);
                None
            }
        }
    }

    fn zone(&mut self, at: &KeyPath, name: &str) -> Option<TimeZone> {
        match TimeZone::get(name) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let msg = format!(
                    "unknown time zone {name:?}: write an IANA name, like \"America/Chicago\" or \"UTC\""
                );
                self.err(&at.key("time_zone"), msg);
                None
            }
        }
    }

    /// Whether `name` is a contact; says so when it is not.
    fn contact_ref(&mut self, p: &Parsed, at: &KeyPath, name: &str) -> bool {
        if p.contact_names.contains(name) {
            return true;
        }
        let what = super::validate::what_is(p, name);
        let msg = format!(
            "unknown contact {name:?}{what} (contacts: {})",
            super::validate::list(&p.contact_names)
        );
        self.err(at, msg);
        false
    }
}

/// Rotations whose member list in the config differs from the last one in force: the
/// runtime records a new version for each, effective from `now`, so the shift under way
/// keeps its person and the new list takes over at the next handoff.
pub fn changed_members<'a>(
    calendar: &'a Calendar,
    in_force: &BTreeMap<String, Vec<String>>,
) -> Vec<(&'a str, &'a [String])> {
    calendar
        .rotations
        .iter()
        .filter_map(|(name, r)| {
            let members = &r.versions.last()?.members;
            (in_force.get(name) != Some(members)).then_some((name.as_str(), members.as_slice()))
        })
        .collect()
}
