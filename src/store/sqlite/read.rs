//! Rows to what the engine and the API need: the restore set and the incident views.

use crate::store::stored::{change, page_view};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{OrRead, corrupt, from_json, get_u64, sql_u64};
use crate::engine::{
    AlertStatus, Escalation, EventKind, IncidentId, IncidentState, LabelSet, OverrideRecord, Page,
    PageKind, PolicySnapshot, Via, WindowRecord, fingerprint_key, labels_hash,
};
use crate::store::{
    AlertView, Detail, EventId, EventView, IncidentPage, IncidentView, ListQuery, PageView,
    Restored, RestoredIncident, StoreError,
};
use crate::time::Timestamp;

/// How many incidents are in each state (every state present, zero when none).
pub(super) fn counts(conn: &Connection) -> Result<BTreeMap<IncidentState, u64>, StoreError> {
    let mut counts: BTreeMap<IncidentState, u64> = [
        IncidentState::Triggered,
        IncidentState::Acknowledged,
        IncidentState::Resolved,
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    let mut stmt = conn
        .prepare_cached("SELECT state, COUNT(*) FROM incidents GROUP BY state")
        .or_read()?;
    let mut rows = stmt.query([]).or_read()?;
    while let Some(row) = rows.next().or_read()? {
        let state: String = row.get(0).or_read()?;
        let state = IncidentState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: "incident state".into(),
            detail: format!("unknown state {state:?}"),
        })?;
        counts.insert(state, get_u64(row, 1).or_read()?);
    }
    Ok(counts)
}

const INCIDENT_COLUMNS: &str = "id, source, group_key, title, labels, created_at, \
    policy_name, state, updated_at, resolved_at, acked_by, acked_at, escalation, \
    alerts_truncated";

/// Open incidents, those resolved since `since`, the next ids and the unsent pages.
pub(super) fn restored(tx: &Transaction<'_>, since: Timestamp) -> Result<Restored, StoreError> {
    let open = restored_incidents(
        tx,
        "WHERE state IN ('triggered', 'acknowledged')",
        params![],
    )?;
    let recent_resolved = restored_incidents(
        tx,
        "WHERE state = 'resolved' AND resolved_at >= ?1",
        params![since.0],
    )?;
    // Retention may have deleted the newest rows; `meta` keeps the mark it passed, so
    // an id is never handed out twice (an old ack link must not act on a new incident).
    let next_id = |table: &str| -> Result<u64, StoreError> {
        let max: Option<i64> = tx
            .query_row(&format!("SELECT MAX(id) FROM {table}"), [], |r| r.get(0))
            .or_read()?;
        let kept: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [super::retention::next_id_key(table)],
                |r| r.get(0),
            )
            .optional()
            .or_read()?;
        let kept = kept.and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
        Ok(max.map_or(1, |m| m.max(0) as u64 + 1).max(kept))
    };
    let next_incident_id = next_id("incidents")?;
    let next_page_id = next_id("pages")?;

    let mut stmt = tx
        .prepare_cached(
            "SELECT id, incident_id, at, kind, step, cycle, target, contact, notifier, method, \
             to_addr, topic, late_by_ms, reason, retry_until, hold_until FROM pages \
             WHERE status = 'pending' ORDER BY id",
        )
        .or_read()?;
    let mut rows = stmt.query([]).or_read()?;
    let mut pending_pages = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let mut page = page_row(row).or_read()?;
        // A page held for quiet hours stays held across a restart.
        page.hold_until = row.get::<_, Option<i64>>(15).or_read()?.map(Timestamp);
        pending_pages.push(page);
    }
    let overrides = overrides(tx, None, since)?;
    let next_override_id = next_id("overrides")?;
    let silences = windows(tx, SILENCES, since)?;
    let next_silence_id = next_id(SILENCES)?;
    let maintenance = windows(tx, MAINTENANCE, since)?;
    let next_maintenance_id = next_id(MAINTENANCE)?;
    Ok(Restored {
        open,
        recent_resolved,
        next_incident_id,
        next_page_id,
        pending_pages,
        overrides,
        next_override_id,
        silences,
        next_silence_id,
        maintenance,
        next_maintenance_id,
    })
}

/// The table of silences.
pub(super) const SILENCES: &str = "silences";
/// The table of maintenance windows.
pub(super) const MAINTENANCE: &str = "maintenance";

