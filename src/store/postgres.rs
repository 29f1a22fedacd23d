//! The PostgreSQL store: the shared state of two or more instances.
//!
//! Same tables and semantics as the SQLite store (integer milliseconds, JSON text, ids
//! from the engine, never reused), plus what sharing needs: a leadership lease with a
//! fencing epoch ([`lease`]), an inbox through which followers hand inputs to the leader
//! ([`inbox`]) and the ack-link key in the database.
//!
//! Connections come from four small pools, so that no kind of work queues behind
//! another: commits and other writes; what paging needs (the incident a page is about,
//! restore, the open incident of an IRC group); every other read (the API, the web
//! view); the lease. PostgreSQL's own group commit lets concurrent commits share one
//! WAL flush, and the statements of one commit are pipelined (sent without waiting for
//! each answer), so a commit costs a few round trips whatever its size.
//!
//! Every commit of engine effects locks the lease row `FOR SHARE` and compares its epoch
//! with this instance's [`Fence`]: a leader that was paused or cut off while another
//! took over gets [`StoreError::Fenced`] and writes nothing.

mod config;
mod import;
mod inbox;
mod lease;
mod read;
mod retention;
pub mod schema;
#[doc(hidden)]
pub mod scratch;
mod settings;
#[cfg(test)]
mod tests;
mod tls;
mod views;
mod write;

use super::stored::{corrupt, from_json};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio::sync::Notify;

pub use config::{
    CONNECT_TIMEOUT, DEFAULT_LEASE, LEASE_RANGE, PgConfig, PgConfigError, PgTls, host_name,
};
pub use import::Copied;
pub use lease::{InstanceRow, LeaderRow};

use super::fence::Fence;
use super::{Deleted, Detail, IncidentPage, IncidentView, ListQuery, Restored, Store, StoreError};
use crate::engine::{
    Effect, IncidentId, IncidentState, OverrideRecord, SilenceRecord, WindowRecord,
};
use crate::time::Timestamp;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Connections per pool: (writes, paging reads, other reads, lease).
const POOL_SIZES: (usize, usize, usize, usize) = (4, 2, 4, 2);

/// How long a caller waits for a free connection of its pool.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// How the listener for the inbox waits before connecting again.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Whether PostgreSQL could not be reached or answered no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgFailure {
    /// No connection, a connection lost, a timeout: the database or the network is down.
    Unreachable,
    /// The database answered with an error (authentication, permissions, a constraint).
    Refused,
}

impl std::fmt::Display for PgFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PgFailure::Unreachable => "unreachable",
            PgFailure::Refused => "refused",
        })
    }
}

impl PgFailure {
    /// What to do about it, for messages.
    pub fn hint(self) -> &'static str {
        match self {
            PgFailure::Unreachable => {
                "check that PostgreSQL is up and reachable from this host ([storage] url); nothing was recorded, the sender should retry"
            }
            PgFailure::Refused => {
                "check the user, password and grants of [storage] url; nothing was recorded"
            }
        }
    }

    fn of(e: &tokio_postgres::Error) -> Self {
        if is_tls_refusal(e) {
            return PgFailure::Refused;
        }
        match e.as_db_error() {
            None => PgFailure::Unreachable,
            Some(db) => {
                let code = db.code().code();
                // Connection exceptions, shutdowns, too many connections, cancelled
                // (statement timeout): the database is not answering, not saying no.
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || code == "57014"
                    || code == "25P03"
                {
                    PgFailure::Unreachable
                } else {
                    PgFailure::Refused
                }
            }
        }
    }
}

/// Whether TLS failed on something only the config can fix (a certificate that does not
/// verify, a name that does not match): the database answered, and said no.
fn is_tls_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && inner.is::<rustls::Error>()
        {
            return true;
        }
        at = e.source();
    }
    false
}

