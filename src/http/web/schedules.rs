//! `/schedules`: each schedule's person on call and until when, the next two weeks of
//! shifts, the overrides in force or ahead with a button that deletes one, and a form
//! that makes one. Times are shown on the schedule's wall clock and in UTC; the form's
//! times are read on the schedule's wall clock, as the person filling it in thinks of
//! them. Making and deleting go to the engine like an ack, which alone decides whether
//! an override conflicts with another; its refusal is the page's answer.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::tz::TimeZone;
use tracing::info;

use super::view::{Col, Viewer, table, when};
use super::{
    AppState, acting_form, actor_name, guard, login_first, not_done, problem, reply, secure,
    see_other, store_down, viewer,
};
use crate::config::Config;
use crate::engine::{Actor, Input, OverrideRecord, Via};
use crate::html::html_escape;
use crate::http::schedules::{DEFAULT_SPAN, OverrideView, parse_change};
use crate::schedule::{Schedule, wall};
use crate::time::Timestamp;

const BACK: &str = "/schedules";

/// `GET /schedules`.
pub(crate) async fn page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (viewer, _) = viewer(&s, &headers);
    if let Some(r) = login_first(&viewer) {
        return r;
    }
    let now = s.clock.now();
    let all = match s.store.overrides(None, now).await {
        Ok(o) => o,
        Err(e) => return store_down(&viewer, &e),
    };
    let cfg = s.live().config.clone();
    let mut body = String::new();
    if cfg.calendar.schedules.is_empty() {
        body.push_str(
            "<p>No schedules: define them as <code>[schedules.NAME]</code> in alerts.toml.</p>",
        );
    }
    for sch in cfg.calendar.schedules.values() {
        body.push_str(&schedule(&cfg, sch, &all, &viewer, now));
    }
    reply(StatusCode::OK, "Schedules", &viewer, &body)
}

/// `t` on `tz`'s wall clock: "Sun 2027-03-14 09:00 CDT".
fn wall_time(tz: &TimeZone, t: Timestamp) -> String {
    let zoned = wall::to_jiff(t).to_zoned_datetime(tz.clone());
    html_escape(&zoned.strftime("%a %Y-%m-%d %H:%M %Z").to_string())
}

/// A time on the schedule's wall clock with UTC below it.
fn both(tz: &TimeZone, t: Timestamp) -> String {
    format!(
        "{}<br><span class=\"note\">{}</span>",
        wall_time(tz, t),
        when(t)
    )
}

/// One schedule's section.
fn schedule(
    cfg: &Config,
    sch: &Schedule,
    all: &[OverrideRecord],
    viewer: &Viewer,
    now: Timestamp,
) -> String {
    let name = html_escape(&sch.name);
    let tz = &sch.time_zone;
    let zone = cfg
        .file
        .schedules
        .get(&sch.name)
        .map(|f| f.time_zone.as_str())
        .unwrap_or("UTC");
    let mine = crate::engine::overrides_of(all, &sch.name);
    let mut s = format!(
        "<section aria-labelledby=\"s-{name}\"><h2 id=\"s-{name}\">{name} <span class=\"note\">({})</span></h2>",
        html_escape(zone)
    );
    if let Some(oc) = cfg.calendar.oncall(&sch.name, &mine, now) {
        let who: Vec<String> = oc
            .contacts
            .iter()
            .map(|c| {
                format!(
                    "<strong>{}</strong> ({})",
                    html_escape(&c.name),
                    html_escape(&c.via.to_string())
                )
            })
            .collect();
        let who = match (who.is_empty(), oc.fallback_used) {
            (true, _) => "nobody, and there is no fallback".to_string(),
            (false, true) => format!("nobody: the fallback {} is paged", who.join(", ")),
            (false, false) => who.join(", "),
        };
        let until = match oc.until {
            Some(t) => format!(" until {}", both(tz, t)),
            None => String::new(),
        };
        let _ = write!(s, "<p class=\"oncall\">On call now: {who}{until}.</p>");
    }
    let shifts = cfg
        .calendar
        .shifts(&sch.name, &mine, now, now.plus(DEFAULT_SPAN));
    let _ = write!(s, "<h3>Shifts of the next 14 days</h3>");
    if shifts.is_empty() {
        s.push_str("<p>Nobody is on call in the next 14 days.</p>");
    } else {
        let rows: Vec<Vec<String>> = shifts
            .iter()
            .map(|sh| {
                vec![
                    html_escape(&sh.contact),
                    both(tz, sh.start),
                    both(tz, sh.end),
                    html_escape(&sh.via.to_string()),
                ]
            })
            .collect();
        let cols = [
            Col("Contact", "", false),
            Col("Start", "nowrap", true),
            Col("End", "nowrap", true),
            Col("Via", "", true),
        ];
        s.push_str(&table(&format!("Shifts of {name}"), true, &cols, &rows));
    }
    s.push_str(&overrides(&sch.name, tz, all, viewer));
    s.push_str(&new_override(cfg, &sch.name, zone, viewer));
    let _ = write!(
        s,
        "<p class=\"note\">Calendar feed: <a href=\"/schedules/{name}.ics\">/schedules/{name}.ics</a>, \
         one person's: <code>/schedules/{name}/CONTACT.ics</code>. With credentials configured a \
         calendar app subscribes with the basic-auth user name and password.</p></section>"
    );
    s
}

