//! `/maintenance`: planned work. The windows in force or ahead, each with buttons that
//! end it now or move its end an hour later, and a form that starts one (see
//! [`super::windows`], which the silences' page shares). Incidents a window matches are
//! recorded but page nobody while it lasts; when it ends, what is still open pages from
//! step 1.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::windows::{self, Kind, Press, Which};

const MAINTENANCE: Kind = Kind {
    which: Which::Maintenance,
    path: "/maintenance",
    title: "Maintenance",
    noun: "maintenance window",
    ids: "maint",
    note: "Alerts that every matcher of a window in force matches open incidents as usual, \
           but those page nobody until the window ends (their history says held); then \
           every one still open pages from step 1. A window ends at most \
           <code>[defaults] max_maintenance</code> (24h) away: when the work runs long, \
           extend it.",
    end: ("end", "End"),
    extend: true,
    make_button: "Start the window",
};

/// What one press of "Extend (+1h)" adds.
const EXTEND_BY: Duration = Duration::from_secs(3600);

/// `GET /maintenance`.
pub(crate) async fn page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    windows::page(&MAINTENANCE, &s, &headers).await
}

/// `POST /maintenance`, from the page's form.
pub(crate) async fn start(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    windows::create(&MAINTENANCE, &s, &headers, body).await
}

/// `POST /maintenance/{id}/end`: what it held pages from step 1.
pub(crate) async fn end(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    windows::pressed(&MAINTENANCE, Press::Finish, &s, &id, &headers, body).await
}

/// `POST /maintenance/{id}/extend`: its end an hour later.
pub(crate) async fn extend(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    windows::pressed(
        &MAINTENANCE,
        Press::Extend(EXTEND_BY),
        &s,
        &id,
        &headers,
        body,
    )
    .await
}
