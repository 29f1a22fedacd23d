//! Deletes resolved incidents older than `[storage] retention`, now and then.
//!
//! The store deletes a batch per transaction on its writer thread between commits, so a
//! sweep through a year of backlog never holds a webhook's answer or a page's intent for
//! longer than one small batch. After deleting, the freed pages go back to the file
//! system a slice at a time for the same reason.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::engine::RECENT_WINDOW;
use crate::metrics::{Metrics, WhatLabel};
use crate::store::{Deleted, Store, StoreError};
use crate::time::{Clock, Timestamp};

/// The first sweep waits this long after start, so that start-up (restore, re-sending
/// pending pages) has the writer to itself.
pub const FIRST_SWEEP: Duration = Duration::from_secs(60);

/// How often retention looks for incidents to delete.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);

/// Incidents deleted per transaction: at a few rows of history each, a batch takes a
/// few milliseconds, which is as long as a commit can be kept waiting by it.
pub const BATCH: usize = 100;

/// Free pages handed back per vacuum step (4 MiB at SQLite's 4 KiB page).
const RECLAIM_PAGES: u32 = 1024;

/// Runs until `stop`: a sweep after [`FIRST_SWEEP`], then every [`SWEEP_EVERY`], and at
/// once whenever a test's clock jumps.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    keep: Duration,
    stop: CancellationToken,
) {
    let mut jumps = clock.jumps();
    let mut wait = FIRST_SWEEP;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = crate::time::jumped(&mut jumps) => {}
        }
        wait = SWEEP_EVERY;
        match sweep(&*store, clock.now(), keep, &stop).await {
            Ok(deleted) => {
                for (what, n) in deleted.by_kind() {
                    metrics
                        .retention_deleted
                        .get_or_create(&WhatLabel {
                            what: what.to_string(),
                        })
                        .inc_by(n);
                }
                if deleted.incidents > 0 {
                    info!(
                        incidents = deleted.incidents,
                        alerts = deleted.alerts,
                        events = deleted.events,
                        pages = deleted.pages,
                        retention = %crate::time::human(keep),
                        "retention deleted resolved incidents"
                    );
                }
            }
            // The next sweep tries again; nothing is lost by waiting.
            Err(e) => warn!(error = %e, "retention sweep failed; will try again"),
        }
    }
}

/// Creates the series at 0, so the first deletion is an increase.
pub fn prime(metrics: &Metrics) {
    for (what, _) in Deleted::default().by_kind() {
        let _ = metrics.retention_deleted.get_or_create(&WhatLabel {
            what: what.to_string(),
        });
    }
}

/// The instant before which resolved incidents may go: never inside the window the
/// engine remembers a resolved incident for (config refuses a shorter retention; this
/// holds whatever a caller passes).
pub fn cutoff(now: Timestamp, keep: Duration) -> Timestamp {
    now.minus(keep.max(RECENT_WINDOW))
}

/// Deletes everything past the cut-off, batch after batch, then gives the space back.
pub async fn sweep(
    store: &dyn Store,
    now: Timestamp,
    keep: Duration,
    stop: &CancellationToken,
) -> Result<Deleted, StoreError> {
    let before = cutoff(now, keep);
    let mut total = Deleted::default();
    loop {
        let batch = store.delete_resolved(before, BATCH).await?;
        total.add(batch);
        if (batch.incidents as usize) < BATCH || stop.is_cancelled() {
            break;
        }
    }
    if total.incidents > 0 {
        // Until nothing is left, or nothing more goes (a file without auto_vacuum).
        let mut left = u64::MAX;
        while !stop.is_cancelled() {
            let now_left = store.reclaim_space(RECLAIM_PAGES).await?;
            if now_left == 0 || now_left >= left {
                break;
            }
            left = now_left;
        }
    }
    Ok(total)
}
