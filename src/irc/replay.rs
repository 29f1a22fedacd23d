//! Telling live lines from replayed history.
//!
//! Bouncers replay backlog on every attach: ZNC inside `znc.in/playback` batches when
//! `batch` is negotiated, between "Buffer Playback..." and "Playback Complete." lines
//! (with `[HH:MM:SS]` pasted into the text) when it is not; soju in `chathistory`
//! batches. A replayed `!ack 42` must never act. Alert lines in a replay are worth
//! reading only when they were said while tocsin was not listening, which needs a `time`
//! tag to tell.
//!
//! How far tocsin had listened is the [`Mark`]: the newest server time on any live line
//! (ZNC stamps even its PONGs, so a quiet channel still moves it). A replayed line newer
//! than the mark as it stood when the connection began was said while tocsin was away.
//! The mark outlives the process (the link keeps it in the store): without it, every
//! line replayed after a restart would look older than the new connection and be dropped,
//! and an alert that fired during an upgrade would page nobody.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::mask::casefold;
use crate::time::Timestamp;

/// Lines remembered for de-duplication (a line replayed twice in one attach, or
/// delivered once live and once in the next playback).
const SEEN: usize = 4096;

/// How far a server's clock may run behind ours before its "now" looks like history; and
/// how far the clocks behind one connection (a bouncer's own, its network's) may differ.
const SKEW_MS: i64 = 2_000;

/// Most lines a [`Mark`] lists as read within [`SKEW_MS`] of its time.
const MARK_LINES: usize = 64;

/// Lines read that are kept (with their times) for the next [`Mark`]: more than a
/// storm says within the skew allowance.
const RECENT_READS: usize = 256;

/// How far the replay filter had heard, as kept in the store across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The newest server time on a live line: everything stamped before it had reached
    /// tocsin, so a replayed line older than this was heard (or read) already.
    pub heard: Timestamp,
    /// Lines read within the clock-skew allowance below `heard` (hashes of their time,
    /// sender, target and text): replayed after a restart, they are still not new.
    pub read: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Replay {
    /// Open batches of this connection: reference → type and target.
    batches: HashMap<String, Batch>,
    /// Targets inside ZNC's text playback brackets (no `batch` negotiated).
    text_playback: HashSet<String>,
    /// When this connection registered; older `time` tags are history.
    connected_at: Option<Timestamp>,
    seen: VecDeque<u64>,
    seen_set: HashSet<u64>,
    /// The newest server time on a live line, over every connection (and, restored
    /// from the store, every run).
    heard: Option<Timestamp>,
    /// `heard` when this connection began: what is replayed on it and is newer was said
    /// while tocsin was away.
    heard_before: Option<Timestamp>,
    /// Lines read with their times, newest last, for the next [`Mark`].
    read: VecDeque<(Timestamp, u64)>,
    /// What the replay since the last [`Replay::summary`] did.
    tally: Tally,
}

#[derive(Debug)]
struct Batch {
    kind: String,
    /// The channel or nick a playback batch is for.
    target: String,
}

/// How one line should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Live,
    /// History: commands in it never act; alert lines only if said while away.
    Replayed,
    /// Read before (same message id, or same time, sender, target and text).
    Duplicate,
}

/// What one replay did with its lines, for the log: how many were read and how many
/// dropped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The channel (or nick) whose backlog it was, when the bouncer said.
    pub target: Option<String>,
    /// Said while tocsin was away: read as alert lines (when a pattern matches).
    pub read: u32,
    /// Older than what tocsin had heard: heard (and read) before.
    pub older: u32,
    /// Delivered before, on this connection or an earlier one.
    pub duplicate: u32,
    /// Without a `time` tag: when they were said cannot be told.
    pub undated: u32,
    /// Commands, which never act from history.
    pub commands: u32,
    /// What tocsin had heard when this connection began (`None`: nothing yet, so
    /// only lines from this connection on are new).
    pub heard_before: Option<Timestamp>,
    /// When this connection began.
    pub connected_at: Option<Timestamp>,
}

impl Tally {
    fn is_empty(&self) -> bool {
        self.read + self.older + self.duplicate + self.undated + self.commands == 0
    }

    pub fn dropped(&self) -> u32 {
        self.older + self.duplicate + self.undated
    }
}

impl Replay {
    /// Takes up where an earlier run stopped (the mark it saved).
    pub fn restore(&mut self, mark: &Mark) {
        if self.heard.is_none_or(|h| h < mark.heard) {
            self.heard = Some(mark.heard);
        }
        if self.connected_at.is_none() {
            self.heard_before = self.heard;
        }
        for hash in &mark.read {
            if let Ok(h) = u64::from_str_radix(hash, 16) {
                self.remember(h);
                self.read.push_back((mark.heard, h));
            }
        }
    }

    /// What to keep for the next run; `None` until a live line carried a time.
    pub fn mark(&self) -> Option<Mark> {
        let heard = self.heard?;
        let read = self
            .read
            .iter()
            .rev()
            .filter(|(t, _)| t.millis() >= heard.millis() - SKEW_MS)
            .take(MARK_LINES)
            .map(|(_, h)| format!("{h:016x}"))
            .collect();
        Some(Mark { heard, read })
    }

    /// A new connection: batches and playback brackets belong to the old one; what was
    /// seen, read and heard is kept, and what was heard so far is what this
    /// connection's replay is measured against.
    pub fn connected(&mut self, now: Timestamp) {
        self.batches.clear();
        self.text_playback.clear();
        self.connected_at = Some(now);
        self.heard_before = self.heard;
    }

