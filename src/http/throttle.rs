//! Failed authentication, throttled per client address: after [`FAILURES_ALLOWED`]
//! failures within [`WINDOW`], the address is refused (429) without its credentials
//! being looked at, first for [`FIRST_PENALTY`], then twice as long on each further
//! failure, up to [`MAX_PENALTY`]. A guesser gets a handful of tries an hour; someone
//! who mistyped a token waits a minute. Other addresses are never affected.
//!
//! Pure: time is an argument, so tests move an injected clock. The table is bounded
//! ([`MAX_TRACKED`]): a guesser with many addresses pushes out the quietest entries,
//! never grows memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Timestamp;

/// Failures from one address tolerated within [`WINDOW`].
pub(crate) const FAILURES_ALLOWED: u32 = 5;
/// The span [`FAILURES_ALLOWED`] is counted over.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// The first penalty; each failure after it doubles the next.
pub(crate) const FIRST_PENALTY: Duration = Duration::from_secs(60);
/// The longest penalty; also how long a quiet address keeps its record of strikes.
pub(crate) const MAX_PENALTY: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at once.
pub(crate) const MAX_TRACKED: usize = 10_000;

/// Where a client's failures are counted: its IPv4 address, or its IPv6 /64 (one host
/// is usually given a whole /64, and could otherwise change address per guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Source(IpAddr);

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(_) => Source(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Source(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// When the current count of failures began.
    window_start: Timestamp,
    /// Failures since `window_start`.
    failures: u32,
    /// Penalties served since the address was last quiet for [`MAX_PENALTY`].
    strikes: u32,
    /// Refused without a look until then.
    blocked_until: Timestamp,
    /// The latest failure: the quietest entries are the first to go when full.
    last: Timestamp,
}

/// The failures of recent clients.
#[derive(Debug)]
pub(crate) struct Throttle {
    entries: HashMap<Source, Entry>,
    cap: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::with_capacity(MAX_TRACKED)
    }
}

impl Throttle {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Throttle {
            entries: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// How long `ip` must still wait, while it serves a penalty.
    pub(crate) fn blocked(&self, ip: IpAddr, now: Timestamp) -> Option<Duration> {
        let e = self.entries.get(&Source::of(ip))?;
        (e.blocked_until > now).then(|| e.blocked_until.since(now))
    }

    /// Records a failed authentication from `ip`; returns the penalty it starts, if any.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Timestamp) -> Option<Duration> {
        let key = Source::of(ip);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.cap {
            self.evict(now);
        }
        let e = self.entries.entry(key).or_insert(Entry {
            window_start: now,
            failures: 0,
            strikes: 0,
            blocked_until: now,
            last: now,
        });
        if now.since(e.last) >= MAX_PENALTY && e.blocked_until <= now {
            e.strikes = 0;
        }
        if now.since(e.window_start) >= WINDOW {
            e.window_start = now;
            e.failures = 0;
        }
        e.last = now;
        e.failures += 1;
        // After a penalty, one more failure is enough for the next, longer one.
        if e.failures < FAILURES_ALLOWED && e.strikes == 0 {
            return None;
        }
        let penalty = FIRST_PENALTY
            .saturating_mul(1u32 << e.strikes.min(16))
            .min(MAX_PENALTY);
        e.strikes += 1;
        e.failures = 0;
        e.window_start = now;
        e.blocked_until = now.plus(penalty);
        Some(penalty)
    }

    /// Makes room: the entry that failed longest ago and serves no penalty, else the one
    /// whose penalty ends first.
    fn evict(&mut self, now: Timestamp) {
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.blocked_until > now, e.last, e.blocked_until))
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            self.entries.remove(&k);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const T0: &str = "2026-12-07T03:00:00Z";

    fn at(secs: u64) -> Timestamp {
        Timestamp::at(T0).plus(Duration::from_secs(secs))
    }

    #[test]
    fn five_failures_in_a_minute_block_the_address_for_a_minute_then_longer_each_time() {
        let mut t = Throttle::default();
        let guesser = ip("203.0.113.9");
        for i in 0..4 {
            assert_eq!(t.failed(guesser, at(i)), None, "failure {}", i + 1);
            assert_eq!(t.blocked(guesser, at(i)), None);
        }
        assert_eq!(t.failed(guesser, at(4)), Some(FIRST_PENALTY));
        assert_eq!(t.blocked(guesser, at(5)), Some(Duration::from_secs(59)));
        assert_eq!(t.blocked(ip("203.0.113.10"), at(5)), None, "a neighbour");
        assert_eq!(t.blocked(guesser, at(64)), None, "the minute is over");
        // One more failure after a penalty: the next, twice as long.
        assert_eq!(t.failed(guesser, at(64)), Some(2 * FIRST_PENALTY));
        let mut now = 64 + 120;
        for _ in 0..10 {
            t.failed(guesser, at(now));
            now += 10 * 60;
        }
        assert_eq!(
            t.failed(guesser, at(now)),
            Some(MAX_PENALTY),
            "the penalty is capped"
        );
    }

    #[test]
    fn failures_spread_over_minutes_and_a_quiet_address_start_afresh() {
        let mut t = Throttle::default();
        let typo = ip("198.51.100.7");
        for i in 0..20 {
            assert_eq!(t.failed(typo, at(i * 20)), None, "one failure every 20 s");
        }
        for i in 0..5 {
            t.failed(typo, at(1000 + i));
        }
        assert!(t.blocked(typo, at(1005)).is_some());
        // Quiet for the longest penalty: forgiven, five tries again.
        let later = 1004 + 60 + MAX_PENALTY.as_secs();
        assert_eq!(t.failed(typo, at(later)), None);
    }

    #[test]
    fn an_ipv6_host_cannot_dodge_by_changing_its_address_within_its_64() {
        let mut t = Throttle::default();
        for i in 0..5 {
            t.failed(ip(&format!("2001:db8:1:2::{i:x}")), at(i));
        }
        assert!(t.blocked(ip("2001:db8:1:2:ffff::1"), at(5)).is_some());
        assert!(t.blocked(ip("2001:db8:1:3::1"), at(5)).is_none());
        for i in 0..5 {
            t.failed(ip("::ffff:192.0.2.1"), at(i));
        }
        assert!(t.blocked(ip("192.0.2.1"), at(5)).is_some());
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_the_blocked() {
        let mut t = Throttle::with_capacity(100);
        let guesser = ip("203.0.113.9");
        for i in 0..5 {
            t.failed(guesser, at(i));
        }
        for i in 0..1000u32 {
            let other = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.failed(other, at(10));
        }
        assert_eq!(t.len(), 100);
        assert!(
            t.blocked(guesser, at(11)).is_some(),
            "a flood of new addresses pushed out the one serving a penalty"
        );
    }
}
