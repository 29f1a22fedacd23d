//! Telling live lines from replayed history.
//!
//! Bouncers replay backlog on every attach: ZNC inside `znc.in/playback` batches when
//! `batch` is negotiated, between "Buffer Playback..." and "Playback Complete." lines
//! (with `[HH:MM:SS]` pasted into the text) when it is not; soju in `chathistory`
//! batches. A replayed `!ack 42` must never act. Alert lines in a replay are worth
//! reading only when they are newer than anything already read (posted while the link
//! was down), which needs a `time` tag to tell.

use std::collections::{HashMap, HashSet, VecDeque};

use super::mask::casefold;
use crate::time::Timestamp;

/// Lines remembered for de-duplication (a line replayed twice in one attach, or
/// delivered once live and once in the next playback).
const SEEN: usize = 4096;

/// How far a server's clock may run behind ours before its "now" looks like history.
const SKEW_MS: i64 = 2_000;

#[derive(Debug, Default)]
pub struct Replay {
    /// Open batches of this connection: reference → type.
    batches: HashMap<String, String>,
    /// Targets inside ZNC's text playback brackets (no `batch` negotiated).
    text_playback: HashSet<String>,
    /// When this connection registered; older `time` tags are history.
    connected_at: Option<Timestamp>,
    seen: VecDeque<String>,
    seen_set: HashSet<String>,
    /// Newest alert line read, over every connection of this process.
    high_water: Option<Timestamp>,
}

/// How one line should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Live,
    /// History: commands in it never act; alert lines only if newer than any read.
    Replayed,
    /// Read before (same message id, or same time, sender, target and text).
    Duplicate,
}

impl Replay {
    /// A new connection: batches and playback brackets belong to the old one; what was
    /// seen and read is kept.
    pub fn connected(&mut self, now: Timestamp) {
        self.batches.clear();
        self.text_playback.clear();
        self.connected_at = Some(now);
    }

    pub fn batch_start(&mut self, reference: &str, kind: &str) {
        self.batches.insert(reference.to_string(), kind.to_string());
    }

    pub fn batch_end(&mut self, reference: &str) {
        self.batches.remove(reference);
    }

    /// ZNC's `***!znc@znc.in` bracket lines.
    pub fn text_playback(&mut self, target: &str, text: &str) {
        match text {
            "Buffer Playback..." => {
                self.text_playback.insert(casefold(target));
            }
            "Playback Complete." => {
                self.text_playback.remove(&casefold(target));
            }
            _ => {}
        }
    }

    /// Classifies a PRIVMSG or NOTICE. `batch` and `time` are its tags, `msgid` its
    /// message id tag, `key` sender, target and text.
    pub fn classify(
        &mut self,
        batch: Option<&str>,
        time: Option<Timestamp>,
        msgid: Option<&str>,
        target: &str,
        key: &str,
    ) -> Freshness {
        let dedup_key = match (msgid, time) {
            (Some(id), _) => Some(format!("id {id}")),
            (None, Some(t)) => Some(format!("{} {key}", t.millis())),
            // A live line without a time cannot be told from its own repeat; history
            // without a time is never acted on anyway.
            (None, None) => None,
        };
        if let Some(k) = dedup_key {
            if self.seen_set.contains(&k) {
                return Freshness::Duplicate;
            }
            if self.seen.len() == SEEN
                && let Some(old) = self.seen.pop_front()
            {
                self.seen_set.remove(&old);
            }
            self.seen_set.insert(k.clone());
            self.seen.push_back(k);
        }
        let in_history_batch = batch
            .and_then(|b| self.batches.get(b))
            .is_some_and(|kind| is_history(kind));
        let before_connect = match (time, self.connected_at) {
            (Some(t), Some(c)) => t.millis() < c.millis() - SKEW_MS,
            _ => false,
        };
        if in_history_batch || before_connect || self.text_playback.contains(&casefold(target)) {
            Freshness::Replayed
        } else {
            Freshness::Live
        }
    }

    /// Whether an alert line at `time` should be read: live lines always; replayed ones
    /// only when dated and newer than every alert line read so far.
    pub fn take_alert(&mut self, freshness: Freshness, time: Option<Timestamp>) -> bool {
        let take = match freshness {
            Freshness::Duplicate => false,
            Freshness::Live => true,
            Freshness::Replayed => match (time, self.high_water) {
                (Some(t), Some(h)) => t > h,
                (Some(t), None) => self.connected_at.is_none_or(|c| t >= c),
                (None, _) => false,
            },
        };
        if take && let Some(t) = time {
            self.high_water = Some(self.high_water.map_or(t, |h| h.max(t)));
        }
        take
    }
}

