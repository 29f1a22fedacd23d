//! Rows to what the engine needs to resume (the restore set), the windows and
//! overrides, and the helpers every read shares (`views.rs` builds the incident views).

use crate::store::stored::change;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use super::{PgErrorExt, Result, corrupt, from_json, get_u64};
use crate::engine::{
    AlertStatus, Escalation, IncidentId, IncidentState, LabelSet, OverrideRecord, Page, PageKind,
    PolicySnapshot, WindowRecord, fingerprint_key, labels_hash,
};
use crate::store::{Restored, RestoredIncident, StoreError};
use crate::time::Timestamp;

pub(super) const DOING: &str = "reading the store";

/// Column `idx` of `row`; a value of the wrong type is corrupt data, not an outage.
pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T> {
    row.try_get(idx).map_err(|e| StoreError::Corrupt {
        what: format!("column {idx} of a row"),
        detail: e.to_string(),
    })
}

pub(super) fn ts(row: &Row, idx: usize) -> Result<Timestamp> {
    col::<i64>(row, idx).map(Timestamp)
}

pub(super) fn opt_ts(row: &Row, idx: usize) -> Result<Option<Timestamp>> {
    Ok(col::<Option<i64>>(row, idx)?.map(Timestamp))
}

pub(super) async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.or_pg(DOING)?;
    c.query(&stmt, params).await.or_pg(DOING)
}

/// How many incidents are in each state (every state present, zero when none).
pub(super) async fn counts<C: GenericClient>(c: &C) -> Result<BTreeMap<IncidentState, u64>> {
    let mut counts: BTreeMap<IncidentState, u64> = [
        IncidentState::Triggered,
        IncidentState::Acknowledged,
        IncidentState::Resolved,
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    for row in query(
        c,
        "SELECT state, COUNT(*) FROM incidents GROUP BY state",
        &[],
    )
    .await?
    {
        let state: String = col(&row, 0)?;
        let state = IncidentState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: "incident state".into(),
            detail: format!("unknown state {state:?}"),
        })?;
        counts.insert(state, get_u64(&row, 1)?);
    }
    Ok(counts)
}

/// The next id of `table`: one above the highest row, or the mark retention kept in
/// `meta` when it deleted the newest rows, whichever is higher.
pub(super) async fn next_id<C: GenericClient>(c: &C, table: &str) -> Result<u64> {
    let row = c
        .query_one(
            &format!(
                "SELECT (SELECT MAX(id) FROM {table}), \
                 (SELECT value FROM meta WHERE key = $1)"
            ),
            &[&super::retention::next_id_key(table)],
        )
        .await
        .or_pg(DOING)?;
    let max: Option<i64> = col(&row, 0)?;
    let kept: Option<String> = col(&row, 1)?;
    let kept = kept.and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
    Ok(max.map_or(1, |m| m.max(0) as u64 + 1).max(kept))
}

/// Open incidents, those resolved since `since`, the next ids and the unsent pages.
pub(super) async fn restored<C: GenericClient>(c: &C, since: Timestamp) -> Result<Restored> {
    let open = restored_incidents(c, "WHERE state IN ('triggered', 'acknowledged')", None).await?;
    let recent_resolved = restored_incidents(
        c,
        "WHERE state = 'resolved' AND resolved_at >= $1",
        Some(since.0),
    )
    .await?;
    let mut pending_pages = Vec::new();
    for row in query(
        c,
        "SELECT id, incident_id, at, kind, step, cycle, target, contact, notifier, method, \
         to_addr, topic, late_by_ms, reason, retry_until, hold_until FROM pages \
         WHERE status = 'pending' ORDER BY id",
        &[],
    )
    .await?
    {
        let mut page = page_row(&row)?;
        // A page held for quiet hours stays held across a restart.
        page.hold_until = opt_ts(&row, 15)?;
        pending_pages.push(page);
    }
    Ok(Restored {
        open,
        recent_resolved,
        next_incident_id: next_id(c, "incidents").await?,
        next_page_id: next_id(c, "pages").await?,
        pending_pages,
        overrides: overrides(c, None, since).await?,
        next_override_id: next_id(c, "overrides").await?,
        silences: windows(c, SILENCES, since).await?,
        next_silence_id: next_id(c, SILENCES).await?,
        maintenance: windows(c, MAINTENANCE, since).await?,
        next_maintenance_id: next_id(c, MAINTENANCE).await?,
    })
}

/// The table of silences.
pub(super) const SILENCES: &str = "silences";
/// The table of maintenance windows.
pub(super) const MAINTENANCE: &str = "maintenance";

/// Silences or maintenance windows (`table`) that end after `ending_after`, oldest first.
pub(super) async fn windows<C: GenericClient>(
    c: &C,
    table: &str,
    ending_after: Timestamp,
) -> Result<Vec<WindowRecord>> {
    let rows = query(
        c,
        &format!(
            "SELECT id, matchers, from_ms, to_ms, comment, \"by\", created_at FROM {table} \
             WHERE to_ms > $1 ORDER BY id"
        ),
        &[&ending_after.0],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = get_u64(&row, 0)?;
        let matchers: String = col(&row, 1)?;
        out.push(WindowRecord {
            id,
            matchers: serde_json::from_str(&matchers).map_err(|e| StoreError::Corrupt {
                what: format!("matchers of {table} {id}"),
                detail: e.to_string(),
            })?,
            from: ts(&row, 2)?,
            to: ts(&row, 3)?,
            comment: col(&row, 4)?,
            by: col(&row, 5)?,
            created_at: ts(&row, 6)?,
        });
    }
    Ok(out)
}

