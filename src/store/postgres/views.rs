//! The incident views the API, the web view and the pages show, as the SQLite store
//! reads them: an incident with as many of its alerts, history entries and pages as
//! asked, and lists of them newest first.

use crate::store::stored::page_view;
use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::read::{alert_status_of, col, opt_ts, page_row, query, small, state_of, ts};
use super::{Result, corrupt, from_json, get_u64, sql_id};
use crate::engine::{Escalation, EventKind, IncidentId, Via};
use crate::store::{AlertView, Detail, EventId, EventView, IncidentView, ListQuery, PageView};
use crate::time::Timestamp;

/// Incidents a list reads per statement: a page of 500 is read a slice at a time.
const LIST_CHUNK: i64 = 50;

const INCIDENT_COLUMNS: &str = "id, source, group_key, title, labels, created_at, \
    policy_name, state, updated_at, resolved_at, acked_by, acked_at, escalation, \
    alerts_truncated";

/// Newest first, with their first `query.alerts` alerts, without history, handed to
/// `each` one at a time; the incident rows are read [`LIST_CHUNK`] at a time. Returns
/// the next page's `before`.
pub(super) async fn each_incident<C: GenericClient>(
    c: &C,
    query_: ListQuery,
    each: &mut (dyn FnMut(IncidentView) + Send),
) -> Result<Option<IncidentId>> {
    let mut before = match query_.before {
        Some(id) => sql_id(id),
        None => i64::MAX,
    };
    let state = query_.state.map(|s| s.as_str().to_string());
    let (mut read, mut last) = (0usize, None);
    loop {
        // One more than the page needs, to know whether a next page exists.
        let want = (query_.limit - read)
            .saturating_add(1)
            .min(LIST_CHUNK as usize) as i64;
        let rows = query(
            c,
            &format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents \
                 WHERE ($1::text IS NULL OR state = $1) AND id < $2 ORDER BY id DESC LIMIT $3"
            ),
            &[&state, &before, &want],
        )
        .await?;
        let got = rows.len();
        // The alerts of the whole slice in two statements, not two per incident.
        let handed = rows.len().min(query_.limit - read);
        let mut views = rows[..handed]
            .iter()
            .map(incident_view)
            .collect::<Result<Vec<_>>>()?;
        let ids: Vec<i64> = views.iter().map(|v| sql_id(v.id)).collect();
        let mut alerts = alerts_of(c, &ids, query_.alerts).await?;
        let mut counts = alert_counts_of(c, &ids).await?;
        for mut view in views.drain(..) {
            view.alerts = alerts.remove(&view.id).unwrap_or_default();
            (view.alerts_total, view.alerts_firing) = counts.remove(&view.id).unwrap_or_default();
            read += 1;
            last = Some(view.id);
            before = sql_id(view.id);
            each(view);
        }
        if read == query_.limit && got > handed {
            return Ok(last);
        }
        if (got as i64) < want {
            return Ok(None);
        }
    }
}

