//! How many commands one sender may give: anyone who can message the bot could otherwise
//! make it send a WHOIS and an answer for every line, filling the queue pages and alert
//! lines need and getting it throttled or killed by the server.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::time::Timestamp;

/// Commands one sender (by host) may give per [`WINDOW`].
pub const PER_WINDOW: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(10);
/// Senders remembered at once; past this, new senders wait until old ones age out.
const MAX_SENDERS: usize = 1024;

/// What to do with one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over the pace: dropped. `first` for the first dropped one of a burst, so the
    /// drop is said once, not once per line.
    Drop {
        first: bool,
    },
}

#[derive(Debug, Default)]
pub struct CommandPace {
    seen: HashMap<String, (VecDeque<Timestamp>, bool)>,
}

impl CommandPace {
    /// One command from `sender` (its `user@host`, folded) at `now`.
    pub fn check(&mut self, sender: &str, now: Timestamp) -> Verdict {
        let fresh = |t: &Timestamp| now.since(*t) < WINDOW;
        if self.seen.len() >= MAX_SENDERS {
            self.seen
                .retain(|_, (times, _)| times.back().is_some_and(fresh));
            if self.seen.len() >= MAX_SENDERS && !self.seen.contains_key(sender) {
                return Verdict::Drop { first: false };
            }
        }
        let (times, told) = self.seen.entry(sender.to_string()).or_default();
        while times.front().is_some_and(|t| !fresh(t)) {
            times.pop_front();
        }
        if times.len() < PER_WINDOW {
            times.push_back(now);
            *told = false;
            return Verdict::Allow;
        }
        let first = !*told;
        *told = true;
        Verdict::Drop { first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::at("2026-11-21T20:00:00Z").plus(Duration::from_millis(ms))
    }

    #[test]
    fn a_burst_is_cut_after_five_and_said_once_then_the_pace_comes_back() {
        let mut p = CommandPace::default();
        let verdicts: Vec<Verdict> = (0..8).map(|i| p.check("m@10.6.6.6", at(i * 100))).collect();
        assert_eq!(&verdicts[..5], &[Verdict::Allow; 5]);
        assert_eq!(verdicts[5], Verdict::Drop { first: true });
        assert_eq!(verdicts[6], Verdict::Drop { first: false });
        assert_eq!(
            p.check("a@127.0.0.1", at(800)),
            Verdict::Allow,
            "others are not held up"
        );
        assert_eq!(
            p.check("m@10.6.6.6", at(10_000)),
            Verdict::Allow,
            "the first has aged out"
        );
    }
}
