//! The inbox: a follower forwards an engine input (as JSON) through the database, so
//! that "committed before answered" holds on every instance; the leader consumes the
//! rows in id order and marks them done in the same transaction as their effects.
//! `NOTIFY tocsin_inbox` wakes the leader; a dedicated connection LISTENs and
//! reconnects when it is lost.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Transaction};
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use super::config::PgConfig;
use super::read::col;
use super::{PgErrorExt, PostgresStore, Result, get_u64, sql_id};
use crate::store::StoreError;
use crate::time::Timestamp;

/// The channel followers notify and the leader listens on.
pub const CHANNEL: &str = "tocsin_inbox";

/// Done rows are kept this long, for a follower waiting on `forwarded_result`.
const KEEP_DONE: Duration = Duration::from_secs(3600);

/// The database's clock in milliseconds, as SQL.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

impl PostgresStore {
    /// Inserts the input and notifies the leader, in one transaction: durable when it
    /// returns. Answers the inbox id to wait on.
    pub async fn forward(&self, origin: &str, input_json: String, at: Timestamp) -> Result<u64> {
        self.timed(async {
            const DOING: &str = "forwarding an input to the leader";
            let mut client = self.writes.get().await.or_pg(DOING)?;
            let tx = client.transaction().await.or_pg(DOING)?;
            let row = tx
                .query_one(
                    "INSERT INTO inbox (at, origin, input) VALUES ($1, $2, $3) RETURNING id",
                    &[&at.0, &origin, &input_json],
                )
                .await
                .or_pg(DOING)?;
            tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])
                .await
                .or_pg(DOING)?;
            tx.commit().await.or_pg(DOING)?;
            get_u64(&row, 0)
        })
        .await
    }

    /// The leader's answer to a forwarded input once consumed (`None` while pending).
    /// A row consumed more than an hour ago has been deleted: an error says so.
    pub async fn forwarded_result(&self, id: u64) -> Result<Option<String>> {
        self.timed(async {
            const DOING: &str = "reading a forwarded input's answer";
            let client = self.reads.get().await.or_pg(DOING)?;
            let row = client
                .query_opt(
                    "SELECT result, done_at FROM inbox WHERE id = $1",
                    &[&sql_id(id)],
                )
                .await
                .or_pg(DOING)?;
            let Some(row) = row else {
                return Err(StoreError::Corrupt {
                    what: format!("inbox row {id}"),
                    detail: "not found: never forwarded, or answered more than an hour ago".into(),
                });
            };
            let done: Option<i64> = col(&row, 1)?;
            Ok(match done {
                Some(_) => Some(col::<Option<String>>(&row, 0)?.unwrap_or_default()),
                None => None,
            })
        })
        .await
    }
}

/// Up to `limit` rows not consumed yet, oldest first.
pub(super) async fn pending<C: GenericClient>(c: &C, limit: usize) -> Result<Vec<(u64, String)>> {
    const DOING: &str = "reading the inbox";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query(
            "SELECT id, input FROM inbox WHERE done_at IS NULL ORDER BY id LIMIT $1",
            &[&limit],
        )
        .await
        .or_pg(DOING)?;
    rows.iter()
        .map(|r| Ok((get_u64(r, 0)?, col(r, 1)?)))
        .collect()
}

/// Marks `consumed` done with their results, inside the commit of their effects, and
/// deletes rows done more than an hour ago.
pub(super) async fn mark_done(
    tx: &Transaction<'_>,
    consumed: &[(u64, String)],
) -> Result<(), tokio_postgres::Error> {
    let ids: Vec<i64> = consumed.iter().map(|(id, _)| sql_id(*id)).collect();
    let results: Vec<&str> = consumed.iter().map(|(_, r)| r.as_str()).collect();
    tx.execute(
        &format!(
            "UPDATE inbox SET result = d.result, done_at = {NOW_MS} \
             FROM unnest($1::bigint[], $2::text[]) AS d(id, result) \
             WHERE inbox.id = d.id AND inbox.done_at IS NULL"
        ),
        &[&ids, &results],
    )
    .await?;
    delete_done(tx).await
}

/// Deletes rows consumed more than [`KEEP_DONE`] ago.
pub(super) async fn delete_done(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    let keep = i64::try_from(KEEP_DONE.as_millis()).unwrap_or(i64::MAX);
    tx.execute(
        &format!("DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < {NOW_MS} - $1"),
        &[&keep],
    )
    .await?;
    Ok(())
}

/// LISTENs on [`CHANNEL`] on a connection of its own and wakes `notify` at every
/// notification; reconnects after `retry` when the connection is lost, and wakes
/// `notify` once connected again (a notification sent meanwhile was missed). Runs until
/// aborted.
pub(super) async fn listen(cfg: Arc<PgConfig>, notify: Arc<Notify>, retry: Duration) {
    let tls = match cfg.connector() {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for forwarded inputs: TLS setup failed");
            return;
        }
    };
    let mut connected_before = false;
    loop {
        match cfg.session().connect(tls.clone()).await {
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for forwarded inputs; retrying");
            }
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => {
                                if tx.send(()).is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "the inbox listener lost its connection");
                                return;
                            }
                            None => return,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        if connected_before {
                            notify.notify_one();
                        }
                        connected_before = true;
                        while rx.recv().await.is_some() {
                            notify.notify_one();
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
                }
                driver.abort();
            }
        }
        tokio::time::sleep(retry).await;
    }
}
