//! The outgoing queue: protocol lines first, chat lines paced the way servers and
//! bouncers count them (RFC 1459 §8.10: a burst, then one line per interval), so tocsin
//! is never disconnected for "Excess Flood" in the middle of a storm.
//!
//! What is paced waits in three queues, because anyone who can message the bot decides
//! how much of it there is: announcements and pages (ours) go first and have their own
//! room; a WHOIS that learns who gave a command takes every other turn while pages wait,
//! so an ack is not held up behind a storm either; answers to commands come last, in a
//! small queue of their own that drops its overflow rather than a page.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Announcement and page lines waiting at most; at 1 line per 2 s this is more than
/// three minutes of talk. Beyond it a page fails (and is retried or falls over) instead
/// of going out an hour late. Flood control upstream bundles pages long before this
/// fills.
pub const MAX_QUEUED: usize = 100;

/// Answer lines waiting at most: enough for a few people's `!incidents` at once; past
/// it an answer is dropped (the asker can ask again), never a page.
pub const MAX_REPLIES: usize = 30;

/// One chat line, and who wants to know when it was written to the socket.
pub struct Outgoing {
    pub line: String,
    pub written: Option<oneshot::Sender<()>>,
}

/// RFC 1459's message timer: each line pushes it `interval` ahead; a line may go while
/// the timer is less than `burst` intervals ahead of now.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    burst: u32,
    timer: Option<Instant>,
}

impl Pacer {
    pub fn new(burst: u32, interval: Duration) -> Self {
        Pacer {
            interval,
            burst: burst.max(1),
            timer: None,
        }
    }

    /// When the next line may be sent (now or later).
    pub fn ready_at(&self, now: Instant) -> Instant {
        match self.timer {
            None => now,
            Some(t) => {
                let slack = self.interval * (self.burst - 1);
                t.checked_sub(slack).map_or(now, |r| r.max(now))
            }
        }
    }

    /// Counts one line sent at `now`.
    pub fn sent(&mut self, now: Instant) {
        let base = self.timer.map_or(now, |t| t.max(now));
        self.timer = Some(base + self.interval);
    }
}

pub struct SendQueue {
    pacer: Pacer,
    /// PONG, registration, PING, JOIN: never held behind chat.
    urgent: VecDeque<String>,
    /// WHOIS about the sender of a command or alert line: paced like chat (a burst of
    /// them is what gets a client killed for flooding), bounded by the session, which
    /// caps how many it waits for.
    whois: VecDeque<String>,
    /// Announcements and pages.
    pages: VecDeque<Outgoing>,
    /// Answers to commands.
    replies: VecDeque<Outgoing>,
    /// The last paced line was a WHOIS: the next turn is a page's, if one waits.
    whois_turn_taken: bool,
}

