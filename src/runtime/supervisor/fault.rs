//! Faults a test injects into named tasks: a task checks [`maybe_panic`] at the
//! top of each turn. Per thread: each `#[tokio::test]` runs its daemon on its own
//! current-thread runtime, so tests running side by side do not see each other's faults.

use std::cell::RefCell;
use std::collections::HashMap;

use tokio::sync::watch;

#[derive(Default)]
struct Faults {
    /// Turns left that panic, by task.
    panics: HashMap<String, u32>,
    /// Tasks whose restarts wait while the value is `true`.
    holds: HashMap<String, watch::Receiver<bool>>,
}

thread_local! {
    static FAULTS: RefCell<Faults> = RefCell::default();
}

/// The next `turns` turns of `task` panic (`u32::MAX`: every turn from now on).
pub fn panic_next(task: &str, turns: u32) {
    FAULTS.with(|f| f.borrow_mut().panics.insert(task.to_string(), turns));
}

/// Panics when a fault is armed for `task`; called at the top of each turn.
pub fn maybe_panic(task: &str) {
    let hit = FAULTS.with(|f| {
        let mut f = f.borrow_mut();
        match f.panics.get_mut(task) {
            Some(n) if *n > 0 => {
                if *n != u32::MAX {
                    *n -= 1;
                }
                true
            }
            _ => false,
        }
    });
    if hit {
        panic!("injected fault in {task}");
    }
}

/// Holds restarts of `task` (after their backoff) until the guard is dropped, so a
/// test can look at the daemon while the task is down.
pub fn hold_restarts(task: &str) -> Hold {
    let (tx, rx) = watch::channel(true);
    FAULTS.with(|f| f.borrow_mut().holds.insert(task.to_string(), rx));
    Hold {
        task: task.to_string(),
        tx,
    }
}

/// Lets the held restarts go when dropped.
pub struct Hold {
    task: String,
    tx: watch::Sender<bool>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        FAULTS.with(|f| f.borrow_mut().holds.remove(&self.task));
        self.tx.send_replace(false);
    }
}

pub(super) async fn restart_allowed(task: &str) {
    let held = FAULTS.with(|f| f.borrow().holds.get(task).cloned());
    if let Some(mut rx) = held {
        let _ = rx.wait_for(|held| !*held).await;
    }
}
