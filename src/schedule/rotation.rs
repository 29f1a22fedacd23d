//! A rotation's handoffs and members, computed from its start in O(1)-ish time.

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime};

use super::wall::{civil, instant};
use super::{Every, Rotation, Shift, Via};
use crate::time::Timestamp;

impl Rotation {
    /// The wall-clock time of handoff `n` (shift n's start), computed from `start` each
    /// time: chaining monthly handoffs would lose Jan 31's day after February.
    fn handoff_wall(&self, n: i64) -> Option<DateTime> {
        let shift = i64::from(self.shift.max(1));
        let hours = match self.every {
            Every::Hourly => 1,
            Every::Daily => 24,
            Every::Weekly => 24 * 7,
            Every::Monthly => {
                let months = n.checked_mul(shift)?;
                let index = i64::from(self.start.year()) * 12 + i64::from(self.start.month()) - 1;
                let index = index.checked_add(months)?;
                let year = i16::try_from(index.div_euclid(12)).ok()?;
                let month = i8::try_from(index.rem_euclid(12) + 1).ok()?;
                let first = Date::new(year, month, 1).ok()?;
                let day = self.start.day().min(first.days_in_month());
                return Some(DateTime::from_parts(
                    Date::new(year, month, day).ok()?,
                    self.start.time(),
                ));
            }
        };
        // Civil arithmetic: a civil day is always 24 h, so this keeps the wall time.
        let total = n.checked_mul(shift)?.checked_mul(hours)?;
        self.start
            .checked_add(SignedDuration::from_secs(total.checked_mul(3600)?))
            .ok()
    }

    /// The instant shift `n` starts; None beyond the representable range (never).
    pub fn handoff(&self, n: i64) -> Option<Timestamp> {
        instant(&self.time_zone, self.handoff_wall(n)?)
    }

    /// The index of the shift in force at `t`, -1 before `start`.
    ///
    /// Estimated from the civil distance to `start`, then corrected by comparing
    /// instants: the estimate is off by at most a few shifts near a DST change, so this
    /// costs a handful of zone lookups whether the rotation started a week or ten years ago.
    pub fn shift_index(&self, t: Timestamp) -> i64 {
        let wall = civil(&self.time_zone, t);
        let shift = i64::from(self.shift.max(1));
        let estimate = match self.every {
            Every::Monthly => {
                let months = (i64::from(wall.year()) - i64::from(self.start.year())) * 12
                    + i64::from(wall.month())
                    - i64::from(self.start.month());
                months.div_euclid(shift)
            }
            every => {
                let unit = match every {
                    Every::Hourly => 3600,
                    Every::Daily => 86_400,
                    _ => 7 * 86_400,
                };
                wall.duration_since(self.start)
                    .as_secs()
                    .div_euclid(unit * shift)
            }
        };
        let mut n = estimate.max(-1);
        while n >= 0 && self.handoff(n).is_none_or(|h| h > t) {
            n -= 1;
        }
        // Zero-length shifts (several handoffs in one gap) are stepped over here.
        while self.handoff(n + 1).is_some_and(|h| h <= t) {
            n += 1;
        }
        n
    }

    /// The member of shift `n`: from the last member list in force at that shift's start.
    pub fn member(&self, n: i64) -> Option<&str> {
        if n < 0 {
            return None;
        }
        let start = self.handoff(n)?;
        let version = self
            .versions
            .iter()
            .rposition(|v| v.from.is_none_or(|from| from <= start))?;
        let members = &self.versions[version].members;
        let len = i64::try_from(members.len()).ok().filter(|&l| l > 0)?;
        members
            .get(usize::try_from(n.rem_euclid(len)).ok()?)
            .map(String::as_str)
    }

    /// Who is on call at `t` (None before start or with an empty member list).
    pub fn member_at(&self, t: Timestamp) -> Option<&str> {
        self.member(self.shift_index(t))
    }

    /// The first instant after `t` at which the member may change: the next handoff to a
    /// different person within the current list, or the handoff where the next list takes
    /// effect. None when the same person stays on call forever (a one-member rotation),
    /// so "until" does not step through every handoff.
    pub(crate) fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let n = self.shift_index(t);
        if n < 0 {
            return self.handoff(0);
        }
        let current = self.member(n);
        let later_version = self
            .versions
            .iter()
            .filter_map(|v| v.from)
            .filter(|&from| from > self.handoff(n).unwrap_or(from))
            .min()
            .and_then(|from| self.first_handoff_from(from));
        let len = self
            .versions
            .iter()
            .map(|v| v.members.len())
            .max()
            .unwrap_or(0);
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        let mut k = n + 1;
        while k <= n.saturating_add(len) {
            let h = self.handoff(k)?;
            if later_version.is_some_and(|(_, at)| at <= h) {
                break;
            }
            if self.member(k) != current && h > t {
                return Some(h);
            }
            k += 1;
        }
        later_version.map(|(_, at)| at)
    }

    /// The first handoff at or after `from`: where a member list saved at `from` takes effect.
    fn first_handoff_from(&self, from: Timestamp) -> Option<(i64, Timestamp)> {
        let mut n = self.shift_index(from);
        loop {
            let h = self.handoff(n.max(0))?;
            if h >= from {
                return Some((n.max(0), h));
            }
            n += 1;
        }
    }

    /// Every continuous interval of one member on call within `[from, to)`, clipped to it.
    /// Consecutive shifts of the same person are one interval, as they are for a pager.
    pub fn shifts(&self, from: Timestamp, to: Timestamp) -> Vec<Shift> {
        let mut out: Vec<Shift> = Vec::new();
        if from >= to {
            return out;
        }
        let mut n = self.shift_index(from);
        let mut start = from;
        while start < to {
            let end = self.handoff(n + 1).map_or(to, |h| h.min(to));
            if end > start
                && let Some(who) = self.member(n)
            {
                match out.last_mut() {
                    Some(last) if last.contact == who && last.end == start => last.end = end,
                    _ => out.push(Shift {
                        contact: who.to_owned(),
                        start,
                        end,
                        via: Via::Rotation(self.name.clone()),
                    }),
                }
            }
            start = start.max(end);
            n += 1;
        }
        out
    }
}