/// The queue is full; the caller should fail the page rather than wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl SendQueue {
    pub fn new(pacer: Pacer) -> Self {
        SendQueue {
            pacer,
            urgent: VecDeque::new(),
            whois: VecDeque::new(),
            pages: VecDeque::new(),
            replies: VecDeque::new(),
            whois_turn_taken: false,
        }
    }

    pub fn urgent(&mut self, line: String) {
        self.urgent.push_back(line);
    }

    /// A WHOIS, sent at the chat pace.
    pub fn whois(&mut self, line: String) {
        self.whois.push_back(line);
    }

    /// Queues announcement or page lines that belong together (one message split to
    /// fit); `written` fires once the last of them is on the socket.
    pub fn chat(
        &mut self,
        lines: Vec<String>,
        written: Option<oneshot::Sender<()>>,
    ) -> Result<(), Full> {
        push_all(&mut self.pages, MAX_QUEUED, lines, written)
    }

    /// Queues an answer to a command, behind every page; refused when answers already
    /// fill their own queue.
    pub fn reply(&mut self, lines: Vec<String>) -> Result<(), Full> {
        push_all(&mut self.replies, MAX_REPLIES, lines, None)
    }

    /// The next line to write now, or when to ask again (`None`: nothing queued).
    pub fn next(&mut self, now: Instant) -> Result<Outgoing, Option<Instant>> {
        if let Some(line) = self.urgent.pop_front() {
            self.pacer.sent(now);
            return Ok(Outgoing {
                line,
                written: None,
            });
        }
        if self.whois.is_empty() && self.pages.is_empty() && self.replies.is_empty() {
            return Err(None);
        }
        let at = self.pacer.ready_at(now);
        if at > now {
            return Err(Some(at));
        }
        self.pacer.sent(now);
        let whois_now = !self.whois.is_empty() && (self.pages.is_empty() || !self.whois_turn_taken);
        self.whois_turn_taken = whois_now;
        if whois_now {
            let line = self.whois.pop_front().expect("checked non-empty");
            return Ok(Outgoing {
                line,
                written: None,
            });
        }
        Ok(self
            .pages
            .pop_front()
            .or_else(|| self.replies.pop_front())
            .expect("checked non-empty"))
    }

    /// Registration is over: what was said to get here (CAP, NICK, USER, SASL) is not
    /// counted against chat, as servers apply flood penalties to registered clients.
    pub fn registered(&mut self) {
        self.pacer.timer = None;
    }

    /// Announcement and page lines waiting.
    pub fn queued(&self) -> usize {
        self.pages.len()
    }

    /// The connection is gone: what was queued is dropped (its waiters see the sender
    /// dropped, which they report as a failed send), and pacing starts afresh.
    pub fn clear(&mut self) {
        self.urgent.clear();
        self.whois.clear();
        self.pages.clear();
        self.replies.clear();
        self.whois_turn_taken = false;
        self.pacer.timer = None;
    }
}

