//! The incident API, status, health and metrics.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::chunked::Chunks;
use super::cross_site::{json_only, same_site_call};
use super::hooks::read_capped;
use super::refused;
use super::{AppState, auth, error};
use crate::config::{HumanDuration, Scope};
use crate::engine::{Actor, IncidentId, IncidentState, Input, Via};
use crate::metrics::StateLabel;
use crate::store::{Detail, EventId, IncidentView, ListQuery};

/// Incidents in one answer of the list when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Most incidents (and history entries) one answer holds: an answer is built before it
/// is sent, and reads take turns on one connection, so the biggest answer bounds both
/// the memory of a read flood and how long one reader makes the next wait.
pub const MAX_LIMIT: usize = 500;
/// Alerts listed per incident of a list (firing first); `alerts_total` counts them all.
const LIST_ALERTS: usize = 20;

#[derive(Deserialize)]
pub(crate) struct ListParams {
    state: Option<String>,
    limit: Option<usize>,
    before: Option<IncidentId>,
}

/// `limit` as asked, or the default; above [`MAX_LIMIT`] or 0 is refused (400) rather
/// than cut short unsaid: a script that asked for more must learn to page.
fn limit(asked: Option<usize>, what: &str, cursor: &str) -> Result<usize, Box<Response>> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("{what} is {n}: it must be 1 to {MAX_LIMIT}; read further with {cursor}"),
        ))),
    }
}

pub(crate) async fn list(State(s): State<AppState>, Query(q): Query<ListParams>) -> Response {
    let state = match q.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(x) => match IncidentState::parse(x) {
            Some(st) => Some(st),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown state {x:?}: use triggered, acknowledged or resolved"),
                );
            }
        },
    };
    let limit = match limit(q.limit, "limit", "before (the answer's next)") {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let query = ListQuery {
        state,
        before: q.before,
        limit,
        alerts: LIST_ALERTS,
    };
    // `{"incidents": [...], "next": ID}`, each incident serialized as soon as it is read,
    // into chunks that are freed one by one as they are sent.
    struct Page {
        chunks: Chunks,
        one: Vec<u8>,
        first: bool,
    }
    let page = Arc::new(Mutex::new(Page {
        chunks: Chunks::default(),
        one: Vec::new(),
        first: true,
    }));
    page.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .chunks
        .extend(b"{\"incidents\":[");
    let sink = Arc::clone(&page);
    let each = Box::new(move |v: &IncidentView| {
        let mut page = sink.lock().unwrap_or_else(PoisonError::into_inner);
        let page = &mut *page;
        page.one.clear();
        if let Err(e) = serde_json::to_writer(&mut page.one, v) {
            tracing::warn!(incident = v.id, error = %e, "incident left out of a list: it does not serialize");
            return;
        }
        if !std::mem::take(&mut page.first) {
            page.chunks.extend(b",");
        }
        page.chunks.extend(&page.one);
    });
    match s.store.each_incident(query, each).await {
        Ok(next) => {
            let mut page = page.lock().unwrap_or_else(PoisonError::into_inner);
            let mut chunks = std::mem::take(&mut page.chunks);
            chunks.extend(b"],\"next\":");
            match next {
                Some(id) => chunks.extend(id.to_string().as_bytes()),
                None => chunks.extend(b"null"),
            }
            chunks.extend(b"}");
            (
                [(header::CONTENT_TYPE, "application/json")],
                chunks.into_body(),
            )
                .into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
pub(crate) struct ShowParams {
    history_limit: Option<usize>,
    history_before: Option<EventId>,
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ShowParams>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an incident id"),
        );
    };
    let history = match limit(
        q.history_limit,
        "history_limit",
        "history_before (the answer's history_next)",
    ) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let detail = Detail {
        history,
        history_before: q.history_before,
        ..Detail::FULL
    };
    match s.store.incident(id, detail).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("incident {id} does not exist"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    by: Option<String>,
    #[serde(rename = "for")]
    duration: Option<String>,
}

/// Refuses a JSON call unless it is JSON, from tocsin's own site if a browser sent it,
/// and by a credential with `scope`.
pub(crate) fn json_call(
    s: &AppState,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<(), Box<Response>> {
    json_only(headers)?;
    same_site_call(&s.site, headers, "api")?;
    auth::check(&s.auth(), headers, scope)
}

/// A DELETE that ends something by its id (a silence, a maintenance window, an
/// override): from tocsin's own site if a browser sent it, by a credential that may act,
/// through the engine; answers `{key: id}` or the engine's refusal.
pub(crate) async fn end_by_id(
    s: &AppState,
    headers: &HeaderMap,
    id: &str,
    what: &str,
    input: impl FnOnce(u64) -> Input,
    key: &str,
) -> Response {
    if let Err(r) = same_site_call(&s.site, headers, "api") {
        return *r;
    }
    if let Err(r) = auth::check(&s.auth(), headers, Scope::Act) {
        return *r;
    }
    let Ok(id) = id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, format!("{id:?} is not {what} id"));
    };
    match s.engine.submit(input(id)).await {
        Ok(()) => Json(json!({ key: id })).into_response(),
        Err(e) => super::refused(&e),
    }
}

/// Longest `by` accepted: contact names and nicks are far shorter.
const MAX_ACTOR: usize = 64;

pub(crate) async fn act(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = json_call(&s, &headers, Scope::Act) {
        return *r;
    }
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an incident id"),
        );
    };
    let bytes = match read_capped(&headers, body, 64 * 1024).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let b: ActBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        ActBody {
            by: None,
            duration: None,
        }
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("body must be JSON like {{\"by\": \"alice\", \"for\": \"30m\"}}: {e}"),
                );
            }
        }
    };
    let Some(by) = b.by.filter(|b| !b.trim().is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "say who is acting: {\"by\": \"alice\"}",
        );
    };
    let by = crate::notify::message::clean(&by);
    if by.chars().count() > MAX_ACTOR {
        // It is announced in chat and every page after ("ACKED by ..."): a name, not a text.
        return error(
            StatusCode::BAD_REQUEST,
            format!("\"by\" is a name of at most {MAX_ACTOR} characters"),
        );
    }
    let by = Actor::new(by, Via::Api);
    let duration = match b.duration.as_deref().map(HumanDuration::parse) {
        None => None,
        Some(Ok(d)) => Some(d.0),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("for: {e}")),
    };
    let input = match (action.as_str(), duration) {
        ("ack", None) => Input::Ack { id, by },
        ("unack", None) => Input::Unack { id, by },
        ("resolve", None) => Input::Resolve { id, by },
        ("snooze", Some(d)) => Input::Snooze {
            id,
            by,
            duration: d,
        },
        ("snooze", None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "snooze needs a duration: {\"by\": \"alice\", \"for\": \"30m\"}",
            );
        }
        ("ack" | "unack" | "resolve", Some(_)) => {
            return error(StatusCode::BAD_REQUEST, "\"for\" applies to snooze only");
        }
        (other, _) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}: use ack, unack, resolve or snooze"),
            );
        }
    };
    match s.engine.submit(input).await {
        Ok(()) => match s.store.incident(id, Detail::MESSAGE).await {
            Ok(Some(v)) => Json(v).into_response(),
            Ok(None) => error(
                StatusCode::NOT_FOUND,
                format!("incident {id} does not exist"),
            ),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
        Err(e) => refused(&e),
    }
}