/// The overrides in force or ahead, each with its delete button.
fn overrides(name: &str, tz: &TimeZone, all: &[OverrideRecord], viewer: &Viewer) -> String {
    let mut s = String::from("<h3>Overrides</h3>");
    let mine: Vec<&OverrideRecord> = all.iter().filter(|o| o.schedule == name).collect();
    if mine.is_empty() {
        s.push_str("<p>None.</p>");
        return s;
    }
    let rows: Vec<Vec<String>> = mine
        .iter()
        .map(|o| {
            let v = OverrideView::from(*o);
            let what = match &v.with {
                Some(w) => format!(
                    "{} {} with {}",
                    v.kind,
                    html_escape(&v.contact),
                    html_escape(w)
                ),
                None => format!("{} {}", v.kind, html_escape(&v.contact)),
            };
            let delete = if viewer.may_act() {
                format!(
                    "<form method=\"post\" action=\"/schedules/{}/overrides/{}/delete\">{}\
                     <input type=\"hidden\" name=\"by\" value=\"{}\">\
                     <button type=\"submit\" class=\"quiet small\">Delete</button></form>",
                    html_escape(name),
                    o.id,
                    viewer.csrf_field(),
                    html_escape(&viewer.name),
                )
            } else {
                String::new()
            };
            vec![
                o.id.to_string(),
                what,
                both(tz, o.from),
                both(tz, o.to),
                html_escape(&o.by),
                delete,
            ]
        })
        .collect();
    let cols = [
        Col("#", "", false),
        Col("Change", "", true),
        Col("From", "nowrap", true),
        Col("To", "nowrap", true),
        Col("By", "", true),
        Col("", "", false),
    ];
    s.push_str(&table(
        &format!("Overrides of {}", html_escape(name)),
        true,
        &cols,
        &rows,
    ));
    s
}

/// The form that makes an override; its times are on the schedule's wall clock.
fn new_override(cfg: &Config, name: &str, zone: &str, viewer: &Viewer) -> String {
    if !viewer.may_act() {
        return "<p class=\"note\">Your login may only look: overrides need a token with the act scope.</p>".to_string();
    }
    let id = |field: &str| html_escape(&format!("{field}-{name}"));
    let options = |blank: Option<&str>| {
        let mut o = blank
            .map(|b| format!("<option value=\"\">{b}</option>"))
            .unwrap_or_default();
        for c in cfg.file.contacts.keys() {
            let c = html_escape(c);
            let _ = write!(o, "<option value=\"{c}\">{c}</option>");
        }
        o
    };
    let field = |f: &str, label: &str, input: String| {
        format!(
            "<div class=\"field\"><label for=\"{}\">{label}</label>{input}</div>",
            id(f)
        )
    };
    let mut s = format!(
        "<h3>Make an override</h3><form class=\"act\" method=\"post\" action=\"/schedules/{}/overrides\">{}",
        html_escape(name),
        viewer.csrf_field()
    );
    s.push_str(&field(
        "kind",
        "Change",
        format!(
            "<select id=\"{}\" name=\"kind\"><option value=\"replace\">replace</option>\
             <option value=\"add\">add</option><option value=\"remove\">remove</option></select>",
            id("kind")
        ),
    ));
    s.push_str(&field(
        "contact",
        "Contact",
        format!(
            "<select id=\"{}\" name=\"contact\">{}</select>",
            id("contact"),
            options(None)
        ),
    ));
    s.push_str(&field(
        "with",
        "With (replace only)",
        format!(
            "<select id=\"{}\" name=\"with\">{}</select>",
            id("with"),
            options(Some("—"))
        ),
    ));
    let zone = html_escape(zone);
    s.push_str(&field(
        "from",
        &format!("From ({zone}; empty: now)"),
        format!(
            "<input type=\"datetime-local\" id=\"{}\" name=\"from\">",
            id("from")
        ),
    ));
    s.push_str(&field(
        "to",
        &format!("To ({zone})"),
        format!(
            "<input type=\"datetime-local\" id=\"{}\" name=\"to\" required>",
            id("to")
        ),
    ));
    s.push_str(&field(
        "by",
        "Your name",
        format!(
            "<input type=\"text\" id=\"{}\" name=\"by\" value=\"{}\" maxlength=\"64\" autocomplete=\"name\" required>",
            id("by"),
            html_escape(&viewer.name)
        ),
    ));
    s.push_str("<button type=\"submit\">Make the override</button></form>");
    s
}

/// The instant a `datetime-local` field names on `tz`'s wall clock, with the DST rules
/// of handoffs: a time the clocks skip is the instant they jump, a time they show twice
/// is its first occurrence.
fn instant(tz: &TimeZone, label: &str, value: &str) -> Result<Timestamp, String> {
    value
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| wall::instant(tz, dt))
        .ok_or_else(|| format!("{label} {value:?} is not a date and time like 2027-03-14T09:00."))
}

