//! The SQLite store: one file in the data dir, WAL mode, group commit.
//!
//! Writes go through one dedicated writer thread that owns the only write connection.
//! [`SqliteStore::commit`] queues its effects and waits; the writer takes the first
//! queued request, drains whatever else is already waiting (up to [`MAX_GROUP`]) and
//! writes them all in one `BEGIN IMMEDIATE ... COMMIT`, so committers that arrive
//! together share one fsync. `synchronous=FULL` makes every commit durable before any
//! caller is answered (a webhook gets its 200 only after that).
//!
//! Reads use a second connection (WAL lets it read while the writer writes) behind a
//! mutex, on tokio's blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use tokio::sync::{Semaphore, oneshot};

use super::{
    AlertView, EventView, IncidentView, PageStatus, PageView, Restored, RestoredIncident,
    SQLITE_FILE, Store, StoreError,
};
use crate::engine::{
    AlertRecord, AlertStatus, Effect, Escalation, HistoryEvent, IncidentId, IncidentOpened,
    IncidentState, IncidentStatus, Outcome, Page, PageId, PageKind, PolicySnapshot,
};
use crate::time::Timestamp;

/// The schema this build writes. A database with a higher version was written by a newer
/// tocsin and is refused rather than misread.
pub const SCHEMA_VERSION: i64 = 1;

/// Most commit requests written in one transaction: bounds the work (and the memory) of
/// one group while still letting a burst of committers share one fsync.
pub const MAX_GROUP: usize = 256;

/// Most commits queued or being written at once; further committers wait for a slot, so
/// a stalled disk turns into backpressure instead of a growing queue.
const MAX_IN_FLIGHT: usize = 1024;

/// Page cache per connection, in KiB (SQLite's negative `cache_size`): the daemon has a
/// memory budget of ~30 MB and the working set (open incidents) is small.
const CACHE_KIB: i64 = 2000;

/// How long a connection waits for a lock held by another (a backup tool, `sqlite3`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL file is truncated back to this size after a checkpoint, so a storm does not
/// leave a large file behind.
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

const SCHEMA: &str = include_str!("schema.sql");

