//! Effects to rows: each engine effect is one statement inside the commit's transaction,
//! the statements pipelined (all sent, then all answers read), so a webhook of 50 alerts
//! costs a few round trips and not 60. The alerts of a commit, most of its rows under a
//! storm, go in one statement over arrays: PostgreSQL's cost per statement, not per
//! row, was what bounded a commit of thousands of alerts.

use std::borrow::Cow;
use std::collections::HashMap;

use deadpool_postgres::{Client, Transaction};
use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;

use super::{PgErrorExt, Result, sql_id, to_json};
use crate::engine::{
    AlertRecord, Change, Effect, Escalation, HistoryEvent, IncidentId, IncidentOpened,
    IncidentStatus, Outcome, OverrideRecord, Page, PageId, WindowRecord,
};
use crate::store::PageStatus;
use crate::time::Timestamp;

type Param = Box<dyn ToSql + Sync + Send>;

/// One statement to run, with what to say when it changes no row.
struct Stmt {
    sql: Cow<'static, str>,
    params: Vec<Param>,
    unchanged: Unchanged,
}

/// What a statement that changed no row means.
#[derive(Clone, Copy)]
enum Unchanged {
    Fine,
    NoIncident(IncidentId),
    NoPage(PageId),
}

fn stmt(sql: impl Into<Cow<'static, str>>, params: Vec<Param>) -> Stmt {
    Stmt {
        sql: sql.into(),
        params,
        unchanged: Unchanged::Fine,
    }
}

/// Writes every effect in order. Of several `Status` effects for one incident only the
/// last is written: it carries the whole state.
pub(super) async fn effects(
    tx: &Transaction<'_>,
    effects: &[Effect],
) -> Result<(), tokio_postgres::Error> {
    let mut last_status: HashMap<IncidentId, usize> = HashMap::new();
    for (i, effect) in effects.iter().enumerate() {
        if let Effect::Status(s) = effect {
            last_status.insert(s.id, i);
        }
    }
    let mut stmts = Vec::with_capacity(effects.len());
    let mut alerts = Vec::new();
    for (i, effect) in effects.iter().enumerate() {
        stmts.push(match effect {
            Effect::Opened(o) => insert_incident(o),
            Effect::Status(s) if last_status.get(&s.id) == Some(&i) => update_status(s),
            Effect::Status(_) => continue,
            Effect::Alert(a) => {
                alerts.push(a);
                continue;
            }
            Effect::Event(e) => insert_event(e),
            Effect::Page(p) => insert_page(p),
            Effect::PageDone { page, at, outcome } => page_done(*page, *at, outcome),
            Effect::Labels { incident, labels } => stmt(
                "UPDATE incidents SET labels = $2 WHERE id = $1",
                vec![Box::new(sql_id(*incident)), Box::new(to_json(labels))],
            ),
            Effect::Override(o) => insert_override(o),
            Effect::OverrideDeleted { id, at } => stmt(
                "UPDATE overrides SET deleted_at = $2 WHERE id = $1",
                vec![Box::new(sql_id(*id)), Box::new(at.0)],
            ),
            Effect::Silence(s) => insert_window("silences", s),
            Effect::SilenceExpired { id, at } => {
                move_end("silences", *id, *at, "expired".into(), *at)
            }
            Effect::Maintenance(m) => insert_window("maintenance", m),
            Effect::MaintenanceEnd { id, to, by, at } => {
                move_end("maintenance", *id, *to, by.clone(), *at)
            }
            // Counted by the engine loop, not stored.
            Effect::Silenced { .. } => continue,
            // Done after the commit; what it is for is in the incident's status.
            Effect::AckSilence(_) => continue,
            // Released pages were recorded when they were held.
            Effect::Send { .. } => continue,
        });
    }
    // Last, which changes nothing: no other statement reads or refers to alert rows.
    if !alerts.is_empty() {
        stmts.push(upsert_alerts(&alerts));
    }
    run(tx, &stmts).await
}