/// Queues `lines` as one message when all of them fit under `cap`.
fn push_all(
    queue: &mut VecDeque<Outgoing>,
    cap: usize,
    lines: Vec<String>,
    written: Option<oneshot::Sender<()>>,
) -> Result<(), Full> {
    if lines.is_empty() {
        if let Some(w) = written {
            let _ = w.send(());
        }
        return Ok(());
    }
    if queue.len() + lines.len() > cap {
        return Err(Full);
    }
    let n = lines.len();
    let mut written = written;
    for (i, line) in lines.into_iter().enumerate() {
        let w = if i + 1 == n { written.take() } else { None };
        queue.push_back(Outgoing { line, written: w });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_times(q: &mut SendQueue, start: Instant, until: Duration) -> Vec<Duration> {
        let mut now = start;
        let mut sent = Vec::new();
        while now <= start + until {
            match q.next(now) {
                Ok(_) => sent.push(now - start),
                Err(Some(at)) => now = at,
                Err(None) => break,
            }
        }
        sent
    }

    #[test]
    fn a_storm_goes_out_as_a_burst_then_one_line_per_two_seconds() {
        let mut q = SendQueue::new(Pacer::new(5, Duration::from_secs(2)));
        q.chat((0..9).map(|i| format!("line {i}")).collect(), None)
            .unwrap();
        let sent = drain_times(&mut q, Instant::now(), Duration::from_secs(60));
        let secs: Vec<u64> = sent.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![0, 0, 0, 0, 0, 2, 4, 6, 8]);
    }

    #[test]
    fn a_pong_is_never_stuck_behind_chat() {
        let mut q = SendQueue::new(Pacer::new(1, Duration::from_secs(2)));
        let now = Instant::now();
        q.chat(vec!["a".into(), "b".into()], None).unwrap();
        assert_eq!(q.next(now).unwrap().line, "a");
        assert!(q.next(now).is_err(), "b must wait");
        q.urgent("PONG :x".into());
        assert_eq!(q.next(now).unwrap().line, "PONG :x");
    }

    #[test]
    fn a_full_queue_refuses_instead_of_delaying_for_an_hour() {
        let mut q = SendQueue::new(Pacer::new(5, Duration::from_secs(2)));
        let lines = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        q.chat(lines(MAX_QUEUED - 1), None).unwrap();
        assert_eq!(q.chat(lines(2), None), Err(Full));
        assert_eq!(q.queued(), MAX_QUEUED - 1);
    }

    /// Five clients PM `!incidents` in a loop: their answers fill their own queue and
    /// the overflow is refused, while the page that comes meanwhile is queued and goes
    /// out first.
    #[test]
    fn a_flood_of_answers_never_pushes_out_a_page() {
        let mut q = SendQueue::new(Pacer::new(5, Duration::from_secs(2)));
        let mut refused = 0;
        for i in 0..200 {
            if q.reply(vec![format!("m{i}: 3 open")]).is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 200 - MAX_REPLIES);
        let page = q.chat(vec!["[#7] FIRING DiskFull".into()], None);
        assert_eq!(page, Ok(()), "the page has room of its own");
        assert_eq!(q.next(Instant::now()).unwrap().line, "[#7] FIRING DiskFull");
    }

    /// A PM flood from many hosts makes the session ask WHOIS about every sender: the
    /// lines go out at the chat pace (a burst, then one per interval), never all at
    /// once, and a waiting page gets every other turn.
    #[test]
    fn whois_lines_are_paced_and_leave_pages_every_other_turn() {
        let mut q = SendQueue::new(Pacer::new(5, Duration::from_secs(2)));
        for i in 0..8 {
            q.whois(format!("WHOIS m{i}"));
        }
        let sent = drain_times(&mut q, Instant::now(), Duration::from_secs(60));
        let secs: Vec<u64> = sent.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![0, 0, 0, 0, 0, 2, 4, 6]);

        let mut q = SendQueue::new(Pacer::new(5, Duration::from_secs(2)));
        for i in 0..4 {
            q.whois(format!("WHOIS m{i}"));
        }
        q.chat(vec!["page 1".into(), "page 2".into()], None)
            .unwrap();
        let now = Instant::now();
        let order: Vec<String> = (0..5).map(|_| q.next(now).unwrap().line).collect();
        assert_eq!(
            order,
            ["WHOIS m0", "page 1", "WHOIS m1", "page 2", "WHOIS m2"]
        );
    }

    #[test]
    fn the_waiter_hears_when_the_last_piece_is_written() {
        let mut q = SendQueue::new(Pacer::new(5, Duration::from_secs(2)));
        let (tx, mut rx) = oneshot::channel();
        q.chat(vec!["one".into(), "two".into()], Some(tx)).unwrap();
        let now = Instant::now();
        let first = q.next(now).unwrap();
        assert!(first.written.is_none());
        let second = q.next(now).unwrap();
        second.written.unwrap().send(()).unwrap();
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn registration_chatter_does_not_delay_the_first_announcement() {
        let mut q = SendQueue::new(Pacer::new(5, Duration::from_secs(2)));
        let now = Instant::now();
        for l in [
            "CAP LS 302",
            "NICK a",
            "USER a 0 * a",
            "CAP REQ batch",
            "CAP END",
        ] {
            q.urgent(l.into());
        }
        q.urgent("CAP REQ server-time".into());
        while q.next(now).is_ok() {}
        q.registered();
        q.chat(vec!["[#1] FIRING".into()], None).unwrap();
        assert_eq!(q.next(now).unwrap().line, "[#1] FIRING");
    }

    #[test]
    fn after_a_quiet_minute_the_full_burst_is_available_again() {
        let mut p = Pacer::new(5, Duration::from_secs(2));
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(p.ready_at(t0), t0);
            p.sent(t0);
        }
        assert!(p.ready_at(t0) > t0);
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(p.ready_at(later), later);
            p.sent(later);
        }
    }
}
