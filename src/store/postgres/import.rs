//! `tocsin migrate`: a SQLite data dir copied into an empty PostgreSQL database, in one
//! transaction, rows as they are (ids, history entry ids, retention's id marks), so
//! every old ack link still points at the same incident and still verifies.

use std::path::Path;

use futures_util::future::try_join_all;
use rusqlite::OpenFlags;
use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use super::settings::{ACK_KEY, ACK_KEY_LEN};
use super::{PgErrorExt, PostgresStore, Result};
use crate::store::{SQLITE_FILE, SqliteStore, StoreError};

/// Whether a column holds an integer or text (every column of the store is one).
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
}
use Kind::{Int, Text};

/// What is copied: each table with its columns, in an order that needs no other.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "incidents",
        &[
            ("id", Int),
            ("source", Text),
            ("group_key", Text),
            ("title", Text),
            ("labels", Text),
            ("created_at", Int),
            ("policy_name", Text),
            ("policy", Text),
            ("state", Text),
            ("updated_at", Int),
            ("resolved_at", Int),
            ("acked_by", Text),
            ("acked_at", Int),
            ("wake_at", Int),
            ("escalation", Text),
            ("alerts_truncated", Int),
        ],
    ),
    (
        "alerts",
        &[
            ("incident_id", Int),
            ("fingerprint", Text),
            ("status", Text),
            ("starts_at", Int),
            ("ends_at", Int),
            ("labels", Text),
            ("annotations", Text),
            ("generator_url", Text),
            ("received_at", Int),
        ],
    ),
    (
        "events",
        &[
            ("id", Int),
            ("incident_id", Int),
            ("at", Int),
            ("kind", Text),
            ("actor", Text),
            ("via", Text),
            ("reference", Text),
            ("detail", Text),
        ],
    ),
    (
        "pages",
        &[
            ("id", Int),
            ("incident_id", Int),
            ("at", Int),
            ("kind", Text),
            ("step", Int),
            ("cycle", Int),
            ("target", Text),
            ("contact", Text),
            ("notifier", Text),
            ("method", Int),
            ("to_addr", Text),
            ("topic", Text),
            ("late_by_ms", Int),
            ("reason", Text),
            ("status", Text),
            ("attempts", Int),
            ("error", Text),
            ("done_at", Int),
            ("retry_until", Int),
            ("hold_until", Int),
        ],
    ),
    (
        "overrides",
        &[
            ("id", Int),
            ("schedule", Text),
            ("kind", Text),
            ("contact", Text),
            ("with_contact", Text),
            ("from_ms", Int),
            ("to_ms", Int),
            ("by", Text),
            ("created_at", Int),
            ("deleted_at", Int),
        ],
    ),
    ("silences", WINDOW),
    ("maintenance", WINDOW),
    (
        "source_state",
        &[("name", Text), ("value", Text), ("updated_at", Int)],
    ),
    (
        "inbound_seen",
        &[("channel", Text), ("id", Text), ("at", Int)],
    ),
    // Only retention's id marks: the schema version is PostgreSQL's own.
    ("meta", &[("key", Text), ("value", Text)]),
];

const WINDOW: &[(&str, Kind)] = &[
    ("id", Int),
    ("matchers", Text),
    ("from_ms", Int),
    ("to_ms", Int),
    ("comment", Text),
    ("by", Text),
    ("created_at", Int),
    ("changes", Text),
];

/// Rows sent per pipelined batch.
const BATCH: usize = 500;

/// What was copied: rows per table, and whether the ack-link key was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
    pub ack_key: bool,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (table, rows) in &self.tables {
            writeln!(f, "{table}: {rows} rows")?;
        }
        write!(
            f,
            "ack link key: {}",
            if self.ack_key {
                "copied (old links still work)"
            } else {
                "none in the data dir (the first instance to start makes one)"
            }
        )
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