/// Prepares each distinct statement once (cached per connection), then sends them all
/// before reading any answer.
async fn run(tx: &Transaction<'_>, stmts: &[Stmt]) -> Result<(), tokio_postgres::Error> {
    let mut prepared: HashMap<&str, tokio_postgres::Statement> = HashMap::new();
    for s in stmts {
        if !prepared.contains_key(s.sql.as_ref()) {
            prepared.insert(s.sql.as_ref(), tx.prepare_cached(&s.sql).await?);
        }
    }
    let prepared = &prepared;
    let changed = try_join_all(stmts.iter().map(|s| async move {
        let params: Vec<&(dyn ToSql + Sync)> = s
            .params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect();
        tx.execute(&prepared[s.sql.as_ref()], &params).await
    }))
    .await?;
    for (s, changed) in stmts.iter().zip(changed) {
        if changed > 0 {
            continue;
        }
        match s.unchanged {
            Unchanged::Fine => {}
            Unchanged::NoIncident(id) => tracing::warn!(
                incident = id,
                "status update for an incident the store does not have"
            ),
            Unchanged::NoPage(page) => {
                tracing::warn!(page, "outcome for a page the store does not have")
            }
        }
    }
    Ok(())
}

fn insert_incident(o: &IncidentOpened) -> Stmt {
    stmt(
        "INSERT INTO incidents (id, source, group_key, title, labels, created_at, policy_name, \
         policy, state, updated_at, resolved_at, acked_by, acked_at, wake_at, escalation) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'triggered', $6, NULL, NULL, NULL, NULL, $9)",
        vec![
            Box::new(sql_id(o.id)),
            Box::new(o.source.clone()),
            Box::new(o.group_key.clone()),
            Box::new(o.title.clone()),
            Box::new(to_json(&o.labels)),
            Box::new(o.created_at.0),
            Box::new(o.policy.name.clone()),
            Box::new(to_json(&*o.policy)),
            Box::new(to_json(&Escalation::default())),
        ],
    )
}

fn update_status(s: &IncidentStatus) -> Stmt {
    Stmt {
        unchanged: Unchanged::NoIncident(s.id),
        ..stmt(
            "UPDATE incidents SET state = $2, updated_at = $3, resolved_at = $4, acked_by = $5, \
             acked_at = $6, wake_at = $7, escalation = $8, alerts_truncated = $9 WHERE id = $1",
            vec![
                Box::new(sql_id(s.id)),
                Box::new(s.state.as_str().to_string()),
                Box::new(s.updated_at.0),
                Box::new(s.resolved_at.map(|t| t.0)),
                Box::new(s.acked_by.clone()),
                Box::new(s.acked_at.map(|t| t.0)),
                Box::new(s.wake_at.map(|t| t.0)),
                Box::new(to_json(&s.escalation)),
                Box::new(sql_id(s.alerts_truncated)),
            ],
        )
    }
}

/// All the alerts of a commit in one upsert. A row may be written twice in one commit
/// (fired and resolved within a turn); one statement may not touch a row twice, and
/// the later upsert would overwrite every column of the earlier, so only the last is kept.
fn upsert_alerts(records: &[&AlertRecord]) -> Stmt {
    let mut last: HashMap<(IncidentId, &str), usize> = HashMap::with_capacity(records.len());
    let mut kept: Vec<&AlertRecord> = Vec::with_capacity(records.len());
    for a in records {
        match last.entry((a.incident, a.alert.fingerprint.as_str())) {
            std::collections::hash_map::Entry::Occupied(e) => kept[*e.get()] = a,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(kept.len());
                kept.push(a);
            }
        }
    }
    let column = |f: fn(&AlertRecord) -> i64| kept.iter().map(|a| f(a)).collect::<Vec<_>>();
    let text = |f: fn(&AlertRecord) -> String| kept.iter().map(|a| f(a)).collect::<Vec<_>>();
    stmt(
        "INSERT INTO alerts (incident_id, fingerprint, status, starts_at, ends_at, labels, \
         annotations, generator_url, received_at) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], \
         $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[]) \
         ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status, \
         starts_at = excluded.starts_at, ends_at = excluded.ends_at, labels = excluded.labels, \
         annotations = excluded.annotations, generator_url = excluded.generator_url, \
         received_at = excluded.received_at",
        vec![
            Box::new(column(|a| sql_id(a.incident))),
            Box::new(text(|a| a.alert.fingerprint.clone())),
            Box::new(text(|a| a.alert.status.as_str().to_string())),
            Box::new(column(|a| a.alert.starts_at.0)),
            Box::new(
                kept.iter()
                    .map(|a| a.alert.ends_at.map(|t| t.0))
                    .collect::<Vec<_>>(),
            ),
            Box::new(text(|a| a.alert.labels.json().to_string())),
            Box::new(text(|a| a.alert.annotations.json().to_string())),
            Box::new(text(|a| a.alert.generator_url.clone())),
            Box::new(column(|a| a.received_at.0)),
        ],
    )
}

