//! The maintenance API: planned work whose incidents page nobody while it lasts.
//!
//! Starting, moving and ending a window are engine inputs like an ack; the engine holds
//! and releases the incidents. Reads come from the store.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::hooks::read_capped;
use super::silences::{NewWindow, SilenceView, create_window, until};
use super::{AppState, error, refused};
use crate::config::Scope;
use crate::engine::{Actor, Input, Via};

/// `GET /api/v1/maintenance`: windows in force or ahead.
pub(crate) async fn list(State(s): State<AppState>) -> Response {
    let now = s.clock.now();
    match s.store.maintenance(now).await {
        Ok(all) => Json(json!({
            "maintenance": all.iter().map(|w| SilenceView::of(w, now)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `POST /api/v1/maintenance`.
pub(crate) async fn start(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let input = |w: NewWindow| Input::StartMaintenance {
        matchers: w.matchers,
        from: w.from,
        to: w.to,
        comment: w.comment,
        by: w.by,
    };
    create_window(&s, &headers, body, input, |a| a.maintenance_id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Extend {
    to: Option<String>,
    #[serde(rename = "for")]
    duration: Option<String>,
    by: String,
}

/// `POST /api/v1/maintenance/{id}/extend`: `{"for": "2h", "by": "alice"}` (from now) or
/// `{"to": RFC3339, "by": ...}`.
pub(crate) async fn extend(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = super::api::json_call(&s, &headers, Scope::Act) {
        return *r;
    }
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a maintenance id"),
        );
    };
    let bytes = match read_capped(&headers, body, 4096).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let b: Extend = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body must be JSON like {{\"for\": \"2h\", \"by\": \"alice\"}}: {e}"),
            );
        }
    };
    let to = match until(b.to.as_deref(), b.duration.as_deref(), s.clock.now()) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let input = Input::ExtendMaintenance {
        id,
        to,
        by: Actor::new(crate::notify::message::clean(&b.by), Via::Api),
    };
    match s.engine.submit(input).await {
        Ok(()) => Json(json!({ "id": id, "to": to.to_rfc3339() })).into_response(),
        Err(e) => refused(&e),
    }
}

/// `DELETE /api/v1/maintenance/{id}`: ends it now; what it held pages from step 1.
pub(crate) async fn end(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let input = |id| Input::EndMaintenance {
        id,
        by: Actor::new("api", Via::Api),
    };
    super::api::end_by_id(&s, &headers, &id, "a maintenance", input, "ended").await
}