fn engine_age(s: &AppState) -> Duration {
    s.clock.now().since(s.health.last_tick())
}

pub(crate) async fn healthz(State(s): State<AppState>) -> Response {
    let age = engine_age(&s);
    let down: Vec<_> = s.tasks.down().into_iter().filter(|t| t.essential).collect();
    let body = json!({
        "engine_last_tick": s.health.last_tick().to_rfc3339(),
        "engine_age_seconds": age.as_secs_f64(),
        "tasks_down": down,
        "store": s.health.store_trouble(),
    });
    if !s.health.healthy(s.clock.now()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "engine loop stalled", "detail": body})),
        )
            .into_response()
    } else if !down.is_empty() {
        let names: Vec<String> = down.iter().map(|t| t.describe()).collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": format!("essential task down: {}", names.join(", ")),
                "detail": body,
            })),
        )
            .into_response()
    } else if let Some(t) = s.health.store_trouble() {
        // The loop turns but records nothing, so it pages nobody: not alive in any
        // sense that matters to whoever watches tocsin.
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": format!("store cannot be written since {}: {}", t.since, t.error),
                "detail": body,
            })),
        )
            .into_response()
    } else {
        (
            StatusCode::OK,
            Json(json!({"status": "ok", "detail": body})),
        )
            .into_response()
    }
}

pub(crate) async fn status(State(s): State<AppState>) -> Response {
    let counts = match s.store.counts().await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let by_state: serde_json::Map<String, serde_json::Value> = [
        IncidentState::Triggered,
        IncidentState::Acknowledged,
        IncidentState::Resolved,
    ]
    .iter()
    .map(|st| {
        (
            st.as_str().to_string(),
            json!(counts.get(st).copied().unwrap_or(0)),
        )
    })
    .collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.started.elapsed().as_secs(),
        "engine": {
            "healthy": s.health.healthy(s.clock.now()),
            "last_tick": s.health.last_tick().to_rfc3339(),
            // Set while commits fail: since when, how often, the last error.
            "store": s.health.store_trouble(),
        },
        "incidents": by_state,
        "channels": with_schedules(&s).await,
        // Only the tasks that are not running: restarting, or given up.
        "tasks": s.tasks.down(),
        "cluster": cluster(&s).await,
    }))
    .into_response()
}

