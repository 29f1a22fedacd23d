//! Schedules seen from outside the API: the iCalendar feeds a phone calendar subscribes
//! to (read back with Python's `icalendar`, as a calendar app would) and the `/schedules`
//! page, whose form makes an override that changes who is paged.
//!
//! The rotation hands off daily at 09:00 in Chicago, and the clock stands a few days
//! before the US spring-forward of 2027-03-14: a feed that counted shifts in fixed hours
//! would put every handoff after it an hour late on the phone.

use std::process::Command;

use serde_json::Value;
use tocsin::time::Timestamp;

use crate::browser::Browser;
use crate::fake_api::secret_file;
use crate::harness::{TestApp, page_alice, spawn_app_at, webhook_config};
use crate::smtp::PYTHON;
use crate::web::{assert_fits_a_phone, get, hidden_field, post_form, save_png, session_cookie};

const ROTA: &str = r#"
[rotations.ops]
time_zone = "America/Chicago"
type = "daily"
start = "2027-01-04T09:00"
members = ["alice", "bob", "carol"]

[schedules.primary]
time_zone = "America/Chicago"
rules = [{ rotation = "ops" }]
"#;

/// 10:00 in Chicago (CST), Wednesday 2027-03-10: carol's shift (day 65 of the rotation).
const NOW: &str = "2027-03-10T16:00:00Z";
/// The feed's reach: a week back, 92 days ahead.
const FEED_FROM: &str = "2027-03-03T16:00:00Z";
const FEED_TO: &str = "2027-06-10T16:00:00Z";

/// tocsin with the rotation, `server` (a `[server]` section) before it, on a clock
/// standing at [`NOW`].
async fn rota(server: &str) -> TestApp {
    let config = format!(
        "{server}\n{}",
        webhook_config(
            "http://127.0.0.1:9/unused",
            &format!("{}{ROTA}", page_alice())
        )
    );
    spawn_app_at(&config, Timestamp::at(NOW)).await.0
}

/// One VEVENT as a calendar app reads it: who, and its start and end in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    summary: String,
    start: String,
    end: String,
}

/// Parses a feed with Python's `icalendar` (Debian's python3-icalendar).
fn parse_ics(feed: &str) -> Vec<Event> {
    const SCRIPT: &str = r#"
import json, sys
from datetime import timezone
from icalendar import Calendar
cal = Calendar.from_ical(sys.stdin.buffer.read())
utc = lambda d: d.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps([[str(e["SUMMARY"]), utc(e.decoded("DTSTART")), utc(e.decoded("DTEND"))]
                  for e in cal.walk("VEVENT")]))
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.ics");
    std::fs::write(&path, feed).unwrap();
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(SCRIPT)
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!("running {PYTHON}: {e} (scripts/test.sh installs python3-icalendar)")
        });
    assert!(
        out.status.success(),
        "icalendar refused the feed: {}\n{feed}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|(summary, start, end)| Event {
            summary,
            start,
            end,
        })
        .collect()
}

