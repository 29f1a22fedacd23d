//! The web view's HTML. Every piece of text that comes from outside (titles, labels,
//! names, reasons) goes through [`html_escape`]; nothing here needs JavaScript.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::config::HookAuth;
use crate::engine::IncidentState;
use crate::html::html_escape;
use crate::store::IncidentView;
use crate::time::Timestamp;
use crate::watchdog::ChannelView;

/// What the person looking may do, for the forms on a page.
pub(super) struct Viewer {
    /// Credentials are configured, so acting needs a login.
    pub locked: bool,
    /// Logged in (only meaningful when `locked`).
    pub logged_in: bool,
    /// May see incidents: nothing is locked, or the login's token has the read scope.
    pub reads: bool,
    /// May press the buttons: nothing is locked, or the login's token has the act scope.
    pub acts: bool,
    /// The hidden `csrf` value of the forms, with a session.
    pub csrf: Option<String>,
    /// Prefills the "Your name" field.
    pub name: String,
}

impl Viewer {
    pub fn may_act(&self) -> bool {
        self.acts
    }

    pub(super) fn csrf_field(&self) -> String {
        match &self.csrf {
            Some(c) => format!(
                "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
                html_escape(c)
            ),
            None => String::new(),
        }
    }
}

pub(super) fn nav(v: &Viewer) -> String {
    let mut s = String::from(
        "<nav aria-label=\"tocsin\"><a class=\"brand\" href=\"/\">tocsin</a>\
         <a href=\"/\">Open incidents</a><a href=\"/?state=resolved\">Resolved</a>\
         <a href=\"/schedules\">Schedules</a><a href=\"/silences\">Silences</a>\
         <a href=\"/maintenance\">Maintenance</a>",
    );
    if v.locked {
        if v.logged_in {
            let _ = write!(
                s,
                "<form method=\"post\" action=\"/logout\">{}<button type=\"submit\" class=\"quiet small\">Log out</button></form>",
                v.csrf_field()
            );
        } else {
            s.push_str("<a href=\"/login\">Log in</a>");
        }
    }
    s.push_str("</nav>");
    s
}

/// "45s", "12m", "3h 5m", "2d 4h".
pub(super) fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 if s % 3600 >= 60 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ if s % 86_400 >= 3600 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `<time>` in UTC, to the second.
pub(super) fn when(t: Timestamp) -> String {
    let shown = Utc
        .timestamp_millis_opt(t.millis())
        .single()
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_rfc3339());
    format!(
        "<time datetime=\"{}\">{}</time>",
        t.to_rfc3339(),
        html_escape(&shown)
    )
}

/// A time with how long ago it was: "2026-11-21 10:00:00 UTC (12m ago)".
fn when_ago(t: Timestamp, now: Timestamp) -> String {
    format!("{} ({} ago)", when(t), age(now.since(t)))
}

fn badge(word: &str) -> String {
    format!("<span class=\"badge s-{word}\">{word}</span>")
}

fn labels(l: &BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return "none".to_string();
    }
    let mut s = String::from("<ul class=\"labels\">");
    for (k, v) in l {
        let _ = write!(
            s,
            "<li><code>{}={}</code></li>",
            html_escape(k),
            html_escape(v)
        );
    }
    s.push_str("</ul>");
    s
}

/// A column: its heading, the class of its cells, and whether a cell says its heading
/// when a narrow screen shows each row as a card ("Age: 12m").
pub(super) struct Col(pub &'static str, pub &'static str, pub bool);

