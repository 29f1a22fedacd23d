//! Effects to rows: each engine effect is one statement inside the group's transaction.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::{Inbound, WriteRequest, sql_u64, to_json};
use crate::engine::{
    AlertRecord, Change, Effect, Escalation, HistoryEvent, IncidentId, IncidentOpened,
    IncidentStatus, Outcome, OverrideId, OverrideRecord, Page, PageId, WindowId, WindowRecord,
};
use crate::store::PageStatus;
use crate::time::Timestamp;

/// Writes the effects of every request in order, in one immediate transaction. Of several
/// `Status` effects for one incident only the last is written: it carries the whole state.
/// Answers, for each request, `false` when it saw an inbound id already remembered.
pub(super) fn group(conn: &mut Connection, group: &[WriteRequest]) -> rusqlite::Result<Vec<bool>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let effects = || group.iter().flat_map(|r| r.effects.iter());
    let mut last_status: HashMap<IncidentId, usize> = HashMap::new();
    for (i, effect) in effects().enumerate() {
        if let Effect::Status(s) = effect {
            last_status.insert(s.id, i);
        }
    }
    for (i, effect) in effects().enumerate() {
        match effect {
            Effect::Opened(o) => insert_incident(&tx, o)?,
            Effect::Status(s) if last_status.get(&s.id) == Some(&i) => update_status(&tx, s)?,
            Effect::Status(_) => {}
            Effect::Alert(a) => upsert_alert(&tx, a)?,
            Effect::Event(e) => insert_event(&tx, e)?,
            Effect::Page(p) => insert_page(&tx, p)?,
            Effect::PageDone { page, at, outcome } => page_done(&tx, *page, *at, outcome)?,
            Effect::Labels { incident, labels } => update_labels(&tx, *incident, labels)?,
            Effect::Override(o) => insert_override(&tx, o)?,
            Effect::OverrideDeleted { id, at } => delete_override(&tx, *id, *at)?,
            Effect::Silence(s) => insert_window(&tx, "silences", s)?,
            Effect::SilenceExpired { id, at } => {
                move_end(&tx, "silences", *id, *at, "expired", *at)?
            }
            Effect::Maintenance(m) => insert_window(&tx, "maintenance", m)?,
            Effect::MaintenanceEnd { id, to, by, at } => {
                move_end(&tx, "maintenance", *id, *to, by, *at)?
            }
            // Counted by the engine loop, not stored.
            Effect::Silenced { .. } => {}
            // Done after the commit; what it is for is in the incident's status.
            Effect::AckSilence(_) => {}
            // Released pages were recorded when they were held.
            Effect::Send { .. } => {}
        }
    }
    for (name, value, at) in group.iter().filter_map(|r| r.source_state.as_ref()) {
        save_source_state(&tx, name, value, *at)?;
    }
    // In queue order, so that of two requests for one id in a group the first is new.
    let mut new = Vec::with_capacity(group.len());
    for r in group {
        new.push(match &r.inbound {
            Some(i) => inbound(&tx, i)?,
            None => true,
        });
    }
    tx.commit()?;
    Ok(new)
}

/// Most old inbound ids deleted per sighting: pruning rides along with each new message
/// and stays a small, bounded part of its transaction however long tocsin was down.
const PRUNE_BATCH: i64 = 64;

/// Remembers or forgets an inbound id; `true` when a `See` was the first.
fn inbound(tx: &Transaction<'_>, i: &Inbound) -> rusqlite::Result<bool> {
    match i {
        Inbound::See {
            channel,
            id,
            at,
            prune_before,
        } => {
            let mut prune = tx.prepare_cached(
                "DELETE FROM inbound_seen WHERE rowid IN \
                 (SELECT rowid FROM inbound_seen WHERE at < ?1 ORDER BY at LIMIT ?2)",
            )?;
            prune.execute(params![prune_before.0, PRUNE_BATCH])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO inbound_seen (channel, id, at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (channel, id) DO NOTHING",
            )?;
            Ok(insert.execute(params![channel, id, at.0])? == 1)
        }
        Inbound::Forget { channel, id } => {
            let mut forget =
                tx.prepare_cached("DELETE FROM inbound_seen WHERE channel = ?1 AND id = ?2")?;
            forget.execute(params![channel, id])?;
            Ok(true)
        }
    }
}