/// Silences or maintenance windows (`table`) that end after `ending_after`, oldest first.
pub(super) fn windows(
    conn: &Connection,
    table: &str,
    ending_after: Timestamp,
) -> Result<Vec<WindowRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT id, matchers, from_ms, to_ms, comment, by, created_at FROM {table} \
             WHERE to_ms > ?1 ORDER BY id"
        ))
        .or_read()?;
    let mut rows = stmt.query(params![ending_after.0]).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let id = get_u64(row, 0).or_read()?;
        let matchers: String = row.get(1).or_read()?;
        out.push(WindowRecord {
            id,
            matchers: serde_json::from_str(&matchers).map_err(|e| StoreError::Corrupt {
                what: format!("matchers of {table} {id}"),
                detail: e.to_string(),
            })?,
            from: Timestamp(row.get(2).or_read()?),
            to: Timestamp(row.get(3).or_read()?),
            comment: row.get(4).or_read()?,
            by: row.get(5).or_read()?,
            created_at: Timestamp(row.get(6).or_read()?),
        });
    }
    Ok(out)
}

/// Overrides not deleted that end after `ending_after`, oldest first.
pub(super) fn overrides(
    conn: &Connection,
    schedule: Option<&str>,
    ending_after: Timestamp,
) -> Result<Vec<OverrideRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, schedule, kind, contact, with_contact, from_ms, to_ms, by, created_at \
             FROM overrides WHERE deleted_at IS NULL AND to_ms > ?1 \
             AND (?2 IS NULL OR schedule = ?2) ORDER BY id",
        )
        .or_read()?;
    let mut rows = stmt.query(params![ending_after.0, schedule]).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let kind: String = row.get(2).or_read()?;
        let contact: String = row.get(3).or_read()?;
        let with: Option<String> = row.get(4).or_read()?;
        let change = change(&kind, contact, with)?;
        out.push(OverrideRecord {
            id: get_u64(row, 0).or_read()?,
            schedule: row.get(1).or_read()?,
            change,
            from: Timestamp(row.get(5).or_read()?),
            to: Timestamp(row.get(6).or_read()?),
            by: row.get(7).or_read()?,
            created_at: Timestamp(row.get(8).or_read()?),
        });
    }
    Ok(out)
}

/// Reads the incidents that `filter` (a `WHERE` on `incidents`) selects into what the
/// engine keeps: fingerprints become keys, labels a hash, and a policy's JSON is parsed
/// once and shared by every incident that stored the same text (they opened under the
/// same config). Rows come in index order, not sorted by SQLite (that would copy every
/// policy's text into a sorter), and the alerts of them all in one query: a restart
/// with 10,000 open incidents runs two statements, not 10,001.
fn restored_incidents(
    tx: &Transaction<'_>,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<RestoredIncident>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT id, source, group_key, state, created_at, resolved_at, acked_by, acked_at, \
             policy, escalation, labels, alerts_truncated FROM incidents {filter}"
        ))
        .or_read()?;
    let mut policies: HashMap<String, Arc<PolicySnapshot>> = HashMap::new();
    let mut rows = stmt.query(args).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let id = get_u64(row, 0).or_read()?;
        let policy = {
            let text = row.get_ref(8).or_read()?.as_str().map_err(|e| {
                StoreError::Read(rusqlite::Error::FromSqlConversionFailure(
                    8,
                    Type::Text,
                    Box::new(e),
                ))
            })?;
            match policies.get(text) {
                Some(p) => p.clone(),
                None => {
                    let p = Arc::new(from_json::<PolicySnapshot>(text, id, "policy")?);
                    policies.insert(text.to_string(), p.clone());
                    p
                }
            }
        };
        let escalation: String = row.get(9).or_read()?;
        let labels: String = row.get(10).or_read()?;
        let labels: BTreeMap<String, String> = from_json(&labels, id, "labels")?;
        out.push(RestoredIncident {
            id,
            source: row.get(1).or_read()?,
            group_key: row.get(2).or_read()?,
            state: state_at(row, 3, id)?,
            created_at: Timestamp(row.get(4).or_read()?),
            resolved_at: row.get::<_, Option<i64>>(5).or_read()?.map(Timestamp),
            acked_by: row.get(6).or_read()?,
            acked_at: row.get::<_, Option<i64>>(7).or_read()?.map(Timestamp),
            policy,
            escalation: from_json::<Escalation>(&escalation, id, "escalation")?,
            alerts: Vec::new(),
            labels_hash: labels_hash(&labels),
            labels: LabelSet::from_map(&labels),
            alerts_truncated: get_u64(row, 11).or_read()?,
        });
    }
    drop(rows);
    out.sort_unstable_by_key(|r| r.id);

    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT alerts.incident_id, alerts.fingerprint, alerts.status, alerts.starts_at \
             FROM incidents JOIN alerts ON alerts.incident_id = incidents.id {filter}"
        ))
        .or_read()?;
    let mut rows = stmt.query(args).or_read()?;
    let mut at = 0;
    while let Some(row) = rows.next().or_read()? {
        let id = get_u64(row, 0).or_read()?;
        // An incident's alerts come together: look it up only when it changes.
        if out.get(at).is_none_or(|r| r.id != id) {
            match out.binary_search_by_key(&id, |r| r.id) {
                Ok(i) => at = i,
                Err(_) => continue,
            }
        }
        let fingerprint = row.get_ref(1).or_read()?.as_str().unwrap_or_default();
        let alert = (
            fingerprint_key(fingerprint),
            alert_status_at(row, 2, id)?,
            Timestamp(row.get(3).or_read()?),
        );
        out[at].alerts.push(alert);
    }
    Ok(out)
}