/// A table in its own horizontally scrolling region, so a wide one never makes the whole
/// page scroll sideways. With `cards`, a narrow screen shows each row as a small card
/// instead (explicit ARIA roles keep it a table for screen readers).
pub(super) fn table(label: &str, cards: bool, cols: &[Col], rows: &[Vec<String>]) -> String {
    let role = |r: &str| {
        if cards {
            format!(" role=\"{r}\"")
        } else {
            String::new()
        }
    };
    let mut s = format!(
        "<div class=\"scroll\" role=\"region\" aria-label=\"{label}\" tabindex=\"0\"><table{class}{t}><thead{g}><tr{r}>",
        class = if cards { " class=\"cards\"" } else { "" },
        t = role("table"),
        g = role("rowgroup"),
        r = role("row"),
    );
    for Col(head, _, _) in cols {
        let _ = write!(s, "<th scope=\"col\"{}>{head}</th>", role("columnheader"));
    }
    let _ = write!(s, "</tr></thead><tbody{}>", role("rowgroup"));
    for row in rows {
        let _ = write!(s, "<tr{}>", role("row"));
        for (Col(head, class, labelled), cell) in cols.iter().zip(row) {
            let _ = write!(
                s,
                "<td{class}{label}{cell_role}>{cell}</td>",
                class = if class.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"{class}\"")
                },
                label = if *labelled {
                    format!(" data-label=\"{head}\"")
                } else {
                    String::new()
                },
                cell_role = role("cell"),
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

fn or_dash(s: Option<&String>) -> String {
    s.map(|s| html_escape(s)).unwrap_or_else(|| "—".to_string())
}

fn incident_link(id: u64, text: &str) -> String {
    format!("<a href=\"/incidents/{id}\">{text}</a>")
}

/// A link to the next (older) page of a list, when there is one.
fn older(s: &mut String, href: &str, next: Option<u64>, text: &str) {
    if let Some(id) = next {
        let _ = write!(s, "<p><a href=\"{href}before={id}\">{text}</a></p>");
    }
}

/// `GET /`: a page of open incidents (the page's title is their heading and counts them
/// all), then every channel's health, down channels first.
pub(super) fn index(
    open: &[IncidentView],
    next: Option<u64>,
    channels: &[ChannelView],
    now: Timestamp,
) -> String {
    let mut s = String::new();
    if open.is_empty() {
        s.push_str("<p>No open incidents.</p>");
    } else {
        let rows: Vec<Vec<String>> = open
            .iter()
            .map(|v| {
                vec![
                    incident_link(v.id, &format!("#{}", v.id)),
                    badge(v.state.as_str()),
                    incident_link(v.id, &html_escape(&v.title)),
                    v.step.to_string(),
                    age(now.since(v.created_at)),
                    or_dash(v.acked_by.as_ref()),
                ]
            })
            .collect();
        s.push_str(&table(
            "Open incidents",
            true,
            &[
                Col("#", "nowrap", false),
                Col("State", "", false),
                Col("Title", "title", false),
                Col("Step", "", true),
                Col("Age", "nowrap", true),
                Col("Acked by", "", true),
            ],
            &rows,
        ));
    }
    older(&mut s, "/?", next, "Older open incidents");
    s.push_str("<p><a href=\"/?state=resolved\">Recently resolved incidents</a></p>");

    s.push_str("<h2 id=\"channels\">Channels</h2>");
    if channels.is_empty() {
        s.push_str("<p>No channels are watched.</p>");
        return s;
    }
    let mut sorted: Vec<&ChannelView> = channels.iter().collect();
    sorted.sort_by(|a, b| b.state.cmp(&a.state).then_with(|| a.name.cmp(&b.name)));
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|c| {
            vec![
                format!("<strong>{}</strong>", html_escape(&c.name)),
                c.kind.as_str().to_string(),
                format!(
                    "{}{}",
                    badge(c.state.as_str()),
                    if c.paging { " paging" } else { "" }
                ),
                html_escape(&c.reason),
                when_ago(c.since, now),
            ]
        })
        .collect();
    s.push_str(&table(
        "Channels",
        true,
        &[
            Col("Channel", "", false),
            Col("Kind", "", false),
            Col("State", "", false),
            Col("Reason", "title", false),
            Col("Since", "", true),
        ],
        &rows,
    ));
    s
}

/// `GET /?state=resolved`: a page of them.
pub(super) fn resolved(list: &[IncidentView], next: Option<u64>, now: Timestamp) -> String {
    let mut s = String::from("<p><a href=\"/\">Back to open incidents</a></p>");
    if list.is_empty() {
        s.push_str("<p>No resolved incidents.</p>");
        return s;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|v| {
            vec![
                incident_link(v.id, &format!("#{}", v.id)),
                incident_link(v.id, &html_escape(&v.title)),
                v.resolved_at
                    .map(|t| format!("{} ago", age(now.since(t))))
                    .unwrap_or_else(|| "—".into()),
                or_dash(v.acked_by.as_ref()),
            ]
        })
        .collect();
    s.push_str(&table(
        "Resolved incidents",
        true,
        &[
            Col("#", "nowrap", false),
            Col("Title", "title", false),
            Col("Resolved", "nowrap", true),
            Col("Acked by", "", true),
        ],
        &rows,
    ));
    older(
        &mut s,
        "/?state=resolved&amp;",
        next,
        "Older resolved incidents",
    );
    s
}

/// `GET /incidents/{id}`: the facts, the buttons, then alerts, history and pages.
pub(super) fn incident(v: &IncidentView, viewer: &Viewer, now: Timestamp) -> String {
    let mut s = String::from("<dl class=\"facts\">");
    let mut fact = |term: &str, value: String| {
        let _ = write!(s, "<dt>{term}</dt><dd>{value}</dd>");
    };
    fact("State", badge(v.state.as_str()));
    fact(
        "Acked by",
        match (&v.acked_by, v.acked_at) {
            (Some(by), Some(at)) => format!("{} at {}", html_escape(by), when(at)),
            (Some(by), None) => html_escape(by),
            _ => "nobody".to_string(),
        },
    );
    fact(
        "Step",
        format!(
            "{} (pass {} through policy <code>{}</code>)",
            v.step,
            v.cycle + 1,
            html_escape(&v.policy)
        ),
    );
    fact("Created", when_ago(v.created_at, now));
    if let Some(t) = v.snoozed_until {
        fact("Snoozed until", when(t));
    }
    if let Some(t) = v.ack_expires_at {
        fact("Ack expires", when(t));
    }
    if let Some(t) = v.next_escalation_at
        && v.state == IncidentState::Triggered
    {
        fact("Next step", when(t));
    }
    if let Some(t) = v.resolved_at {
        fact("Resolved", when_ago(t, now));
    }
    fact(
        "Alerts",
        format!("{} of {} firing", v.alerts_firing, v.alerts_total),
    );
    fact("Source", html_escape(&v.source));
    fact("Labels", labels(&v.labels));
    s.push_str("</dl>");

    s.push_str(&actions(v, viewer));

    s.push_str("<h2 id=\"alerts\">Alerts</h2>");
    let rows: Vec<Vec<String>> = v
        .alerts
        .iter()
        .map(|a| {
            vec![
                html_escape(a.status.as_str()),
                html_escape(&a.summary()),
                labels(&a.labels),
                when(a.starts_at),
            ]
        })
        .collect();
    s.push_str(&table(
        "Alerts",
        false,
        &[
            Col("Status", "", false),
            Col("Summary", "title", false),
            Col("Labels", "", false),
            Col("Started", "nowrap", false),
        ],
        &rows,
    ));
    if (v.alerts.len() as u64) < v.alerts_total {
        let _ = write!(
            s,
            "<p class=\"note\">{} of {} alerts shown.</p>",
            v.alerts.len(),
            v.alerts_total
        );
    }
    if v.alerts_truncated > 0 {
        let _ = write!(
            s,
            "<p class=\"note\">{} more alert(s) arrived after this incident had the most it keeps \
             (max_alerts_per_incident); they were counted, not kept.</p>",
            v.alerts_truncated
        );
    }

    s.push_str("<h2 id=\"history\">History</h2>");
    let rows: Vec<Vec<String>> = v
        .history
        .iter()
        .flatten()
        .map(|e| {
            vec![
                when(e.at),
                e.kind.to_string(),
                html_escape(&e.actor),
                html_escape(&e.detail),
            ]
        })
        .collect();
    s.push_str(&table(
        "History",
        false,
        &[
            Col("Time", "nowrap", false),
            Col("Event", "", false),
            Col("By", "", false),
            Col("Detail", "title", false),
        ],
        &rows,
    ));
    if let Some(before) = v.history_next {
        let _ = write!(
            s,
            "<p><a href=\"/incidents/{id}?history_before={before}#history\">Older history</a></p>",
            id = v.id
        );
    }

    s.push_str("<h2 id=\"pages\">Pages</h2>");
    let pages = v.pages.as_deref().unwrap_or_default();
    if pages.is_empty() {
        s.push_str("<p>No pages were sent.</p>");
        return s;
    }
    let rows: Vec<Vec<String>> = pages
        .iter()
        .map(|p| {
            let mut to = format!(
                "{} via {}",
                html_escape(&p.target),
                html_escape(&p.notifier)
            );
            if let Some(addr) = &p.to {
                let _ = write!(to, " ({})", html_escape(addr));
            }
            vec![
                when(p.at),
                p.kind.as_str().to_string(),
                p.step.to_string(),
                to,
                p.status.as_str().to_string(),
                p.attempts.to_string(),
                p.error.as_deref().map(html_escape).unwrap_or_default(),
            ]
        })
        .collect();
    s.push_str(&table(
        "Pages",
        false,
        &[
            Col("Time", "nowrap", false),
            Col("Kind", "", false),
            Col("Step", "", false),
            Col("To", "", false),
            Col("Status", "", false),
            Col("Tries", "", false),
            Col("Error", "title", false),
        ],
        &rows,
    ));
    if let Some(total) = v.pages_total.filter(|&t| t > pages.len() as u64) {
        let _ = write!(
            s,
            "<p class=\"note\">The last {} of {total} pages shown.</p>",
            pages.len()
        );
    }
    s
}

/// The buttons, in one form with one name field: each button posts to its own action.
fn actions(v: &IncidentView, viewer: &Viewer) -> String {
    let buttons: &[(&str, &str, &str)] = match v.state {
        IncidentState::Triggered => &[("ack", "Acknowledge", ""), ("resolve", "Resolve", "quiet")],
        IncidentState::Acknowledged => &[
            ("resolve", "Resolve", ""),
            ("unack", "Unacknowledge", "quiet"),
        ],
        IncidentState::Resolved => {
            return "<p class=\"note\">Resolved: nothing left to do.</p>".to_string();
        }
    };
    if !viewer.may_act() {
        if viewer.logged_in {
            return "<p class=\"note\">Your login may only look: acting needs a token with the act scope.</p>".to_string();
        }
        return "<p><a href=\"/login\">Log in</a> to acknowledge or resolve.</p>".to_string();
    }
    let id = v.id;
    let mut s = format!(
        "<h2 id=\"act\">Act</h2><form class=\"act\" method=\"post\" action=\"/incidents/{id}/{first}\">\
         <button type=\"submit\" disabled hidden aria-hidden=\"true\"></button>{csrf}\
         <div class=\"field\"><label for=\"by\">Your name</label>\
         <input type=\"text\" id=\"by\" name=\"by\" value=\"{name}\" maxlength=\"64\" autocomplete=\"name\" required></div>",
        first = buttons[0].0,
        csrf = viewer.csrf_field(),
        name = html_escape(&viewer.name),
    );
    for (action, text, class) in buttons {
        let _ = write!(
            s,
            "<button type=\"submit\" formaction=\"/incidents/{id}/{action}\" class=\"{class}\">{text}</button>"
        );
    }
    s.push_str("</form>");
    s
}

/// `GET /login`.
pub(super) fn login(auth: &HookAuth, problem: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(p) = problem {
        let _ = write!(
            s,
            "<p role=\"alert\"><strong>{}</strong></p>",
            html_escape(p)
        );
    }
    s.push_str(
        "<p>Use a token the API takes (one with the read scope; the act scope for the buttons), \
         or the user name and password.</p><form class=\"login\" method=\"post\" action=\"/login\">",
    );
    if auth.has_bearer() {
        s.push_str(
            "<div><label for=\"token\">API token</label>\
             <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\"></div>",
        );
    }
    if auth.has_basic() {
        if auth.has_bearer() {
            s.push_str("<p class=\"note\">or</p>");
        }
        s.push_str(
            "<div><label for=\"username\">User name</label>\
             <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\"></div>\
             <div><label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\"></div>",
        );
    }
    s.push_str("<div><button type=\"submit\">Log in</button></div></form>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watchdog::Health;

    #[test]
    fn ages_are_short() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (12 * 60 + 5, "12m"),
            (3600, "1h"),
            (3 * 3600 + 5 * 60, "3h 5m"),
            (86_400, "1d"),
            (2 * 86_400 + 4 * 3600 + 7, "2d 4h"),
        ];
        for (secs, want) in cases {
            assert_eq!(age(Duration::from_secs(secs)), want, "{secs}s");
        }
    }

    fn channel(name: &str, state: Health) -> ChannelView {
        ChannelView {
            name: name.into(),
            kind: crate::watchdog::Kind::Notifier,
            state,
            reason: format!("<{name}> reason"),
            since: Timestamp(0),
            blind: String::new(),
            paging: false,
            checks: vec![],
        }
    }

    #[test]
    fn down_channels_come_first_and_their_reasons_are_text() {
        let html = index(
            &[],
            None,
            &[
                channel("a-up", Health::Up),
                channel("b-down", Health::Down),
                channel("c-degraded", Health::Degraded),
            ],
            Timestamp(60_000),
        );
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("no {s} in {html}"));
        assert!(
            at("b-down") < at("c-degraded") && at("c-degraded") < at("a-up"),
            "{html}"
        );
        for word in [">down<", ">degraded<", ">up<"] {
            assert!(
                html.contains(word),
                "state {word} is not written out: {html}"
            );
        }
        assert!(html.contains("&lt;b-down&gt; reason"), "{html}");
        assert!(html.contains("(1m ago)"), "{html}");
    }
}
