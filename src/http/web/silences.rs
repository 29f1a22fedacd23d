//! `/silences`: the silences in force or ahead, each with a button that expires it, and
//! a form that makes one. Making and expiring go to the engine like an ack, which alone
//! decides whether a silence is acceptable (a comment, an end ahead, matchers that do
//! not hide everything); its refusal is the page's answer.
//!
//! The form's "until" is UTC: a silence belongs to no schedule, and the server does not
//! know the browser's zone. Most silences are "for 2h", which needs no zone at all.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::info;

use super::view::{Col, Viewer, table, when};
use super::{
    AppState, acting_form, actor_name, guard, login_first, not_done, problem, reply, secure,
    see_other, store_down, viewer,
};
use crate::config::HumanDuration;
use crate::engine::{Actor, Input, SilenceRecord, Via};
use crate::html::html_escape;
use crate::schedule::wall;
use crate::time::Timestamp;

const BACK: &str = "/silences";

/// `GET /silences`.
pub(crate) async fn page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (viewer, _) = viewer(&s, &headers);
    if let Some(r) = login_first(&viewer) {
        return r;
    }
    let now = s.clock.now();
    let all = match s.store.silences(now).await {
        Ok(all) => all,
        Err(e) => return store_down(&viewer, &e),
    };
    let mut body = String::from(
        "<p class=\"note\">Firing alerts that every matcher of a silence in force matches open no \
         incident and page nobody; they are counted in <code>tocsin_alerts_silenced_total</code>. \
         Resolved alerts still pass, so an incident already open can resolve.</p>",
    );
    body.push_str(&listed(&all, &viewer, now));
    body.push_str(&new_silence(&viewer));
    reply(StatusCode::OK, "Silences", &viewer, &body)
}

/// The silences in force or ahead, each with its expire button.
fn listed(all: &[SilenceRecord], viewer: &Viewer, now: Timestamp) -> String {
    let mut s = String::from("<h2>In force or ahead</h2>");
    if all.is_empty() {
        s.push_str("<p>None.</p>");
        return s;
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|x| {
            let matchers: Vec<String> = x
                .matchers
                .iter()
                .map(|m| format!("<code>{}</code>", html_escape(m)))
                .collect();
            let expire = if viewer.may_act() {
                format!(
                    "<form method=\"post\" action=\"/silences/{}/expire\">{}\
                     <input type=\"hidden\" name=\"by\" value=\"{}\">\
                     <button type=\"submit\" class=\"quiet small\">Expire</button></form>",
                    x.id,
                    viewer.csrf_field(),
                    html_escape(&viewer.name),
                )
            } else {
                String::new()
            };
            vec![
                x.id.to_string(),
                matchers.join("<br>"),
                when(x.from),
                when(x.to),
                html_escape(&x.comment),
                html_escape(&x.by),
                if x.active(now) { "yes" } else { "not yet" }.to_string(),
                expire,
            ]
        })
        .collect();
    let cols = [
        Col("#", "", false),
        Col("Matchers", "", false),
        Col("From", "nowrap", true),
        Col("To", "nowrap", true),
        Col("Comment", "", true),
        Col("By", "", true),
        Col("Active", "", true),
        Col("", "", false),
    ];
    s.push_str(&table("Silences", true, &cols, &rows));
    s
}

/// The form that makes a silence.
fn new_silence(viewer: &Viewer) -> String {
    if !viewer.may_act() {
        return "<p class=\"note\">Your login may only look: silences need a token with the act scope.</p>".to_string();
    }
    let field = |id: &str, label: &str, input: String| {
        format!("<div class=\"field\"><label for=\"silence-{id}\">{label}</label>{input}</div>")
    };
    let mut s = format!(
        "<h2>Make a silence</h2><form class=\"act\" method=\"post\" action=\"/silences\">{}",
        viewer.csrf_field()
    );
    s.push_str(&field(
        "matchers",
        "Matchers, one per line (all must match), like <code>service=\"db\"</code>",
        "<textarea id=\"silence-matchers\" name=\"matchers\" rows=\"3\" required></textarea>"
            .to_string(),
    ));
    s.push_str(&field(
        "for",
        "For (like 2h or 1d)",
        "<input type=\"text\" id=\"silence-for\" name=\"for\" placeholder=\"2h\">".to_string(),
    ));
    s.push_str(&field(
        "to",
        "Or until (UTC)",
        "<input type=\"datetime-local\" id=\"silence-to\" name=\"to\">".to_string(),
    ));
    s.push_str(&field(
        "comment",
        "Comment: why (whoever misses these alerts will look here)",
        "<input type=\"text\" id=\"silence-comment\" name=\"comment\" maxlength=\"500\" required>"
            .to_string(),
    ));
    s.push_str(&field(
        "by",
        "Your name",
        format!(
            "<input type=\"text\" id=\"silence-by\" name=\"by\" value=\"{}\" maxlength=\"64\" autocomplete=\"name\" required>",
            html_escape(&viewer.name)
        ),
    ));
    s.push_str("<button type=\"submit\">Make the silence</button></form>");
    s
}