fn insert_event(e: &HistoryEvent) -> Stmt {
    stmt(
        "INSERT INTO events (incident_id, at, kind, actor, via, reference, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            Box::new(sql_id(e.incident)),
            Box::new(e.at.0),
            Box::new(e.kind.as_str().to_string()),
            Box::new(e.actor.clone()),
            Box::new(e.via.as_str().to_string()),
            Box::new(e.reference.clone()),
            Box::new(e.detail.clone()),
        ],
    )
}

/// Records the intent. A page already recorded (same id, e.g. re-sent after a restart
/// or a takeover) keeps its row.
fn insert_page(p: &Page) -> Stmt {
    stmt(
        "INSERT INTO pages (id, incident_id, at, kind, step, cycle, target, contact, notifier, \
         method, to_addr, topic, late_by_ms, reason, retry_until, hold_until, status, attempts, \
         error, done_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         'pending', 0, NULL, NULL) \
         ON CONFLICT (id) DO NOTHING",
        vec![
            Box::new(sql_id(p.id)),
            Box::new(sql_id(p.incident)),
            Box::new(p.at.0),
            Box::new(p.kind.as_str().to_string()),
            Box::new(i64::from(p.step)),
            Box::new(i64::from(p.cycle)),
            Box::new(p.target.clone()),
            Box::new(p.contact.clone()),
            Box::new(p.notifier.clone()),
            Box::new(p.method.map(i64::from)),
            Box::new(p.to.clone()),
            Box::new(p.topic.clone()),
            Box::new(p.late_by_ms.map(sql_id)),
            Box::new(p.reason.clone()),
            Box::new(p.retry_until.map(|t| t.0)),
            Box::new(p.hold_until.map(|t| t.0)),
        ],
    )
}

fn page_done(page: PageId, at: Timestamp, outcome: &Outcome) -> Stmt {
    let (attempts, error) = match outcome {
        Outcome::Delivered { attempts } => (*attempts, None),
        Outcome::Failed {
            attempts, error, ..
        } => (*attempts, Some(error.clone())),
        Outcome::Cancelled { reason } | Outcome::NotReached { reason } => (0, Some(reason.clone())),
        Outcome::Placed { attempts, .. } => (*attempts, None),
    };
    let status = PageStatus::of(outcome).as_str();
    // A call's end can be reported before the notifier's report that it was placed:
    // "placed" only ever follows "pending".
    Stmt {
        unchanged: if matches!(outcome, Outcome::Placed { .. }) {
            Unchanged::Fine
        } else {
            Unchanged::NoPage(page)
        },
        ..stmt(
            "UPDATE pages SET status = $2, attempts = $3, error = $4, done_at = $5 \
             WHERE id = $1 AND ($2 <> 'placed' OR status = 'pending')",
            vec![
                Box::new(sql_id(page)),
                Box::new(status.to_string()),
                Box::new(i64::from(attempts)),
                Box::new(error),
                Box::new(at.0),
            ],
        )
    }
}

/// The row with placeholder status fields, as in SQLite.
fn insert_override(o: &OverrideRecord) -> Stmt {
    let (kind, contact, with) = match &o.change {
        Change::Add { contact } => ("add", contact, None),
        Change::Remove { contact } => ("remove", contact, None),
        Change::Replace { contact, with } => ("replace", contact, Some(with.clone())),
    };
    stmt(
        "INSERT INTO overrides (id, schedule, kind, contact, with_contact, from_ms, to_ms, \"by\", \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            Box::new(sql_id(o.id)),
            Box::new(o.schedule.clone()),
            Box::new(kind.to_string()),
            Box::new(contact.clone()),
            Box::new(with),
            Box::new(o.from.0),
            Box::new(o.to.0),
            Box::new(o.by.clone()),
            Box::new(o.created_at.0),
        ],
    )
}