/// Overrides not deleted that end after `ending_after`, oldest first.
pub(super) async fn overrides<C: GenericClient>(
    c: &C,
    schedule: Option<&str>,
    ending_after: Timestamp,
) -> Result<Vec<OverrideRecord>> {
    let rows = query(
        c,
        "SELECT id, schedule, kind, contact, with_contact, from_ms, to_ms, \"by\", created_at \
         FROM overrides WHERE deleted_at IS NULL AND to_ms > $1 \
         AND ($2::text IS NULL OR schedule = $2) ORDER BY id",
        &[&ending_after.0, &schedule],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = col(&row, 2)?;
        let contact: String = col(&row, 3)?;
        let with: Option<String> = col(&row, 4)?;
        let change = change(&kind, contact, with)?;
        out.push(OverrideRecord {
            id: get_u64(&row, 0)?,
            schedule: col(&row, 1)?,
            change,
            from: ts(&row, 5)?,
            to: ts(&row, 6)?,
            by: col(&row, 7)?,
            created_at: ts(&row, 8)?,
        });
    }
    Ok(out)
}

/// The incidents `filter` selects, as the engine keeps them (see the SQLite store's
/// `restored_incidents`): a policy's JSON is parsed once per distinct text, and the
/// alerts of them all come in one statement.
async fn restored_incidents<C: GenericClient>(
    c: &C,
    filter: &str,
    since: Option<i64>,
) -> Result<Vec<RestoredIncident>> {
    let params: Vec<&(dyn ToSql + Sync)> = match &since {
        Some(s) => vec![s],
        None => vec![],
    };
    let rows = query(
        c,
        &format!(
            "SELECT id, source, group_key, state, created_at, resolved_at, acked_by, acked_at, \
             policy, escalation, labels, alerts_truncated FROM incidents {filter} ORDER BY id"
        ),
        &params,
    )
    .await?;
    let mut policies: HashMap<String, Arc<PolicySnapshot>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = get_u64(&row, 0)?;
        let text: &str = col(&row, 8)?;
        let policy = match policies.get(text) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(from_json::<PolicySnapshot>(text, id, "policy")?);
                policies.insert(text.to_string(), p.clone());
                p
            }
        };
        let escalation: &str = col(&row, 9)?;
        let labels: &str = col(&row, 10)?;
        let labels: BTreeMap<String, String> = from_json(labels, id, "labels")?;
        out.push(RestoredIncident {
            id,
            source: col(&row, 1)?,
            group_key: col(&row, 2)?,
            state: state_of(col(&row, 3)?, id)?,
            created_at: ts(&row, 4)?,
            resolved_at: opt_ts(&row, 5)?,
            acked_by: col(&row, 6)?,
            acked_at: opt_ts(&row, 7)?,
            policy,
            escalation: from_json::<Escalation>(escalation, id, "escalation")?,
            alerts: Vec::new(),
            labels_hash: labels_hash(&labels),
            labels: LabelSet::from_map(&labels),
            alerts_truncated: get_u64(&row, 11)?,
        });
    }
    let rows = query(
        c,
        &format!(
            "SELECT alerts.incident_id, alerts.fingerprint, alerts.status, alerts.starts_at \
             FROM incidents JOIN alerts ON alerts.incident_id = incidents.id {filter}"
        ),
        &params,
    )
    .await?;
    let mut at = 0;
    for row in rows {
        let id = get_u64(&row, 0)?;
        // An incident's alerts usually come together: look it up only when it changes.
        if out.get(at).is_none_or(|r| r.id != id) {
            match out.binary_search_by_key(&id, |r| r.id) {
                Ok(i) => at = i,
                Err(_) => continue,
            }
        }
        let fingerprint: &str = col(&row, 1)?;
        out[at].alerts.push((
            fingerprint_key(fingerprint),
            alert_status_of(col(&row, 2)?, id)?,
            ts(&row, 3)?,
        ));
    }
    Ok(out)
}

/// A BIGINT that holds a `u32` (a step, a cycle, a method).
pub(super) fn small(row: &Row, idx: usize) -> Result<u32> {
    let v: i64 = col(row, idx)?;
    u32::try_from(v).map_err(|e| StoreError::Corrupt {
        what: format!("column {idx} of a page"),
        detail: e.to_string(),
    })
}

/// A page from the first 15 columns of a `pages` row (`retry_until` last).
pub(super) fn page_row(row: &Row) -> Result<Page> {
    let kind: &str = col(row, 3)?;
    let id = get_u64(row, 0)?;
    Ok(Page {
        id,
        incident: get_u64(row, 1)?,
        at: ts(row, 2)?,
        kind: PageKind::parse(kind).ok_or_else(|| StoreError::Corrupt {
            what: format!("kind of page {id}"),
            detail: format!("unknown page kind {kind:?}"),
        })?,
        step: small(row, 4)?,
        cycle: small(row, 5)?,
        target: col(row, 6)?,
        contact: col(row, 7)?,
        notifier: col(row, 8)?,
        method: col::<Option<i64>>(row, 9)?.map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
        to: col(row, 10)?,
        topic: col(row, 11)?,
        late_by_ms: col::<Option<i64>>(row, 12)?.map(|v| v.max(0) as u64),
        reason: col(row, 13)?,
        retry_until: opt_ts(row, 14)?,
        hold_until: None,
    })
}

pub(super) fn state_of(s: &str, id: IncidentId) -> Result<IncidentState> {
    IncidentState::parse(s).ok_or_else(|| corrupt(id, "state", format!("unknown state {s:?}")))
}

pub(super) fn alert_status_of(s: &str, id: IncidentId) -> Result<AlertStatus> {
    match s {
        "firing" => Ok(AlertStatus::Firing),
        "resolved" => Ok(AlertStatus::Resolved),
        _ => Err(corrupt(id, "alert status", format!("unknown status {s:?}"))),
    }
}
