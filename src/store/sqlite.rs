//! The SQLite store: one file in the data dir, WAL mode, group commit.
//!
//! Writes go through one dedicated writer thread that owns the only write connection.
//! [`SqliteStore::commit`] queues its effects and waits; the writer takes the first
//! queued request, drains whatever else is already waiting (up to [`MAX_GROUP`]) and
//! writes them all in one `BEGIN IMMEDIATE ... COMMIT`, so committers that arrive
//! together share one fsync. `synchronous=FULL` makes every commit durable before any
//! caller is answered (a webhook gets its 200 only after that).
//!
//! Reads use two more connections (WAL lets them read while the writer writes), each
//! behind its own lock and run on tokio's blocking pool: one for what paging needs (the
//! incident a page is about, the engine's restore), one for everything else (the API,
//! the web view, chat commands). However many anonymous readers queue for the second,
//! a page's read never waits behind them. A reader waits for its connection as a task,
//! not on a blocking thread, so a flood of reads takes at most one blocking thread per
//! connection and leaves the pool to its other users (the notifiers' DNS lookups).
//! A fourth connection on its own thread checkpoints the WAL into the database in the
//! background, so the writer spends its time on commits and not on copying pages
//! (SQLite's automatic checkpoint would run on the writer).

mod read;
mod retention;
#[cfg(test)]
mod tests;
mod write;

use super::stored::{corrupt, from_json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};
use tokio::sync::{Semaphore, oneshot};

use super::{
    Deleted, Detail, IncidentPage, IncidentView, ListQuery, Restored, SQLITE_FILE, Store,
    StoreError,
};
use crate::data_dir::DataDir;
use crate::engine::{
    Effect, IncidentId, IncidentState, OverrideRecord, SilenceRecord, WindowRecord,
};
use crate::time::Timestamp;

/// The schema this build writes: `schema.sql` is version 1, each of [`MIGRATIONS`] one
/// more. A database with a higher version was written by a newer tocsin and is refused
/// rather than misread.
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

/// What each version after the first changed, in order, applied once to a database made
/// by an older tocsin (and to a fresh one after `schema.sql`), in the transaction that
/// records the new version.
const MIGRATIONS: &[&str] = &[
    // 2: a page carries the moment its retries must stop (the contact's next method is due).
    "ALTER TABLE pages ADD COLUMN retry_until INTEGER",
    // 3: the channel someone acted through is data, not a phrase inside `actor`. Rows
    // written before are read once here to fill it in.
    "ALTER TABLE events ADD COLUMN via TEXT NOT NULL DEFAULT 'engine';
     ALTER TABLE events ADD COLUMN reference TEXT;
     UPDATE events SET via = 'link', reference = substr(actor, instr(actor, ' via link ') + 10)
       WHERE instr(actor, ' via link ') > 0;
     UPDATE events SET via = 'sms', reference = rtrim(substr(actor, instr(actor, ' via sms (') + 10), ')')
       WHERE instr(actor, ' via sms (') > 0;
     UPDATE events SET via = substr(actor, instr(actor, ' via ') + 5)
       WHERE via = 'engine'
         AND substr(actor, instr(actor, ' via ') + 5) IN ('api', 'cli', 'web', 'irc', 'sms', 'pushover');",
    // 4: what a source keeps across restarts (the IRC link's replay mark).
    "CREATE TABLE IF NOT EXISTS source_state (\
         name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL)",
    // 5: the ids of inbound SMS already acted on (Twilio's MessageSid, Kannel's %I), so
    // a replayed or retried message does nothing twice; `at` is when it arrived.
    "CREATE TABLE IF NOT EXISTS inbound_seen (\
         channel TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, \
         PRIMARY KEY (channel, id));
     CREATE INDEX IF NOT EXISTS inbound_seen_at ON inbound_seen (at);",
    // 6: alerts an incident did not keep, beyond `max_alerts_per_incident`.
    "ALTER TABLE incidents ADD COLUMN alerts_truncated INTEGER NOT NULL DEFAULT 0",
    // 7: an incident's most recent history entries are read without sorting all of them
    // (a year of refused chat commands can leave a hundred thousand).
    "CREATE INDEX IF NOT EXISTS events_incident_at ON events (incident_id, at, id)",
    // 8: overrides of schedules; a deleted one keeps its row (and its id) with deleted_at.
    "CREATE TABLE IF NOT EXISTS overrides (\
         id INTEGER PRIMARY KEY, schedule TEXT NOT NULL, kind TEXT NOT NULL, \
         contact TEXT NOT NULL, with_contact TEXT, from_ms INTEGER NOT NULL, \
         to_ms INTEGER NOT NULL, by TEXT NOT NULL, created_at INTEGER NOT NULL, \
         deleted_at INTEGER);
     CREATE INDEX IF NOT EXISTS overrides_to ON overrides (to_ms);",
    // 9: silences and maintenance windows, one table each of the same shape; ending
    // one early or moving its end changes `to_ms` and is logged in `changes` (JSON).
    "CREATE TABLE IF NOT EXISTS silences (\
         id INTEGER PRIMARY KEY, matchers TEXT NOT NULL, from_ms INTEGER NOT NULL, \
         to_ms INTEGER NOT NULL, comment TEXT NOT NULL, by TEXT NOT NULL, \
         created_at INTEGER NOT NULL, changes TEXT NOT NULL DEFAULT '[]');
     CREATE INDEX IF NOT EXISTS silences_to ON silences (to_ms);
     CREATE TABLE IF NOT EXISTS maintenance (\
         id INTEGER PRIMARY KEY, matchers TEXT NOT NULL, from_ms INTEGER NOT NULL, \
         to_ms INTEGER NOT NULL, comment TEXT NOT NULL, by TEXT NOT NULL, \
         created_at INTEGER NOT NULL, changes TEXT NOT NULL DEFAULT '[]');
     CREATE INDEX IF NOT EXISTS maintenance_to ON maintenance (to_ms);",
    // 10: a page held for its contact's quiet hours, until when.
    "ALTER TABLE pages ADD COLUMN hold_until INTEGER",
];

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