fn save_source_state(
    tx: &Transaction<'_>,
    name: &str,
    value: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO source_state (name, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?;
    stmt.execute(params![name, value, at.0])?;
    Ok(())
}

/// The row with placeholder status fields; the `Status` effect that always follows in the
/// same batch fills them in.
fn insert_override(tx: &Transaction<'_>, o: &OverrideRecord) -> rusqlite::Result<()> {
    let (kind, contact, with) = match &o.change {
        Change::Add { contact } => ("add", contact, None),
        Change::Remove { contact } => ("remove", contact, None),
        Change::Replace { contact, with } => ("replace", contact, Some(with)),
    };
    tx.prepare_cached(
        "INSERT INTO overrides (id, schedule, kind, contact, with_contact, from_ms, to_ms, by, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        sql_u64(o.id)?,
        o.schedule,
        kind,
        contact,
        with,
        o.from.0,
        o.to.0,
        o.by,
        o.created_at.0
    ])?;
    Ok(())
}

fn delete_override(tx: &Transaction<'_>, id: OverrideId, at: Timestamp) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE overrides SET deleted_at = ?2 WHERE id = ?1")?
        .execute(params![sql_u64(id)?, at.0])?;
    Ok(())
}

/// A silence or a maintenance window, into its table.
fn insert_window(tx: &Transaction<'_>, table: &str, w: &WindowRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (id, matchers, from_ms, to_ms, comment, by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![
        sql_u64(w.id)?,
        to_json(&w.matchers)?,
        w.from.0,
        w.to.0,
        w.comment,
        w.by,
        w.created_at.0
    ])?;
    Ok(())
}

/// Moves a window's end to `to`, logging who did it and when.
fn move_end(
    tx: &Transaction<'_>,
    table: &str,
    id: WindowId,
    to: Timestamp,
    by: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "UPDATE {table} SET to_ms = ?2, \
         changes = json_insert(changes, '$[#]', json_object('at', ?3, 'by', ?4, 'to', ?2)) \
         WHERE id = ?1"
    ))?
    .execute(params![sql_u64(id)?, to.0, at.0, by])?;
    Ok(())
}

fn insert_incident(tx: &Transaction<'_>, o: &IncidentOpened) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO incidents (id, source, group_key, title, labels, created_at, policy_name, \
         policy, state, updated_at, resolved_at, acked_by, acked_at, wake_at, escalation) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'triggered', ?6, NULL, NULL, NULL, NULL, ?9)",
    )?;
    stmt.execute(params![
        sql_u64(o.id)?,
        o.source,
        o.group_key,
        o.title,
        to_json(&o.labels)?,
        o.created_at.0,
        o.policy.name,
        to_json(&*o.policy)?,
        to_json(&Escalation::default())?,
    ])?;
    Ok(())
}

fn update_labels(
    tx: &Transaction<'_>,
    id: IncidentId,
    labels: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached("UPDATE incidents SET labels = ?2 WHERE id = ?1")?;
    stmt.execute(params![sql_u64(id)?, to_json(labels)?])?;
    Ok(())
}

