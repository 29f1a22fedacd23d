//! What `/silences` and `/maintenance` share: both list windows (matchers, a start, an
//! end, a comment, who made it) in force or ahead, each with a button that ends it, and
//! offer a form that makes one. Making and ending go to the engine like an ack, which
//! alone decides whether a window is acceptable; its refusal is the page's answer.
//!
//! The form's "until" is UTC: a window belongs to no schedule, and the server does not
//! know the browser's zone. Most windows are "for 2h", which needs no zone at all.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tracing::info;

use super::view::{Col, Viewer, table, when};
use super::{
    AppState, acting_form, actor_name, guard, login_first, not_done, problem, reply, secure,
    see_other, store_down, viewer,
};
use crate::config::HumanDuration;
use crate::engine::{Actor, Input, Via, WindowId, WindowRecord};
use crate::html::html_escape;
use crate::schedule::wall;
use crate::time::Timestamp;

/// Which windows a page is about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    Silences,
    Maintenance,
}

/// How one page names its windows and buttons.
pub(super) struct Kind {
    pub which: Which,
    /// The page, where every form goes back to.
    pub path: &'static str,
    pub title: &'static str,
    /// "silence": in headings, buttons and logs.
    pub noun: &'static str,
    /// Prefix of the form's element ids.
    pub ids: &'static str,
    /// What the page's windows do, above the list.
    pub note: &'static str,
    /// The end button's path segment and label: `/silences/{id}/expire`, "Expire".
    pub end: (&'static str, &'static str),
    /// An "Extend (+1h)" button beside the end button.
    pub extend: bool,
    pub make_button: &'static str,
}

impl Kind {
    async fn read(
        &self,
        s: &AppState,
        now: Timestamp,
    ) -> Result<Vec<WindowRecord>, crate::store::StoreError> {
        match self.which {
            Which::Silences => s.store.silences(now).await,
            Which::Maintenance => s.store.maintenance(now).await,
        }
    }

    fn start(&self, w: Asked, by: Actor) -> Input {
        match self.which {
            Which::Silences => Input::AddSilence {
                matchers: w.matchers,
                from: w.from,
                to: w.to,
                comment: w.comment,
                by,
            },
            Which::Maintenance => Input::StartMaintenance {
                matchers: w.matchers,
                from: w.from,
                to: w.to,
                comment: w.comment,
                by,
            },
        }
    }

    fn finish(&self, id: WindowId, by: Actor) -> Input {
        match self.which {
            Which::Silences => Input::ExpireSilence { id, by },
            Which::Maintenance => Input::EndMaintenance { id, by },
        }
    }
}

/// `GET` of the page.
pub(super) async fn page(kind: &Kind, s: &AppState, headers: &HeaderMap) -> Response {
    let (viewer, _) = viewer(s, headers);
    if let Some(r) = login_first(&viewer) {
        return r;
    }
    let now = s.clock.now();
    let all = match kind.read(s, now).await {
        Ok(all) => all,
        Err(e) => return store_down(&viewer, &e),
    };
    let mut body = format!("<p class=\"note\">{}</p>", kind.note);
    body.push_str(&listed(kind, &all, &viewer, now));
    body.push_str(&new_window(kind, &viewer));
    reply(StatusCode::OK, kind.title, &viewer, &body)
}

/// A small form that is one button posting `by` to `action`.
fn button(viewer: &Viewer, action: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\">{}\
         <input type=\"hidden\" name=\"by\" value=\"{}\">\
         <button type=\"submit\" class=\"quiet small\">{label}</button></form>",
        viewer.csrf_field(),
        html_escape(&viewer.name),
    )
}