/// tokio-postgres and pool errors as [`StoreError::Postgres`], saying what was being done.
pub(crate) trait PgErrorExt<T> {
    fn or_pg(self, doing: &'static str) -> Result<T>;
}

impl<T> PgErrorExt<T> for Result<T, tokio_postgres::Error> {
    fn or_pg(self, doing: &'static str) -> Result<T> {
        self.map_err(|e| pg_error(doing, e))
    }
}

impl<T> PgErrorExt<T> for Result<T, PoolError> {
    fn or_pg(self, doing: &'static str) -> Result<T> {
        self.map_err(|e| match e {
            PoolError::Backend(e) => pg_error(doing, e),
            PoolError::Timeout(_) | PoolError::Closed | PoolError::NoRuntimeSpecified => {
                StoreError::Postgres {
                    doing,
                    kind: PgFailure::Unreachable,
                    source: Box::new(e),
                }
            }
            other => StoreError::Postgres {
                doing,
                kind: PgFailure::Refused,
                source: Box::new(other),
            },
        })
    }
}

pub(crate) fn pg_error(doing: &'static str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres {
        doing,
        kind: PgFailure::of(&e),
        source: Box::new(e),
    }
}

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    cfg: Arc<PgConfig>,
    fence: Arc<Fence>,
    writes: Pool,
    paging: Pool,
    reads: Pool,
    lease: Pool,
    /// Started on the first [`Store::inbox_wakeup`]: the notifier and the listener task.
    wakeup: OnceLock<(Arc<Notify>, tokio::task::AbortHandle)>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects (failing within [`CONNECT_TIMEOUT`] when the database cannot be
    /// reached), and migrates the schema under a lock. `fence` is what commits check.
    pub async fn connect(cfg: PgConfig, fence: Arc<Fence>) -> Result<Self> {
        let tls = cfg.connector().map_err(|detail| StoreError::Corrupt {
            what: "[storage] TLS setup".into(),
            detail,
        })?;
        let pool = |size| -> Result<Pool> {
            let manager = Manager::from_config(
                cfg.session(),
                tls.clone(),
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(CONNECT_TIMEOUT))
                .recycle_timeout(Some(CONNECT_TIMEOUT))
                .build()
                .map_err(|e| StoreError::Corrupt {
                    what: "PostgreSQL connection pool".into(),
                    detail: e.to_string(),
                })
        };
        let (w, p, r, l) = POOL_SIZES;
        let store = PostgresStore {
            writes: pool(w)?,
            paging: pool(p)?,
            reads: pool(r)?,
            lease: pool(l)?,
            cfg: Arc::new(cfg),
            fence,
            wakeup: OnceLock::new(),
        };
        let mut client = store.writes.get().await.or_pg("connecting")?;
        schema::migrate(&mut client, store.cfg.dbname()).await?;
        Ok(store)
    }

    pub fn config(&self) -> &PgConfig {
        &self.cfg
    }

    /// The fence commits are checked against.
    pub fn fence(&self) -> &Arc<Fence> {
        &self.fence
    }

    /// Runs `work`, giving up when the database has not answered within
    /// [`PgConfig::answer_timeout`]: a frozen server (or a network that drops packets
    /// without a word) fails a commit in seconds instead of stopping the engine.
    async fn timed<T>(&self, work: impl Future<Output = Result<T>> + Send) -> Result<T> {
        let limit = self.cfg.answer_timeout();
        match tokio::time::timeout(limit, work).await {
            Ok(done) => done,
            Err(_) => Err(StoreError::Postgres {
                doing: "waiting for the database",
                kind: PgFailure::Unreachable,
                source: format!("no answer within {limit:?}").into(),
            }),
        }
    }

    /// Writes `effects` (and marks `consumed` inbox rows done) in one transaction, once
    /// the lease's epoch is found to be this instance's.
    async fn commit_fenced(
        &self,
        effects: Vec<Effect>,
        consumed: Vec<(u64, String)>,
    ) -> Result<()> {
        const DOING: &str = "committing";
        let held = self.fence.epoch();
        let mut client = self.writes.get().await.or_pg(DOING)?;
        let tx = client.transaction().await.or_pg(DOING)?;
        // The epoch check and the writes go out together (one round trip, not two):
        // writes sent before the check ran are rolled back with the transaction when it
        // fails, and once it passed, the row lock it took keeps any takeover waiting
        // until this transaction ends.
        let check = tx
            .prepare_cached("SELECT epoch FROM lease WHERE id = 1 FOR SHARE")
            .await
            .or_pg(DOING)?;
        let (current, written) =
            futures_util::future::join(tx.query_one(&check, &[]), write::effects(&tx, &effects))
                .await;
        let current: i64 = current.or_pg(DOING)?.get(0);
        let current = current.max(0) as u64;
        // Epoch 0 is "not the leader", even on a database nobody has led yet.
        if held == 0 || current != held {
            return Err(StoreError::Fenced { held, current });
        }
        written.or_pg(DOING)?;
        if !consumed.is_empty() {
            inbox::mark_done(&tx, &consumed).await.or_pg(DOING)?;
        }
        tx.commit().await.or_pg(DOING)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some((_, task)) = self.wakeup.get() {
            task.abort();
        }
        for pool in [&self.writes, &self.paging, &self.reads, &self.lease] {
            pool.close();
        }
    }
}