    /// Any line received: a `time` tag on a live one (not history, not one of the
    /// cached lines a bouncer repeats on attach with their old times) moves what tocsin
    /// has heard. A clock far ahead of ours moves it only to our now.
    pub fn received(&mut self, batch: Option<&str>, time: Option<Timestamp>, now: Timestamp) {
        let (Some(t), Some(c)) = (time, self.connected_at) else {
            return;
        };
        if self.in_history(batch) || t.millis() < c.millis() - SKEW_MS {
            return;
        }
        let t = t.min(Timestamp(now.millis() + SKEW_MS));
        if self.heard.is_none_or(|h| h < t) {
            self.heard = Some(t);
        }
    }

    pub fn batch_start(&mut self, reference: &str, kind: &str, target: &str) {
        self.batches.insert(
            reference.to_string(),
            Batch {
                kind: kind.to_string(),
                target: target.to_string(),
            },
        );
    }

    /// A batch ended; a history batch ends its replay, which is summed up.
    pub fn batch_end(&mut self, reference: &str) -> Option<Tally> {
        let batch = self.batches.remove(reference)?;
        if !is_history(&batch.kind) {
            return None;
        }
        self.take_tally(Some(batch.target))
    }

    /// ZNC's `***!znc@znc.in` bracket lines; the closing one sums up the replay.
    pub fn text_playback(&mut self, target: &str, text: &str) -> Option<Tally> {
        match text {
            "Buffer Playback..." => {
                self.text_playback.insert(casefold(target));
                None
            }
            "Playback Complete." => {
                self.text_playback.remove(&casefold(target));
                self.take_tally(Some(target.to_string()))
            }
            _ => None,
        }
    }

    /// What history outside any batch or bracket (lines dated before this connection)
    /// did since the last summary; `None` when there was none, or while a replay is
    /// still going on (its end sums it up).
    pub fn summary(&mut self) -> Option<Tally> {
        let replaying =
            !self.text_playback.is_empty() || self.batches.values().any(|b| is_history(&b.kind));
        if replaying {
            return None;
        }
        self.take_tally(None)
    }

    fn take_tally(&mut self, target: Option<String>) -> Option<Tally> {
        if self.tally.is_empty() {
            return None;
        }
        let mut t = std::mem::take(&mut self.tally);
        t.target = target;
        t.heard_before = self.heard_before;
        t.connected_at = self.connected_at;
        Some(t)
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
        let in_history_batch = self.in_history(batch);
        let before_connect = match (time, self.connected_at) {
            (Some(t), Some(c)) => t.millis() < c.millis() - SKEW_MS,
            _ => false,
        };
        let history =
            in_history_batch || before_connect || self.text_playback.contains(&casefold(target));
        // A line with a message id is known by it, and by its time too: a bouncer may
        // replay it without the id it was delivered with live.
        let keys = [
            msgid.map(|id| line_hash(&format!("id {id}"))),
            time.map(|t| line_hash(&timed_key(t, key))),
        ];
        // A live line without a time cannot be told from its own repeat; history
        // without a time is never acted on anyway.
        let duplicate = keys.iter().flatten().any(|k| self.seen_set.contains(k));
        for k in keys.into_iter().flatten() {
            self.remember(k);
        }
        if duplicate {
            if history {
                self.tally.duplicate += 1;
            }
            Freshness::Duplicate
        } else if history {
            Freshness::Replayed
        } else {
            Freshness::Live
        }
    }

    /// A command in history, never acted on: counted for the replay's summary.
    pub fn command_ignored(&mut self) {
        self.tally.commands += 1;
    }

    /// Whether a line that is not a command should be read as a possible alert: live
    /// lines always; replayed ones only when dated and said while tocsin was away
    /// (newer than what it had heard when this connection began, or, when it had heard
    /// nothing yet, not older than this connection). `key` is the line's sender, target
    /// and text, as given to [`Replay::classify`].
    pub fn take_alert(&mut self, freshness: Freshness, time: Option<Timestamp>, key: &str) -> bool {
        let take = match freshness {
            Freshness::Duplicate => false,
            Freshness::Live => true,
            Freshness::Replayed => {
                let new = match (time, self.heard_before, self.connected_at) {
                    (None, ..) => None,
                    // Within the skew allowance a line may have been heard: the lines read
                    // there are in `seen` (and in the mark), so those are duplicates.
                    (Some(t), Some(h), _) => Some(t.millis() >= h.millis() - SKEW_MS),
                    (Some(t), None, Some(c)) => Some(t >= c),
                    (Some(_), None, None) => Some(true),
                };
                match new {
                    None => self.tally.undated += 1,
                    Some(true) => self.tally.read += 1,
                    Some(false) => self.tally.older += 1,
                }
                new == Some(true)
            }
        };
        if take && let Some(t) = time {
            if self.read.len() == RECENT_READS {
                self.read.pop_front();
            }
            self.read.push_back((t, line_hash(&timed_key(t, key))));
        }
        take
    }

    fn in_history(&self, batch: Option<&str>) -> bool {
        batch
            .and_then(|b| self.batches.get(b))
            .is_some_and(|b| is_history(&b.kind))
    }

    fn remember(&mut self, k: u64) {
        if !self.seen_set.insert(k) {
            return;
        }
        if self.seen.len() == SEEN
            && let Some(old) = self.seen.pop_front()
        {
            self.seen_set.remove(&old);
        }
        self.seen.push_back(k);
    }
}

/// Batch types that carry history.
fn is_history(kind: &str) -> bool {
    kind.ends_with("playback") || kind.ends_with("chathistory")
}

fn timed_key(t: Timestamp, key: &str) -> String {
    format!("{} {key}", t.millis())
}

/// A line's identity in 64 bits, the same in every run (it is kept in the store).
fn line_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests;