/// The shifts the rotation must produce over the feed's reach: 09:00 on Chicago's wall
/// clock each day, whatever its offset, members in turn from 2027-01-04.
fn expected_shifts() -> Vec<Event> {
    let tz = jiff::tz::TimeZone::get("America/Chicago").unwrap();
    let utc = |d: jiff::civil::Date| {
        let ts = tz
            .to_ambiguous_timestamp(d.at(9, 0, 0, 0))
            .unambiguous()
            .unwrap();
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    let first = jiff::civil::date(2027, 1, 4);
    let mut out = Vec::new();
    let mut day = jiff::civil::date(2027, 3, 3);
    while utc(day).as_str() < FEED_TO {
        let n = (day - first).get_days() as usize;
        let end = utc(day.tomorrow().unwrap());
        out.push(Event {
            summary: format!("On call: {} (primary)", ["alice", "bob", "carol"][n % 3]),
            start: utc(day),
            end: if end.as_str() < FEED_TO {
                end
            } else {
                FEED_TO.to_string()
            },
        });
        day = day.tomorrow().unwrap();
    }
    out
}

async fn fetch(app: &TestApp, path: &str) -> (u16, String, String) {
    let mut req = app.client.get(app.url(path));
    if let Some(a) = &app.authorization {
        req = req.header("authorization", a);
    }
    let r = req.send().await.expect("GET feed");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (r.status().as_u16(), ct, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_calendar_keeps_the_9am_handoff_across_the_spring_forward() {
    let app = rota("").await;
    let (status, ct, feed) = fetch(&app, "/schedules/primary.ics").await;
    assert_eq!(status, 200, "{feed}");
    assert_eq!(ct, "text/calendar; charset=utf-8");
    let events = parse_ics(&feed);
    assert_eq!(events.first().unwrap().start, "2027-03-03T15:00:00Z");
    assert!(FEED_FROM < events.first().unwrap().end.as_str());
    // The night of the change: 09:00 CST to 09:00 CDT is 23 hours, and every handoff
    // after it is at 14:00 UTC.
    let change = Event {
        summary: "On call: carol (primary)".into(),
        start: "2027-03-13T15:00:00Z".into(),
        end: "2027-03-14T14:00:00Z".into(),
    };
    assert!(events.contains(&change), "{events:#?}");
    assert_eq!(events, expected_shifts());
    assert_eq!(events.len(), 100, "one VEVENT per shift, 03-03 to 06-10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_feed_holds_only_their_own_shifts() {
    let app = rota("").await;
    let (status, _, feed) = fetch(&app, "/schedules/primary/bob.ics").await;
    assert_eq!(status, 200, "{feed}");
    let mine: Vec<Event> = expected_shifts()
        .into_iter()
        .filter(|e| e.summary.contains("bob"))
        .collect();
    assert_eq!(parse_ics(&feed), mine);
    assert!(mine.len() >= 33, "{mine:#?}");
    for missing in [
        "/schedules/primary/zed.ics",
        "/schedules/secondary.ics",
        "/schedules/secondary/bob.ics",
        "/schedules/primary.json",
    ] {
        let (status, _, body) = fetch(&app, missing).await;
        assert_eq!(status, 404, "{missing}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_credentials_the_feed_needs_one_and_takes_the_basic_auth_a_calendar_app_sends() {
    let dir = tempfile::tempdir().unwrap();
    let server = format!(
        "[server]\nauth_token_file = \"{}\"\n[server.basic_auth]\nusername = \"ops\"\npassword_file = \"{}\"",
        secret_file(dir.path(), "token", "feed-master-token-0123\n"),
        secret_file(dir.path(), "password", "hunter2-hunter2\n"),
    );
    let mut app = rota(&server).await;
    let (status, _, body) = fetch(&app, "/schedules/primary.ics").await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("VEVENT"), "{body}");
    let (status, _, body) = fetch(&app, "/schedules/primary/bob.ics").await;
    assert_eq!(status, 401, "{body}");

    let r = app
        .client
        .get(app.url("/schedules/primary.ics"))
        .basic_auth("ops", Some("hunter2-hunter2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(parse_ics(&r.text().await.unwrap()).len(), 100);

    app.authorization = Some("Bearer feed-master-token-0123".into());
    let (status, _, feed) = fetch(&app, "/schedules/primary/bob.ics").await;
    assert_eq!(status, 200, "{feed}");

    // The page's form is guarded like the incident buttons: no login, no override.
    let a = post_form(
        &app,
        "/schedules/primary/overrides",
        &[
            ("kind", "add"),
            ("contact", "bob"),
            ("to", "2027-03-10T12:00"),
        ],
        &[],
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(
        oncall(&app, None).await["oncall"],
        serde_json::json!(["carol"])
    );
}

/// `GET /api/v1/schedules/primary/oncall`, at `at` or now.
async fn oncall(app: &TestApp, at: Option<&str>) -> Value {
    let path = match at {
        Some(t) => format!("/api/v1/schedules/primary/oncall?at={t}"),
        None => "/api/v1/schedules/primary/oncall".to_string(),
    };
    let mut req = app.client.get(app.url(&path));
    if let Some(a) = &app.authorization {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_made_on_the_schedules_page_changes_who_is_paged() {
    let app = rota("").await;
    let page = get(&app, "/schedules", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("On call now: <strong>carol</strong> (ops) until Thu 2027-03-11 09:00 CST"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/schedules\""),
        "the nav links the page"
    );
    // A shift after the change shows on Chicago's clock in CDT and at 14:00 UTC.
    assert!(
        page.body.contains("Sun 2027-03-14 09:00 CDT"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("2027-03-14 14:00:00 UTC"),
        "{}",
        page.body
    );

    // alice covers carol until noon on Chicago's clock (18:00 UTC).
    let made = post_form(
        &app,
        "/schedules/primary/overrides",
        &[
            ("kind", "replace"),
            ("contact", "carol"),
            ("with", "alice"),
            ("from", ""),
            ("to", "2027-03-10T12:00"),
            ("by", "dave"),
        ],
        &[],
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(made.location.as_deref(), Some("/schedules"));
    let now = oncall(&app, None).await;
    assert_eq!(now["oncall"], serde_json::json!(["alice"]), "{now}");
    assert_eq!(now["until"], "2027-03-10T18:00:00.000Z", "{now}");
    assert_eq!(
        oncall(&app, Some("2027-03-10T18:00:00Z")).await["oncall"],
        serde_json::json!(["carol"])
    );

    // carol is already covered then: the engine refuses, and the page says why.
    let clash = post_form(
        &app,
        "/schedules/primary/overrides",
        &[
            ("kind", "replace"),
            ("contact", "carol"),
            ("with", "bob"),
            ("from", "2027-03-10T11:00"),
            ("to", "2027-03-10T13:00"),
            ("by", "erin"),
        ],
        &[],
    )
    .await;
    assert_eq!(clash.status, 409, "{}", clash.body);
    assert!(
        clash.body.contains("already changes carol at that time"),
        "{}",
        clash.body
    );
    assert_eq!(
        oncall(&app, None).await["oncall"],
        serde_json::json!(["alice"])
    );

    // The page lists the override; its delete button puts carol back.
    let page = get(&app, "/schedules", None).await;
    assert!(
        page.body.contains("replace carol with alice"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("On call now: <strong>alice</strong> (override 1)"),
        "{}",
        page.body
    );
    let gone = post_form(
        &app,
        "/schedules/primary/overrides/1/delete",
        &[("by", "dave")],
        &[],
    )
    .await;
    assert_eq!(gone.status, 303, "{}", gone.body);
    assert_eq!(
        oncall(&app, None).await["oncall"],
        serde_json::json!(["carol"])
    );
    let again = post_form(&app, "/schedules/primary/overrides/1/delete", &[], &[]).await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(again.body.contains("has no override 1"), "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_configured_an_override_needs_a_login_that_may_act() {
    const TOKEN: &str = "schedules-master-token-0123";
    let dir = tempfile::tempdir().unwrap();
    let server = format!(
        "[server]\nauth_token_file = \"{}\"",
        secret_file(dir.path(), "token", &format!("{TOKEN}\n")),
    );
    let mut app = rota(&server).await;
    let page = get(&app, "/schedules", None).await;
    assert_eq!(page.location.as_deref(), Some("/login"), "{}", page.body);

    let login = post_form(&app, "/login", &[("token", TOKEN)], &[]).await;
    let cookie = session_cookie(&login);
    let page = get(&app, "/schedules", Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden_field(&page.body, "csrf");
    let form = [
        ("kind", "add"),
        ("contact", "bob"),
        ("with", ""),
        ("to", "2027-03-10T12:00"),
        ("by", "dave"),
    ];
    let stale = post_form(
        &app,
        "/schedules/primary/overrides",
        &[&form[..], &[("csrf", "forged")]].concat(),
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(stale.status, 403, "{}", stale.body);
    let made = post_form(
        &app,
        "/schedules/primary/overrides",
        &[&form[..], &[("csrf", csrf.as_str())]].concat(),
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.body);
    app.authorization = Some(format!("Bearer {TOKEN}"));
    assert_eq!(
        oncall(&app, None).await["oncall"],
        serde_json::json!(["carol", "bob"])
    );
}

/// In a phone-sized Chromium: the page fits, and its form, sent as the browser sends it,
/// puts alice on call instead of carol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_override_form_works_from_a_phone() {
    let app = rota("").await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/schedules")).await;
    browser
        .find_xpath("//p[@class='oncall'][strong='carol']")
        .await;
    assert_fits_a_phone(&browser, "/schedules").await;
    // Choosing from a select and typing into a datetime-local input depend on the
    // browser's locale; setting their values is what a person's choice amounts to.
    browser
        .execute(
            "document.getElementById('kind-primary').value = 'replace';\
             document.getElementById('contact-primary').value = 'carol';\
             document.getElementById('with-primary').value = 'alice';\
             document.getElementById('to-primary').value = '2027-03-10T12:00';",
        )
        .await;
    let by = browser.find("input#by-primary").await;
    browser.type_into(&by, "dana").await;
    let make = browser
        .find_xpath("//button[normalize-space()='Make the override']")
        .await;
    browser.click(&make).await;
    browser
        .find_xpath("//p[@class='oncall'][strong='alice']")
        .await;
    assert!(browser.current_url().await.ends_with("/schedules"));
    browser
        .find_xpath("//button[normalize-space()='Delete']")
        .await;
    assert_fits_a_phone(&browser, "/schedules with an override").await;
    save_png("schedules.png", &browser.screenshot().await);
    browser.quit().await;
    let now = oncall(&app, None).await;
    assert_eq!(now["oncall"], serde_json::json!(["alice"]), "{now}");
    assert_eq!(now["until"], "2027-03-10T18:00:00.000Z", "{now}");
}