/// A silence or a maintenance window, into its table.
fn insert_window(table: &'static str, w: &WindowRecord) -> Stmt {
    stmt(
        format!(
            "INSERT INTO {table} (id, matchers, from_ms, to_ms, comment, \"by\", created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        vec![
            Box::new(sql_id(w.id)),
            Box::new(to_json(&w.matchers)),
            Box::new(w.from.0),
            Box::new(w.to.0),
            Box::new(w.comment.clone()),
            Box::new(w.by.clone()),
            Box::new(w.created_at.0),
        ],
    )
}

/// Moves a window's end to `to`, logging who did it and when.
fn move_end(table: &'static str, id: u64, to: Timestamp, by: String, at: Timestamp) -> Stmt {
    stmt(
        format!(
            "UPDATE {table} SET to_ms = $2, changes = (changes::jsonb || jsonb_build_array(\
             jsonb_build_object('at', $3::bigint, 'by', $4::text, 'to', $2::bigint)))::text \
             WHERE id = $1"
        ),
        vec![
            Box::new(sql_id(id)),
            Box::new(to.0),
            Box::new(at.0),
            Box::new(by),
        ],
    )
}

/// Most old inbound ids deleted per sighting, as in SQLite.
const PRUNE_BATCH: i64 = 64;

/// Remembers an inbound id, pruning a few old ones; `true` when it is new. Two racing
/// for one id: the second waits on the first's row and then inserts nothing.
pub(super) async fn first_sight(
    client: &mut Client,
    channel: &str,
    id: &str,
    at: Timestamp,
    prune_before: Timestamp,
) -> Result<bool> {
    const DOING: &str = "remembering a message id";
    let tx = client.transaction().await.or_pg(DOING)?;
    tx.execute(
        "DELETE FROM inbound_seen WHERE (channel, id) IN \
         (SELECT channel, id FROM inbound_seen WHERE at < $1 ORDER BY at LIMIT $2)",
        &[&prune_before.0, &PRUNE_BATCH],
    )
    .await
    .or_pg(DOING)?;
    let new = tx
        .execute(
            "INSERT INTO inbound_seen (channel, id, at) VALUES ($1, $2, $3) \
             ON CONFLICT (channel, id) DO NOTHING",
            &[&channel, &id, &at.0],
        )
        .await
        .or_pg(DOING)?;
    tx.commit().await.or_pg(DOING)?;
    Ok(new == 1)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::PostgresStore;
    use super::super::scratch::ScratchServer;
    use crate::engine::{AlertStatus, Effect};
    use crate::store::contract::{alert, opening, t};
    use crate::store::fence::Fence;
    use crate::store::{Detail, Store};

    /// An alert's fire and its resolution, sent by Alertmanager moments apart, can land in
    /// one engine turn: the commit must not fail on the row written twice (one statement
    /// holds every alert of the commit), and the row ends as the resolution left it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_alert_fired_and_resolved_in_one_commit_is_stored_resolved() {
        let store = PostgresStore::connect(
            ScratchServer::shared().fresh_config().await,
            Arc::new(Fence::new()),
        )
        .await
        .expect("connect to the scratch server");
        let at = t("2026-11-21T10:00:00Z");
        let later = t("2026-11-21T10:00:30Z");
        let mut effects = opening(1, at);
        let Effect::Alert(mut resolution) = alert(1, "a1b2c3d4e5f60718", at) else {
            unreachable!()
        };
        resolution.alert.status = AlertStatus::Resolved;
        resolution.alert.ends_at = Some(later);
        resolution.received_at = later;
        effects.push(Effect::Alert(resolution));
        store.commit(effects).await.expect("the commit lands");

        let view = store.incident(1, Detail::MESSAGE).await.unwrap().unwrap();
        assert_eq!(view.alerts.len(), 1, "one row per (incident, fingerprint)");
        assert_eq!(view.alerts[0].status, AlertStatus::Resolved);
        assert_eq!(view.alerts[0].ends_at, Some(later));
        assert_eq!(view.alerts[0].received_at, later);
    }
}
