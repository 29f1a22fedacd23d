//! Leadership: one lease row with a fencing epoch, and the instances' heartbeats.
//!
//! Every time is the database's clock (`now()`), so instances whose clocks disagree
//! still agree on who leads. The epoch grows by one at each takeover and is what commits
//! are checked against (see [`super::PostgresStore::connect`]'s fence).

use std::time::Duration;

use super::read::col;
use super::{PgErrorExt, PostgresStore, Result, get_u64, sql_id};
use crate::time::Timestamp;

/// Who holds the lease, as the database says now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaderRow {
    /// `None` before anyone led.
    pub holder: Option<String>,
    pub epoch: u64,
    /// Milliseconds until the lease expires by the database's clock; below 0: expired
    /// (or never taken).
    pub expires_in_ms: i64,
}

/// One instance as it last said it was alive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceRow {
    pub name: String,
    /// What this instance writes as the lease's holder.
    pub holder: String,
    /// Where its HTTP API listens.
    pub addr: String,
    #[serde(with = "crate::time::rfc3339")]
    pub started_at: Timestamp,
    #[serde(with = "crate::time::rfc3339")]
    pub seen_at: Timestamp,
    /// The epoch it leads with, 0 when following.
    pub epoch: u64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Takes the lease if nobody holds it or it expired: epoch + 1, expires
    /// now() + `lease`. `Ok(None)`: another instance holds it. Waits for commits in
    /// flight under the old epoch (they hold the row), so none lands after.
    pub async fn try_lead(&self, holder: &str, lease: Duration) -> Result<Option<u64>> {
        self.timed(async {
            const DOING: &str = "taking the lease";
            let client = self.lease.get().await.or_pg(DOING)?;
            let row = client
                .query_opt(
                    "UPDATE lease SET holder = $1, epoch = epoch + 1, \
                     expires_at = clock_timestamp() + $2 * interval '1 millisecond' \
                     WHERE id = 1 AND (expires_at IS NULL OR expires_at <= clock_timestamp()) \
                     RETURNING epoch",
                    &[&holder, &(millis(lease) as f64)],
                )
                .await
                .or_pg(DOING)?;
            row.map(|r| get_u64(&r, 0)).transpose()
        })
        .await
    }

    /// Extends the lease held at `epoch` (expired or not, as long as nobody took it
    /// over) to now() + `lease`. `Ok(false)`: another instance took over.
    pub async fn renew(&self, epoch: u64, lease: Duration) -> Result<bool> {
        self.timed(async {
            const DOING: &str = "renewing the lease";
            let client = self.lease.get().await.or_pg(DOING)?;
            let changed = client
                .execute(
                    "UPDATE lease SET expires_at = clock_timestamp() + $2 * interval '1 millisecond' \
                     WHERE id = 1 AND epoch = $1",
                    &[&sql_id(epoch), &(millis(lease) as f64)],
                )
                .await
                .or_pg(DOING)?;
            Ok(changed == 1)
        })
        .await
    }

    /// Graceful stop: lets the lease held at `epoch` expire now, so another instance
    /// takes over at once instead of after the lease.
    pub async fn release(&self, epoch: u64) -> Result<()> {
        self.timed(async {
            const DOING: &str = "releasing the lease";
            let client = self.lease.get().await.or_pg(DOING)?;
            client
                .execute(
                    "UPDATE lease SET expires_at = clock_timestamp() WHERE id = 1 AND epoch = $1",
                    &[&sql_id(epoch)],
                )
                .await
                .or_pg(DOING)?;
            Ok(())
        })
        .await
    }

    /// Who leads, at which epoch, for how much longer.
    pub async fn leader(&self) -> Result<LeaderRow> {
        self.timed(async {
            const DOING: &str = "reading the lease";
            let client = self.lease.get().await.or_pg(DOING)?;
            let row = client
                .query_one(
                    "SELECT holder, epoch, COALESCE(\
                     (EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000)::bigint, -1) \
                     FROM lease WHERE id = 1",
                    &[],
                )
                .await
                .or_pg(DOING)?;
            Ok(LeaderRow {
                holder: col(&row, 0)?,
                epoch: get_u64(&row, 1)?,
                expires_in_ms: col(&row, 2)?,
            })
        })
        .await
    }

    /// Records that `me` is alive (upsert by name).
    pub async fn heartbeat(&self, me: &InstanceRow) -> Result<()> {
        self.timed(async {
            const DOING: &str = "recording this instance's heartbeat";
            let client = self.lease.get().await.or_pg(DOING)?;
            client
                .execute(
                    "INSERT INTO instances (name, holder, addr, started_at, seen_at, epoch) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
                     holder = excluded.holder, addr = excluded.addr, \
                     started_at = excluded.started_at, seen_at = excluded.seen_at, \
                     epoch = excluded.epoch",
                    &[
                        &me.name,
                        &me.holder,
                        &me.addr,
                        &me.started_at.0,
                        &me.seen_at.0,
                        &sql_id(me.epoch),
                    ],
                )
                .await
                .or_pg(DOING)?;
            Ok(())
        })
        .await
    }

    /// Every instance that ever sent a heartbeat, by name.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>> {
        self.timed(async {
            const DOING: &str = "reading the instances";
            let client = self.lease.get().await.or_pg(DOING)?;
            let rows = client
                .query(
                    "SELECT name, COALESCE(holder, ''), COALESCE(addr, ''), \
                     COALESCE(started_at, 0), COALESCE(seen_at, 0), COALESCE(epoch, 0) \
                     FROM instances ORDER BY name",
                    &[],
                )
                .await
                .or_pg(DOING)?;
            rows.iter()
                .map(|r| {
                    Ok(InstanceRow {
                        name: col(r, 0)?,
                        holder: col(r, 1)?,
                        addr: col(r, 2)?,
                        started_at: Timestamp(col(r, 3)?),
                        seen_at: Timestamp(col(r, 4)?),
                        epoch: get_u64(r, 5)?,
                    })
                })
                .collect()
        })
        .await
    }
}
