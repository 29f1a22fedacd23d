//! The schedules API: who is on call, their shifts, and the overrides that change them.
//!
//! Reads compute from the config's calendar and the stored overrides (pure, no engine
//! turn); making and deleting an override is an engine input like an ack, so the engine
//! alone decides whether it conflicts with another.

pub(crate) mod feed;

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::hooks::read_capped;
use super::{AppState, error, refused};
use crate::config::Scope;
use crate::engine::{Actor, Change, Input, OverrideRecord, Via};
use crate::schedule::{Finding, Shift};
use crate::time::Timestamp;
use crate::watchdog::{ChannelView, Health, Kind};

/// Shifts listed when `to` is not given: two weeks, what a person plans around.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(14 * 86_400);
/// Longest range one shifts answer covers: a quarter, so one answer stays small.
pub const MAX_SPAN: Duration = Duration::from_secs(92 * 86_400);

/// One person on call, as the API shows them.
#[derive(Serialize)]
pub struct OnCallView {
    pub schedule: String,
    pub at: String,
    pub oncall: Vec<String>,
    /// Why each is on call: a rotation's name, `rule`, `override N` or `fallback`.
    pub via: Vec<String>,
    /// The next instant the answer changes; null when it never does.
    pub until: Option<String>,
    /// Nobody is on call, so `oncall` is the fallback (or empty without one).
    pub gap: bool,
}

#[derive(Serialize)]
pub struct ShiftView {
    pub contact: String,
    pub start: String,
    pub end: String,
    pub via: String,
}

impl From<&Shift> for ShiftView {
    fn from(s: &Shift) -> Self {
        ShiftView {
            contact: s.contact.clone(),
            start: s.start.to_rfc3339(),
            end: s.end.to_rfc3339(),
            via: s.via.to_string(),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OverrideView {
    pub id: u64,
    pub schedule: String,
    /// `add`, `remove` or `replace`.
    pub kind: String,
    pub contact: String,
    /// The person who takes `contact`'s place (replace only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
    pub from: String,
    pub to: String,
    pub by: String,
    pub created_at: String,
}

impl From<&OverrideRecord> for OverrideView {
    fn from(o: &OverrideRecord) -> Self {
        let (kind, contact, with) = match &o.change {
            Change::Add { contact } => ("add", contact, None),
            Change::Remove { contact } => ("remove", contact, None),
            Change::Replace { contact, with } => ("replace", contact, Some(with.clone())),
        };
        OverrideView {
            id: o.id,
            schedule: o.schedule.clone(),
            kind: kind.to_string(),
            contact: contact.clone(),
            with,
            from: o.from.to_rfc3339(),
            to: o.to.to_rfc3339(),
            by: o.by.clone(),
            created_at: o.created_at.to_rfc3339(),
        }
    }
}

/// What the handlers of one schedule share: it exists, and its overrides in force from
/// `from` on.
struct Asked {
    name: String,
    overrides: Vec<OverrideRecord>,
}

async fn asked(s: &AppState, name: &str, from: Timestamp) -> Result<Asked, Box<Response>> {
    if !s.live().config.calendar.schedules.contains_key(name) {
        let known: Vec<String> = s.live().config.calendar.schedules.keys().cloned().collect();
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!(
                "no schedule {name:?} (schedules: {})",
                if known.is_empty() {
                    "none defined".to_string()
                } else {
                    known.join(", ")
                }
            ),
        )));
    }
    let overrides = s
        .store
        .overrides(Some(name.to_string()), from)
        .await
        .map_err(|e| Box::new(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())))?;
    Ok(Asked {
        name: name.to_string(),
        overrides,
    })
}

fn instant(what: &str, v: Option<&str>, default: Timestamp) -> Result<Timestamp, Box<Response>> {
    match v {
        None | Some("") => Ok(default),
        Some(t) => Timestamp::parse_rfc3339(t).ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("{what} {t:?} is not an RFC 3339 instant, like 2027-01-04T15:00:00Z"),
            ))
        }),
    }
}

/// Who is on call for `name` at `at`.
pub(crate) fn oncall_view(
    s: &AppState,
    name: &str,
    overrides: &[OverrideRecord],
    at: Timestamp,
) -> Option<OnCallView> {
    let cfg = s.live().config.clone();
    let mine = crate::engine::overrides_of(overrides, name);
    let oc = cfg.calendar.oncall(name, &mine, at)?;
    Some(OnCallView {
        schedule: name.to_string(),
        at: at.to_rfc3339(),
        oncall: oc.contacts.iter().map(|c| c.name.clone()).collect(),
        via: oc.contacts.iter().map(|c| c.via.to_string()).collect(),
        until: oc.until.map(Timestamp::to_rfc3339),
        gap: oc.fallback_used || oc.contacts.is_empty(),
    })
}

