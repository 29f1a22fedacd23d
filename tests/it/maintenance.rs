//! Planned work: an incident inside a maintenance window is recorded and pages nobody;
//! when the window ends it pages from step 1.

use std::time::Duration;

use serde_json::json;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::harness::{history_kinds, page_alice, spawn_app_on_clock, webhook_config};

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
