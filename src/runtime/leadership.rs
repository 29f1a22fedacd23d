//! Which of several instances on one shared store leads, and what the others do.
//!
//! The lease is a row in the database with an epoch that grows at every takeover (see
//! [`crate::store::fence`]). An instance starts by trying to take it; the one that holds
//! it runs the engine, the dispatcher and the IRC link, and renews the lease a third of
//! its length at a time. The others serve the API and the webhook, forward what they are
//! told to the leader through the inbox, and watch the lease: once it expires they stop
//! and start again to try for it, so a takeover restores the engine from the store like
//! any restart and sends late every step that came due meanwhile.
//!
//! A leader that cannot reach the database keeps its role but not its right to send: the
//! fence's deadline passes, its commits fail (senders get 503) and the store watch pages
//! the watchdog policy's first step outside the store. When the database answers again,
//! it either renews the same epoch (nobody took over) or learns that another instance
//! leads and steps down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::store::StoreError;
use crate::store::fence::Fence;
use crate::time::{Clock, Timestamp};

pub use crate::store::postgres::{InstanceRow, LeaderRow};

/// The lease, as the shared store keeps it. Times are the database's own, so the
/// instances' clocks do not matter.
#[async_trait::async_trait]
pub trait Lease: Send + Sync + 'static {
    /// Takes the lease if nobody holds it or it expired; answers the new epoch.
    async fn try_lead(&self, holder: &str, lease: Duration) -> Result<Option<u64>, StoreError>;
    /// Extends the lease held at `epoch`; `false` when another instance took over.
    async fn renew(&self, epoch: u64, lease: Duration) -> Result<bool, StoreError>;
    /// Lets the lease held at `epoch` expire now, so another instance takes over at once.
    async fn release(&self, epoch: u64) -> Result<(), StoreError>;
    async fn leader(&self) -> Result<LeaderRow, StoreError>;
    async fn heartbeat(&self, me: &InstanceRow) -> Result<(), StoreError>;
    async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError>;
}

/// Why an instance stops to start again in the other role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// The lease expired: start again and try to take it.
    TakeOver,
    /// Another instance took the lease over from `epoch`.
    StepDown { epoch: u64 },
}

impl std::fmt::Display for RoleChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoleChange::TakeOver => f.write_str("the leader's lease expired: trying to take over"),
            RoleChange::StepDown { epoch } => write!(
                f,
                "another instance took the lease over from epoch {epoch}: stepping down to follow it"
            ),
        }
    }
}

/// Raised once by the task that sees the role must change; the daemon then stops, and
/// whoever started it starts it again.
#[derive(Debug, Default)]
pub struct RoleSignal {
    raised: CancellationToken,
    what: Mutex<Option<RoleChange>>,
}

/// How often a follower looks at the lease at most: what a takeover may add to the
/// lease's expiry.
const LOOK: Duration = Duration::from_millis(250);

