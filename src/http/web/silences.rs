//! `/silences`: the silences in force or ahead, each with a button that expires it, and
//! a form that makes one (see [`super::windows`], which the maintenance page shares).
//! The engine alone decides whether a silence is acceptable (a comment, an end ahead,
//! matchers that do not hide everything); its refusal is the page's answer.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::windows::{self, Kind, Press, Which};

const SILENCES: Kind = Kind {
    which: Which::Silences,
    path: "/silences",
    title: "Silences",
    noun: "silence",
    ids: "silence",
    note: "Firing alerts that every matcher of a silence in force matches open no \
           incident and page nobody; they are counted in <code>tocsin_alerts_silenced_total</code>. \
           Resolved alerts still pass, so an incident already open can resolve.",
    end: ("expire", "Expire"),
    extend: false,
    make_button: "Make the silence",
};

/// `GET /silences`.
pub(crate) async fn page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    windows::page(&SILENCES, &s, &headers).await
}

/// `POST /silences`, from the page's form.
pub(crate) async fn create(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    windows::create(&SILENCES, &s, &headers, body).await
}

/// `POST /silences/{id}/expire`, a silence's expire button.
pub(crate) async fn expire(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    windows::pressed(&SILENCES, Press::Finish, &s, &id, &headers, body).await
}