/// What the form asks for, or why it asks for nothing.
fn asked_for(
    fields: &HashMap<String, String>,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<(crate::engine::Change, Timestamp, Timestamp), String> {
    let field = |k: &str| fields.get(k).map(|v| v.trim()).unwrap_or("");
    let kind = field("kind");
    // The form always sends "with"; only a replace means it.
    let with = (kind == "replace")
        .then(|| field("with"))
        .filter(|w| !w.is_empty())
        .map(str::to_string);
    if kind == "replace" && with.is_none() {
        return Err("A replace needs someone in With: who takes over.".into());
    }
    let change = parse_change(kind, field("contact").to_string(), with)?;
    let from = match field("from") {
        "" => now,
        v => instant(tz, "From", v)?,
    };
    let to = instant(tz, "To", field("to"))?;
    Ok((change, from, to))
}

/// `POST /schedules/{name}/overrides`, from the page's form.
pub(crate) async fn create(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (viewer, session) = viewer(&s, &headers);
    let what = format!("override of schedule {name}");
    let fields = match acting_form(&s, &viewer, session, &headers, body, &what, BACK).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let cfg = s.live().config.clone();
    let Some(sch) = cfg.calendar.schedules.get(&name) else {
        return no_schedule(&viewer, &name);
    };
    let (change, from, to) = match asked_for(&fields, &sch.time_zone, s.clock.now()) {
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
    let input = Input::AddOverride {
        schedule: name.clone(),
        change,
        from,
        to,
        by: Actor::new(by.clone(), Via::Web),
    };
    match s.engine.apply(input).await {
        Ok(applied) => {
            info!(schedule = %name, id = ?applied.override_id, by = %by, "override made from the web view");
            see_other(BACK, [guard::name_cookie(&by, secure(&s))])
        }
        Err(e) => not_done(&viewer, &e, &what, BACK),
    }
}

/// `POST /schedules/{name}/overrides/{id}/delete`, an override's delete button.
pub(crate) async fn delete(
    State(s): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (viewer, session) = viewer(&s, &headers);
    let what = format!("override {id} of schedule {name}");
    let fields = match acting_form(&s, &viewer, session, &headers, body, &what, BACK).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<u64>() else {
        return problem(
            StatusCode::NOT_FOUND,
            "No such override",
            &viewer,
            &format!("There is no override {id:?}."),
            BACK,
        );
    };
    let by = actor_name(&fields);
    let input = Input::DeleteOverride {
        schedule: name.clone(),
        id,
        by: Actor::new(by.clone(), Via::Web),
    };
    match s.engine.submit(input).await {
        Ok(()) => {
            info!(schedule = %name, id, by = %by, "override deleted from the web view");
            see_other(BACK, [])
        }
        Err(e) => not_done(&viewer, &e, &what, BACK),
    }
}

fn no_schedule(viewer: &Viewer, name: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "No such schedule",
        viewer,
        &format!("There is no schedule {name:?}."),
        BACK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chicago() -> TimeZone {
        TimeZone::get("America/Chicago").unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn form_times_are_read_on_the_schedules_clock_with_the_handoff_dst_rules() {
        let tz = chicago();
        assert_eq!(
            instant(&tz, "To", "2027-03-10T12:00"),
            Ok(Timestamp::at("2027-03-10T18:00:00Z"))
        );
        // 02:30 on the spring-forward night never shows: it is the jump to 03:00 CDT.
        assert_eq!(
            instant(&tz, "From", "2027-03-14T02:30"),
            Ok(Timestamp::at("2027-03-14T08:00:00Z"))
        );
        // 01:30 on the fall-back night shows twice: the first, still CDT.
        assert_eq!(
            instant(&tz, "From", "2027-11-07T01:30:00"),
            Ok(Timestamp::at("2027-11-07T06:30:00Z"))
        );
        let bad = instant(&tz, "To", "tomorrow").unwrap_err();
        assert!(bad.contains("To \"tomorrow\""), "{bad}");
    }

    #[test]
    fn with_counts_only_for_a_replace_and_a_replace_needs_it() {
        let tz = chicago();
        let now = Timestamp::at("2027-03-10T16:00:00Z");
        let (change, from, _) = asked_for(
            &form(&[
                ("kind", "add"),
                ("contact", "bob"),
                ("with", "carol"),
                ("from", ""),
                ("to", "2027-03-10T12:00"),
            ]),
            &tz,
            now,
        )
        .unwrap();
        assert_eq!(
            change,
            crate::engine::Change::Add {
                contact: "bob".into()
            }
        );
        assert_eq!(from, now, "an empty From is now");
        let err = asked_for(
            &form(&[
                ("kind", "replace"),
                ("contact", "bob"),
                ("with", ""),
                ("to", "2027-03-10T12:00"),
            ]),
            &tz,
            now,
        )
        .unwrap_err();
        assert!(err.contains("With"), "{err}");
    }
}