/// Role changes of this process, for `tocsin_leader_changes_total`: a daemon's metrics
/// are made anew at each start, the count must survive them.
static CHANGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times this process took the lease or gave it up.
pub fn changes() -> u64 {
    CHANGES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts a takeover (a start that took the lease).
pub fn took_lease() {
    CHANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

impl RoleSignal {
    pub fn raise(&self, change: RoleChange) {
        if matches!(change, RoleChange::StepDown { .. }) {
            CHANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.what
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(change);
        self.raised.cancel();
    }

    pub async fn raised(&self) -> RoleChange {
        self.raised.cancelled().await;
        self.what
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expect("raised with a change")
    }

    pub fn get(&self) -> Option<RoleChange> {
        *self.what.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What every instance on a shared store knows about itself and the lease.
#[derive(Clone)]
pub struct Cluster {
    pub lease: Arc<dyn Lease>,
    pub fence: Arc<Fence>,
    /// The lease's length (`[storage] lease`).
    pub lease_len: Duration,
    /// `[storage] instance`: how status shows this instance.
    pub name: String,
    /// Unique to this process: a restarted instance never mistakes the lease of the
    /// process it replaces for its own.
    pub holder: String,
    /// Where this instance serves, for status.
    pub addr: String,
    pub started_at: Timestamp,
}

impl Cluster {
    fn me(&self, now: Timestamp) -> InstanceRow {
        InstanceRow {
            name: self.name.clone(),
            holder: self.holder.clone(),
            addr: self.addr.clone(),
            started_at: self.started_at,
            seen_at: now,
            epoch: self.fence.epoch(),
        }
    }

    /// How often a leader renews and a follower looks at the lease.
    pub fn beat(&self) -> Duration {
        (self.lease_len / 3).max(Duration::from_millis(200))
    }

    /// How long one renewal keeps the lease: two beats. A leader that dies right after
    /// renewing is replaced two beats later, plus a follower's look, so within the
    /// configured lease; a live one may miss one renewal (a slow query) and keep it.
    pub fn term(&self) -> Duration {
        self.beat() * 2
    }

    /// Tries once to take the lease; on success the fence holds it.
    pub async fn try_lead(&self) -> Result<Option<u64>, StoreError> {
        let asked = Instant::now();
        let epoch = self.lease.try_lead(&self.holder, self.term()).await?;
        if let Some(epoch) = epoch {
            self.fence.hold(epoch, asked + self.term());
        }
        Ok(epoch)
    }

    /// At a graceful stop, after the engine drained: the next leader need not wait out
    /// the lease.
    pub async fn release(&self) {
        let epoch = self.fence.epoch();
        self.fence.release();
        if epoch != 0
            && let Err(e) = self.lease.release(epoch).await
        {
            warn!(error = %e, epoch, "could not give the lease back; another instance takes over when it expires");
        }
    }

    /// The leader's task: renews the lease, says it is alive, and raises
    /// [`RoleChange::StepDown`] once another instance took over.
    pub async fn keep(
        self,
        signal: Arc<RoleSignal>,
        clock: Arc<dyn Clock>,
        stop: CancellationToken,
    ) {
        let epoch = self.fence.epoch();
        let mut failing_since: Option<Instant> = None;
        if let Err(e) = self.lease.heartbeat(&self.me(clock.now())).await {
            tracing::debug!(error = %e, "instance heartbeat not written");
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.beat()) => {}
            }
            let asked = Instant::now();
            match self.lease.renew(epoch, self.term()).await {
                Ok(true) => {
                    self.fence.hold(epoch, asked + self.term());
                    if let Some(since) = failing_since.take() {
                        info!(
                            epoch,
                            after_s = since.elapsed().as_secs(),
                            "the lease is renewed again: still the leader"
                        );
                    }
                }
                Ok(false) => {
                    self.fence.release();
                    error!(epoch, "{}", RoleChange::StepDown { epoch });
                    signal.raise(RoleChange::StepDown { epoch });
                    return stop.cancelled().await;
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert(asked);
                    warn!(error = %e, epoch, failing_s = since.elapsed().as_secs(), "cannot renew the lease; pages stop when it ends, until the database answers");
                }
            }
            if let Err(e) = self.lease.heartbeat(&self.me(clock.now())).await {
                tracing::debug!(error = %e, "instance heartbeat not written");
            }
        }
    }

    /// A follower's task: says it is alive and raises [`RoleChange::TakeOver`] once the
    /// lease expired. `reachable` is told whether the database answers.
    pub async fn watch(
        self,
        signal: Arc<RoleSignal>,
        clock: Arc<dyn Clock>,
        reachable: impl Fn(Result<(), &StoreError>) + Send,
        stop: CancellationToken,
    ) {
        loop {
            match self.lease.leader().await {
                Ok(row) if row.holder.is_none() || row.expires_in_ms <= 0 => {
                    info!(epoch = row.epoch, holder = ?row.holder, "{}", RoleChange::TakeOver);
                    reachable(Ok(()));
                    signal.raise(RoleChange::TakeOver);
                    return stop.cancelled().await;
                }
                Ok(_) => reachable(Ok(())),
                Err(e) => reachable(Err(&e)),
            }
            if let Err(e) = self.lease.heartbeat(&self.me(clock.now())).await {
                tracing::debug!(error = %e, "instance heartbeat not written");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.beat().min(LOOK)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
