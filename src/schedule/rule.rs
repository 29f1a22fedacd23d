//! When a schedule rule is active: its daily windows in the schedule's zone.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::Rule;
use super::wall::{civil, instant};
use crate::time::Timestamp;

impl Rule {
    /// A rule with no day filter and no hours: active at every instant, no edges.
    fn always(&self) -> bool {
        self.from.is_none() && self.days.is_none_or(|days| days.iter().all(|&d| d))
    }

    fn never(&self) -> bool {
        self.days.is_some_and(|days| days.iter().all(|&d| !d))
    }

    fn on_day(&self, day: Date) -> bool {
        let index = usize::try_from(day.weekday().to_monday_zero_offset()).unwrap_or(0);
        self.days.is_none_or(|days| days[index])
    }

    /// The window that starts on `day` (whether or not the day filter allows it), as
    /// instants: the edges follow the same gap and fold rules as handoffs.
    fn window(&self, tz: &TimeZone, day: Date) -> Option<(Timestamp, Timestamp)> {
        let next = day.tomorrow().ok()?;
        let (from, to) = match (self.from, self.to) {
            (Some(from), Some(to)) => (from, to),
            _ => (Time::midnight(), Time::midnight()),
        };
        let end_day = if to <= from { next } else { day };
        let start = instant(tz, DateTime::from_parts(day, from))?;
        let end = instant(tz, DateTime::from_parts(end_day, to))?;
        Some((start, end))
    }

    /// Whether the rule puts its contact on call at `t`. A window starts on an allowed
    /// day and may run past midnight, so yesterday's window is checked too.
    pub(crate) fn active(&self, tz: &TimeZone, t: Timestamp) -> bool {
        if self.always() {
            return true;
        }
        if self.never() {
            return false;
        }
        let today = civil(tz, t).date();
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .filter(|&day| self.on_day(day))
            .filter_map(|day| self.window(tz, day))
            .any(|(start, end)| start <= t && t < end)
    }

    /// The first window edge strictly after `t`; None for a rule that never changes.
    pub(crate) fn next_edge(&self, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
        if self.always() || self.never() {
            return None;
        }
        let today = civil(tz, t).date();
        let mut day = today.yesterday().ok()?;
        let mut best: Option<Timestamp> = None;
        // Any allowed day starts a window within the next 8 days.
        for _ in 0..10 {
            if self.on_day(day)
                && let Some((start, end)) = self.window(tz, day)
            {
                for edge in [start, end] {
                    if edge > t && best.is_none_or(|b| edge < b) {
                        best = Some(edge);
                    }
                }
            }
            if best.is_some_and(|b| civil(tz, b).date() < day) {
                break;
            }
            day = day.tomorrow().ok()?;
        }
        best
    }
}