/// How often the checkpointer folds the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// One `commit` (or `save_source_state`, `first_sight`, `forget_sight`) call waiting
/// for the writer.
struct WriteRequest {
    effects: Vec<Effect>,
    /// A source's state to replace: name, JSON value, when.
    source_state: Option<(String, String, Timestamp)>,
    /// An inbound message id to remember or forget.
    inbound: Option<Inbound>,
    /// `Ok(false)` only for an [`Inbound::See`] of an id already remembered.
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// What the writer thread is asked to do.
enum Job {
    /// Commits, grouped with whatever other commits are waiting.
    Write(WriteRequest),
    /// Upkeep, in a transaction of its own once the waiting commits are written.
    Chore(Chore),
}

/// A retention batch or a vacuum step waiting for the writer.
struct Chore {
    work: ChoreWork,
    reply: oneshot::Sender<Result<ChoreDone, StoreError>>,
}

enum ChoreWork {
    DeleteResolved { before: Timestamp, batch: usize },
    Reclaim { pages: u32 },
}

enum ChoreDone {
    Deleted(Deleted),
    FreePagesLeft(u64),
}

/// A chore waits at most this many commit groups while commits keep arriving, so a
/// steady stream of alerts delays retention a little and never stops it.
const CHORE_AFTER_GROUPS: u32 = 4;

/// What [`Store::first_sight`] and [`Store::forget_sight`] ask of `inbound_seen`.
enum Inbound {
    /// Remember `id` unless it is there; forget a few ids that arrived before `prune_before`.
    See {
        channel: String,
        id: String,
        at: Timestamp,
        prune_before: Timestamp,
    },
    Forget {
        channel: String,
        id: String,
    },
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// Where the database lives, for messages.
    path: PathBuf,
    /// Queue to the writer thread; taken (dropped) on close so the writer drains and exits.
    writer_tx: Mutex<Option<mpsc::Sender<Job>>>,
    /// The writer thread, joined on close.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Bounds the commits in flight (see [`MAX_IN_FLIGHT`]).
    in_flight: Semaphore,
    /// Transactions the writer has run; fewer than commits when group commit kicks in.
    transactions: Arc<AtomicU64>,
    /// The read connection of the API, the web view and chat commands; their reads run
    /// on the blocking pool one at a time.
    reader: Arc<tokio::sync::Mutex<Connection>>,
    /// The read connection of paging alone (see [`Lane::Paging`]).
    page_reader: Arc<tokio::sync::Mutex<Connection>>,
    /// Stops the checkpointer thread when the store closes.
    checkpointer_stop: Arc<std::sync::atomic::AtomicBool>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
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
    /// Opens (creating if needed) `data_dir/tocsin.db` and starts the writer thread. The
    /// dir is made 0700 and the database file 0600 first: SQLite gives the `-wal` and
    /// `-shm` files it creates the database file's mode, so all three stay private
    /// whatever the umask (those an earlier run left are made private here too).
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(SQLITE_FILE);
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let dir = DataDir::prepare(data_dir)?;
        for (name, create) in [
            (SQLITE_FILE.to_string(), true),
            (format!("{SQLITE_FILE}-wal"), false),
            (format!("{SQLITE_FILE}-shm"), false),
            (format!("{SQLITE_FILE}-journal"), false),
        ] {
            dir.private_file(&name, create)?;
        }

