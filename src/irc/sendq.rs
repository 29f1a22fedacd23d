//! The outgoing queue: protocol lines first, chat lines paced the way servers and
//! bouncers count them (RFC 1459 §8.10: a burst, then one line per interval), so tocsin
//! is never disconnected for "Excess Flood" in the middle of a storm.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Chat lines waiting at most; at 1 line per 2 s this is more than three minutes of
/// talk. Beyond it a page fails (and is retried or falls over) instead of going out an
/// hour late. Flood control upstream bundles pages long before this fills.
pub const MAX_QUEUED: usize = 100;

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
    /// PONG, registration, PING: never held behind chat.
    urgent: VecDeque<String>,
    chat: VecDeque<Outgoing>,
}

/// The queue is full; the caller should fail the page rather than wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl SendQueue {
    pub fn new(pacer: Pacer) -> Self {
        SendQueue {
            pacer,
            urgent: VecDeque::new(),
            chat: VecDeque::new(),
        }
    }

    pub fn urgent(&mut self, line: String) {
        self.urgent.push_back(line);
    }

    /// Queues chat lines that belong together (one message split to fit); `written`
    /// fires once the last of them is on the socket.
    pub fn chat(
        &mut self,
        lines: Vec<String>,
        written: Option<oneshot::Sender<()>>,
    ) -> Result<(), Full> {
        if lines.is_empty() {
            if let Some(w) = written {
                let _ = w.send(());
            }
            return Ok(());
        }
        if self.chat.len() + lines.len() > MAX_QUEUED {
            return Err(Full);
        }
        let n = lines.len();
        let mut written = written;
        for (i, line) in lines.into_iter().enumerate() {
            let w = if i + 1 == n { written.take() } else { None };
            self.chat.push_back(Outgoing { line, written: w });
        }
        Ok(())
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
        if self.chat.is_empty() {
            return Err(None);
        }
        let at = self.pacer.ready_at(now);
        if at > now {
            return Err(Some(at));
        }
        self.pacer.sent(now);
        Ok(self.chat.pop_front().expect("checked non-empty"))
    }

    /// Registration is over: what was said to get here (CAP, NICK, USER, SASL) is not
    /// counted against chat, as servers apply flood penalties to registered clients.
    pub fn registered(&mut self) {
        self.pacer.timer = None;
    }

    pub fn queued(&self) -> usize {
        self.chat.len()
    }

    /// The connection is gone: what was queued is dropped (its waiters see the sender
    /// dropped, which they report as a failed send), and pacing starts afresh.
    pub fn clear(&mut self) {
        self.urgent.clear();
        self.chat.clear();
        self.pacer.timer = None;
    }
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