/// One incident with as many of its alerts, history entries and pages as `detail` says.
pub(super) async fn incident<C: GenericClient>(
    c: &C,
    id: IncidentId,
    detail: Detail,
) -> Result<Option<IncidentView>> {
    let rows = query(
        c,
        &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
        &[&sql_id(id)],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut view = incident_view(row)?;
    view.alerts = alert_views(c, id, detail.alerts).await?;
    (view.alerts_total, view.alerts_firing) = alert_counts(c, id).await?;
    if detail.history > 0 {
        let (history, next) = event_views(c, id, detail.history, detail.history_before).await?;
        view.history = Some(history);
        view.history_next = next;
    }
    if detail.pages > 0 {
        let (pages, total) = page_views(c, id, detail.pages).await?;
        view.pages = Some(pages);
        view.pages_total = Some(total);
    }
    Ok(Some(view))
}

/// When the ack link `link` acknowledged incident `id` (the first time), if it did.
pub(super) async fn acked_by_link<C: GenericClient>(
    c: &C,
    id: IncidentId,
    link: &str,
) -> Result<Option<Timestamp>> {
    let rows = query(
        c,
        "SELECT MIN(at) FROM events WHERE incident_id = $1 AND kind = $2 AND via = $3 \
         AND reference = $4",
        &[
            &sql_id(id),
            &EventKind::Acked.as_str(),
            &Via::Link.as_str(),
            &link,
        ],
    )
    .await?;
    match rows.first() {
        Some(row) => opt_ts(row, 0),
        None => Ok(None),
    }
}

/// The open incident of a group (the newest, should a crash have left two), with its
/// alerts.
pub(super) async fn open_incident_of_group<C: GenericClient>(
    c: &C,
    source: &str,
    group_key: &str,
) -> Result<Option<IncidentView>> {
    let rows = query(
        c,
        "SELECT id FROM incidents WHERE state IN ('triggered', 'acknowledged') \
         AND source = $1 AND group_key = $2 ORDER BY id DESC LIMIT 1",
        &[&source, &group_key],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    incident(c, get_u64(row, 0)?, Detail::MESSAGE).await
}

/// An incident row (selected with [`INCIDENT_COLUMNS`]) without its alerts.
fn incident_view(row: &Row) -> Result<IncidentView> {
    let id = get_u64(row, 0)?;
    let labels: &str = col(row, 4)?;
    let escalation: &str = col(row, 12)?;
    let escalation = from_json::<Escalation>(escalation, id, "escalation")?;
    Ok(IncidentView {
        id,
        state: state_of(col(row, 7)?, id)?,
        title: col(row, 3)?,
        group_key: col(row, 2)?,
        source: col(row, 1)?,
        labels: from_json(labels, id, "labels")?,
        alerts: Vec::new(),
        alerts_total: 0,
        alerts_firing: 0,
        alerts_truncated: get_u64(row, 13)?,
        created_at: ts(row, 5)?,
        updated_at: ts(row, 8)?,
        resolved_at: opt_ts(row, 9)?,
        acked_by: col(row, 10)?,
        acked_at: opt_ts(row, 11)?,
        snoozed_until: escalation.snoozed_until,
        ack_expires_at: escalation.ack_expires_at,
        step: escalation.step,
        cycle: escalation.cycle,
        policy: col(row, 6)?,
        next_escalation_at: escalation.next_step_at,
        history: None,
        history_next: None,
        pages: None,
        pages_total: None,
    })
}

/// (all alerts, firing alerts) of an incident.
async fn alert_counts<C: GenericClient>(c: &C, id: IncidentId) -> Result<(u64, u64)> {
    let rows = query(
        c,
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'firing') \
         FROM alerts WHERE incident_id = $1",
        &[&sql_id(id)],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| corrupt(id, "alert counts", "no row".into()))?;
    Ok((get_u64(row, 0)?, get_u64(row, 1)?))
}

/// Firing alerts first, then the oldest; at most `cap`.
async fn alert_views<C: GenericClient>(
    c: &C,
    id: IncidentId,
    cap: usize,
) -> Result<Vec<AlertView>> {
    if cap == 0 {
        return Ok(Vec::new());
    }
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    // COLLATE "C": bytewise like SQLite, whatever the database's locale.
    let rows = query(
        c,
        &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE incident_id = $1 ORDER BY {ALERT_ORDER} LIMIT $2"),
        &[&sql_id(id), &cap],
    )
    .await?;
    rows.iter().map(|row| alert_view(row, id)).collect()
}

/// The columns [`alert_view`] reads, and the order alerts are listed in (firing first,
/// then the oldest; bytewise like SQLite, whatever the database's locale).
const ALERT_COLUMNS: &str =
    "fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, received_at";
const ALERT_ORDER: &str = "status COLLATE \"C\", starts_at, fingerprint COLLATE \"C\"";

/// An alert of incident `id` from a row of [`ALERT_COLUMNS`].
fn alert_view(row: &Row, id: IncidentId) -> Result<AlertView> {
    let labels: &str = col(row, 4)?;
    let annotations: &str = col(row, 5)?;
    Ok(AlertView {
        fingerprint: col(row, 0)?,
        status: alert_status_of(col(row, 1)?, id)?,
        starts_at: ts(row, 2)?,
        ends_at: opt_ts(row, 3)?,
        labels: from_json(labels, id, "alert labels")?,
        annotations: from_json(annotations, id, "alert annotations")?,
        generator_url: col(row, 6)?,
        received_at: ts(row, 7)?,
    })
}

/// The first `cap` alerts (in list order) of each of the incidents `ids`.
async fn alerts_of<C: GenericClient>(
    c: &C,
    ids: &[i64],
    cap: usize,
) -> Result<HashMap<IncidentId, Vec<AlertView>>> {
    let mut out: HashMap<IncidentId, Vec<AlertView>> = HashMap::new();
    if cap == 0 || ids.is_empty() {
        return Ok(out);
    }
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let rows = query(
        c,
        &format!(
            "SELECT {ALERT_COLUMNS}, incident_id FROM (SELECT *, row_number() OVER \
             (PARTITION BY incident_id ORDER BY {ALERT_ORDER}) AS n FROM alerts \
             WHERE incident_id = ANY($1)) AS listed WHERE n <= $2 ORDER BY incident_id, n"
        ),
        &[&ids, &cap],
    )
    .await?;
    for row in rows {
        let id = get_u64(&row, 8)?;
        out.entry(id).or_default().push(alert_view(&row, id)?);
    }
    Ok(out)
}

/// (all alerts, firing alerts) of each of the incidents `ids` that has any.
async fn alert_counts_of<C: GenericClient>(
    c: &C,
    ids: &[i64],
) -> Result<HashMap<IncidentId, (u64, u64)>> {
    let rows = query(
        c,
        "SELECT incident_id, COUNT(*), COUNT(*) FILTER (WHERE status = 'firing') \
         FROM alerts WHERE incident_id = ANY($1) GROUP BY incident_id",
        &[&ids],
    )
    .await?;
    rows.iter()
        .map(|row| Ok((get_u64(row, 0)?, (get_u64(row, 1)?, get_u64(row, 2)?))))
        .collect()
}

/// The `limit` most recent history entries (before the entry `before`, when given),
/// oldest first, and the entry to read older ones before when there are any.
async fn event_views<C: GenericClient>(
    c: &C,
    id: IncidentId,
    limit: usize,
    before: Option<EventId>,
) -> Result<(Vec<EventView>, Option<EventId>)> {
    let want = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    let incident = sql_id(id);
    let rows = match before {
        None => {
            query(
                c,
                "SELECT at, kind, actor, via, reference, detail, id FROM events \
                 WHERE incident_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
                &[&incident, &want],
            )
            .await?
        }
        Some(before) => {
            query(
                c,
                "SELECT at, kind, actor, via, reference, detail, id FROM events \
                 WHERE incident_id = $1 \
                   AND (at, id) < (SELECT at, id FROM events WHERE id = $2) \
                 ORDER BY at DESC, id DESC LIMIT $3",
                &[&incident, &sql_id(before), &want],
            )
            .await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: &str = col(&row, 1)?;
        let via: &str = col(&row, 3)?;
        out.push(EventView {
            at: ts(&row, 0)?,
            kind: EventKind::parse(kind)
                .ok_or_else(|| corrupt(id, "history", format!("unknown event kind {kind:?}")))?,
            actor: col(&row, 2)?,
            via: Via::parse(via)
                .ok_or_else(|| corrupt(id, "history", format!("unknown channel {via:?}")))?,
            reference: col(&row, 4)?,
            detail: col(&row, 5)?,
        });
        ids.push(get_u64(&row, 6)?);
    }
    let next = (out.len() > limit).then(|| ids[limit - 1]);
    out.truncate(limit);
    out.reverse();
    Ok((out, next))
}

/// The `limit` most recent pages, oldest first, and how many the incident has in all.
async fn page_views<C: GenericClient>(
    c: &C,
    id: IncidentId,
    limit: usize,
) -> Result<(Vec<PageView>, u64)> {
    let incident = sql_id(id);
    let total = query(
        c,
        "SELECT COUNT(*) FROM pages WHERE incident_id = $1",
        &[&incident],
    )
    .await?;
    let total = match total.first() {
        Some(row) => get_u64(row, 0)?,
        None => 0,
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = query(
        c,
        "SELECT id, incident_id, at, kind, step, cycle, target, contact, notifier, method, \
         to_addr, topic, late_by_ms, reason, retry_until, status, attempts, error, done_at \
         FROM pages WHERE incident_id = $1 ORDER BY id DESC LIMIT $2",
        &[&incident, &limit],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let page = page_row(&row)?;
        let status: &str = col(&row, 15)?;
        out.push(page_view(
            id,
            page,
            status,
            small(&row, 16)?,
            col(&row, 17)?,
            opt_ts(&row, 18)?,
        )?);
    }
    out.reverse();
    Ok((out, total))
}
