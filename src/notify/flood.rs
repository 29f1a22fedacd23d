//! Flood control, pure: per-destination and per-notifier limits, and the pages held back
//! by them, released as bundles when the limits allow.
//!
//! Limits are sliding windows ("at most 5 in any 15 minutes"); several tiers together
//! (1/min, 5/15 min, 11/h, 21/3 h for SMS, GoAlert's numbers) spread a storm over hours
//! instead of letting it burst. Nothing is dropped: a held page waits, and every page
//! held for one destination goes out together in the next message that is allowed.

use std::collections::{BTreeMap, VecDeque};

use crate::config::{Limits, RateLimit};
use crate::engine::Page;
use crate::time::Timestamp;

/// Most pages one message carries; the rest wait for the next one.
pub const MAX_BUNDLE: usize = 1000;

/// Where a page goes, as flood control counts it: one phone, one mailbox, one topic.
pub fn destination(p: &Page) -> String {
    match (&p.to, &p.topic, &p.contact) {
        (Some(to), _, _) => to.clone(),
        (None, Some(topic), _) => topic.clone(),
        (None, None, Some(c)) => c.clone(),
        (None, None, None) => p.target.clone(),
    }
}

/// Send times, newest last, for one scope.
#[derive(Debug, Default)]
struct Sent(VecDeque<Timestamp>);

impl Sent {
    /// When one more send fits under every rule.
    fn allowed_at(&self, rules: &[RateLimit], now: Timestamp) -> Timestamp {
        let mut at = now;
        for r in rules {
            let n = r.count as usize;
            if self.0.len() >= n {
                let oldest_counted = self.0[self.0.len() - n];
                at = at.max(oldest_counted.plus(r.window));
            }
        }
        at
    }

    fn record(&mut self, at: Timestamp, keep: usize) {
        self.0.push_back(at);
        while self.0.len() > keep {
            self.0.pop_front();
        }
    }

    /// A send counted at `counted` really went out at `sent` (later): count it then.
    fn retime(&mut self, counted: Timestamp, sent: Timestamp) {
        if let Some(t) = self.0.iter_mut().rev().find(|t| **t == counted) {
            *t = sent.max(counted);
        }
        self.0.make_contiguous().sort_unstable();
    }
}

/// One notifier's limits and what it sent.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    overall: Sent,
    per_destination: BTreeMap<String, Sent>,
    keep: usize,
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        let keep = limits
            .per_destination
            .iter()
            .chain(limits.overall.iter())
            .map(|r| r.count as usize)
            .max()
            .unwrap_or(0);
        Limiter {
            limits,
            overall: Sent::default(),
            per_destination: BTreeMap::new(),
            keep,
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.limits.per_destination.is_empty() && self.limits.overall.is_none()
    }

    /// The earliest moment a message to `dest` may go.
    pub fn allowed_at(&self, dest: &str, now: Timestamp) -> Timestamp {
        let overall = self.overall.allowed_at(self.limits.overall.as_slice(), now);
        let dest_at = self
            .per_destination
            .get(dest)
            .map(|s| s.allowed_at(&self.limits.per_destination, now))
            .unwrap_or(now);
        overall.max(dest_at)
    }

    pub fn record(&mut self, dest: &str, at: Timestamp) {
        self.overall.record(at, self.keep);
        self.per_destination
            .entry(dest.to_string())
            .or_default()
            .record(at, self.keep);
    }

    fn retime(&mut self, dest: &str, counted: Timestamp, sent: Timestamp) {
        self.overall.retime(counted, sent);
        if let Some(d) = self.per_destination.get_mut(dest) {
            d.retime(counted, sent);
        }
    }

    /// Forgets destinations whose sends no longer count against any rule.
    fn prune(&mut self, now: Timestamp) {
        let longest = self
            .limits
            .per_destination
            .iter()
            .map(|r| r.window)
            .max()
            .unwrap_or_default();
        self.per_destination
            .retain(|_, s| s.0.back().is_some_and(|t| t.plus(longest) > now));
    }
}

