//! The silences API: known noise that opens no incident while a silence lasts.
//!
//! Making and expiring a silence is an engine input like an ack: the engine checks it
//! and drops the alerts it matches. Reads come from the store.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::hooks::read_capped;
use super::{AppState, error, refused};
use crate::config::{HumanDuration, Scope};
use crate::engine::{Actor, Input, SilenceRecord, Via};
use crate::time::Timestamp;

/// A silence or a maintenance window as the API shows it.
#[derive(Serialize)]
pub struct SilenceView {
    pub id: u64,
    pub matchers: Vec<String>,
    pub from: String,
    pub to: String,
    pub comment: String,
    pub by: String,
    pub created_at: String,
    /// Whether it silences now (a silence may start later).
    pub active: bool,
}

impl SilenceView {
    pub(crate) fn of(s: &SilenceRecord, now: Timestamp) -> Self {
        SilenceView {
            id: s.id,
            matchers: s.matchers.clone(),
            from: s.from.to_rfc3339(),
            to: s.to.to_rfc3339(),
            comment: s.comment.clone(),
            by: s.by.clone(),
            created_at: s.created_at.to_rfc3339(),
            active: s.active(now),
        }
    }
}

/// `GET /api/v1/silences`: those in force or ahead.
pub(crate) async fn list(State(s): State<AppState>) -> Response {
    let now = s.clock.now();
    match s.store.silences(now).await {
        Ok(all) => Json(json!({
            "silences": all.iter().map(|x| SilenceView::of(x, now)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWindowBody {
    matchers: Vec<String>,
    /// Defaults to now.
    from: Option<String>,
    to: Option<String>,
    #[serde(rename = "for")]
    duration: Option<String>,
    comment: String,
    by: String,
}

/// A silence or a maintenance window as asked for, checked for what HTTP can check;
/// the engine checks the rest.
pub(crate) struct NewWindow {
    pub matchers: Vec<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub comment: String,
    pub by: Actor,
}

/// Reads `{"matchers": [...], "from"?, "to" | "for", "comment", "by"}` of a JSON call
/// that may act.
pub(crate) async fn new_window(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<NewWindow, Box<Response>> {
    super::api::json_call(s, headers, Scope::Act)?;
    let bytes = read_capped(headers, body, 16 * 1024).await?;
    let bad = |msg: String| Box::new(error(StatusCode::BAD_REQUEST, msg));
    let b: NewWindowBody = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "body must be JSON like {{\"matchers\": [\"service=\\\"db\\\"\"], \"for\": \"2h\", \"comment\": \"disk swap\", \"by\": \"alice\"}}: {e}"
        ))
    })?;
    let now = s.clock.now();
    let from = match b.from.as_deref().map(Timestamp::parse_rfc3339) {
        None => now,
        Some(Some(t)) => t,
        Some(None) => return Err(bad("from is not an RFC 3339 instant".into())),
    };
    let to = until(b.to.as_deref(), b.duration.as_deref(), from).map_err(bad)?;
    let by = crate::notify::message::clean(&b.by);
    if by.trim().is_empty() || by.chars().count() > 64 {
        return Err(bad(
            "say who makes it: \"by\" is a name of 1 to 64 characters".into(),
        ));
    }
    Ok(NewWindow {
        matchers: b.matchers,
        from,
        to,
        comment: crate::notify::message::clean(&b.comment),
        by: Actor::new(by, Via::Api),
    })
}

/// An end given as `to` (RFC 3339) or as `for` (a duration from `from`).
pub(crate) fn until(
    to: Option<&str>,
    duration: Option<&str>,
    from: Timestamp,
) -> Result<Timestamp, String> {
    match (to, duration) {
        (Some(t), None) => {
            Timestamp::parse_rfc3339(t).ok_or_else(|| "to is not an RFC 3339 instant".to_string())
        }
        (None, Some(d)) => HumanDuration::parse(d)
            .map(|d| from.plus(d.0))
            .map_err(|e| format!("for: {e}")),
        _ => Err("say when it ends: either \"to\" (RFC 3339) or \"for\" (like \"2h\")".into()),
    }
}

/// Makes the window a JSON call asks for through the engine (`input` says which kind)
/// and answers 201 `{"id": N}` with the id `made` finds in what was applied.
pub(crate) async fn create_window(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
    input: impl FnOnce(NewWindow) -> Input,
    made: impl FnOnce(&crate::runtime::Applied) -> Option<u64>,
) -> Response {
    let w = match new_window(s, headers, body).await {
        Ok(w) => w,
        Err(r) => return *r,
    };
    match s.engine.apply(input(w)).await {
        Ok(applied) => (
            StatusCode::CREATED,
            Json(json!({ "id": made(&applied).unwrap_or_default() })),
        )
            .into_response(),
        Err(e) => refused(&e),
    }
}

/// `POST /api/v1/silences`.
pub(crate) async fn create(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let input = |w: NewWindow| Input::AddSilence {
        matchers: w.matchers,
        from: w.from,
        to: w.to,
        comment: w.comment,
        by: w.by,
    };
    create_window(&s, &headers, body, input, |a| a.silence_id).await
}

/// `DELETE /api/v1/silences/{id}`: ends it now.
pub(crate) async fn expire(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let input = |id| Input::ExpireSilence {
        id,
        by: Actor::new("api", Via::Api),
    };
    super::api::end_by_id(&s, &headers, &id, "a silence", input, "expired").await
}
