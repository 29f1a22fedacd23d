//! The alert population of `single` and `batch`: a fixed set of label sets per group,
//! whose alerts fire, resolve and fire again, as a fleet's alerts do.
//!
//! Each group replays one stream of events. Its first `firing` events fire alerts 0, 1,
//! 2, ... of the group (the warm-up); after that the stream alternates "resolve the
//! oldest firing instance" and "fire the next alert", so `firing` alerts of the group are
//! open at any time and the rest are quiet. Alerts are taken round-robin, so an alert
//! fires again (a new instance, with a later `startsAt`) `per_group - firing` fires after
//! it resolved. Event `e` of a group goes into the group's body `e / per_request`, and
//! groups take turns: body `j` belongs to group `j % groups`.
//!
//! Every event is a state change for the daemon (a new firing instance, or the
//! resolution of a firing one), as long as the delivery that caused the previous state
//! of that alert has been answered. The geometry guarantees a minimum distance between
//! two bodies that touch the same alert; the plan keeps duplicates and in-flight
//! requests inside it.

use super::*;

/// One event of a group's stream. `n` numbers the group's fires: fire `n` is an
/// instance of alert `n % per_group`, and `Resolve(n)` ends that instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Fire(u64),
    Resolve(u64),
}

#[derive(Clone, Copy, Debug)]
pub struct Lifecycle {
    pub groups: u64,
    pub per_group: u64,
    pub per_request: u64,
    /// Alerts of a group firing at once after the warm-up.
    pub firing: u64,
}

impl Lifecycle {
    /// A tenth of each group fires at a time (most of a fleet's alerts are quiet most of
    /// the time), but at least one request's worth, so that no body carries two events of
    /// one alert. Fails when the group is too small for that.
    pub fn new(groups: u32, per_group: u32, per_request: u32) -> Result<Lifecycle> {
        if groups == 0 {
            bail!("--groups must be at least 1");
        }
        let make = |per_group: u32| Lifecycle {
            groups: u64::from(groups),
            per_group: u64::from(per_group),
            per_request: u64::from(per_request),
            firing: u64::from(per_group.div_ceil(10).max(per_request).max(1)),
        };
        let lifecycle = make(per_group);
        if !lifecycle.is_valid() {
            let least = (per_request.max(1)..=u32::MAX)
                .find(|&n| make(n).is_valid())
                .unwrap_or(u32::MAX);
            bail!(
                "--alerts-per-group {per_group} is too small for {per_request} alert(s) per request: \
                 a request carries alerts of one group, each must change state once, \
                 so a group needs at least {least} alerts"
            );
        }
        Ok(lifecycle)
    }

    fn is_valid(&self) -> bool {
        self.per_group >= 1
            && self.firing <= self.per_group
            && self.min_event_gap() >= self.per_request
    }

    /// Fewest events of a group between two events of one alert: the first resolution
    /// comes `firing` events after the first fire, and a resolved alert fires again
    /// `2 (per_group - firing) + 1` events later.
    fn min_event_gap(&self) -> u64 {
        self.firing.min(2 * (self.per_group - self.firing) + 1)
    }

    /// Fewest distinct bodies between two bodies that touch the same alert.
    pub fn min_body_gap(&self) -> u64 {
        self.groups * (self.min_event_gap() / self.per_request.max(1))
    }

    pub fn population(&self) -> u64 {
        self.groups * self.per_group
    }

    /// Alerts firing at once across all groups once every group is warm.
    pub fn steady_firing(&self) -> u64 {
        self.groups * self.firing
    }

    /// Event `e` of a group's stream.
    pub fn event(&self, e: u64) -> Event {
        if e < self.firing {
            return Event::Fire(e);
        }
        let pair = (e - self.firing) / 2;
        if (e - self.firing).is_multiple_of(2) {
            Event::Resolve(pair)
        } else {
            Event::Fire(self.firing + pair)
        }
    }

    /// Index of the event that fires instance `n` in its group's stream.
    fn fire_event(&self, n: u64) -> u64 {
        if n < self.firing {
            n
        } else {
            self.firing + 2 * (n - self.firing) + 1
        }
    }

    /// The body that carries a group's event `e`.
    fn body_of(&self, group: u64, e: u64) -> u64 {
        (e / self.per_request) * self.groups + group
    }

    /// The body that fired instance `n` of `group`: its time is the instance's startsAt.
    pub fn fired_in(&self, group: u64, n: u64) -> u64 {
        self.body_of(group, self.fire_event(n))
    }

    /// Group and event indices carried by body `j`.
    pub fn events_of(&self, j: u64) -> (u64, std::ops::Range<u64>) {
        let group = j % self.groups;
        let first = (j / self.groups) * self.per_request;
        (group, first..first + self.per_request)
    }

    /// How the population behaves, for the scenario header.
    pub fn describe(&self) -> String {
        format!(
            "population {} groups x {} alerts = {} label sets, {} per group firing at a time \
             ({} in all), each resolving later and firing again as a new instance; mix: the \
             first {} alert events fire (warm-up), then 50% fire / 50% resolve",
            self.groups,
            self.per_group,
            self.population(),
            self.firing,
            self.steady_firing(),
            self.steady_firing()
        )
    }
}