/// Pages waiting for their destination's limits, per notifier.
#[derive(Debug, Default)]
pub struct Flood {
    limiters: BTreeMap<String, Limiter>,
    /// (notifier, destination) -> held pages, oldest first.
    held: BTreeMap<(String, String), Vec<Page>>,
    /// Destinations with a released message not yet handed to its notifier (the engine
    /// is deciding what of it still goes), and when it was counted: nothing more is
    /// released to them until [`Flood::settle`] counts the real send time, so a slow
    /// decision cannot put two messages closer together than the limits allow.
    unsettled: BTreeMap<(String, String), Timestamp>,
    /// Pages held for their contact's quiet hours, until their `hold_until`; then they
    /// join their destination's queue and go out together.
    quiet: Vec<Page>,
}

impl Flood {
    pub fn new(limits: impl IntoIterator<Item = (String, Limits)>) -> Self {
        Flood {
            limiters: limits
                .into_iter()
                .map(|(n, l)| (n, Limiter::new(l)))
                .collect(),
            held: BTreeMap::new(),
            unsettled: BTreeMap::new(),
            quiet: Vec::new(),
        }
    }

    /// New limits after a config reload. A notifier whose limits did not change keeps
    /// its history (a reload must not reopen a phone's budget); held pages stay held.
    pub fn set_limits(&mut self, limits: impl IntoIterator<Item = (String, Limits)>) {
        let mut next = BTreeMap::new();
        for (name, l) in limits {
            let limiter = match self.limiters.remove(&name) {
                Some(old) if old.limits == l => old,
                _ => Limiter::new(l),
            };
            next.insert(name, limiter);
        }
        self.limiters = next;
    }

    /// Whether pages of `notifier` go through flood control at all.
    pub fn limits(&self, notifier: &str) -> bool {
        self.limiters
            .get(notifier)
            .is_some_and(|l| !l.is_unlimited())
    }

    /// Holds a page until [`Flood::release`] lets it go: past its `hold_until` (quiet
    /// hours), and as its destination's limits allow.
    pub fn hold(&mut self, page: Page) {
        if page.hold_until.is_some() {
            self.quiet.push(page);
            return;
        }
        let key = (page.notifier.clone(), destination(&page));
        self.held.entry(key).or_default().push(page);
    }

    pub fn held_for(&self, notifier: &str) -> usize {
        let quiet = self.quiet.iter().filter(|p| p.notifier == notifier).count();
        self.held
            .iter()
            .filter(|((n, _), _)| n == notifier)
            .map(|(_, v)| v.len())
            .sum::<usize>()
            + quiet
    }

    /// Every message that may go at `now` (each the held pages of one destination, oldest
    /// first), and when to look again for the rest.
    pub fn release(&mut self, now: Timestamp) -> (Vec<Vec<Page>>, Option<Timestamp>) {
        let mut out = Vec::new();
        let mut next: Option<Timestamp> = None;
        // Quiet hours over: those pages join their destination's queue, to go out as one.
        let (over, still): (Vec<Page>, Vec<Page>) = std::mem::take(&mut self.quiet)
            .into_iter()
            .partition(|p| p.hold_until.is_none_or(|t| t <= now));
        self.quiet = still;
        next = self
            .quiet
            .iter()
            .filter_map(|p| p.hold_until)
            .min()
            .or(next);
        for mut page in over {
            page.hold_until = None;
            self.hold(page);
        }
        // Oldest waiting destination first, so one busy destination cannot starve others
        // of the notifier's overall budget.
        let mut keys: Vec<_> = self
            .held
            .iter()
            .map(|(k, v)| (v[0].at, v[0].id, k.clone()))
            .collect();
        keys.sort();
        for (_, _, key) in keys {
            if self.unsettled.contains_key(&key) {
                continue;
            }
            let Some(limiter) = self.limiters.get_mut(&key.0) else {
                continue;
            };
            let at = limiter.allowed_at(&key.1, now);
            if at > now {
                next = Some(next.map_or(at, |n| n.min(at)));
                continue;
            }
            let pages = self.held.get_mut(&key).expect("key from the map");
            let take = pages.len().min(MAX_BUNDLE);
            let bundle: Vec<Page> = pages.drain(..take).collect();
            if pages.is_empty() {
                self.held.remove(&key);
            } else {
                next = Some(now);
            }
            limiter.record(&key.1, now);
            self.unsettled.insert(key, now);
            out.push(bundle);
        }
        for l in self.limiters.values_mut() {
            l.prune(now);
        }
        (out, next)
    }