/// The windows in force or ahead, each with its buttons.
fn listed(kind: &Kind, all: &[WindowRecord], viewer: &Viewer, now: Timestamp) -> String {
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
            let mut buttons = String::new();
            if viewer.may_act() {
                let (end, label) = kind.end;
                buttons = button(viewer, &format!("{}/{}/{end}", kind.path, x.id), label);
                if kind.extend {
                    buttons.push_str(&button(
                        viewer,
                        &format!("{}/{}/extend", kind.path, x.id),
                        "Extend (+1h)",
                    ));
                }
            }
            vec![
                x.id.to_string(),
                matchers.join("<br>"),
                when(x.from),
                when(x.to),
                html_escape(&x.comment),
                html_escape(&x.by),
                if x.active(now) { "yes" } else { "not yet" }.to_string(),
                buttons,
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
    s.push_str(&table(kind.title, true, &cols, &rows));
    s
}

/// The form that makes a window.
fn new_window(kind: &Kind, viewer: &Viewer) -> String {
    let noun = kind.noun;
    if !viewer.may_act() {
        return format!(
            "<p class=\"note\">Your login may only look: a {noun} needs a token with the act scope.</p>"
        );
    }
    let ids = kind.ids;
    let field = |id: &str, label: &str, input: String| {
        format!("<div class=\"field\"><label for=\"{ids}-{id}\">{label}</label>{input}</div>")
    };
    let mut s = format!(
        "<h2>Make a {noun}</h2><form class=\"act\" method=\"post\" action=\"{}\">{}",
        kind.path,
        viewer.csrf_field()
    );
    s.push_str(&field(
        "matchers",
        "Matchers, one per line (all must match), like <code>service=\"db\"</code>",
        format!(
            "<textarea id=\"{ids}-matchers\" name=\"matchers\" rows=\"3\" required></textarea>"
        ),
    ));
    s.push_str(&field(
        "for",
        "For (like 2h or 1d)",
        format!("<input type=\"text\" id=\"{ids}-for\" name=\"for\" placeholder=\"2h\">"),
    ));
    s.push_str(&field(
        "to",
        "Or until (UTC)",
        format!("<input type=\"datetime-local\" id=\"{ids}-to\" name=\"to\">"),
    ));
    s.push_str(&field(
        "comment",
        "Comment: why (whoever misses these alerts will look here)",
        format!(
            "<input type=\"text\" id=\"{ids}-comment\" name=\"comment\" maxlength=\"500\" required>"
        ),
    ));
    s.push_str(&field(
        "by",
        "Your name",
        format!(
            "<input type=\"text\" id=\"{ids}-by\" name=\"by\" value=\"{}\" maxlength=\"64\" autocomplete=\"name\" required>",
            html_escape(&viewer.name)
        ),
    ));
    s.push_str(&format!(
        "<button type=\"submit\">{}</button></form>",
        kind.make_button
    ));
    s
}

/// A window as the form asks for it, from now.
struct Asked {
    matchers: Vec<String>,
    from: Timestamp,
    to: Timestamp,
    comment: String,
}

/// What the form asks for: matchers, to and the comment; or why it asks for nothing.
fn asked_for(fields: &HashMap<String, String>, now: Timestamp) -> Result<Asked, String> {
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
    Ok(Asked {
        matchers,
        from: now,
        to,
        comment,
    })
}

/// `POST` of the page's form.
pub(super) async fn create(kind: &Kind, s: &AppState, headers: &HeaderMap, body: Body) -> Response {
    let (viewer, session) = viewer(s, headers);
    let (what, back) = (kind.noun, kind.path);
    let fields = match acting_form(s, &viewer, session, headers, body, what, back).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let asked = match asked_for(&fields, s.clock.now()) {
        Ok(a) => a,
        Err(msg) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Nothing changed",
                &viewer,
                &msg,
                back,
            );
        }
    };
    let by = actor_name(&fields);
    let input = kind.start(asked, Actor::new(by.clone(), Via::Web));
    match s.engine.apply(input).await {
        Ok(applied) => {
            let id = applied.silence_id.or(applied.maintenance_id);
            info!(?id, by = %by, "{what} made from the web view");
            see_other(back, [guard::name_cookie(&by, secure(s))])
        }
        Err(e) => not_done(&viewer, &e, what, back),
    }
}

/// What a window's buttons do.
pub(super) enum Press {
    /// Expire or end it now.
    Finish,
    /// Move its end this much later.
    Extend(std::time::Duration),
}

/// `POST {path}/{id}/{end|extend}`, a window's button.
pub(super) async fn pressed(
    kind: &Kind,
    press: Press,
    s: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let (viewer, session) = viewer(s, headers);
    let what = format!("{} {id}", kind.noun);
    let back = kind.path;
    let fields = match acting_form(s, &viewer, session, headers, body, &what, back).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<WindowId>() else {
        return problem(
            StatusCode::NOT_FOUND,
            &format!("No such {}", kind.noun),
            &viewer,
            &format!("There is no {} {id:?}.", kind.noun),
            back,
        );
    };
    let by = Actor::new(actor_name(&fields), Via::Web);
    let input = match press {
        Press::Finish => kind.finish(id, by.clone()),
        Press::Extend(more) => {
            let now = s.clock.now();
            let all = match kind.read(s, now).await {
                Ok(all) => all,
                Err(e) => return store_down(&viewer, &e),
            };
            match crate::engine::later_end(&all, id, more) {
                Ok(to) => Input::ExtendMaintenance {
                    id,
                    to,
                    by: by.clone(),
                },
                Err(refusal) => return not_done(&viewer, &refusal.into(), &what, back),
            }
        }
    };
    match s.engine.submit(input).await {
        Ok(()) => {
            info!(id, by = %by.name, "{what} changed from the web view");
            see_other(back, [])
        }
        Err(e) => not_done(&viewer, &e, &what, back),
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
        let asked = asked_for(
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
        assert_eq!(asked.matchers, ["service=\"db\"", "env=~\"prod|stage\""]);
        assert_eq!(asked.to, Timestamp::at("2027-03-10T18:00:00Z"));
        assert!(!asked.comment.contains('\u{7}'), "{:?}", asked.comment);
        let asked = asked_for(&form(&[("to", "2027-03-11T06:30")]), now).unwrap();
        assert_eq!(asked.to, Timestamp::at("2027-03-11T06:30:00Z"));
        for (fields, says) in [
            (form(&[("for", ""), ("to", "")]), "Say when it ends"),
            (
                form(&[("for", "2h"), ("to", "2027-03-11T06:30")]),
                "not both",
            ),
            (form(&[("for", "soon")]), "For: invalid duration"),
            (form(&[("to", "tomorrow")]), "Until \"tomorrow\""),
        ] {
            let err = asked_for(&fields, now).map(|_| ()).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
