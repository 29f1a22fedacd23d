//! The leader's right to commit and to send, as this instance knows it.
//!
//! With a shared PostgreSQL store, leadership is a lease row with an epoch that grows by
//! one at every takeover. The instance that holds the lease keeps its epoch here with a
//! deadline on its own monotonic clock: the lease's length counted from *before* the
//! renewal that granted it was sent, so this instance stops believing it leads no later
//! than the database lets another take over. A paused process (SIGSTOP, a VM frozen)
//! wakes past its deadline and sends nothing; a commit checks the epoch in the database
//! as well, so even a leader whose clock lies cannot record anything once fenced.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// Epoch 0 means "not the leader": the lease's first epoch is 1.
#[derive(Debug, Default)]
pub struct Fence {
    epoch: AtomicU64,
    deadline: Mutex<Option<Instant>>,
}

impl Fence {
    /// A fence that holds nothing (a follower, until it takes the lease).
    pub fn new() -> Self {
        Fence::default()
    }

    /// The epoch this instance leads with, or 0. Commits carry it to the database.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The lease was taken (or renewed) at `epoch`, valid until `until`.
    pub fn hold(&self, epoch: u64, until: Instant) {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// Another instance took over, or this one is stopping: nothing more is sent or
    /// committed under the old epoch.
    pub fn release(&self) {
        self.epoch.store(0, Ordering::SeqCst);
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether a send may start now: the lease is held and its deadline not passed.
    pub fn holds(&self) -> bool {
        self.holds_at(Instant::now())
    }

    pub fn holds_at(&self, now: Instant) -> bool {
        self.epoch() != 0
            && self
                .deadline
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|d| now < d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_leader_paused_past_its_lease_no_longer_holds_it_on_waking() {
        let fence = Fence::new();
        assert!(!fence.holds(), "a follower holds nothing");
        let t0 = Instant::now();
        fence.hold(7, t0 + Duration::from_secs(10));
        assert!(fence.holds_at(t0 + Duration::from_secs(9)));
        assert_eq!(fence.epoch(), 7);
        // SIGSTOP for 30 s: the monotonic clock ran on meanwhile.
        assert!(!fence.holds_at(t0 + Duration::from_secs(30)));
        fence.release();
        assert_eq!(fence.epoch(), 0);
        assert!(!fence.holds_at(t0));
    }
}