/// Newest first, with their first `query.alerts` alerts, without history.
pub(super) fn incidents(
    tx: &Transaction<'_>,
    query: ListQuery,
) -> Result<IncidentPage, StoreError> {
    let mut incidents = Vec::new();
    let next = each_incident(tx, query, &mut |v| incidents.push(v))?;
    Ok(IncidentPage { incidents, next })
}

/// [`incidents`] one at a time: each incident is read with its alerts and handed over
/// before the next is read. One more row than asked is read to know whether a next page
/// exists; returns its `before`.
pub(super) fn each_incident(
    tx: &Transaction<'_>,
    query: ListQuery,
    each: &mut dyn FnMut(IncidentView),
) -> Result<Option<IncidentId>, StoreError> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX - 1);
    let before = match query.before {
        Some(id) => sql_u64(id).or_read()?,
        None => i64::MAX,
    };
    let mut stmt;
    let mut rows = match query.state {
        Some(state) => {
            stmt = tx
                .prepare_cached(&format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state = ?1 AND id < ?2 \
                     ORDER BY id DESC LIMIT ?3"
                ))
                .or_read()?;
            stmt.query(params![state.as_str(), before, limit + 1])
                .or_read()?
        }
        None => {
            stmt = tx
                .prepare_cached(&format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id < ?1 \
                     ORDER BY id DESC LIMIT ?2"
                ))
                .or_read()?;
            stmt.query(params![before, limit + 1]).or_read()?
        }
    };
    let (mut read, mut last) = (0, None);
    while let Some(row) = rows.next().or_read()? {
        if read == query.limit {
            return Ok(last);
        }
        let mut view = incident_view(row)?;
        view.alerts = alert_views(tx, view.id, query.alerts)?;
        (view.alerts_total, view.alerts_firing) = alert_counts(tx, view.id)?;
        read += 1;
        last = Some(view.id);
        each(view);
    }
    Ok(None)
}

/// One incident with as many of its alerts, history entries and pages as `detail` says.
pub(super) fn incident(
    tx: &Transaction<'_>,
    id: IncidentId,
    detail: Detail,
) -> Result<Option<IncidentView>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"
        ))
        .or_read()?;
    let mut rows = stmt.query([sql_u64(id).or_read()?]).or_read()?;
    let Some(row) = rows.next().or_read()? else {
        return Ok(None);
    };
    let mut view = incident_view(row)?;
    drop(rows);
    view.alerts = alert_views(tx, id, detail.alerts)?;
    (view.alerts_total, view.alerts_firing) = alert_counts(tx, id)?;
    if detail.history > 0 {
        let (history, next) = event_views(tx, id, detail.history, detail.history_before)?;
        view.history = Some(history);
        view.history_next = next;
    }
    if detail.pages > 0 {
        let (pages, total) = page_views(tx, id, detail.pages)?;
        view.pages = Some(pages);
        view.pages_total = Some(total);
    }
    Ok(Some(view))
}

/// When the ack link `link` acknowledged incident `id` (the first time), if it did.
pub(super) fn acked_by_link(
    conn: &Connection,
    id: IncidentId,
    link: &str,
) -> Result<Option<Timestamp>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT MIN(at) FROM events WHERE incident_id = ?1 AND kind = ?2 AND via = ?3 \
             AND reference = ?4",
        )
        .or_read()?;
    let at: Option<i64> = stmt
        .query_row(
            params![
                sql_u64(id).or_read()?,
                EventKind::Acked.as_str(),
                Via::Link.as_str(),
                link
            ],
            |r| r.get(0),
        )
        .or_read()?;
    Ok(at.map(Timestamp))
}