/// `GET /api/v1/schedules`: every schedule with who is on call now.
pub(crate) async fn list(State(s): State<AppState>) -> Response {
    let now = s.clock.now();
    let all = match s.store.overrides(None, now).await {
        Ok(o) => o,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let cfg = s.live().config.clone();
    let schedules: Vec<serde_json::Value> = cfg
        .calendar
        .schedules
        .values()
        .map(|sch| {
            let file = cfg.file.schedules.get(&sch.name);
            json!({
                "name": sch.name,
                "time_zone": file.map(|f| f.time_zone.clone()),
                "fallback": sch.fallback,
                "notify_handoff": file.is_some_and(|f| f.notify_handoff),
                "now": oncall_view(&s, &sch.name, &all, now),
                "overrides": all
                    .iter()
                    .filter(|o| o.schedule == sch.name)
                    .map(OverrideView::from)
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "schedules": schedules })).into_response()
}

#[derive(Deserialize)]
pub(crate) struct AtParams {
    at: Option<String>,
}

/// `GET /api/v1/schedules/{name}/oncall?at=`.
pub(crate) async fn oncall(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<AtParams>,
) -> Response {
    let at = match instant("at", q.at.as_deref(), s.clock.now()) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let a = match asked(&s, &name, at).await {
        Ok(a) => a,
        Err(r) => return *r,
    };
    match oncall_view(&s, &a.name, &a.overrides, at) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no schedule {name:?}")),
    }
}

#[derive(Deserialize)]
pub(crate) struct RangeParams {
    from: Option<String>,
    to: Option<String>,
    contact: Option<String>,
}

/// The range a shifts question asks about: `from` defaults to now, `to` to two weeks on.
fn range(s: &AppState, q: &RangeParams) -> Result<(Timestamp, Timestamp), Box<Response>> {
    let from = instant("from", q.from.as_deref(), s.clock.now())?;
    let to = instant("to", q.to.as_deref(), from.plus(DEFAULT_SPAN))?;
    if to <= from {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "to must be after from",
        )));
    }
    if to.since(from) > MAX_SPAN {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "one answer covers at most 92 days: ask again from the last shift's end",
        )));
    }
    Ok((from, to))
}

/// The shifts of `[from, to)`, of one contact when `contact` is given.
pub(crate) async fn shifts_of(
    s: &AppState,
    name: &str,
    q: &RangeParams,
) -> Result<(Timestamp, Timestamp, Vec<Shift>), Box<Response>> {
    let (from, to) = range(s, q)?;
    let a = asked(s, name, from).await?;
    let mine = crate::engine::overrides_of(&a.overrides, name);
    let mut shifts = s.live().config.calendar.shifts(name, &mine, from, to);
    if let Some(c) = &q.contact {
        shifts.retain(|sh| &sh.contact == c);
    }
    Ok((from, to, shifts))
}

