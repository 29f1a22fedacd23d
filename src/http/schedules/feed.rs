//! iCalendar feeds of a schedule's shifts, for phone calendars: `/schedules/{name}.ics`
//! and `/schedules/{name}/{contact}.ics`.
//!
//! A feed is a read like any other: once credentials are configured it needs one with
//! the `read` scope, since it names who is on call when. A calendar app that subscribes
//! with a user name and password sends them as basic auth, which `server.basic_auth`
//! already is; one that can only fetch a bare URL cannot subscribe to a locked tocsin
//! (a token in the URL would end up in proxy logs and browser history).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, MAX_SPAN, asked, error};

/// How far back a feed reaches: last week's shifts stay on the phone's calendar.
const PAST: Duration = Duration::from_secs(7 * 86_400);

/// `GET /schedules/{name}.ics`: every shift of the schedule.
pub(crate) async fn schedule(State(s): State<AppState>, Path(file): Path<String>) -> Response {
    match file.strip_suffix(".ics") {
        Some(name) => feed(&s, name, None).await,
        None => no_feed(&file),
    }
}

/// `GET /schedules/{name}/{contact}.ics`: one contact's shifts of the schedule.
pub(crate) async fn contact(
    State(s): State<AppState>,
    Path((name, file)): Path<(String, String)>,
) -> Response {
    let Some(contact) = file.strip_suffix(".ics") else {
        return no_feed(&file);
    };
    if !s.live().config.file.contacts.contains_key(contact) {
        return error(StatusCode::NOT_FOUND, format!("no contact {contact:?}"));
    }
    feed(&s, &name, Some(contact)).await
}

fn no_feed(file: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no feed {file:?}: feeds are /schedules/NAME.ics and /schedules/NAME/CONTACT.ics"),
    )
}

/// The shifts from a week ago to [`MAX_SPAN`] ahead, as RFC 5545 text. A shift that
/// began more than [`MAX_SPAN`] before that shows as starting then.
async fn feed(s: &AppState, name: &str, contact: Option<&str>) -> Response {
    let now = s.clock.now();
    let from = now.minus(PAST);
    // The shifts are asked for from further back, so one under way a week ago keeps its
    // real start (and with it its UID) instead of one that moves with every fetch.
    let back = from.minus(MAX_SPAN);
    let a = match asked(s, name, back).await {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let cfg = s.live().config.clone();
    let mine = crate::engine::overrides_of(&a.overrides, name);
    let mut shifts = cfg.calendar.shifts(name, &mine, back, now.plus(MAX_SPAN));
    shifts.retain(|sh| sh.end > from && contact.is_none_or(|c| sh.contact == c));
    let public = url::Url::parse(&cfg.file.server.public_url).ok();
    let host = public
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or("tocsin");
    let body = crate::schedule::ics::ics(name, &shifts, now, host);
    (
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response()
}