        let mut writer = Connection::open(&path).map_err(open_err)?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Before WAL mode is set: that writes the header of a new file, after which
        // its auto_vacuum could only change by a VACUUM.
        retention::ensure_incremental_vacuum(&writer, &path)?;
        configure(&writer, true).map_err(open_err)?;
        init_schema(&mut writer, &path)?;

        let reader = Connection::open(&path).map_err(open_err)?;
        configure(&reader, false).map_err(open_err)?;
        let page_reader = Connection::open(&path).map_err(open_err)?;
        configure(&page_reader, false).map_err(open_err)?;

        let checkpoint_conn = Connection::open(&path).map_err(open_err)?;
        checkpoint_conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(open_err)?;
        let checkpointer_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::clone(&checkpointer_stop);
        let checkpointer = std::thread::Builder::new()
            .name("tocsin-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stop))
            .map_err(|e| {
                open_err(sqlite_error(
                    rusqlite::ffi::SQLITE_ERROR,
                    format!("cannot start the checkpoint thread: {e}"),
                ))
            })?;

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
            reader: Arc::new(tokio::sync::Mutex::new(reader)),
            page_reader: Arc::new(tokio::sync::Mutex::new(page_reader)),
            checkpointer_stop,
            checkpointer: Mutex::new(Some(checkpointer)),
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
        self.checkpointer_stop.store(true, Ordering::Release);
        if let Some(handle) = lock(&self.checkpointer).take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }

    /// Queues a write for the writer thread and waits until it is committed; `false`
    /// when `inbound` was an id already seen.
    async fn write(
        &self,
        effects: Vec<Effect>,
        source_state: Option<(String, String, Timestamp)>,
        inbound: Option<Inbound>,
    ) -> Result<bool, StoreError> {
        self.queue(|reply| {
            Job::Write(WriteRequest {
                effects,
                source_state,
                inbound,
                reply,
            })
        })
        .await
    }

    /// Queues a chore for the writer thread and waits until it is done.
    async fn chore(&self, work: ChoreWork) -> Result<ChoreDone, StoreError> {
        self.queue(|reply| Job::Chore(Chore { work, reply })).await
    }