/// `GET /api/v1/schedules/{name}/shifts?from=&to=&contact=`.
pub(crate) async fn shifts(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RangeParams>,
) -> Response {
    match shifts_of(&s, &name, &q).await {
        Ok((from, to, shifts)) => Json(json!({
            "schedule": name,
            "from": from.to_rfc3339(),
            "to": to.to_rfc3339(),
            "shifts": shifts.iter().map(ShiftView::from).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(r) => *r,
    }
}

/// `GET /api/v1/schedules/{name}/check?from=&to=`: every gap and overlap ahead.
pub(crate) async fn check(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RangeParams>,
) -> Response {
    let (from, to) = match range(&s, &q) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let a = match asked(&s, &name, from).await {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let mine = crate::engine::overrides_of(&a.overrides, &name);
    let findings = s.live().config.calendar.check(&name, &mine, from, to);
    Json(json!({
        "schedule": name,
        "from": from.to_rfc3339(),
        "to": to.to_rfc3339(),
        "findings": findings.iter().map(finding_json).collect::<Vec<_>>(),
    }))
    .into_response()
}

pub(crate) fn finding_json(f: &Finding) -> serde_json::Value {
    match f {
        Finding::Gap { start, end } => json!({
            "kind": "gap", "start": start.to_rfc3339(), "end": end.to_rfc3339(),
        }),
        Finding::Overlap {
            start,
            end,
            contacts,
        } => json!({
            "kind": "overlap", "start": start.to_rfc3339(), "end": end.to_rfc3339(),
            "contacts": contacts,
        }),
    }
}

/// `GET /api/v1/schedules/{name}/overrides`: those in force or ahead.
pub(crate) async fn overrides(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match asked(&s, &name, s.clock.now()).await {
        Ok(a) => Json(json!({
            "schedule": name,
            "overrides": a.overrides.iter().map(OverrideView::from).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(r) => *r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOverride {
    kind: String,
    contact: String,
    with: Option<String>,
    /// Defaults to now.
    from: Option<String>,
    to: String,
    by: String,
}

/// What an override request means, or why it means nothing.
pub(crate) fn parse_change(
    kind: &str,
    contact: String,
    with: Option<String>,
) -> Result<Change, String> {
    match (kind, with) {
        ("add", None) => Ok(Change::Add { contact }),
        ("remove", None) => Ok(Change::Remove { contact }),
        ("replace", Some(with)) => Ok(Change::Replace { contact, with }),
        ("replace", None) => Err("a replace names who takes over: \"with\": \"carol\"".into()),
        ("add" | "remove", Some(_)) => Err("\"with\" belongs to a replace only".into()),
        (other, _) => Err(format!(
            "unknown kind {other:?}: use add, remove or replace"
        )),
    }
}

/// `POST /api/v1/schedules/{name}/overrides`.
pub(crate) async fn create(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = super::api::json_call(&s, &headers, Scope::Act) {
        return *r;
    }
    let bytes = match read_capped(&headers, body, 16 * 1024).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let b: NewOverride = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "body must be JSON like {{\"kind\": \"replace\", \"contact\": \"bob\", \"with\": \"carol\", \"from\": \"2027-01-04T15:00:00Z\", \"to\": \"2027-01-05T15:00:00Z\", \"by\": \"alice\"}}: {e}"
                ),
            );
        }
    };
    let change = match parse_change(&b.kind, b.contact, b.with) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let now = s.clock.now();
    let from = match instant("from", b.from.as_deref(), now) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let to = match instant("to", Some(&b.to), now) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let by = crate::notify::message::clean(&b.by);
    if by.trim().is_empty() || by.chars().count() > 64 {
        return error(
            StatusCode::BAD_REQUEST,
            "say who makes it: \"by\" is a name of 1 to 64 characters",
        );
    }
    let input = Input::AddOverride {
        schedule: name.clone(),
        change,
        from,
        to,
        by: Actor::new(by, Via::Api),
    };
    match s.engine.apply(input).await {
        Ok(applied) => {
            let id = applied.override_id.unwrap_or_default();
            (
                StatusCode::CREATED,
                Json(json!({ "id": id, "schedule": name })),
            )
                .into_response()
        }
        Err(e) => refused(&e),
    }
}

/// `DELETE /api/v1/schedules/{name}/overrides/{id}`.
pub(crate) async fn delete(
    State(s): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let input = |id| Input::DeleteOverride {
        schedule: name,
        id,
        by: Actor::new("api", Via::Api),
    };
    super::api::end_by_id(&s, &headers, &id, "an override", input, "deleted").await
}

/// How far back the board looks for when a gap began.
const GAP_LOOKBACK: Duration = Duration::from_secs(7 * 86_400);

/// Each schedule as a line of the channel board: up while someone is on call, down in a
/// gap (since it began, until it ends). Overrides unreadable: the config's answer.
pub(crate) async fn board(s: &AppState) -> Vec<ChannelView> {
    let now = s.clock.now();
    let cfg = s.live().config.clone();
    let all = s
        .store
        .overrides(None, now.minus(GAP_LOOKBACK))
        .await
        .unwrap_or_default();
    cfg.calendar
        .schedules
        .values()
        .filter_map(|sch| {
            let mine = crate::engine::overrides_of(&all, &sch.name);
            let oc = cfg.calendar.oncall(&sch.name, &mine, now)?;
            let until = oc.until.map_or("for good".to_string(), |u| {
                format!("until {}", u.to_rfc3339())
            });
            let gap = oc.fallback_used || oc.contacts.is_empty();
            let (state, reason, since) = if gap {
                let since = cfg
                    .calendar
                    .check(
                        &sch.name,
                        &mine,
                        now.minus(GAP_LOOKBACK),
                        now.plus(Duration::from_millis(1)),
                    )
                    .iter()
                    .rev()
                    .find_map(|f| match f {
                        Finding::Gap { start, end } if *end > now => Some(*start),
                        _ => None,
                    })
                    .unwrap_or(now);
                let then = match &sch.fallback {
                    Some(f) => format!("its fallback {f} is paged"),
                    None => "nobody is paged for it".to_string(),
                };
                (
                    Health::Down,
                    format!("nobody is on call {until}: {then}"),
                    since,
                )
            } else {
                let who: Vec<String> = oc
                    .contacts
                    .iter()
                    .map(|c| format!("{} ({})", c.name, c.via))
                    .collect();
                (
                    Health::Up,
                    format!("{} on call {until}", who.join(", ")),
                    now,
                )
            };
            Some(ChannelView {
                name: format!("schedule:{}", sch.name),
                kind: Kind::Schedule,
                state,
                reason,
                since,
                blind: "a step naming it pages its fallback, or nobody".to_string(),
                paging: false,
                checks: Vec::new(),
            })
        })
        .collect()
}