    /// The message released for `page`'s destination went out at `sent` (or was
    /// dropped: `sent` is then when that was decided): it counts from then, and the
    /// destination may be released to again.
    pub fn settle(&mut self, page: &Page, sent: Timestamp) {
        let key = (page.notifier.clone(), destination(page));
        if let Some(counted) = self.unsettled.remove(&key)
            && let Some(l) = self.limiters.get_mut(&key.0)
        {
            l.retime(&key.1, counted, sent);
        }
    }

    /// Puts pages back at the head of their destination's queue (a release the engine
    /// could not record); their destination is settled.
    pub fn rehold(&mut self, pages: Vec<Page>, now: Timestamp) {
        let Some(first) = pages.first() else { return };
        self.settle(&first.clone(), now);
        let key = (first.notifier.clone(), destination(first));
        let queue = self.held.entry(key).or_default();
        let rest = std::mem::replace(queue, pages);
        queue.extend(rest);
    }

    /// Everything still held (shutdown: these stay pending in the store and are sent on
    /// the next start).
    pub fn drain_all(&mut self) -> Vec<Page> {
        let quiet = std::mem::take(&mut self.quiet);
        std::mem::take(&mut self.held)
            .into_values()
            .chain(std::iter::once(quiet))
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PageKind;

    const MIN: i64 = 60_000;

    fn page(id: u64, at: i64, to: &str) -> Page {
        Page {
            id,
            incident: id,
            at: Timestamp(at),
            kind: PageKind::Triggered,
            step: 1,
            cycle: 0,
            target: "alice".into(),
            contact: Some("alice".into()),
            notifier: "sms".into(),
            method: Some(0),
            to: Some(to.into()),
            topic: None,
            late_by_ms: None,
            reason: "step 1".into(),
            retry_until: None,
            hold_until: None,
        }
    }

    fn sms_limits() -> Limits {
        Limits {
            per_destination: vec![
                RateLimit::new(1, 60),
                RateLimit::new(5, 15 * 60),
                RateLimit::new(11, 3600),
                RateLimit::new(21, 3 * 3600),
            ],
            overall: Some(RateLimit::new(5, 5)),
        }
    }

    /// Runs the release loop from `start` to `end` as the dispatcher would, with pages
    /// arriving at their `at`, and returns (send time, page ids) per message.
    fn simulate(flood: &mut Flood, mut arrivals: Vec<Page>, end: i64) -> Vec<(i64, Vec<u64>)> {
        arrivals.sort_by_key(|p| p.at);
        let mut arrivals: VecDeque<Page> = arrivals.into();
        let mut sent = Vec::new();
        let mut now = arrivals.front().map_or(0, |p| p.at.0);
        while now <= end {
            while arrivals.front().is_some_and(|p| p.at.0 <= now) {
                flood.hold(arrivals.pop_front().unwrap());
            }
            let (msgs, next) = flood.release(Timestamp(now));
            for m in msgs {
                flood.settle(&m[0], Timestamp(now));
                sent.push((now, m.iter().map(|p| p.id).collect()));
            }
            let next_arrival = arrivals.front().map(|p| p.at.0);
            now = match (next.map(|t| t.0), next_arrival) {
                (Some(a), Some(b)) => a.min(b).max(now + 1),
                (Some(a), None) => a.max(now + 1),
                (None, Some(b)) => b,
                (None, None) => break,
            };
        }
        sent
    }

    #[test]
    fn a_storm_of_1000_incidents_in_a_minute_is_a_handful_of_sms_and_loses_none() {
        let mut flood = Flood::new([("sms".to_string(), sms_limits())]);
        let pages: Vec<Page> = (1..=1000)
            .map(|i| page(i, (i as i64 - 1) * 60, "+15550100"))
            .collect();
        let sent = simulate(&mut flood, pages, 3 * 3600 * 1000);
        // Every page went out exactly once.
        let mut all: Vec<u64> = sent.iter().flat_map(|(_, ids)| ids.clone()).collect();
        all.sort();
        assert_eq!(all, (1..=1000).collect::<Vec<_>>());
        // The first page went at once; the rest came in bundles.
        assert_eq!(sent[0], (0, vec![1]));
        assert!(
            sent.len() <= 3,
            "{} messages: {:?}",
            sent.len(),
            sent.iter()
                .map(|(t, ids)| (t, ids.len()))
                .collect::<Vec<_>>()
        );
        // And never two within a minute.
        for w in sent.windows(2) {
            assert!(w[1].0 - w[0].0 >= MIN, "{:?} then {:?}", w[0].0, w[1].0);
        }
    }

    #[test]
    fn pages_trickling_in_for_hours_stay_within_every_sms_tier() {
        let mut flood = Flood::new([("sms".to_string(), sms_limits())]);
        // One new incident every 2 minutes for 6 hours.
        let pages: Vec<Page> = (0..180)
            .map(|i| page(i + 1, i as i64 * 2 * MIN, "+15550100"))
            .collect();
        let sent = simulate(&mut flood, pages, 12 * 3600 * 1000);
        let times: Vec<i64> = sent.iter().map(|(t, _)| *t).collect();
        for (count, window) in [(1, MIN), (5, 15 * MIN), (11, 60 * MIN), (21, 180 * MIN)] {
            for (i, t) in times.iter().enumerate() {
                let in_window = times[i..].iter().take_while(|u| **u < t + window).count();
                assert!(
                    in_window <= count,
                    "{in_window} sends within {window} ms from {t}"
                );
            }
        }
        let total: usize = sent.iter().map(|(_, ids)| ids.len()).sum();
        assert_eq!(total, 180, "every page went out");
    }

    #[test]
    fn one_busy_phone_does_not_hold_back_another_persons_page() {
        let mut flood = Flood::new([("sms".to_string(), sms_limits())]);
        let mut pages: Vec<Page> = (1..=50).map(|i| page(i, 0, "+15550100")).collect();
        pages.push(page(51, 0, "+15550199"));
        let sent = simulate(&mut flood, pages, 10 * MIN);
        let to_bob = sent.iter().find(|(_, ids)| ids.contains(&51)).unwrap();
        assert!(to_bob.0 < 5_000, "bob's page waited {} ms", to_bob.0);
    }

    #[test]
    fn the_overall_limit_spreads_many_destinations_over_seconds() {
        let mut flood = Flood::new([("sms".to_string(), sms_limits())]);
        let pages: Vec<Page> = (1..=12)
            .map(|i| page(i, 0, &format!("+1555010{i:02}")))
            .collect();
        let sent = simulate(&mut flood, pages, MIN);
        assert_eq!(sent.len(), 12);
        for (i, (t, _)) in sent.iter().enumerate() {
            assert!(
                i < 5 || *t >= 5_000,
                "message {i} at {t} ms broke 5 per 5 s"
            );
        }
    }

    #[test]
    fn an_unlimited_notifier_is_not_held() {
        let flood = Flood::new([("hook".to_string(), Limits::default())]);
        assert!(!flood.limits("hook"));
        assert!(!flood.limits("not-configured"));
    }

    #[test]
    fn a_message_counts_from_when_it_went_out_not_from_when_it_was_released() {
        let mut flood = Flood::new([("sms".to_string(), sms_limits())]);
        flood.hold(page(1, 0, "+1"));
        let (msgs, _) = flood.release(Timestamp(0));
        assert_eq!(msgs.len(), 1);
        // While the first message is being decided, the phone's next page waits.
        flood.hold(page(2, MIN, "+1"));
        assert!(flood.release(Timestamp(2 * MIN)).0.is_empty());
        // It went out 30 s after its release: the next may follow a minute after that.
        flood.settle(&msgs[0][0], Timestamp(MIN / 2));
        assert!(flood.release(Timestamp(MIN + MIN / 2 - 1)).0.is_empty());
        let (msgs, _) = flood.release(Timestamp(MIN + MIN / 2));
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0][0].id, 2);
    }

    #[test]
    fn a_release_put_back_goes_first_next_time() {
        let mut flood = Flood::new([("sms".to_string(), sms_limits())]);
        flood.hold(page(1, 0, "+1"));
        let (msgs, _) = flood.release(Timestamp(0));
        flood.hold(page(2, 10, "+1"));
        flood.rehold(msgs.into_iter().next().unwrap(), Timestamp(0));
        let (msgs, _) = flood.release(Timestamp(MIN));
        let ids: Vec<u64> = msgs[0].iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 2]);
    }
}