fn update_status(tx: &Transaction<'_>, s: &IncidentStatus) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE incidents SET state = ?2, updated_at = ?3, resolved_at = ?4, acked_by = ?5, \
         acked_at = ?6, wake_at = ?7, escalation = ?8, alerts_truncated = ?9 WHERE id = ?1",
    )?;
    let changed = stmt.execute(params![
        sql_u64(s.id)?,
        s.state.as_str(),
        s.updated_at.0,
        s.resolved_at.map(|t| t.0),
        s.acked_by,
        s.acked_at.map(|t| t.0),
        s.wake_at.map(|t| t.0),
        to_json(&s.escalation)?,
        sql_u64(s.alerts_truncated)?,
    ])?;
    if changed == 0 {
        tracing::warn!(
            incident = s.id,
            "status update for an incident the store does not have"
        );
    }
    Ok(())
}

fn upsert_alert(tx: &Transaction<'_>, a: &AlertRecord) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO alerts (incident_id, fingerprint, status, starts_at, ends_at, labels, \
         annotations, generator_url, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status, \
         starts_at = excluded.starts_at, ends_at = excluded.ends_at, labels = excluded.labels, \
         annotations = excluded.annotations, generator_url = excluded.generator_url, \
         received_at = excluded.received_at",
    )?;
    let alert = &a.alert;
    stmt.execute(params![
        sql_u64(a.incident)?,
        alert.fingerprint,
        alert.status.as_str(),
        alert.starts_at.0,
        alert.ends_at.map(|t| t.0),
        alert.labels.json(),
        alert.annotations.json(),
        alert.generator_url,
        a.received_at.0,
    ])?;
    Ok(())
}

fn insert_event(tx: &Transaction<'_>, e: &HistoryEvent) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (incident_id, at, kind, actor, via, reference, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    stmt.execute(params![
        sql_u64(e.incident)?,
        e.at.0,
        e.kind.as_str(),
        e.actor,
        e.via.as_str(),
        e.reference,
        e.detail
    ])?;
    Ok(())
}

/// Records the intent. A page already recorded (same id, e.g. re-sent after a restart)
/// keeps its row.
fn insert_page(tx: &Transaction<'_>, p: &Page) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO pages (id, incident_id, at, kind, step, cycle, target, contact, notifier, \
         method, to_addr, topic, late_by_ms, reason, retry_until, hold_until, status, attempts, \
         error, done_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
         'pending', 0, NULL, NULL) \
         ON CONFLICT (id) DO NOTHING",
    )?;
    stmt.execute(params![
        sql_u64(p.id)?,
        sql_u64(p.incident)?,
        p.at.0,
        p.kind.as_str(),
        p.step,
        p.cycle,
        p.target,
        p.contact,
        p.notifier,
        p.method,
        p.to,
        p.topic,
        p.late_by_ms.map(sql_u64).transpose()?,
        p.reason,
        p.retry_until.map(|t| t.0),
        p.hold_until.map(|t| t.0),
    ])?;
    Ok(())
}

fn page_done(
    tx: &Transaction<'_>,
    page: PageId,
    at: Timestamp,
    outcome: &Outcome,
) -> rusqlite::Result<()> {
    let (attempts, error) = match outcome {
        Outcome::Delivered { attempts } => (*attempts, None),
        Outcome::Failed {
            attempts, error, ..
        } => (*attempts, Some(error.as_str())),
        Outcome::Cancelled { reason } | Outcome::NotReached { reason } => {
            (0, Some(reason.as_str()))
        }
        Outcome::Placed { attempts, .. } => (*attempts, None),
    };
    let status = PageStatus::of(outcome).as_str();
    // A call's end can be reported before the notifier's report that it was placed:
    // "placed" only ever follows "pending".
    let mut stmt = tx.prepare_cached(
        "UPDATE pages SET status = ?2, attempts = ?3, error = ?4, done_at = ?5 \
         WHERE id = ?1 AND (?2 <> 'placed' OR status = 'pending')",
    )?;
    let changed = stmt.execute(params![sql_u64(page)?, status, attempts, error, at.0])?;
    if changed == 0 && !matches!(outcome, Outcome::Placed { .. }) {
        tracing::warn!(page, "outcome for a page the store does not have");
    }
    Ok(())
}