/// Runs `$body` with a client of `$pool` inside a read-only transaction that sees one
/// snapshot (an incident and its alerts read together agree).
macro_rules! read_tx {
    ($self:ident, $pool:ident, $doing:expr, |$tx:ident| $body:expr) => {{
        let mut client = $self.$pool.get().await.or_pg($doing)?;
        let $tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .or_pg($doing)?;
        let out = $body;
        $tx.commit().await.or_pg($doing)?;
        out
    }};
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, effects: Vec<Effect>) -> Result<()> {
        self.timed(async {
            if effects.is_empty() {
                return Ok(());
            }
            self.commit_fenced(effects, Vec::new()).await
        })
        .await
    }

    async fn commit_consumed(
        &self,
        effects: Vec<Effect>,
        consumed: Vec<(u64, String)>,
    ) -> Result<()> {
        self.timed(async {
            if effects.is_empty() && consumed.is_empty() {
                return Ok(());
            }
            self.commit_fenced(effects, consumed).await
        })
        .await
    }

    async fn inbox(&self, limit: usize) -> Result<Vec<(u64, String)>> {
        self.timed(async {
            let client = self.writes.get().await.or_pg("reading the inbox")?;
            inbox::pending(&client, limit).await
        })
        .await
    }

    fn inbox_wakeup(&self) -> Option<Arc<Notify>> {
        let (notify, _) = self.wakeup.get_or_init(|| {
            let notify = Arc::new(Notify::new());
            let task = tokio::spawn(inbox::listen(
                Arc::clone(&self.cfg),
                Arc::clone(&notify),
                LISTEN_RETRY,
            ));
            (notify, task.abort_handle())
        });
        Some(Arc::clone(notify))
    }

    async fn restore(&self, resolved_since: Timestamp) -> Result<Restored> {
        self.timed(async {
            Ok(read_tx!(self, paging, "restoring", |tx| read::restored(
                &tx,
                resolved_since
            )
            .await?))
        })
        .await
    }

    async fn incidents(&self, query: ListQuery) -> Result<IncidentPage> {
        self.timed(async {
            Ok(read_tx!(self, reads, "listing incidents", |tx| {
                let mut incidents = Vec::new();
                let next = views::each_incident(&tx, query, &mut |v| incidents.push(v)).await?;
                IncidentPage { incidents, next }
            }))
        })
        .await
    }

    async fn each_incident(
        &self,
        query: ListQuery,
        mut each: Box<dyn for<'v> FnMut(&'v IncidentView) + Send + 'static>,
    ) -> Result<Option<IncidentId>> {
        self.timed(async {
            Ok(read_tx!(self, reads, "listing incidents", |tx| {
                views::each_incident(&tx, query, &mut |v| each(&v)).await?
            }))
        })
        .await
    }

    async fn incident(&self, id: IncidentId, detail: Detail) -> Result<Option<IncidentView>> {
        self.timed(async {
            Ok(read_tx!(self, reads, "reading an incident", |tx| {
                views::incident(&tx, id, detail).await?
            }))
        })
        .await
    }

    async fn overrides(
        &self,
        schedule: Option<String>,
        ending_after: Timestamp,
    ) -> Result<Vec<OverrideRecord>> {
        self.timed(async {
            let client = self.reads.get().await.or_pg("reading overrides")?;
            read::overrides(&client, schedule.as_deref(), ending_after).await
        })
        .await
    }

    async fn silences(&self, ending_after: Timestamp) -> Result<Vec<SilenceRecord>> {
        self.timed(async {
            let client = self.reads.get().await.or_pg("reading silences")?;
            read::windows(&client, read::SILENCES, ending_after).await
        })
        .await
    }

    async fn maintenance(&self, ending_after: Timestamp) -> Result<Vec<WindowRecord>> {
        self.timed(async {
            let client = self
                .reads
                .get()
                .await
                .or_pg("reading maintenance windows")?;
            read::windows(&client, read::MAINTENANCE, ending_after).await
        })
        .await
    }

    async fn incident_to_page(&self, id: IncidentId) -> Result<Option<IncidentView>> {
        self.timed(async {
            Ok(read_tx!(
                self,
                paging,
                "reading the incident of a page",
                |tx| { views::incident(&tx, id, Detail::MESSAGE).await? }
            ))
        })
        .await
    }

    async fn acked_by_link(&self, id: IncidentId, link: &str) -> Result<Option<Timestamp>> {
        self.timed(async {
            let client = self.reads.get().await.or_pg("reading an incident")?;
            views::acked_by_link(&client, id, link).await
        })
        .await
    }

    async fn counts(&self) -> Result<BTreeMap<IncidentState, u64>> {
        self.timed(async {
            let client = self.reads.get().await.or_pg("counting incidents")?;
            read::counts(&client).await
        })
        .await
    }

    async fn open_incident_of_group(
        &self,
        source: &str,
        group_key: &str,
    ) -> Result<Option<IncidentView>> {
        self.timed(async {
            // An IRC alert line waits for this before it can open or join an incident.
            Ok(read_tx!(
                self,
                paging,
                "reading the open incident of a group",
                |tx| { views::open_incident_of_group(&tx, source, group_key).await? }
            ))
        })
        .await
    }

    async fn source_state(&self, name: &str) -> Result<Option<String>> {
        self.timed(async {
            const DOING: &str = "reading a source's state";
            let client = self.reads.get().await.or_pg(DOING)?;
            let row = client
                .query_opt("SELECT value FROM source_state WHERE name = $1", &[&name])
                .await
                .or_pg(DOING)?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn save_source_state(&self, name: &str, value: String, at: Timestamp) -> Result<()> {
        self.timed(async {
            const DOING: &str = "saving a source's state";
            let client = self.writes.get().await.or_pg(DOING)?;
            client
                .execute(
                    "INSERT INTO source_state (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                    &[&name, &value, &at.0],
                )
                .await
                .or_pg(DOING)?;
            Ok(())
        })
        .await
    }

    async fn first_sight(
        &self,
        channel: &str,
        id: &str,
        at: Timestamp,
        keep: Duration,
    ) -> Result<bool> {
        self.timed(async {
            let mut client = self.writes.get().await.or_pg("remembering a message id")?;
            write::first_sight(&mut client, channel, id, at, at.minus(keep)).await
        })
        .await
    }

    async fn forget_sight(&self, channel: &str, id: &str) -> Result<()> {
        self.timed(async {
            const DOING: &str = "forgetting a message id";
            let client = self.writes.get().await.or_pg(DOING)?;
            client
                .execute(
                    "DELETE FROM inbound_seen WHERE channel = $1 AND id = $2",
                    &[&channel, &id],
                )
                .await
                .or_pg(DOING)?;
            Ok(())
        })
        .await
    }

    async fn delete_resolved(&self, before: Timestamp, batch: usize) -> Result<Deleted> {
        self.timed(async {
            let mut client = self.writes.get().await.or_pg("deleting old incidents")?;
            retention::delete_resolved(&mut client, before, batch).await
        })
        .await
    }
}

/// Ids are `u64` in the engine and BIGINT in SQL.
fn sql_id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A BIGINT read back as an id or a count (never negative as written).
fn get_u64(row: &tokio_postgres::Row, idx: usize) -> Result<u64> {
    let v: i64 = row.try_get(idx).or_pg("reading a row")?;
    u64::try_from(v).map_err(|e| StoreError::Corrupt {
        what: format!("column {idx}"),
        detail: e.to_string(),
    })
}

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    // Engine values are plain data: serialising them cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}
