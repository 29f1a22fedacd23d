//! `POST /hooks/alertmanager`: answered 200 only once the alerts are committed.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tracing::{debug, warn};

use super::cross_site::{json_only, same_site_call};
use super::{AppState, auth, error};
use crate::config::Scope;
use crate::engine::Input;
use crate::metrics::{CodeLabel, SourceLabel};
use crate::runtime::SubmitError;
use crate::runtime::forward::Beat;
use crate::source::alertmanager;

pub(crate) async fn alertmanager(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let resp = receive(&s, &headers, body).await;
    s.metrics
        .webhook_requests
        .get_or_create(&CodeLabel {
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    s.metrics
        .webhook_duration
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// Reads at most `max` bytes; a bigger body is refused without reading the rest.
pub(crate) async fn read_capped(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<axum::body::Bytes, Box<Response>> {
    let too_big = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than server.max_body ({max} bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(Box::new(too_big()));
    }
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Box::new(too_big())),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        ))),
    }
}

async fn receive(s: &AppState, headers: &HeaderMap, body: Body) -> Response {
    // Alertmanager declares its JSON; a web page's form or no-cors fetch cannot.
    if let Err(r) = json_only(headers) {
        return *r;
    }
    if let Err(r) = same_site_call(&s.site, headers, "alertmanager") {
        return *r;
    }
    if let Err(r) = auth::check(&s.auth(), headers, Scope::Hooks) {
        return *r;
    }
    let bytes = match read_capped(headers, body, s.max_body).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let parsed = match alertmanager::parse(&bytes, s.heartbeat.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, bytes = bytes.len(), "refused an Alertmanager payload");
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let source = || SourceLabel {
        source: alertmanager::SOURCE.to_string(),
    };
    let batch = parsed.batch;
    if parsed.heartbeats > 0 {
        if let Some(name) = &s.heartbeat {
            let beat = Beat::Alertmanager {
                alertname: name.to_string(),
            };
            if let Err(e) = s.engine.beat(beat, &s.watchdog).await {
                // Alertmanager sends it again with the group: nothing is lost but time.
                return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            }
        }
        s.metrics
            .heartbeats_received
            .get_or_create(&source())
            .inc_by(parsed.heartbeats);
    }
    if batch.truncated > 0 {
        warn!(
            group_key = ?batch.group_key,
            truncated = batch.truncated,
            "Alertmanager dropped alerts from this notification (max_alerts); the incident lists only those received"
        );
        s.metrics
            .truncated_alerts
            .get_or_create(&source())
            .inc_by(batch.truncated);
    }
    let n = batch.alerts.len();
    s.metrics
        .alerts_received
        .get_or_create(&source())
        .inc_by(n as u64);
    if n == 0 && batch.truncated == 0 {
        return (StatusCode::OK, Json(json!({"status": "ok", "alerts": 0}))).into_response();
    }
    debug!(group_key = ?batch.group_key, alerts = n, "alertmanager payload");
    match s.engine.submit(Input::Alerts(batch)).await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok", "alerts": n}))).into_response(),
        // Alertmanager retries 5xx: right for a store that could not commit.
        Err(SubmitError::Unavailable(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        Err(e) => error(
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        ),
    }
}

/// `GET` or `POST /hooks/heartbeat/{name}`: something outside is alive. The body, if
/// any, is ignored (never read past the cap), so any content type will do: cron jobs
/// call `curl -X POST URL` or `curl -d '' URL`. What a forged ping looks like is a
/// browser's request from another site's page (a no-cors `fetch`, an `<img>`), which
/// the browser marks as such.
pub(crate) async fn heartbeat(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = same_site_call(&s.site, &headers, "heartbeat") {
        return *r;
    }
    if let Err(r) = auth::check(&s.auth(), &headers, Scope::Heartbeat) {
        return *r;
    }
    if let Err(r) = read_capped(&headers, body, s.max_body).await {
        return *r;
    }
    let beat = Beat::Url { name: name.clone() };
    let known = match s.engine.beat(beat, &s.watchdog).await {
        Ok(known) => known,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    if known {
        (
            StatusCode::OK,
            Json(json!({"status": "ok", "heartbeat": name})),
        )
            .into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no heartbeat {name:?}: add [heartbeats.{name}] with a period to alerts.toml"),
        )
    }
}