    /// Hands the writer thread the job `job` builds around its reply channel, within
    /// the bound on jobs in flight, and waits for the answer.
    async fn queue<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let _slot = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        {
            let tx = lock(&self.writer_tx);
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(job(reply)).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` with the read connection of `lane` on the blocking pool, once the
    /// connection is free.
    async fn read<T, F>(&self, lane: Lane, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = match lane {
            Lane::Paging => &self.page_reader,
            Lane::Shared => &self.reader,
        };
        let mut conn = Arc::clone(reader).lock_owned().await;
        match tokio::task::spawn_blocking(move || f(&mut conn)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }
}

/// Which read connection a read takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// What paging cannot do without: the incident a page is about, the engine's
    /// restore, the open incident an IRC alert line joins. Nothing a client can ask for
    /// is read here.
    Paging,
    /// The API, the web view, chat commands, the watchdog's start.
    Shared,
}

#[cfg(test)]
impl SqliteStore {
    /// Holds the shared read connection, as a read that never ends would.
    async fn hold_shared_reads(&self) -> tokio::sync::OwnedMutexGuard<Connection> {
        Arc::clone(&self.reader).lock_owned().await
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
        self.write(effects, None, None).await.map(drop)
    }

    async fn source_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_string();
        self.read(Lane::Shared, move |conn| {
            conn.query_row(
                "SELECT value FROM source_state WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .or_read()
        })
        .await
    }

    async fn save_source_state(
        &self,
        name: &str,
        value: String,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(Vec::new(), Some((name.to_string(), value, at)), None)
            .await
            .map(drop)
    }

    async fn first_sight(
        &self,
        channel: &str,
        id: &str,
        at: Timestamp,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        let see = Inbound::See {
            channel: channel.to_string(),
            id: id.to_string(),
            at,
            prune_before: at.minus(keep),
        };
        self.write(Vec::new(), None, Some(see)).await
    }

    async fn forget_sight(&self, channel: &str, id: &str) -> Result<(), StoreError> {
        let forget = Inbound::Forget {
            channel: channel.to_string(),
            id: id.to_string(),
        };
        self.write(Vec::new(), None, Some(forget)).await.map(drop)
    }

    async fn delete_resolved(
        &self,
        before: Timestamp,
        batch: usize,
    ) -> Result<Deleted, StoreError> {
        match self
            .chore(ChoreWork::DeleteResolved { before, batch })
            .await?
        {
            ChoreDone::Deleted(d) => Ok(d),
            ChoreDone::FreePagesLeft(_) => Ok(Deleted::default()),
        }
    }

    async fn reclaim_space(&self, pages: u32) -> Result<u64, StoreError> {
        match self.chore(ChoreWork::Reclaim { pages }).await? {
            ChoreDone::FreePagesLeft(n) => Ok(n),
            ChoreDone::Deleted(_) => Ok(0),
        }
    }

    async fn restore(&self, resolved_since: Timestamp) -> Result<Restored, StoreError> {
        // The engine restores after a failed commit too, with pages waiting on it.
        self.read(Lane::Paging, move |conn| {
            let tx = conn.transaction().or_read()?;
            let restored = read::restored(&tx, resolved_since)?;
            tx.commit().or_read()?;
            Ok(restored)
        })
        .await
    }

    async fn incidents(&self, query: ListQuery) -> Result<IncidentPage, StoreError> {
        self.read(Lane::Shared, move |conn| {
            let tx = conn.transaction().or_read()?;
            let page = read::incidents(&tx, query)?;
            tx.commit().or_read()?;
            Ok(page)
        })
        .await
    }

    async fn each_incident(
        &self,
        query: ListQuery,
        mut each: Box<dyn for<'v> FnMut(&'v IncidentView) + Send + 'static>,
    ) -> Result<Option<IncidentId>, StoreError> {
        self.read(Lane::Shared, move |conn| {
            let tx = conn.transaction().or_read()?;
            let next = read::each_incident(&tx, query, &mut |v| each(&v))?;
            tx.commit().or_read()?;
            Ok(next)
        })
        .await
    }

    async fn incident(
        &self,
        id: IncidentId,
        detail: Detail,
    ) -> Result<Option<IncidentView>, StoreError> {
        self.read(Lane::Shared, move |conn| {
            let tx = conn.transaction().or_read()?;
            let view = read::incident(&tx, id, detail)?;
            tx.commit().or_read()?;
            Ok(view)
        })
        .await
    }

    async fn overrides(
        &self,
        schedule: Option<String>,
        ending_after: Timestamp,
    ) -> Result<Vec<OverrideRecord>, StoreError> {
        self.read(Lane::Shared, move |conn| {
            read::overrides(conn, schedule.as_deref(), ending_after)
        })
        .await
    }

    async fn silences(&self, ending_after: Timestamp) -> Result<Vec<SilenceRecord>, StoreError> {
        self.read(Lane::Shared, move |conn| {
            read::windows(conn, read::SILENCES, ending_after)
        })
        .await
    }

    async fn maintenance(&self, ending_after: Timestamp) -> Result<Vec<WindowRecord>, StoreError> {
        self.read(Lane::Shared, move |conn| {
            read::windows(conn, read::MAINTENANCE, ending_after)
        })
        .await
    }

    async fn incident_to_page(&self, id: IncidentId) -> Result<Option<IncidentView>, StoreError> {
        self.read(Lane::Paging, move |conn| {
            let tx = conn.transaction().or_read()?;
            let view = read::incident(&tx, id, Detail::MESSAGE)?;
            tx.commit().or_read()?;
            Ok(view)
        })
        .await
    }

    async fn acked_by_link(
        &self,
        id: IncidentId,
        link: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        let link = link.to_string();
        self.read(Lane::Shared, move |conn| {
            read::acked_by_link(conn, id, &link)
        })
        .await
    }

    async fn counts(&self) -> Result<BTreeMap<IncidentState, u64>, StoreError> {
        self.read(Lane::Shared, |conn| read::counts(conn)).await
    }

    async fn open_incident_of_group(
        &self,
        source: &str,
        group_key: &str,
    ) -> Result<Option<IncidentView>, StoreError> {
        let (source, group_key) = (source.to_string(), group_key.to_string());
        // An IRC alert line waits for this before it can open or join an incident.
        self.read(Lane::Paging, move |conn| {
            let tx = conn.transaction().or_read()?;
            let view = read::open_incident_of_group(&tx, &source, &group_key)?;
            tx.commit().or_read()?;
            Ok(view)
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
        // The checkpointer thread does this instead (see the module docs).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    } else {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(())
}

/// Creates the schema on a fresh database, migrates an older one (in the same
/// transaction: a failed migration leaves it as it was), refuses one written by a newer
/// tocsin.
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
    let upgrade = found.is_some();
    let from = match found {
        None => 1,
        Some(v) => match v.parse::<i64>() {
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
            Ok(v) if v >= 1 => v,
            _ => {
                return Err(StoreError::Corrupt {
                    what: format!("schema version of {}", path.display()),
                    detail: format!("unexpected schema_version {v:?}"),
                });
            }
        },
    };
    tx.execute_batch(SCHEMA).map_err(open_err)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip((from - 1) as usize) {
        tx.execute_batch(sql).map_err(open_err)?;
        if upgrade {
            tracing::info!(path = %path.display(), to = i + 2, "store schema migrated");
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION.to_string()],
    )
    .map_err(open_err)?;
    tx.commit().map_err(open_err)
}

/// Folds the WAL into the database every [`CHECKPOINT_EVERY`] until told to stop, then
/// once more. PASSIVE never blocks the writer; it copies what no reader still needs.
fn checkpoint_loop(conn: Connection, stop: Arc<std::sync::atomic::AtomicBool>) {
    let checkpoint = || {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    };
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(CHECKPOINT_EVERY);
        checkpoint();
    }
    checkpoint();
}

// ---------------------------------------------------------------------------------------
// Writing

/// The writer thread: waits for a request, takes everything else already queued, writes
/// it all in one transaction, answers every waiter. A chore (retention) runs in its own
/// transaction when no commit is waiting, or after [`CHORE_AFTER_GROUPS`] groups. Ends
/// when the store is closed and the queue is empty; chores still waiting then are dropped
/// (their callers see the store closed).
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, transactions: Arc<AtomicU64>) {
    let mut group: Vec<WriteRequest> = Vec::with_capacity(MAX_GROUP);
    let mut chores: std::collections::VecDeque<Chore> = std::collections::VecDeque::new();
    let mut groups_waited = 0u32;
    loop {
        let first = if chores.is_empty() {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        } else if groups_waited >= CHORE_AFTER_GROUPS {
            groups_waited = 0;
            run_chore(
                &mut conn,
                chores.pop_front().expect("not empty"),
                &transactions,
            );
            continue;
        } else {
            match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::TryRecvError::Empty) => {
                    groups_waited = 0;
                    run_chore(
                        &mut conn,
                        chores.pop_front().expect("not empty"),
                        &transactions,
                    );
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        };
        match first {
            Job::Write(request) => group.push(request),
            Job::Chore(chore) => {
                chores.push_back(chore);
                continue;
            }
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Job::Write(request)) => group.push(request),
                Ok(Job::Chore(chore)) => chores.push_back(chore),
                Err(_) => break,
            }
        }
        let result = write::group(&mut conn, &group);
        transactions.fetch_add(1, Ordering::Relaxed);
        if !chores.is_empty() {
            groups_waited += 1;
        }
        match result {
            Ok(new) => {
                for (request, new) in group.drain(..).zip(new) {
                    let _ = request.reply.send(Ok(new));
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

fn run_chore(conn: &mut Connection, chore: Chore, transactions: &AtomicU64) {
    let result = match chore.work {
        ChoreWork::DeleteResolved { before, batch } => {
            retention::delete_resolved(conn, before, batch).map(ChoreDone::Deleted)
        }
        ChoreWork::Reclaim { pages } => {
            retention::reclaim(conn, pages).map(ChoreDone::FreePagesLeft)
        }
    };
    transactions.fetch_add(1, Ordering::Relaxed);
    let _ = chore.reply.send(result.map_err(StoreError::Write));
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