/// One `commit` call waiting for the writer.
struct WriteRequest {
    effects: Vec<Effect>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// Where the database lives, for messages.
    path: PathBuf,
    /// Queue to the writer thread; taken (dropped) on close so the writer drains and exits.
    writer_tx: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    /// The writer thread, joined on close.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Bounds the commits in flight (see [`MAX_IN_FLIGHT`]).
    in_flight: Semaphore,
    /// Transactions the writer has run; fewer than commits when group commit kicks in.
    transactions: Arc<AtomicU64>,
    /// The read connection; reads run on the blocking pool one at a time.
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("transactions", &self.transactions())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/tocsin.db` and starts the writer thread.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(SQLITE_FILE);
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| {
            open_err(sqlite_error(
                rusqlite::ffi::SQLITE_CANTOPEN,
                format!("cannot create the data dir {}: {e}", data_dir.display()),
            ))
        })?;

        let mut writer = Connection::open(&path).map_err(open_err)?;
        configure(&writer, true).map_err(open_err)?;
        init_schema(&mut writer, &path)?;

        let reader = Connection::open(&path).map_err(open_err)?;
        configure(&reader, false).map_err(open_err)?;

        let transactions = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let counter = Arc::clone(&transactions);
        let handle = std::thread::Builder::new()
            .name("tocsin-store-writer".into())
            .spawn(move || writer_loop(writer, rx, counter))
            .map_err(|e| {
                open_err(sqlite_error(
                    rusqlite::ffi::SQLITE_ERROR,
                    format!("cannot start the writer thread: {e}"),
                ))
            })?;
        tracing::info!(path = %path.display(), "store opened");

        Ok(SqliteStore {
            path,
            writer_tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            transactions,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Transactions the writer has run so far (committed or rolled back).
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Stops the writer after it has written everything already queued, and waits for
    /// it. Later commits fail with [`StoreError::Closed`]; reads keep working. Blocks for
    /// at most the time the queued transactions take.
    pub fn close(&self) {
        self.in_flight.close();
        drop(lock(&self.writer_tx).take());
        if let Some(handle) = lock(&self.writer).take()
            && handle.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "store writer thread panicked");
        }
    }

    /// Runs `f` with the read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        match tokio::task::spawn_blocking(move || f(&mut lock(&reader))).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        if effects.is_empty() {
            return Ok(());
        }
        let _slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        {
            let tx = lock(&self.writer_tx);
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(WriteRequest { effects, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn restore(&self, resolved_since: Timestamp) -> Result<Restored, StoreError> {
        self.read(move |conn| {
            let tx = conn.transaction().or_read()?;
            let restored = read_restored(&tx, resolved_since)?;
            tx.commit().or_read()?;
            Ok(restored)
        })
        .await
    }

    async fn incidents(
        &self,
        state: Option<IncidentState>,
        limit: usize,
    ) -> Result<Vec<IncidentView>, StoreError> {
        self.read(move |conn| {
            let tx = conn.transaction().or_read()?;
            let views = read_incidents(&tx, state, limit)?;
            tx.commit().or_read()?;
            Ok(views)
        })
        .await
    }

    async fn incident(
        &self,
        id: IncidentId,
        detail: bool,
    ) -> Result<Option<IncidentView>, StoreError> {
        self.read(move |conn| {
            let tx = conn.transaction().or_read()?;
            let view = read_incident(&tx, id, detail)?;
            tx.commit().or_read()?;
            Ok(view)
        })
        .await
    }

    async fn counts(&self) -> Result<BTreeMap<IncidentState, u64>, StoreError> {
        self.read(|conn| {
            let mut counts: BTreeMap<IncidentState, u64> = [
                IncidentState::Triggered,
                IncidentState::Acknowledged,
                IncidentState::Resolved,
            ]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
            let mut stmt = conn
                .prepare_cached("SELECT state, COUNT(*) FROM incidents GROUP BY state")
                .or_read()?;
            let mut rows = stmt.query([]).or_read()?;
            while let Some(row) = rows.next().or_read()? {
                let state: String = row.get(0).or_read()?;
                let state = IncidentState::parse(&state).ok_or_else(|| StoreError::Corrupt {
                    what: "incident state".into(),
                    detail: format!("unknown state {state:?}"),
                })?;
                counts.insert(state, get_u64(row, 1).or_read()?);
            }
            Ok(counts)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------
// Opening

/// Per-connection settings. Only the writer's `synchronous` matters for durability.
fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(24);
    if writer {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                journal_mode = %mode,
                "the data dir's filesystem does not support WAL; reads will wait for writes"
            );
        }
        // FULL: the WAL is fsynced at every commit, so an answered commit survives a
        // power loss (NORMAL only survives a process crash).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    } else {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(())
}

/// Creates the schema on a fresh database; refuses one written by a newer tocsin.
fn init_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .map_err(open_err)?;
    let found: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(open_err)?;
    match found {
        None => {}
        Some(v) => match v.parse::<i64>() {
            Ok(v) if v == SCHEMA_VERSION => {}
            Ok(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Corrupt {
                    what: format!("schema version of {}", path.display()),
                    detail: format!(
                        "the database has schema version {v}, this tocsin only knows up to \
                         {SCHEMA_VERSION}: it was written by a newer tocsin. Run that version, \
                         or point --data-dir at another directory"
                    ),
                });
            }
            _ => {
                return Err(StoreError::Corrupt {
                    what: format!("schema version of {}", path.display()),
                    detail: format!("unexpected schema_version {v:?}"),
                });
            }
        },
    }
    tx.execute_batch(SCHEMA).map_err(open_err)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) \
         ON CONFLICT (key) DO NOTHING",
        [SCHEMA_VERSION.to_string()],
    )
    .map_err(open_err)?;
    tx.commit().map_err(open_err)
}

// ---------------------------------------------------------------------------------------
// Writing

/// The writer thread: waits for a request, takes everything else already queued, writes
/// it all in one transaction, answers every waiter. Ends when the store is closed and the
/// queue is empty.
fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<WriteRequest>,
    transactions: Arc<AtomicU64>,
) {
    let mut group: Vec<WriteRequest> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let result = write_group(&mut conn, &group);
        transactions.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                for request in group.drain(..) {
                    let _ = request.reply.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    commits = group.len(),
                    "store transaction failed and was rolled back"
                );
                for request in group.drain(..) {
                    let _ = request.reply.send(Err(StoreError::Write(copy_error(&e))));
                }
            }
        }
    }
    tracing::debug!("store writer stopped");
}

/// Writes the effects of every request in order, in one immediate transaction. Of several
/// `Status` effects for one incident only the last is written: it carries the whole state.
fn write_group(conn: &mut Connection, group: &[WriteRequest]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let effects = || group.iter().flat_map(|r| r.effects.iter());
    let mut last_status: HashMap<IncidentId, usize> = HashMap::new();
    for (i, effect) in effects().enumerate() {
        if let Effect::Status(s) = effect {
            last_status.insert(s.id, i);
        }
    }
    for (i, effect) in effects().enumerate() {
        match effect {
            Effect::Opened(o) => insert_incident(&tx, o)?,
            Effect::Status(s) if last_status.get(&s.id) == Some(&i) => update_status(&tx, s)?,
            Effect::Status(_) => {}
            Effect::Alert(a) => upsert_alert(&tx, a)?,
            Effect::Event(e) => insert_event(&tx, e)?,
            Effect::Page(p) => insert_page(&tx, p)?,
            Effect::PageDone { page, at, outcome } => page_done(&tx, *page, *at, outcome)?,
        }
    }
    tx.commit()
}

/// The row with placeholder status fields; the `Status` effect that always follows in the
/// same batch fills them in.
fn insert_incident(tx: &Transaction<'_>, o: &IncidentOpened) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO incidents (id, source, group_key, title, labels, created_at, policy_name, \
         policy, state, updated_at, resolved_at, acked_by, acked_at, wake_at, escalation) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'triggered', ?6, NULL, NULL, NULL, NULL, ?9)",
    )?;
    stmt.execute(params![
        sql_u64(o.id)?,
        o.source,
        o.group_key,
        o.title,
        to_json(&o.labels)?,
        o.created_at.0,
        o.policy.name,
        to_json(&*o.policy)?,
        to_json(&Escalation::default())?,
    ])?;
    Ok(())
}

fn update_status(tx: &Transaction<'_>, s: &IncidentStatus) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE incidents SET state = ?2, updated_at = ?3, resolved_at = ?4, acked_by = ?5, \
         acked_at = ?6, wake_at = ?7, escalation = ?8 WHERE id = ?1",
    )?;
    let changed = stmt.execute(params![
        sql_u64(s.id)?,
        s.state.as_str(),
        s.updated_at.0,
        s.resolved_at.map(|t| t.0),
        s.acked_by,
        s.acked_at.map(|t| t.0),
        s.wake_at.map(|t| t.0),
        to_json(&s.escalation)?,
    ])?;
    if changed == 0 {
        tracing::warn!(
            incident = s.id,
            "status update for an incident the store does not have"
        );
    }
    Ok(())
}

fn upsert_alert(tx: &Transaction<'_>, a: &AlertRecord) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO alerts (incident_id, fingerprint, status, starts_at, ends_at, labels, \
         annotations, generator_url, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status, \
         starts_at = excluded.starts_at, ends_at = excluded.ends_at, labels = excluded.labels, \
         annotations = excluded.annotations, generator_url = excluded.generator_url, \
         received_at = excluded.received_at",
    )?;
    let alert = &a.alert;
    stmt.execute(params![
        sql_u64(a.incident)?,
        alert.fingerprint,
        alert.status.as_str(),
        alert.starts_at.0,
        alert.ends_at.map(|t| t.0),
        to_json(&alert.labels)?,
        to_json(&alert.annotations)?,
        alert.generator_url,
        a.received_at.0,
    ])?;
    Ok(())
}

fn insert_event(tx: &Transaction<'_>, e: &HistoryEvent) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (incident_id, at, kind, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    stmt.execute(params![
        sql_u64(e.incident)?,
        e.at.0,
        e.kind,
        e.actor,
        e.detail
    ])?;
    Ok(())
}

/// Records the intent. A page already recorded (same id, e.g. re-sent after a restart)
/// keeps its row.
fn insert_page(tx: &Transaction<'_>, p: &Page) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO pages (id, incident_id, at, kind, step, cycle, target, contact, notifier, \
         method, to_addr, topic, late_by_ms, reason, status, attempts, error, done_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', 0, \
         NULL, NULL) \
         ON CONFLICT (id) DO NOTHING",
    )?;
    stmt.execute(params![
        sql_u64(p.id)?,
        sql_u64(p.incident)?,
        p.at.0,
        p.kind.as_str(),
        p.step,
        p.cycle,
        p.target,
        p.contact,
        p.notifier,
        p.method,
        p.to,
        p.topic,
        p.late_by_ms.map(sql_u64).transpose()?,
        p.reason,
    ])?;
    Ok(())
}

fn page_done(
    tx: &Transaction<'_>,
    page: PageId,
    at: Timestamp,
    outcome: &Outcome,
) -> rusqlite::Result<()> {
    let (status, attempts, error) = match outcome {
        Outcome::Delivered { attempts } => ("delivered", *attempts, None),
        Outcome::Failed {
            attempts, error, ..
        } => ("failed", *attempts, Some(error.as_str())),
    };
    let mut stmt = tx.prepare_cached(
        "UPDATE pages SET status = ?2, attempts = ?3, error = ?4, done_at = ?5 WHERE id = ?1",
    )?;
    let changed = stmt.execute(params![sql_u64(page)?, status, attempts, error, at.0])?;
    if changed == 0 {
        tracing::warn!(page, "outcome for a page the store does not have");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading

const INCIDENT_COLUMNS: &str = "id, source, group_key, title, labels, created_at, \
    policy_name, state, updated_at, resolved_at, acked_by, acked_at, escalation";

fn read_restored(tx: &Transaction<'_>, since: Timestamp) -> Result<Restored, StoreError> {
    let open = restored_incidents(
        tx,
        "WHERE state IN ('triggered', 'acknowledged') ORDER BY id",
        params![],
    )?;
    let recent_resolved = restored_incidents(
        tx,
        "WHERE state = 'resolved' AND resolved_at >= ?1 ORDER BY id",
        params![since.0],
    )?;
    let next_id = |table: &str| -> Result<u64, StoreError> {
        let max: Option<i64> = tx
            .query_row(&format!("SELECT MAX(id) FROM {table}"), [], |r| r.get(0))
            .or_read()?;
        Ok(max.map_or(1, |m| m.max(0) as u64 + 1))
    };
    let next_incident_id = next_id("incidents")?;
    let next_page_id = next_id("pages")?;

    let mut stmt = tx
        .prepare_cached(
            "SELECT id, incident_id, at, kind, step, cycle, target, contact, notifier, method, \
             to_addr, topic, late_by_ms, reason FROM pages WHERE status = 'pending' ORDER BY id",
        )
        .or_read()?;
    let mut rows = stmt.query([]).or_read()?;
    let mut pending_pages = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        pending_pages.push(page_row(row).or_read()?);
    }
    Ok(Restored {
        open,
        recent_resolved,
        next_incident_id,
        next_page_id,
        pending_pages,
    })
}

fn restored_incidents(
    tx: &Transaction<'_>,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<RestoredIncident>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT id, source, group_key, state, created_at, resolved_at, acked_by, acked_at, \
             policy, escalation FROM incidents {filter}"
        ))
        .or_read()?;
    let mut rows = stmt.query(args).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let id = get_u64(row, 0).or_read()?;
        let policy: String = row.get(8).or_read()?;
        let escalation: String = row.get(9).or_read()?;
        out.push(RestoredIncident {
            id,
            source: row.get(1).or_read()?,
            group_key: row.get(2).or_read()?,
            state: state_at(row, 3, id)?,
            created_at: Timestamp(row.get(4).or_read()?),
            resolved_at: row.get::<_, Option<i64>>(5).or_read()?.map(Timestamp),
            acked_by: row.get(6).or_read()?,
            acked_at: row.get::<_, Option<i64>>(7).or_read()?.map(Timestamp),
            policy: from_json::<PolicySnapshot>(&policy, id, "policy")?,
            escalation: from_json::<Escalation>(&escalation, id, "escalation")?,
            alerts: Vec::new(),
        });
    }
    drop(rows);
    let mut stmt = tx
        .prepare_cached(
            "SELECT fingerprint, status, starts_at FROM alerts WHERE incident_id = ?1 \
             ORDER BY fingerprint",
        )
        .or_read()?;
    for incident in &mut out {
        let mut rows = stmt.query([sql_u64(incident.id).or_read()?]).or_read()?;
        while let Some(row) = rows.next().or_read()? {
            incident.alerts.push((
                row.get(0).or_read()?,
                alert_status_at(row, 1, incident.id)?,
                Timestamp(row.get(2).or_read()?),
            ));
        }
    }
    Ok(out)
}

fn read_incidents(
    tx: &Transaction<'_>,
    state: Option<IncidentState>,
    limit: usize,
) -> Result<Vec<IncidentView>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    {
        let mut stmt;
        let mut rows = match state {
            Some(state) => {
                stmt = tx
                    .prepare_cached(&format!(
                        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state = ?1 \
                         ORDER BY id DESC LIMIT ?2"
                    ))
                    .or_read()?;
                stmt.query(params![state.as_str(), limit]).or_read()?
            }
            None => {
                stmt = tx
                    .prepare_cached(&format!(
                        "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY id DESC LIMIT ?1"
                    ))
                    .or_read()?;
                stmt.query(params![limit]).or_read()?
            }
        };
        while let Some(row) = rows.next().or_read()? {
            out.push(incident_view(row)?);
        }
    }
    for view in &mut out {
        view.alerts = alert_views(tx, view.id)?;
    }
    Ok(out)
}

fn read_incident(
    tx: &Transaction<'_>,
    id: IncidentId,
    detail: bool,
) -> Result<Option<IncidentView>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"
        ))
        .or_read()?;
    let mut rows = stmt.query([sql_u64(id).or_read()?]).or_read()?;
    let Some(row) = rows.next().or_read()? else {
        return Ok(None);
    };
    let mut view = incident_view(row)?;
    drop(rows);
    view.alerts = alert_views(tx, id)?;
    if detail {
        view.history = Some(event_views(tx, id)?);
        view.pages = Some(page_views(tx, id)?);
    }
    Ok(Some(view))
}

/// An incident row (selected with [`INCIDENT_COLUMNS`]) without its alerts.
fn incident_view(row: &Row<'_>) -> Result<IncidentView, StoreError> {
    let id = get_u64(row, 0).or_read()?;
    let labels: String = row.get(4).or_read()?;
    let escalation: String = row.get(12).or_read()?;
    let escalation = from_json::<Escalation>(&escalation, id, "escalation")?;
    Ok(IncidentView {
        id,
        state: state_at(row, 7, id)?,
        title: row.get(3).or_read()?,
        group_key: row.get(2).or_read()?,
        source: row.get(1).or_read()?,
        labels: from_json(&labels, id, "labels")?,
        alerts: Vec::new(),
        created_at: Timestamp(row.get(5).or_read()?),
        updated_at: Timestamp(row.get(8).or_read()?),
        resolved_at: row.get::<_, Option<i64>>(9).or_read()?.map(Timestamp),
        acked_by: row.get(10).or_read()?,
        acked_at: row.get::<_, Option<i64>>(11).or_read()?.map(Timestamp),
        snoozed_until: escalation.snoozed_until,
        ack_expires_at: escalation.ack_expires_at,
        step: escalation.step,
        cycle: escalation.cycle,
        policy: row.get(6).or_read()?,
        next_escalation_at: escalation.next_step_at,
        history: None,
        pages: None,
    })
}

fn alert_views(tx: &Transaction<'_>, id: IncidentId) -> Result<Vec<AlertView>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, \
             received_at FROM alerts WHERE incident_id = ?1 ORDER BY starts_at, fingerprint",
        )
        .or_read()?;
    let mut rows = stmt.query([sql_u64(id).or_read()?]).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let labels: String = row.get(4).or_read()?;
        let annotations: String = row.get(5).or_read()?;
        out.push(AlertView {
            fingerprint: row.get(0).or_read()?,
            status: alert_status_at(row, 1, id)?,
            starts_at: Timestamp(row.get(2).or_read()?),
            ends_at: row.get::<_, Option<i64>>(3).or_read()?.map(Timestamp),
            labels: from_json(&labels, id, "alert labels")?,
            annotations: from_json(&annotations, id, "alert annotations")?,
            generator_url: row.get(6).or_read()?,
            received_at: Timestamp(row.get(7).or_read()?),
        });
    }
    Ok(out)
}

fn event_views(tx: &Transaction<'_>, id: IncidentId) -> Result<Vec<EventView>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT at, kind, actor, detail FROM events WHERE incident_id = ?1 ORDER BY at, id",
        )
        .or_read()?;
    let rows = stmt
        .query_map([sql_u64(id).or_read()?], |row| {
            Ok(EventView {
                at: Timestamp(row.get(0)?),
                kind: row.get(1)?,
                actor: row.get(2)?,
                detail: row.get(3)?,
            })
        })
        .or_read()?;
    rows.collect::<rusqlite::Result<_>>().or_read()
}

fn page_views(tx: &Transaction<'_>, id: IncidentId) -> Result<Vec<PageView>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, incident_id, at, kind, step, cycle, target, contact, notifier, method, \
             to_addr, topic, late_by_ms, reason, status, attempts, error, done_at \
             FROM pages WHERE incident_id = ?1 ORDER BY id",
        )
        .or_read()?;
    let mut rows = stmt.query([sql_u64(id).or_read()?]).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let page = page_row(row).or_read()?;
        let status: String = row.get(14).or_read()?;
        let status = match status.as_str() {
            "pending" => PageStatus::Pending,
            "delivered" => PageStatus::Delivered,
            "failed" => PageStatus::Failed,
            other => {
                return Err(corrupt(
                    id,
                    "page status",
                    format!("unknown status {other:?}"),
                ));
            }
        };
        out.push(PageView {
            id: page.id,
            at: page.at,
            kind: page.kind,
            step: page.step,
            cycle: page.cycle,
            target: page.target,
            notifier: page.notifier,
            to: page.to,
            reason: page.reason,
            status,
            attempts: row.get(15).or_read()?,
            error: row.get(16).or_read()?,
            done_at: row.get::<_, Option<i64>>(17).or_read()?.map(Timestamp),
        });
    }
    Ok(out)
}

/// A page from the first 14 columns of a `pages` row (in table order).
fn page_row(row: &Row<'_>) -> rusqlite::Result<Page> {
    let kind: String = row.get(3)?;
    Ok(Page {
        id: get_u64(row, 0)?,
        incident: get_u64(row, 1)?,
        at: Timestamp(row.get(2)?),
        kind: PageKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                Type::Text,
                format!("unknown page kind {kind:?}").into(),
            )
        })?,
        step: row.get(4)?,
        cycle: row.get(5)?,
        target: row.get(6)?,
        contact: row.get(7)?,
        notifier: row.get(8)?,
        method: row.get(9)?,
        to: row.get(10)?,
        topic: row.get(11)?,
        late_by_ms: row
            .get::<_, Option<i64>>(12)?
            .map(|v| {
                u64::try_from(v).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(12, Type::Integer, Box::new(e))
                })
            })
            .transpose()?,
        reason: row.get(13)?,
    })
}

// ---------------------------------------------------------------------------------------
// Conversions

/// Read errors as [`StoreError::Read`].
trait OrRead<T> {
    fn or_read(self) -> Result<T, StoreError>;
}

impl<T> OrRead<T> for rusqlite::Result<T> {
    fn or_read(self) -> Result<T, StoreError> {
        self.map_err(StoreError::Read)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves nothing half-done that matters here: the
    // connection rolls back an unfinished transaction itself.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ids are `u64` in the engine and signed 64-bit integers in SQL.
fn sql_u64(v: u64) -> rusqlite::Result<i64> {
    i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    id: IncidentId,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(id, what, e.to_string()))
}

fn corrupt(id: IncidentId, what: &str, detail: String) -> StoreError {
    StoreError::Corrupt {
        what: format!("{what} of incident {id}"),
        detail,
    }
}

fn state_at(row: &Row<'_>, idx: usize, id: IncidentId) -> Result<IncidentState, StoreError> {
    let s: String = row.get(idx).or_read()?;
    IncidentState::parse(&s).ok_or_else(|| corrupt(id, "state", format!("unknown state {s:?}")))
}

fn alert_status_at(row: &Row<'_>, idx: usize, id: IncidentId) -> Result<AlertStatus, StoreError> {
    let s: String = row.get(idx).or_read()?;
    match s.as_str() {
        "firing" => Ok(AlertStatus::Firing),
        "resolved" => Ok(AlertStatus::Resolved),
        _ => Err(corrupt(id, "alert status", format!("unknown status {s:?}"))),
    }
}

fn sqlite_error(code: std::ffi::c_int, message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message))
}

/// `rusqlite::Error` is not `Clone`; every waiter of a failed group gets its own copy
/// (the SQLite code where there is one, the message always).
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => sqlite_error(rusqlite::ffi::SQLITE_ERROR, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::engine::{AlertIn, StepSnapshot, Target};

    fn t(s: &str) -> Timestamp {
        Timestamp::at(s)
    }

    fn policy() -> Arc<PolicySnapshot> {
        Arc::new(PolicySnapshot {
            name: "default".into(),
            repeat: 1,
            repeat_after: Duration::from_secs(600),
            steps: vec![StepSnapshot {
                after: Duration::ZERO,
                targets: vec![Target::Notifier {
                    name: "console".into(),
                }],
            }],
        })
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn escalation(at: Timestamp) -> Escalation {
        Escalation {
            pass_start: at,
            next_step: 1,
            next_step_at: Some(at.plus(Duration::from_secs(600))),
            step: 1,
            announced: vec!["console".into()],
            ..Escalation::default()
        }
    }

    fn status(id: IncidentId, state: IncidentState, at: Timestamp) -> IncidentStatus {
        IncidentStatus {
            id,
            state,
            updated_at: at,
            resolved_at: (state == IncidentState::Resolved).then_some(at),
            acked_by: None,
            acked_at: None,
            wake_at: Some(at.plus(Duration::from_secs(600))),
            escalation: escalation(at),
        }
    }

    fn alert(id: IncidentId, fingerprint: &str, at: Timestamp) -> Effect {
        Effect::Alert(AlertRecord {
            incident: id,
            received_at: at,
            alert: AlertIn {
                fingerprint: fingerprint.into(),
                status: AlertStatus::Firing,
                starts_at: at,
                ends_at: None,
                labels: labels(&[("alertname", "DiskFull"), ("instance", "db1")]),
                annotations: labels(&[("summary", "Disk almost full on db1")]),
                generator_url: "http://prometheus/graph".into(),
            },
        })
    }

    fn page(id: PageId, incident: IncidentId, at: Timestamp) -> Page {
        Page {
            id,
            incident,
            at,
            kind: PageKind::Triggered,
            step: 1,
            cycle: 0,
            target: "alice".into(),
            contact: Some("alice".into()),
            notifier: "sms".into(),
            method: Some(1),
            to: Some("+15550100".into()),
            topic: None,
            late_by_ms: Some(1500),
            reason: "step 1 of policy default".into(),
        }
    }

    /// The effects of a webhook that opens incident `id` and pages about it (page `id`).
    fn opening(id: IncidentId, at: Timestamp) -> Vec<Effect> {
        vec![
            Effect::Opened(IncidentOpened {
                id,
                source: "alertmanager".into(),
                group_key: format!("{{}}:{{alertname=\"DiskFull\",n=\"{id}\"}}"),
                title: format!("DiskFull #{id}"),
                labels: labels(&[("alertname", "DiskFull"), ("severity", "critical")]),
                created_at: at,
                policy: policy(),
            }),
            Effect::Status(status(id, IncidentState::Triggered, at)),
            alert(id, "a1b2c3d4e5f60718", at),
            Effect::Event(HistoryEvent::by_engine(id, at, "opened", "DiskFull")),
            Effect::Page(page(id, id, at)),
        ]
    }

    fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn webhook_batch_reads_back_whole() {
        let (_dir, store) = open_temp();
        let at = t("2026-11-21T10:00:00Z");
        store.commit(opening(7, at)).await.unwrap();

        let view = store.incident(7, true).await.unwrap().expect("incident 7");
        assert_eq!(view.state, IncidentState::Triggered);
        assert_eq!(view.title, "DiskFull #7");
        assert_eq!(view.source, "alertmanager");
        assert_eq!(view.labels["severity"], "critical");
        assert_eq!(view.created_at, at);
        assert_eq!(view.updated_at, at);
        assert_eq!(view.policy, "default");
        assert_eq!(view.step, 1);
        assert_eq!(view.cycle, 0);
        assert_eq!(view.next_escalation_at, Some(t("2026-11-21T10:10:00Z")));
        assert_eq!(view.alerts.len(), 1);
        let a = &view.alerts[0];
        assert_eq!(a.fingerprint, "a1b2c3d4e5f60718");
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.starts_at, at);
        assert_eq!(a.ends_at, None);
        assert_eq!(a.annotations["summary"], "Disk almost full on db1");
        assert_eq!(a.generator_url, "http://prometheus/graph");
        let history = view.history.expect("history in the detail view");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].kind, "opened");
        assert_eq!(history[0].actor, "tocsin");
        let pages = view.pages.expect("pages in the detail view");
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].status, PageStatus::Pending);
        assert_eq!(pages[0].attempts, 0);
        assert_eq!(pages[0].to.as_deref(), Some("+15550100"));
        assert_eq!(pages[0].kind, PageKind::Triggered);

        let brief = store.incident(7, false).await.unwrap().unwrap();
        assert!(brief.history.is_none() && brief.pages.is_none());
        assert!(store.incident(8, true).await.unwrap().is_none());

        let list = store.incidents(None, 10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, 7);
        assert_eq!(list[0].alerts.len(), 1);
        assert!(list[0].history.is_none());
        let counts = store.counts().await.unwrap();
        assert_eq!(counts[&IncidentState::Triggered], 1);
        assert_eq!(counts[&IncidentState::Resolved], 0);
    }

    #[tokio::test]
    async fn incident_list_is_newest_first_filtered_and_limited() {
        let (_dir, store) = open_temp();
        for id in 1..=5 {
            store
                .commit(opening(
                    id,
                    t("2026-11-21T10:00:00Z").plus(Duration::from_secs(id)),
                ))
                .await
                .unwrap();
        }
        let at = t("2026-11-21T11:00:00Z");
        store
            .commit(vec![Effect::Status(status(2, IncidentState::Resolved, at))])
            .await
            .unwrap();
        let ids = |v: Vec<IncidentView>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(store.incidents(None, 3).await.unwrap()), [5, 4, 3]);
        assert_eq!(
            ids(store
                .incidents(Some(IncidentState::Triggered), 10)
                .await
                .unwrap()),
            [5, 4, 3, 1]
        );
        assert_eq!(
            ids(store
                .incidents(Some(IncidentState::Resolved), 10)
                .await
                .unwrap()),
            [2]
        );
        assert_eq!(store.counts().await.unwrap()[&IncidentState::Resolved], 1);
    }

    #[tokio::test]
    async fn duplicate_delivery_updates_the_alert_row() {
        let (_dir, store) = open_temp();
        let at = t("2026-11-21T10:00:00Z");
        store.commit(opening(1, at)).await.unwrap();
        let later = t("2026-11-21T10:05:00Z");
        let Effect::Alert(mut again) = alert(1, "a1b2c3d4e5f60718", at) else {
            unreachable!()
        };
        again.alert.status = AlertStatus::Resolved;
        again.alert.ends_at = Some(later);
        again.received_at = later;
        store.commit(vec![Effect::Alert(again)]).await.unwrap();

        let view = store.incident(1, false).await.unwrap().unwrap();
        assert_eq!(view.alerts.len(), 1, "one row per (incident, fingerprint)");
        assert_eq!(view.alerts[0].status, AlertStatus::Resolved);
        assert_eq!(view.alerts[0].ends_at, Some(later));
        assert_eq!(view.alerts[0].received_at, later);
    }

    #[tokio::test]
    async fn page_outcomes_are_recorded() {
        let (_dir, store) = open_temp();
        let at = t("2026-11-21T10:00:00Z");
        let mut effects = opening(1, at);
        effects.push(Effect::Page(page(2, 1, at)));
        store.commit(effects).await.unwrap();
        let done = t("2026-11-21T10:00:03Z");
        store
            .commit(vec![
                Effect::PageDone {
                    page: 1,
                    at: done,
                    outcome: Outcome::Delivered { attempts: 2 },
                },
                Effect::PageDone {
                    page: 2,
                    at: done,
                    outcome: Outcome::Failed {
                        attempts: 3,
                        permanent: true,
                        error: "gateway said 400: bad number".into(),
                    },
                },
            ])
            .await
            .unwrap();

        let pages = store
            .incident(1, true)
            .await
            .unwrap()
            .unwrap()
            .pages
            .unwrap();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].id, 1);
        assert_eq!(pages[0].status, PageStatus::Delivered);
        assert_eq!(pages[0].attempts, 2);
        assert_eq!(pages[0].error, None);
        assert_eq!(pages[0].done_at, Some(done));
        assert_eq!(pages[1].status, PageStatus::Failed);
        assert_eq!(pages[1].attempts, 3);
        assert_eq!(
            pages[1].error.as_deref(),
            Some("gateway said 400: bad number")
        );
        assert!(store.restore(at).await.unwrap().pending_pages.is_empty());
    }

    #[tokio::test]
    async fn restart_resumes_open_escalations_and_unsent_pages() {
        let (_dir, store) = open_temp();
        let at = t("2026-11-21T10:00:00Z");
        for id in 1..=4 {
            store.commit(opening(id, at)).await.unwrap();
        }
        let mut acked = status(2, IncidentState::Acknowledged, t("2026-11-21T10:02:00Z"));
        acked.acked_by = Some("alice".into());
        acked.acked_at = Some(t("2026-11-21T10:02:00Z"));
        acked.escalation.next_step_at = None;
        acked.escalation.ack_expires_at = Some(t("2026-11-21T10:32:00Z"));
        store
            .commit(vec![
                Effect::Status(acked.clone()),
                // Resolved long ago: outside the cut-off.
                Effect::Status(status(
                    3,
                    IncidentState::Resolved,
                    t("2026-11-21T10:01:00Z"),
                )),
                // Resolved recently: a late duplicate must find it.
                Effect::Status(status(
                    4,
                    IncidentState::Resolved,
                    t("2026-11-21T11:00:00Z"),
                )),
                Effect::PageDone {
                    page: 1,
                    at,
                    outcome: Outcome::Delivered { attempts: 1 },
                },
            ])
            .await
            .unwrap();

        let r = store.restore(t("2026-11-21T10:30:00Z")).await.unwrap();
        let open: Vec<_> = r.open.iter().map(|i| (i.id, i.state)).collect();
        assert_eq!(
            open,
            [
                (1, IncidentState::Triggered),
                (2, IncidentState::Acknowledged)
            ]
        );
        assert_eq!(r.open[0].escalation, escalation(at));
        assert_eq!(r.open[0].policy, *policy());
        assert_eq!(r.open[0].source, "alertmanager");
        assert_eq!(
            r.open[0].alerts,
            [("a1b2c3d4e5f60718".to_string(), AlertStatus::Firing, at)]
        );
        assert_eq!(r.open[1].escalation, acked.escalation);
        assert_eq!(r.open[1].acked_by.as_deref(), Some("alice"));
        assert_eq!(r.open[1].acked_at, acked.acked_at);
        let resolved: Vec<_> = r.recent_resolved.iter().map(|i| i.id).collect();
        assert_eq!(resolved, [4]);
        assert_eq!(
            r.recent_resolved[0].resolved_at,
            Some(t("2026-11-21T11:00:00Z"))
        );
        assert_eq!(r.recent_resolved[0].alerts.len(), 1);
        assert_eq!(r.next_incident_id, 5);
        assert_eq!(r.next_page_id, 5);
        let pending: Vec<_> = r.pending_pages.iter().map(|p| p.id).collect();
        assert_eq!(pending, [2, 3, 4]);
        assert_eq!(
            r.pending_pages[0],
            page(2, 2, at),
            "rebuilt exactly as recorded"
        );
    }

    #[tokio::test]
    async fn empty_store_restores_to_first_ids() {
        let (_dir, store) = open_temp();
        let r = store.restore(Timestamp(0)).await.unwrap();
        assert!(r.open.is_empty() && r.recent_resolved.is_empty() && r.pending_pages.is_empty());
        assert_eq!((r.next_incident_id, r.next_page_id), (1, 1));
    }

    #[tokio::test]
    async fn only_the_last_status_of_a_batch_counts() {
        let (_dir, store) = open_temp();
        let at = t("2026-11-21T10:00:00Z");
        let mut effects = opening(1, at);
        let mut acked = status(1, IncidentState::Acknowledged, t("2026-11-21T10:01:00Z"));
        acked.acked_by = Some("bob".into());
        effects.push(Effect::Status(acked));
        effects.push(Effect::Event(HistoryEvent::by_engine(
            1,
            t("2026-11-21T10:01:00Z"),
            "acked",
            "",
        )));
        store.commit(effects).await.unwrap();
        let view = store.incident(1, true).await.unwrap().unwrap();
        assert_eq!(view.state, IncidentState::Acknowledged);
        assert_eq!(view.acked_by.as_deref(), Some("bob"));
        let kinds: Vec<_> = view.history.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["opened", "acked"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commits_all_land() {
        let (_dir, store) = open_temp();
        let store = Arc::new(store);
        let at = t("2026-11-21T10:00:00Z");
        let tasks: Vec<_> = (1..=50)
            .map(|id| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.commit(opening(id, at)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.incidents(None, 100).await.unwrap().len(), 50);
        assert!(store.transactions() <= 50);
    }

    /// A storm of webhooks while the disk is slow: the committers that queue up behind
    /// one fsync share the next one instead of each waiting for its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn committers_waiting_together_share_one_transaction() {
        let (dir, store) = open_temp();
        let store = Arc::new(store);
        // Another connection holds the write lock: the writer stalls on its first group
        // the way it would on a slow fsync.
        let blocker = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

        let before = store.transactions();
        let at = t("2026-11-21T10:00:00Z");
        let tasks: Vec<_> = (1..=50)
            .map(|id| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.commit(opening(id, at)).await })
            })
            .collect();
        while store.in_flight.available_permits() > MAX_IN_FLIGHT - 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        blocker.execute_batch("ROLLBACK").unwrap();

        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let ran = store.transactions() - before;
        assert!(ran <= 2, "50 queued commits took {ran} transactions");
        assert_eq!(store.incidents(None, 100).await.unwrap().len(), 50);
        assert_eq!(store.restore(at).await.unwrap().pending_pages.len(), 50);
    }

    #[tokio::test]
    async fn failed_commit_writes_nothing_and_the_store_carries_on() {
        let (_dir, store) = open_temp();
        let at = t("2026-11-21T10:00:00Z");
        store.commit(opening(1, at)).await.unwrap();
        // Incident 1 again (an id reused by a bug): the whole batch must roll back.
        let mut effects = vec![Effect::Event(HistoryEvent::by_engine(
            1, at, "received", "",
        ))];
        effects.extend(opening(1, at));
        let err = store.commit(effects).await.unwrap_err();
        assert!(matches!(err, StoreError::Write(_)), "{err}");
        let view = store.incident(1, true).await.unwrap().unwrap();
        assert_eq!(
            view.history.unwrap().len(),
            1,
            "the failed batch left no event"
        );

        store.commit(opening(2, at)).await.unwrap();
        assert_eq!(store.counts().await.unwrap()[&IncidentState::Triggered], 2);
    }

    #[tokio::test]
    async fn data_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let at = t("2026-11-21T10:00:00Z");
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store.commit(opening(41, at)).await.unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let view = store.incident(41, true).await.unwrap().unwrap();
        assert_eq!(view.title, "DiskFull #41");
        assert_eq!(view.alerts.len(), 1);
        assert_eq!(store.restore(at).await.unwrap().next_incident_id, 42);
    }

    #[tokio::test]
    async fn creates_a_missing_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let store = SqliteStore::open(&nested).unwrap();
        store
            .commit(opening(1, t("2026-11-21T10:00:00Z")))
            .await
            .unwrap();
        assert!(nested.join(SQLITE_FILE).exists());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
        conn.execute(
            "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let err = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("schema version 2") && err.contains("newer tocsin"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn corrupt_json_names_the_incident() {
        let (dir, store) = open_temp();
        store
            .commit(opening(9, t("2026-11-21T10:00:00Z")))
            .await
            .unwrap();
        let conn = Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
        conn.execute(
            "UPDATE incidents SET escalation = '{not json' WHERE id = 9",
            [],
        )
        .unwrap();
        let err = store.incident(9, false).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("incident 9"), "{err}");
        assert!(store.restore(Timestamp(0)).await.is_err());
    }

    #[tokio::test]
    async fn commits_after_close_are_refused() {
        let (_dir, store) = open_temp();
        store.close();
        let err = store.commit(opening(1, t("2026-11-21T10:00:00Z"))).await;
        assert!(matches!(err, Err(StoreError::Closed)));
        assert!(store.commit(Vec::new()).await.is_ok(), "nothing to write");
        assert!(
            store.incidents(None, 10).await.unwrap().is_empty(),
            "reads still work"
        );
    }

    #[test]
    fn readers_see_wal_mode_and_a_small_cache() {
        let (_dir, store) = open_temp();
        let conn = lock(&store.reader);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let cache: i64 = conn
            .pragma_query_value(None, "cache_size", |r| r.get(0))
            .unwrap();
        assert_eq!(cache, -CACHE_KIB);
    }
}
