//! Versioned migrations, run once at connect by whichever instance starts first.
//!
//! Every instance runs [`migrate`] as it connects; an advisory lock held for the
//! transaction makes the others wait for the first and then find nothing left to do. A
//! database migrated by a newer tocsin is refused rather than misread.

use deadpool_postgres::Client;

use super::{PgErrorExt, Result};
use crate::store::StoreError;

/// The advisory lock migrations hold ("tocsin" in ASCII); no other lock uses it.
pub const MIGRATION_LOCK: i64 = 0x746f_6373_696e;

/// Version 1 is `schema.sql`; each later entry one more, applied in order.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

/// The schema this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`] in one transaction (a failed migration
/// leaves it as it was); answers the version found before.
pub(super) async fn migrate(client: &mut Client, dbname: &str) -> Result<i64> {
    const DOING: &str = "migrating the schema";
    let tx = client.transaction().await.or_pg(DOING)?;
    // A migration of a large table may take longer than a statement normally may.
    tx.batch_execute("SET LOCAL statement_timeout = 0")
        .await
        .or_pg(DOING)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .or_pg(DOING)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .or_pg(DOING)?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .or_pg(DOING)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::Corrupt {
            what: format!("schema version of the PostgreSQL database {dbname}"),
            detail: format!(
                "the database has schema version {found}, this tocsin only knows up to \
                 {SCHEMA_VERSION}: it was migrated by a newer tocsin. Run that version on every \
                 instance"
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        tx.batch_execute(sql).await.or_pg(DOING)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .or_pg(DOING)?;
        tracing::info!(database = dbname, to = version, "store schema migrated");
    }
    tx.commit().await.or_pg(DOING)?;
    Ok(found)
}
