//! Reads the daemon's SQLite file after it stopped and compares it with what was answered 200.

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

pub fn run(db: &Path, answered: &[AlertKey]) -> Result<StoreCheck> {
    let wanted: HashSet<u64> = answered.iter().map(|k| k.fingerprint).collect();
    let stored = stored_alerts(db, &wanted)?;
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

/// Fingerprint -> starts_at of the stored rows of the `wanted` alerts (an alert may sit in
/// several incidents). Rows of other alerts (`single` and `batch` run before the storm on
/// the same daemon, with their own label sets, several instances each and resolutions)
/// are skipped: the check is about the storm's alerts only.
fn stored_alerts(db: &Path, wanted: &HashSet<u64>) -> Result<HashMap<u64, Vec<i64>>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {} read-only", db.display()))?;
    let mut stmt = conn
        .prepare("SELECT fingerprint, starts_at FROM alerts")
        .context("querying the alerts table")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    let mut stored: HashMap<u64, Vec<i64>> = HashMap::new();
    for row in rows {
        let (fingerprint, starts_at) = row?;
        if let Ok(fp) = u64::from_str_radix(&fingerprint, 16)
            && wanted.contains(&fp)
        {
            stored.entry(fp).or_default().push(starts_at);
        }
    }
    Ok(stored)
}
