//! Planned work: an incident inside a maintenance window is recorded and pages nobody;
//! when the window ends it pages from step 1.

use std::time::Duration;

use serde_json::json;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::harness::{
    TestApp, history_kinds, page_alice, spawn_app, spawn_app_on_clock, time_of, webhook_config,
};
use crate::web::{get, post_form};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_swap_window_holds_the_page_until_it_ends() {
    let catcher = PageCatcher::start().await;
    let (app, clock) = spawn_app_on_clock(&webhook_config(&catcher.url(), &page_alice())).await;

    let r = app
        .client
        .post(app.url("/api/v1/maintenance"))
        .json(&json!({"matchers": ["alertname=\"DiskFull\""], "for": "1h",
                      "comment": "disk swap on host1", "by": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap();

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let incident = app.only_incident().await;
    assert!(
        history_kinds(&incident).contains(&"held".to_string()),
        "{incident}"
    );
    catcher
        .assert_quiet(0, Duration::from_millis(300), "held by maintenance")
        .await;

    // The work runs long: extended by half an hour, on purpose.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/maintenance/{id}/extend")))
        .json(&json!({"for": "90m", "by": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.advance(&clock, Duration::from_secs(3600)).await;
    catcher
        .assert_quiet(
            0,
            Duration::from_millis(300),
            "still held after the first hour",
        )
        .await;
    app.advance(&clock, Duration::from_secs(30 * 60)).await;
    let pages = catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    assert_eq!(pages[0].target(), "alice");
    let incident = app.only_incident().await;
    assert!(
        history_kinds(&incident).contains(&"hold_ended".to_string()),
        "{incident}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_longer_than_a_day_is_refused_saying_to_extend_it() {
    let (app, _clock) =
        spawn_app_on_clock(&webhook_config("http://127.0.0.1:9/", &page_alice())).await;
    let r = app
        .client
        .post(app.url("/api/v1/maintenance"))
        .json(&json!({"matchers": ["service=\"db\""], "for": "25h",
                      "comment": "migration", "by": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("extend it"),
        "{body}"
    );
}

/// The `/maintenance` page: a window started from its form holds the disk's page (the
/// incident opens, its history says held), its Extend button moves the end an hour
/// later, and its End button pages at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_started_on_the_maintenance_page_holds_the_page_until_its_end_button() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;
    let page = get(&app, "/maintenance", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("href=\"/maintenance\""),
        "the nav links the page"
    );
    let form = [
        ("matchers", "alertname=\"DiskFull\"\r\n"),
        ("for", "2h"),
        ("to", ""),
        ("comment", "disk swap on host1"),
        ("by", "dave"),
    ];

    let forged = post_form(
        &app,
        "/maintenance",
        &form,
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        get(&app, "/maintenance", None)
            .await
            .body
            .contains("<p>None.</p>"),
        "a cross-site form started a window"
    );

    let started = post_form(&app, "/maintenance", &form, &[]).await;
    assert_eq!(started.status, 303, "{}", started.body);
    assert_eq!(started.location.as_deref(), Some("/maintenance"));
    let page = get(&app, "/maintenance", None).await;
    for shown in [
        "<code>alertname=&quot;DiskFull&quot;</code>",
        "disk swap on host1",
        "dave",
        "action=\"/maintenance/1/end\"",
        "action=\"/maintenance/1/extend\"",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }

    // Longer than a day: the engine's refusal is the page's answer.
    let refused = post_form(
        &app,
        "/maintenance",
        &[
            ("matchers", "service=\"db\""),
            ("for", "25h"),
            ("comment", "migration"),
            ("by", "erin"),
        ],
        &[],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("extend it"), "{}", refused.body);

    let before = time_of(&listed(&app).await["maintenance"][0]["to"]);
    let extended = post_form(&app, "/maintenance/1/extend", &[("by", "dave")], &[]).await;
    assert_eq!(extended.status, 303, "{}", extended.body);
    let after = listed(&app).await;
    assert_eq!(after["maintenance"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(
        time_of(&after["maintenance"][0]["to"]) - before,
        chrono::Duration::hours(1),
        "{after}"
    );

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let incident = app.only_incident().await;
    assert!(
        history_kinds(&incident).contains(&"held".to_string()),
        "{incident}"
    );
    catcher
        .assert_quiet(0, Duration::from_millis(300), "held by the page's window")
        .await;

    let ended = post_form(&app, "/maintenance/1/end", &[("by", "dave")], &[]).await;
    assert_eq!(ended.status, 303, "{}", ended.body);
    let pages = catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    assert_eq!(pages[0].target(), "alice");
    let incident = app.only_incident().await;
    assert!(
        history_kinds(&incident).contains(&"hold_ended".to_string()),
        "{incident}"
    );
    let again = post_form(&app, "/maintenance/1/end", &[], &[]).await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(
        again.body.contains("no maintenance window 1"),
        "{}",
        again.body
    );
}

async fn listed(app: &TestApp) -> serde_json::Value {
    let r = app
        .client
        .get(app.url("/api/v1/maintenance"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