/// The open incident of a group (there is at most one; the newest, should a crash have
/// left two), with its alerts.
pub(super) fn open_incident_of_group(
    tx: &Transaction<'_>,
    source: &str,
    group_key: &str,
) -> Result<Option<IncidentView>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT id FROM incidents WHERE state IN ('triggered', 'acknowledged') \
             AND source = ?1 AND group_key = ?2 ORDER BY id DESC LIMIT 1",
        )
        .or_read()?;
    let mut rows = stmt.query(params![source, group_key]).or_read()?;
    let Some(row) = rows.next().or_read()? else {
        return Ok(None);
    };
    let id = get_u64(row, 0).or_read()?;
    drop(rows);
    incident(tx, id, Detail::MESSAGE)
}

/// An incident row (selected with [`INCIDENT_COLUMNS`]) without its alerts.
fn incident_view(row: &Row<'_>) -> Result<IncidentView, StoreError> {
    let id = get_u64(row, 0).or_read()?;
    let labels: String = row.get(4).or_read()?;
    let escalation: String = row.get(12).or_read()?;
    let escalation = from_json::<Escalation>(&escalation, id, "escalation")?;
    Ok(IncidentView {
        id,
        state: state_at(row, 7, id)?,
        title: row.get(3).or_read()?,
        group_key: row.get(2).or_read()?,
        source: row.get(1).or_read()?,
        labels: from_json(&labels, id, "labels")?,
        alerts: Vec::new(),
        alerts_total: 0,
        alerts_firing: 0,
        alerts_truncated: get_u64(row, 13).or_read()?,
        created_at: Timestamp(row.get(5).or_read()?),
        updated_at: Timestamp(row.get(8).or_read()?),
        resolved_at: row.get::<_, Option<i64>>(9).or_read()?.map(Timestamp),
        acked_by: row.get(10).or_read()?,
        acked_at: row.get::<_, Option<i64>>(11).or_read()?.map(Timestamp),
        snoozed_until: escalation.snoozed_until,
        ack_expires_at: escalation.ack_expires_at,
        step: escalation.step,
        cycle: escalation.cycle,
        policy: row.get(6).or_read()?,
        next_escalation_at: escalation.next_step_at,
        history: None,
        history_next: None,
        pages: None,
        pages_total: None,
    })
}

/// (all alerts, firing alerts) of an incident.
fn alert_counts(tx: &Transaction<'_>, id: IncidentId) -> Result<(u64, u64), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END), 0) \
             FROM alerts WHERE incident_id = ?1",
        )
        .or_read()?;
    stmt.query_row([sql_u64(id).or_read()?], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })
    .or_read()
}

/// Firing alerts first, then the oldest; at most `cap`.
fn alert_views(
    tx: &Transaction<'_>,
    id: IncidentId,
    cap: usize,
) -> Result<Vec<AlertView>, StoreError> {
    if cap == 0 {
        return Ok(Vec::new());
    }
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let mut stmt = tx
        .prepare_cached(
            "SELECT fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, \
             received_at FROM alerts WHERE incident_id = ?1 \
             ORDER BY status, starts_at, fingerprint LIMIT ?2",
        )
        .or_read()?;
    let mut rows = stmt.query(params![sql_u64(id).or_read()?, cap]).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let labels: String = row.get(4).or_read()?;
        let annotations: String = row.get(5).or_read()?;
        out.push(AlertView {
            fingerprint: row.get(0).or_read()?,
            status: alert_status_at(row, 1, id)?,
            starts_at: Timestamp(row.get(2).or_read()?),
            ends_at: row.get::<_, Option<i64>>(3).or_read()?.map(Timestamp),
            labels: from_json(&labels, id, "alert labels")?,
            annotations: from_json(&annotations, id, "alert annotations")?,
            generator_url: row.get(6).or_read()?,
            received_at: Timestamp(row.get(7).or_read()?),
        });
    }
    Ok(out)
}

