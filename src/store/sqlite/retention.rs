//! Retention: resolved incidents past `[storage] retention` are deleted with everything
//! that hangs off them, a small batch per transaction, and the freed pages go back to the
//! file system (incremental vacuum), so a year-old database is the size of its last
//! `retention`, not of its whole life.
//!
//! Every batch runs on the writer thread between commit groups (see `writer_loop`), so
//! it never shares a transaction with a commit and a commit waits for at most one batch.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::sql_u64;

#[cfg(test)]
mod tests;
use crate::store::{Deleted, StoreError};
use crate::time::Timestamp;

/// Tables whose ids the engine hands out and retention may delete the newest of.
const ID_TABLES: [&str; 5] = ["incidents", "pages", "overrides", "silences", "maintenance"];

/// Overrides, silences and maintenance windows: deleted once ended before the cut-off.
const WINDOW_TABLES: [&str; 3] = ["overrides", "silences", "maintenance"];

/// The `meta` key holding the next id of `table` as of the last deletion.
pub(super) fn next_id_key(table: &str) -> String {
    format!("next_{table}_id")
}

/// Deletes up to `batch` incidents resolved before `before` (oldest resolution first),
/// with their alerts, history and pages, in one transaction.
pub(super) fn delete_resolved(
    conn: &mut Connection,
    before: Timestamp,
    batch: usize,
) -> rusqlite::Result<Deleted> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id FROM incidents WHERE state = 'resolved' AND resolved_at < ?1 \
             ORDER BY resolved_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![before.0, sql_u64(batch as u64)?], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut ended: Vec<(&str, Vec<i64>)> = Vec::new();
    for table in WINDOW_TABLES {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT id FROM {table} WHERE to_ms < ?1 ORDER BY to_ms LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![before.0, sql_u64(batch as u64)?], |r| r.get(0))?;
        ended.push((table, rows.collect::<rusqlite::Result<_>>()?));
    }
    let mut deleted = Deleted::default();
    if ids.is_empty() && ended.iter().all(|(_, ids)| ids.is_empty()) {
        return Ok(deleted);
    }
    keep_next_ids(&tx)?;
    for (table, ids) in &ended {
        for id in ids {
            deleted.windows += tx
                .prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))?
                .execute([id])? as u64;
        }
    }
    for id in ids {
        let delete = |sql: &str| -> rusqlite::Result<u64> {
            Ok(tx.prepare_cached(sql)?.execute([id])? as u64)
        };
        deleted.alerts += delete("DELETE FROM alerts WHERE incident_id = ?1")?;
        deleted.events += delete("DELETE FROM events WHERE incident_id = ?1")?;
        deleted.pages += delete("DELETE FROM pages WHERE incident_id = ?1")?;
        deleted.incidents += delete("DELETE FROM incidents WHERE id = ?1")?;
    }
    tx.commit()?;
    Ok(deleted)
}

/// Ids are never reused, yet they come from the highest row (`restore`): before rows
/// are deleted, the next id of each table is kept in `meta`, never lowered.
fn keep_next_ids(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for table in ID_TABLES {
        let max: Option<i64> =
            tx.query_row(&format!("SELECT MAX(id) FROM {table}"), [], |r| r.get(0))?;
        let Some(max) = max else { continue };
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE \
             SET value = excluded.value \
             WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
        )?
        .execute(params![next_id_key(table), (max + 1).to_string()])?;
    }
    Ok(())
}

/// Gives up to `pages` free pages back to the file system; answers how many are left.
pub(super) fn reclaim(conn: &Connection, pages: u32) -> rusqlite::Result<u64> {
    conn.execute_batch(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let left: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(left.max(0) as u64)
}

/// `auto_vacuum = INCREMENTAL` lets deleted rows' pages go back to the file system a
/// few at a time. A fresh database takes the setting as it is created; one made by an
/// older tocsin needs a one-time VACUUM, which rewrites the whole file (it takes about
/// as long as copying it and needs as much free disk again) before the daemon serves.
pub(super) fn ensure_incremental_vacuum(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .map_err(open_err)?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(open_err)?;
    let has_tables: Option<i64> = conn
        .query_row("SELECT 1 FROM sqlite_master LIMIT 1", [], |r| r.get(0))
        .optional()
        .map_err(open_err)?;
    if has_tables.is_none() {
        return Ok(());
    }
    let started = Instant::now();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    tracing::info!(
        path = %path.display(),
        bytes = size,
        "switching the store to incremental vacuum: rewriting the database once (VACUUM), so that space freed by retention goes back to the disk"
    );
    conn.execute_batch("VACUUM").map_err(open_err)?;
    tracing::info!(
        path = %path.display(),
        took_ms = started.elapsed().as_millis() as u64,
        "store rewritten with incremental vacuum"
    );
    Ok(())
}