/// What the form asks for: matchers, from (now), to and the comment; or why it asks
/// for nothing.
fn asked_for(
    fields: &HashMap<String, String>,
    now: Timestamp,
) -> Result<(Vec<String>, Timestamp, String), String> {
    let field = |k: &str| fields.get(k).map(|v| v.trim()).unwrap_or("");
    let matchers: Vec<String> = field("matchers")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let to = match (field("for"), field("to")) {
        ("", "") => return Err("Say when it ends: For (like 2h) or Until.".into()),
        (d, "") => now.plus(HumanDuration::parse(d).map_err(|e| format!("For: {e}."))?.0),
        ("", t) => t
            .parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|dt| wall::instant(&jiff::tz::TimeZone::UTC, dt))
            .ok_or_else(|| format!("Until {t:?} is not a date and time like 2027-03-14T09:00."))?,
        _ => return Err("Fill in For or Until, not both.".into()),
    };
    let comment = crate::notify::message::clean(field("comment"));
    Ok((matchers, to, comment))
}

/// `POST /silences`, from the page's form.
pub(crate) async fn create(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (viewer, session) = viewer(&s, &headers);
    let what = "silence";
    let fields = match acting_form(&s, &viewer, session, &headers, body, what, BACK).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let now = s.clock.now();
    let (matchers, to, comment) = match asked_for(&fields, now) {
        Ok(a) => a,
        Err(msg) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Nothing changed",
                &viewer,
                &msg,
                BACK,
            );
        }
    };
    let by = actor_name(&fields);
    let input = Input::AddSilence {
        matchers,
        from: now,
        to,
        comment,
        by: Actor::new(by.clone(), Via::Web),
    };
    match s.engine.apply(input).await {
        Ok(applied) => {
            info!(id = ?applied.silence_id, by = %by, "silence made from the web view");
            see_other(BACK, [guard::name_cookie(&by, secure(&s))])
        }
        Err(e) => not_done(&viewer, &e, what, BACK),
    }
}

/// `POST /silences/{id}/expire`, a silence's expire button.
pub(crate) async fn expire(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (viewer, session) = viewer(&s, &headers);
    let what = format!("silence {id}");
    let fields = match acting_form(&s, &viewer, session, &headers, body, &what, BACK).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<u64>() else {
        return problem(
            StatusCode::NOT_FOUND,
            "No such silence",
            &viewer,
            &format!("There is no silence {id:?}."),
            BACK,
        );
    };
    let by = actor_name(&fields);
    let input = Input::ExpireSilence {
        id,
        by: Actor::new(by.clone(), Via::Web),
    };
    match s.engine.submit(input).await {
        Ok(()) => {
            info!(id, by = %by, "silence expired from the web view");
            see_other(BACK, [])
        }
        Err(e) => not_done(&viewer, &e, &what, BACK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_are_one_per_line_and_the_end_is_for_or_until_in_utc() {
        let now = Timestamp::at("2027-03-10T16:00:00Z");
        let (matchers, to, comment) = asked_for(
            &form(&[
                (
                    "matchers",
                    "service=\"db\"\r\n\r\n  env=~\"prod|stage\"  \r\n",
                ),
                ("for", "2h"),
                ("to", ""),
                ("comment", " migration\u{7} OPS-12 "),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(matchers, ["service=\"db\"", "env=~\"prod|stage\""]);
        assert_eq!(to, Timestamp::at("2027-03-10T18:00:00Z"));
        assert!(!comment.contains('\u{7}'), "{comment:?}");
        let (_, to, _) = asked_for(&form(&[("to", "2027-03-11T06:30")]), now).unwrap();
        assert_eq!(to, Timestamp::at("2027-03-11T06:30:00Z"));
        for (fields, says) in [
            (form(&[("for", ""), ("to", "")]), "Say when it ends"),
            (
                form(&[("for", "2h"), ("to", "2027-03-11T06:30")]),
                "not both",
            ),
            (form(&[("for", "soon")]), "For: invalid duration"),
            (form(&[("to", "tomorrow")]), "Until \"tomorrow\""),
        ] {
            let err = asked_for(&fields, now).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
