//! A team pages whoever is on call, not a name: the person of the shift when the step
//! fires, the one an override puts there, the fallback when nobody is.

use std::time::Duration;

use serde_json::json;

use crate::alerts;
use crate::catcher::{PageCatcher, describe};
use crate::harness::{TestApp, eventually, spawn_app_on_clock, webhook_config};

/// Generous bound for a page that is due now to arrive (a busy 2-core CI machine).
const PROMPTLY: Duration = Duration::from_secs(5);

/// bob holds the daily shift until 06:00 Chicago time (12:00 UTC) on Saturday the 21st,
/// carol after; `primary` is paged at once and again three hours later. The test clock
/// starts at 10:00 UTC.
fn team() -> String {
    r#"
[contacts.alice]
methods = [{ notifier = "hook", to = "alice@pager" }]
[contacts.bob]
methods = [{ notifier = "hook", to = "bob@pager" }]
[contacts.carol]
methods = [{ notifier = "hook", to = "carol@pager" }]
[contacts.lead]
methods = [{ notifier = "hook", to = "lead@pager" }]

[rotations.ops]
time_zone = "America/Chicago"
type = "daily"
start = "2026-11-20T06:00"
members = ["bob", "carol"]

[schedules.primary]
time_zone = "America/Chicago"
fallback = "lead"
rules = [{ rotation = "ops" }]

[policies.default]
steps = [
  { after = "0s", notify = ["primary"] },
  { after = "3h", notify = ["primary"] },
]
"#
    .to_string()
}

async fn oncall(app: &TestApp) -> serde_json::Value {
    let r = app
        .client
        .get(app.url("/api/v1/schedules/primary/oncall"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn override_primary(app: &TestApp, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = app
        .client
        .post(app.url("/api/v1/schedules/primary/overrides"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_is_paged_in_his_shift_and_carol_after_the_handoff() {
    let catcher = PageCatcher::start().await;
    let (app, clock) = spawn_app_on_clock(&webhook_config(&catcher.url(), &team())).await;

    let now = oncall(&app).await;
    assert_eq!(now["oncall"], json!(["bob"]), "{now}");
    assert_eq!(now["via"], json!(["ops"]), "{now}");
    assert_eq!(now["until"], "2026-11-21T12:00:00.000Z", "{now}");

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pages = catcher.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "bob", "{}", describe(&pages));
    assert_eq!(pages[0].body["to"], "bob@pager");

    app.advance(&clock, Duration::from_secs(3 * 3600)).await;
    let pages = catcher.wait_for_pages(2, PROMPTLY).await;
    assert_eq!(pages[1].target(), "carol", "{}", describe(&pages));
    assert_eq!(pages[1].step(), 2);

    let incident = app.only_incident().await;
    let steps: Vec<&str> = incident["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "step")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(
        steps[0].ends_with("paging primary (bob on call through rotation ops)"),
        "{steps:?}"
    );
    assert!(
        steps[1].ends_with("paging primary (carol on call through rotation ops)"),
        "{steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_made_mid_incident_is_honoured_by_the_next_step() {
    let catcher = PageCatcher::start().await;
    let (app, clock) = spawn_app_on_clock(&webhook_config(&catcher.url(), &team())).await;
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    catcher.wait_for_pages(1, PROMPTLY).await;

    // carol called in sick: alice takes her shift this afternoon.
    let (status, made) = override_primary(
        &app,
        json!({"kind": "replace", "contact": "carol", "with": "alice",
               "from": "2026-11-21T11:00:00Z", "to": "2026-11-21T20:00:00Z", "by": "lead"}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_u64().unwrap();
    // carol cannot be changed twice at once.
    let (status, refused) = override_primary(
        &app,
        json!({"kind": "remove", "contact": "carol",
               "from": "2026-11-21T19:00:00Z", "to": "2026-11-21T21:00:00Z", "by": "lead"}),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains(&format!("override {id}")),
        "{refused}"
    );

    app.advance(&clock, Duration::from_secs(3 * 3600)).await;
    let pages = catcher.wait_for_pages(2, PROMPTLY).await;
    assert_eq!(pages[1].target(), "alice", "{}", describe(&pages));
    let listed: serde_json::Value = app
        .client
        .get(app.url("/api/v1/schedules/primary/overrides"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["overrides"][0]["with"], "alice", "{listed}");
    assert_eq!(listed["overrides"][0]["by"], "lead", "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nobody_on_call_the_fallback_is_paged_and_the_board_shows_the_schedule_down() {
    let catcher = PageCatcher::start().await;
    let (app, _clock) = spawn_app_on_clock(&webhook_config(&catcher.url(), &team())).await;
    let (status, made) = override_primary(
        &app,
        json!({"kind": "remove", "contact": "bob", "to": "2026-11-21T12:00:00Z", "by": "bob"}),
    )
    .await;
    assert_eq!(status, 201, "{made}");

    let primary = app.channel("schedule:primary").await;
    assert_eq!(primary["state"], "down", "{primary}");
    assert_eq!(primary["kind"], "schedule", "{primary}");
    assert!(
        primary["reason"].as_str().unwrap().contains(
            "nobody is on call until 2026-11-21T12:00:00.000Z: its fallback lead is paged"
        ),
        "{primary}"
    );

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pages = catcher.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "lead", "{}", describe(&pages));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incoming_person_is_told_when_their_shift_starts() {
    let catcher = PageCatcher::start().await;
    let config = team().replace(
        "fallback = \"lead\"",
        "fallback = \"lead\"\nnotify_handoff = true",
    );
    let (app, clock) = spawn_app_on_clock(&webhook_config(&catcher.url(), &config)).await;
    eventually("tocsin_schedule_oncall counts bob", PROMPTLY, || async {
        let n = app
            .metric("tocsin_schedule_oncall{schedule=\"primary\"}")
            .await;
        (n == Some(1.0)).then_some(())
    })
    .await;
    // bob's shift was under way at start: nobody is told of it late.
    app.advance(&clock, Duration::from_secs(3600)).await;
    catcher
        .assert_quiet(0, Duration::from_millis(500), "no handoff before 12:00 UTC")
        .await;

    app.advance(&clock, Duration::from_secs(3600)).await;
    let pages = catcher.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "carol", "{}", describe(&pages));
    assert_eq!(pages[0].body["to"], "carol@pager");
    let title = pages[0].body["incident"]["title"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        title,
        "You are on call for primary until Sun 06:00 CST",
        "{}",
        describe(&pages)
    );
    catcher
        .assert_quiet(1, Duration::from_millis(500), "one notice per handoff")
        .await;
}