/// Batch types that carry history.
fn is_history(kind: &str) -> bool {
    kind.ends_with("playback") || kind.ends_with("chathistory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::at(s)
    }

    #[test]
    fn an_ack_replayed_in_a_znc_playback_batch_is_history() {
        let mut r = Replay::default();
        r.connected(t("2026-11-21T20:00:00Z"));
        r.batch_start("0b6e", "znc.in/playback");
        let f = r.classify(
            Some("0b6e"),
            Some(t("2026-11-21T20:00:00.500Z")),
            None,
            "#alerts",
            "bob #alerts !ack 7",
        );
        assert_eq!(
            f,
            Freshness::Replayed,
            "inside the batch, whatever its time"
        );
        r.batch_end("0b6e");
        let f = r.classify(
            None,
            Some(t("2026-11-21T20:00:01Z")),
            None,
            "#alerts",
            "bob #alerts !ack 8",
        );
        assert_eq!(f, Freshness::Live);
    }

    #[test]
    fn a_line_older_than_the_connection_is_history_even_without_a_batch() {
        let mut r = Replay::default();
        r.connected(t("2026-11-21T20:00:00Z"));
        let f = r.classify(None, Some(t("2026-11-21T19:50:00Z")), None, "#alerts", "k");
        assert_eq!(f, Freshness::Replayed);
        let f = r.classify(None, Some(t("2026-11-21T19:59:59Z")), None, "#alerts", "k2");
        assert_eq!(f, Freshness::Live, "within the clock skew allowance");
    }

    #[test]
    fn znc_text_playback_without_server_time_is_history() {
        let mut r = Replay::default();
        r.connected(t("2026-11-21T20:00:00Z"));
        r.text_playback("#alerts", "Buffer Playback...");
        assert_eq!(
            r.classify(None, None, None, "#ALERTS", "bob [19:35:23] !ack 3"),
            Freshness::Replayed
        );
        r.text_playback("#alerts", "Playback Complete.");
        assert_eq!(
            r.classify(None, None, None, "#alerts", "x"),
            Freshness::Live
        );
    }

    #[test]
    fn one_line_never_counts_twice() {
        let mut r = Replay::default();
        r.connected(t("2026-11-21T20:00:00Z"));
        let at = Some(t("2026-11-21T20:00:05Z"));
        assert_eq!(
            r.classify(None, at, None, "#a", "bob !ack 1"),
            Freshness::Live
        );
        r.connected(t("2026-11-21T20:10:00Z"));
        r.batch_start("x", "znc.in/playback");
        assert_eq!(
            r.classify(Some("x"), at, None, "#a", "bob !ack 1"),
            Freshness::Duplicate
        );
        assert_eq!(
            r.classify(None, None, Some("m1"), "#a", "k"),
            Freshness::Live
        );
        assert_eq!(
            r.classify(None, None, Some("m1"), "#a", "k"),
            Freshness::Duplicate
        );
    }

    #[test]
    fn replayed_alert_lines_count_only_when_newer_than_anything_read() {
        let mut r = Replay::default();
        r.connected(t("2026-11-21T20:00:00Z"));
        assert!(r.take_alert(Freshness::Live, Some(t("2026-11-21T20:01:00Z"))));
        // The link dropped; the bouncer kept what was said meanwhile and replays it all.
        r.connected(t("2026-11-21T20:10:00Z"));
        assert!(!r.take_alert(Freshness::Replayed, Some(t("2026-11-21T20:00:30Z"))));
        assert!(r.take_alert(Freshness::Replayed, Some(t("2026-11-21T20:05:00Z"))));
        assert!(
            !r.take_alert(Freshness::Replayed, None),
            "undated history is never read"
        );
        assert!(!r.take_alert(Freshness::Duplicate, Some(t("2026-11-21T20:11:00Z"))));
    }

    #[test]
    fn after_a_restart_old_history_is_not_read_as_new_alerts() {
        let mut r = Replay::default();
        r.connected(t("2026-11-21T20:10:00Z"));
        assert!(!r.take_alert(Freshness::Replayed, Some(t("2026-11-21T19:00:00Z"))));
    }
}