/// The `limit` most recent history entries (before the entry `before`, when given),
/// oldest first, and the entry to read older ones before when there are any. Entries are
/// in the order they happened (`at`, then the order they were written).
fn event_views(
    tx: &Transaction<'_>,
    id: IncidentId,
    limit: usize,
    before: Option<EventId>,
) -> Result<(Vec<EventView>, Option<EventId>), StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX - 1);
    let incident = sql_u64(id).or_read()?;
    let mut stmt;
    let mut rows = match before {
        None => {
            stmt = tx
                .prepare_cached(
                    "SELECT at, kind, actor, via, reference, detail, id FROM events \
                     WHERE incident_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
                )
                .or_read()?;
            stmt.query(params![incident, limit + 1]).or_read()?
        }
        Some(before) => {
            stmt = tx
                .prepare_cached(
                    "SELECT at, kind, actor, via, reference, detail, id FROM events \
                     WHERE incident_id = ?1 \
                       AND (at, id) < (SELECT at, id FROM events WHERE id = ?2) \
                     ORDER BY at DESC, id DESC LIMIT ?3",
                )
                .or_read()?;
            stmt.query(params![incident, sql_u64(before).or_read()?, limit + 1])
                .or_read()?
        }
    };
    let mut out = Vec::new();
    let mut ids = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let kind: String = row.get(1).or_read()?;
        let via: String = row.get(3).or_read()?;
        out.push(EventView {
            at: Timestamp(row.get(0).or_read()?),
            kind: EventKind::parse(&kind)
                .ok_or_else(|| corrupt(id, "history", format!("unknown event kind {kind:?}")))?,
            actor: row.get(2).or_read()?,
            via: Via::parse(&via)
                .ok_or_else(|| corrupt(id, "history", format!("unknown channel {via:?}")))?,
            reference: row.get(4).or_read()?,
            detail: row.get(5).or_read()?,
        });
        ids.push(get_u64(row, 6).or_read()?);
    }
    let limit = limit as usize;
    let next = (out.len() > limit).then(|| ids[limit - 1]);
    out.truncate(limit);
    out.reverse();
    Ok((out, next))
}

/// The `limit` most recent pages, oldest first, and how many the incident has in all.
fn page_views(
    tx: &Transaction<'_>,
    id: IncidentId,
    limit: usize,
) -> Result<(Vec<PageView>, u64), StoreError> {
    let incident = sql_u64(id).or_read()?;
    let total: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM pages WHERE incident_id = ?1")
        .or_read()?
        .query_row([incident], |r| r.get(0))
        .or_read()?;
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, incident_id, at, kind, step, cycle, target, contact, notifier, method, \
             to_addr, topic, late_by_ms, reason, retry_until, status, attempts, error, done_at \
             FROM pages WHERE incident_id = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .or_read()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![incident, limit]).or_read()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().or_read()? {
        let page = page_row(row).or_read()?;
        let status: String = row.get(15).or_read()?;
        out.push(page_view(
            id,
            page,
            &status,
            row.get(16).or_read()?,
            row.get(17).or_read()?,
            row.get::<_, Option<i64>>(18).or_read()?.map(Timestamp),
        )?);
    }
    out.reverse();
    Ok((out, total.max(0) as u64))
}

/// A page from the first 15 columns of a `pages` row (in table order, `retry_until` last).
fn page_row(row: &Row<'_>) -> rusqlite::Result<Page> {
    let kind: String = row.get(3)?;
    Ok(Page {
        id: get_u64(row, 0)?,
        incident: get_u64(row, 1)?,
        at: Timestamp(row.get(2)?),
        kind: PageKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                Type::Text,
                format!("unknown page kind {kind:?}").into(),
            )
        })?,
        step: row.get(4)?,
        cycle: row.get(5)?,
        target: row.get(6)?,
        contact: row.get(7)?,
        notifier: row.get(8)?,
        method: row.get(9)?,
        to: row.get(10)?,
        topic: row.get(11)?,
        late_by_ms: row
            .get::<_, Option<i64>>(12)?
            .map(|v| {
                u64::try_from(v).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(12, Type::Integer, Box::new(e))
                })
            })
            .transpose()?,
        reason: row.get(13)?,
        retry_until: row.get::<_, Option<i64>>(14)?.map(Timestamp),
        hold_until: None,
    })
}

fn state_at(row: &Row<'_>, idx: usize, id: IncidentId) -> Result<IncidentState, StoreError> {
    let s: String = row.get(idx).or_read()?;
    IncidentState::parse(&s).ok_or_else(|| corrupt(id, "state", format!("unknown state {s:?}")))
}

fn alert_status_at(row: &Row<'_>, idx: usize, id: IncidentId) -> Result<AlertStatus, StoreError> {
    let s: String = row.get(idx).or_read()?;
    match s.as_str() {
        "firing" => Ok(AlertStatus::Firing),
        "resolved" => Ok(AlertStatus::Resolved),
        _ => Err(corrupt(id, "alert status", format!("unknown status {s:?}"))),
    }
}
