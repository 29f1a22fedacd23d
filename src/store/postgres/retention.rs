//! Retention: resolved incidents past `[storage] retention` are deleted with everything
//! that hangs off them, a small batch per transaction, as in SQLite. Done inbox rows
//! older than an hour go too. PostgreSQL's autovacuum gives the space back.

use deadpool_postgres::Client;

use super::{PgErrorExt, Result};
use crate::store::Deleted;
use crate::time::Timestamp;

/// Tables whose ids the engine hands out and retention may delete the newest of.
pub(super) const ID_TABLES: [&str; 5] =
    ["incidents", "pages", "overrides", "silences", "maintenance"];

/// Overrides, silences and maintenance windows: deleted once ended before the cut-off.
const WINDOW_TABLES: [&str; 3] = ["overrides", "silences", "maintenance"];

/// The `meta` key holding the next id of `table` as of the last deletion (the same
/// keys as SQLite's, so `tocsin migrate` copies them as they are).
pub(super) fn next_id_key(table: &str) -> String {
    format!("next_{table}_id")
}

/// Deletes up to `batch` incidents resolved before `before` (oldest resolution first),
/// with their alerts, history and pages, in one transaction.
pub(super) async fn delete_resolved(
    client: &mut Client,
    before: Timestamp,
    batch: usize,
) -> Result<Deleted> {
    const DOING: &str = "deleting old incidents";
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    let tx = client.transaction().await.or_pg(DOING)?;
    super::inbox::delete_done(&tx).await.or_pg(DOING)?;
    let ids: Vec<i64> = tx
        .query(
            "SELECT id FROM incidents WHERE state = 'resolved' AND resolved_at < $1 \
             ORDER BY resolved_at LIMIT $2",
            &[&before.0, &batch],
        )
        .await
        .or_pg(DOING)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut ended: Vec<(&str, Vec<i64>)> = Vec::new();
    for table in WINDOW_TABLES {
        let ids = tx
            .query(
                &format!("SELECT id FROM {table} WHERE to_ms < $1 ORDER BY to_ms LIMIT $2"),
                &[&before.0, &batch],
            )
            .await
            .or_pg(DOING)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        ended.push((table, ids));
    }
    let mut deleted = Deleted::default();
    if ids.is_empty() && ended.iter().all(|(_, ids)| ids.is_empty()) {
        tx.commit().await.or_pg(DOING)?;
        return Ok(deleted);
    }
    // Ids are never reused, yet they come from the highest row: before rows are
    // deleted, the next id of each table is kept in `meta`, never lowered.
    for table in ID_TABLES {
        tx.execute(
            &format!(
                "INSERT INTO meta (key, value) SELECT $1, (MAX(id) + 1)::text FROM {table} \
                 HAVING MAX(id) IS NOT NULL \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value \
                 WHERE excluded.value::bigint > meta.value::bigint"
            ),
            &[&next_id_key(table)],
        )
        .await
        .or_pg(DOING)?;
    }
    for (table, ids) in &ended {
        deleted.windows += tx
            .execute(&format!("DELETE FROM {table} WHERE id = ANY($1)"), &[ids])
            .await
            .or_pg(DOING)?;
    }
    let delete = |sql: &'static str| {
        let tx = &tx;
        let ids = &ids;
        async move { tx.execute(sql, &[ids]).await.or_pg(DOING) }
    };
    deleted.alerts += delete("DELETE FROM alerts WHERE incident_id = ANY($1)").await?;
    deleted.events += delete("DELETE FROM events WHERE incident_id = ANY($1)").await?;
    deleted.pages += delete("DELETE FROM pages WHERE incident_id = ANY($1)").await?;
    deleted.incidents += delete("DELETE FROM incidents WHERE id = ANY($1)").await?;
    tx.commit().await.or_pg(DOING)?;
    Ok(deleted)
}