impl PostgresStore {
    /// Copies the SQLite store in `data_dir` (brought to the current schema first) and
    /// its ack-link key into this database, which must be empty (no incident, page,
    /// override, silence, maintenance window or ack key): all in one transaction.
    pub async fn import_sqlite(&self, data_dir: &Path) -> Result<Copied> {
        const DOING: &str = "copying the SQLite store";
        let file = data_dir.join(SQLITE_FILE);
        if !file.exists() {
            return Err(StoreError::Corrupt {
                what: format!("{}", file.display()),
                detail: "no SQLite store there: point --from at tocsin's data dir".into(),
            });
        }
        // Opening it migrates an older schema, so the columns below exist.
        SqliteStore::open(data_dir)?.close();
        let key = if data_dir.join(crate::ack_link::KEY_FILE).exists() {
            let key = crate::ack_link::AckKey::load_or_create(data_dir).map_err(|e| {
                StoreError::Corrupt {
                    what: "the data dir's ack link key".into(),
                    detail: e.to_string(),
                }
            })?;
            Some(key.to_bytes())
        } else {
            None
        };
        let sqlite = rusqlite::Connection::open_with_flags(&file, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError::Open {
                path: file.display().to_string(),
                source,
            })?;

        let mut client = self.writes.get().await.or_pg(DOING)?;
        let tx = client.transaction().await.or_pg(DOING)?;
        // The copy reads SQLite between statements, and a year of history is large: the
        // daemon's limits on a statement and on an idle transaction do not apply. No other
        // instance may write while it runs (nor a second copy).
        tx.batch_execute(
            "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0; \
             LOCK TABLE incidents, settings IN EXCLUSIVE MODE",
        )
        .await
        .or_pg(DOING)?;
        let used: bool = tx
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM incidents) OR EXISTS (SELECT 1 FROM pages) \
                     OR EXISTS (SELECT 1 FROM overrides) OR EXISTS (SELECT 1 FROM silences) \
                     OR EXISTS (SELECT 1 FROM maintenance) \
                     OR EXISTS (SELECT 1 FROM settings WHERE name = '{ACK_KEY}')"
                ),
                &[],
            )
            .await
            .or_pg(DOING)?
            .get(0);
        if used {
            return Err(StoreError::Corrupt {
                what: format!("the PostgreSQL database {}", self.cfg.dbname()),
                detail: "it is not empty (it has incidents, pages, windows or an ack link key): \
                         tocsin migrate only copies into an empty database, so that nothing there \
                         is overwritten or mixed. Create a new database, or drop this one's tables"
                    .into(),
            });
        }
        let mut copied = Copied::default();
        for (table, columns) in TABLES {
            let rows = read_table(&sqlite, table, columns)?;
            copied.tables.push((table, rows.len() as u64));
            let names: Vec<String> = columns.iter().map(|(c, _)| format!("\"{c}\"")).collect();
            let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                marks.join(", ")
            );
            let stmt = tx.prepare(&sql).await.or_pg(DOING)?;
            for chunk in rows.chunks(BATCH) {
                let stmt = &stmt;
                let tx = &tx;
                try_join_all(chunk.iter().map(|row| async move {
                    let params: Vec<&(dyn ToSql + Sync)> =
                        row.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
                    tx.execute(stmt, &params).await
                }))
                .await
                .or_pg(DOING)?;
            }
        }
        // New history entries go on after the copied ones.
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('events', 'id'), COALESCE(MAX(id), 0) + 1, false) \
             FROM events",
            &[],
        )
        .await
        .or_pg(DOING)?;
        if let Some(key) = key {
            use base64::Engine as _;
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            debug_assert_eq!(key.len(), ACK_KEY_LEN);
            tx.execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2)",
                &[&ACK_KEY, &text],
            )
            .await
            .or_pg(DOING)?;
            copied.ack_key = true;
        }
        tx.commit().await.or_pg(DOING)?;
        Ok(copied)
    }
}

/// Every row of `table` (the `meta` table: only the id marks), as parameters.
fn read_table(
    sqlite: &rusqlite::Connection,
    table: &str,
    columns: &[(&str, Kind)],
) -> Result<Vec<Vec<Param>>> {
    let names: Vec<String> = columns.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let filter = if table == "meta" {
        " WHERE key LIKE 'next\\_%' ESCAPE '\\'"
    } else {
        ""
    };
    let read_err = StoreError::Read;
    let mut stmt = sqlite
        .prepare(&format!("SELECT {} FROM {table}{filter}", names.join(", ")))
        .map_err(read_err)?;
    let mut rows = stmt.query([]).map_err(read_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(read_err)? {
        let mut params: Vec<Param> = Vec::with_capacity(columns.len());
        for (i, (name, kind)) in columns.iter().enumerate() {
            let value: Value = row.get(i).map_err(read_err)?;
            params.push(match (kind, value) {
                (Int, Value::Integer(v)) => Box::new(Some(v)),
                (Int, Value::Null) => Box::new(None::<i64>),
                (Text, Value::Text(v)) => Box::new(Some(v)),
                (Text, Value::Null) => Box::new(None::<String>),
                (_, other) => {
                    return Err(StoreError::Corrupt {
                        what: format!("{table}.{name} in the SQLite store"),
                        detail: format!("unexpected value {other:?}"),
                    });
                }
            });
        }
        out.push(params);
    }
    Ok(out)
}
