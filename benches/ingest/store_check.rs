//! Reads the daemon's store (its SQLite file, or its PostgreSQL database) after it
//! stopped and compares it with what was answered 200.

use super::*;
use payload::AlertKey;

pub struct StoreCheck {
    /// Answered alerts with no row for their fingerprint.
    missing: Vec<AlertKey>,
    /// Answered alerts whose row holds another starts_at.
    wrong_start: Vec<(AlertKey, i64)>,
}

impl StoreCheck {
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.wrong_start.is_empty()
    }

    pub fn print(&self, answered: usize) {
        let present = answered - self.missing.len() - self.wrong_start.len();
        if self.complete() {
            println!("storm: {present}/{answered} alerts answered 200 are in the store");
            return;
        }
        println!(
            "storm: {present}/{answered} alerts answered 200 are in the store; \
             {} missing, {} stored with another starts_at",
            self.missing.len(),
            self.wrong_start.len()
        );
        for key in self.missing.iter().take(5) {
            println!(
                "   missing {:016x} starts_at {}",
                key.fingerprint, key.starts_at_ms
            );
        }
        for (key, stored) in self.wrong_start.iter().take(5) {
            println!(
                "   {:016x} sent starts_at {} stored {stored}",
                key.fingerprint, key.starts_at_ms
            );
        }
    }
}

/// The store the daemon wrote.
pub enum Stored<'a> {
    Sqlite(&'a Path),
    /// A `postgres://` url.
    Postgres(&'a str),
}

pub async fn run(store: Stored<'_>, answered: &[AlertKey]) -> Result<StoreCheck> {
    let wanted: HashSet<u64> = answered.iter().map(|k| k.fingerprint).collect();
    let rows = match store {
        Stored::Sqlite(db) => sqlite_alerts(db)?,
        Stored::Postgres(url) => postgres_alerts(url).await?,
    };
    let mut stored: HashMap<u64, Vec<i64>> = HashMap::new();
    for (fingerprint, starts_at) in rows {
        if let Ok(fp) = u64::from_str_radix(&fingerprint, 16)
            && wanted.contains(&fp)
        {
            stored.entry(fp).or_default().push(starts_at);
        }
    }
    let mut check = StoreCheck {
        missing: Vec::new(),
        wrong_start: Vec::new(),
    };
    for key in answered {
        match stored.get(&key.fingerprint) {
            None => check.missing.push(*key),
            Some(starts) if !starts.contains(&key.starts_at_ms) => {
                check.wrong_start.push((*key, starts[0]))
            }
            Some(_) => {}
        }
    }
    Ok(check)
}

// Fingerprint and starts_at of every stored row: the caller keeps the `wanted` alerts (an
// alert may sit in several incidents) and skips the rest (`single` and `batch` run before
// the storm on the same daemon, with their own label sets, several instances each and
// resolutions): the check is about the storm's alerts only.

fn sqlite_alerts(db: &Path) -> Result<Vec<(String, i64)>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {} read-only", db.display()))?;
    let mut stmt = conn
        .prepare("SELECT fingerprint, starts_at FROM alerts")
        .context("querying the alerts table")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect::<rusqlite::Result<_>>()
        .context("reading the alerts table")
}

async fn postgres_alerts(url: &str) -> Result<Vec<(String, i64)>> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let driver = tokio::spawn(connection);
    let rows = client
        .query("SELECT fingerprint, starts_at FROM alerts", &[])
        .await
        .context("querying the alerts table")?;
    drop(client);
    let _ = driver.await;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