/// With a shared store: this instance's role, the lease, and every instance as it last
/// said it was alive. `null` for a store of this instance's own.
async fn cluster(s: &AppState) -> serde_json::Value {
    let Some(c) = &s.cluster else {
        return serde_json::Value::Null;
    };
    let epoch = c.fence.epoch();
    let lease = match c.lease.leader().await {
        Ok(row) => json!(row),
        Err(e) => json!({ "error": e.to_string() }),
    };
    let instances = c.lease.instances().await.unwrap_or_default();
    json!({
        "instance": c.name,
        "role": if epoch != 0 { "leader" } else { "follower" },
        "epoch": epoch,
        "sending": c.fence.holds(),
        "lease": lease,
        "lease_seconds": c.lease_len.as_secs_f64(),
        "instances": instances,
    })
}

/// `GET /api/v1/channels`: every channel's health, as the watchdog sees it.
pub(crate) async fn channels(State(s): State<AppState>) -> Response {
    Json(json!({ "channels": with_schedules(&s).await })).into_response()
}

/// The watchdog's channels, then each schedule: down while nobody is on call.
pub(crate) async fn with_schedules(s: &AppState) -> Vec<crate::watchdog::ChannelView> {
    // The channels are watched by the leader alone (a follower holds no IRC link and
    // probes nothing): a follower shows only what it sees itself, and status names the
    // leader to ask.
    let follows = s.cluster.as_ref().is_some_and(|c| c.fence.epoch() == 0);
    let mut channels = if follows {
        Vec::new()
    } else {
        s.watchdog.channels()
    };
    channels.extend(super::schedules::board(s).await);
    if !follows && let Some(c) = silences_channel(s) {
        channels.push(c);
    }
    if let Some(c) = database_channel(s) {
        channels.push(c);
    }
    channels
}

/// A shared store as a line of the board: down while this instance cannot write it. The
/// leader then pages the watchdog policy's first step outside the store (as for a disk
/// that cannot be written), through notifiers that do not need the database.
fn database_channel(s: &AppState) -> Option<crate::watchdog::ChannelView> {
    use crate::watchdog::{ChannelView, Health, Kind};
    s.cluster.as_ref()?;
    let (state, reason, since) = match s.health.store_trouble() {
        Some(t) => (
            Health::Down,
            format!("the database does not take writes: {}", t.error),
            t.since,
        ),
        None => (
            Health::Up,
            "the shared PostgreSQL store answers".to_string(),
            s.clock.now(),
        ),
    };
    Some(ChannelView {
        name: "database".to_string(),
        kind: Kind::Store,
        state,
        reason,
        since,
        blind: "webhooks get 503 (Alertmanager retries); nothing is recorded or paged but the notice about it".to_string(),
        paging: false,
        checks: Vec::new(),
    })
}

/// `silence_on_ack` as a line of the board: down while calls to Alertmanager fail (acks
/// still stand; the silences are retried).
fn silences_channel(s: &AppState) -> Option<crate::watchdog::ChannelView> {
    use crate::watchdog::{ChannelView, Health, Kind};
    s.live().config.silence_on_ack.as_ref()?;
    let (state, reason, since) = match s.silence_health.failing() {
        Some((since, error)) => (
            Health::Down,
            format!("acks do not reach Alertmanager as silences: {error}; retried every minute"),
            since,
        ),
        None => (
            Health::Up,
            "acks silence their alerts in Alertmanager".to_string(),
            s.clock.now(),
        ),
    };
    Some(ChannelView {
        name: "alertmanager-silences".to_string(),
        kind: Kind::Source,
        state,
        reason,
        since,
        blind: "Alertmanager keeps re-notifying acked groups".to_string(),
        paging: false,
        checks: Vec::new(),
    })
}

pub(crate) async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Ok(counts) = s.store.counts().await {
        for st in [
            IncidentState::Triggered,
            IncidentState::Acknowledged,
            IncidentState::Resolved,
        ] {
            s.metrics
                .incidents
                .get_or_create(&StateLabel {
                    state: st.as_str().to_string(),
                })
                .set(counts.get(&st).copied().unwrap_or(0) as i64);
        }
    }
    // Prometheus asks for OpenMetrics first; anything else gets text format 0.0.4.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s.metrics.render_openmetrics(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            s.metrics.render(),
        )
            .into_response()
    }
}

/// `POST /-/reload`: re-read alerts.toml (like SIGHUP). Needs the API's credentials, and
/// `Content-Type: application/json` like every action (the body is not read).
pub(crate) async fn reload(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(r) = json_only(&headers) {
        return *r;
    }
    if let Err(r) = same_site_call(&s.site, &headers, "reload") {
        return *r;
    }
    if let Err(r) = super::auth::check(&s.auth(), &headers, Scope::Admin) {
        return *r;
    }
    let Some(reloader) = &s.reloader else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "reload is not available");
    };
    match reloader.reload().await {
        Ok(r) => Json(json!({"status": "reloaded", "reloaded": r})).into_response(),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("the config was not reloaded; the running config stays: {e}"),
        ),
    }
}
