//! Quiet hours end to end: a warning inside alice's quiet hours reaches her only when
//! they end, in one message with the other warnings still open; a critical page goes at
//! once; a warning acked meanwhile never reaches her.

use std::time::Duration;

use serde_json::Value;

use crate::alerts;
use crate::catcher::{PageCatcher, describe};
use crate::harness::{spawn_app_on_clock, webhook_config};

const PROMPTLY: Duration = Duration::from_secs(5);

/// alice is quiet from 08:00 to 12:00 UTC (the test clock starts at 10:00); acks hold.
fn quiet_alice() -> String {
    r#"
[defaults]
ack_timeout = "0s"

[contacts.alice]
quiet_hours = { from = "08:00", to = "12:00", time_zone = "UTC", below = "critical" }
methods = [{ notifier = "hook", to = "alice@pager" }]

[policies.default]
steps = [{ after = "0s", notify = ["alice"] }]
"#
    .to_string()
}

fn with_severity(alertname: &str, severity: &str) -> Value {
    let mut p = alerts::firing(alertname);
    p["commonLabels"]["severity"] = severity.into();
    for a in p["alerts"].as_array_mut().unwrap() {
        a["labels"]["severity"] = severity.into();
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_wait_for_the_end_of_quiet_hours_and_go_out_together() {
    let catcher = PageCatcher::start().await;
    let (app, clock) = spawn_app_on_clock(&webhook_config(&catcher.url(), &quiet_alice())).await;

    for name in ["DiskFilling", "CertExpiring", "QueueGrowing"] {
        let r = app.post_alerts(&with_severity(name, "warning")).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = app
        .post_alerts(&with_severity("DatabaseDown", "critical"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The critical page goes at once; the warnings wait.
    let pages = catcher.wait_for_pages(1, PROMPTLY).await;
    assert!(
        pages[0].body.to_string().contains("DatabaseDown"),
        "{}",
        describe(&pages)
    );
    catcher
        .assert_quiet(1, Duration::from_millis(500), "warnings wait for 12:00")
        .await;

    // One warning is acked meanwhile: it never reaches alice.
    let queue = app
        .incidents(None)
        .await
        .into_iter()
        .find(|i| i["title"].as_str().unwrap_or("").contains("QueueGrowing"))
        .unwrap();
    let r = app
        .act(
            queue["id"].as_u64().unwrap(),
            "ack",
            serde_json::json!({"by": "bob"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    app.advance(&clock, Duration::from_secs(2 * 3600)).await;
    let pages = catcher.wait_for_pages(2, PROMPTLY).await;
    let morning = pages[1].body.to_string();
    assert!(
        morning.contains("DiskFilling") && morning.contains("CertExpiring"),
        "one message with both open warnings: {morning}"
    );
    assert!(
        !morning.contains("QueueGrowing"),
        "the acked one is dropped: {morning}"
    );
    catcher
        .assert_quiet(
            2,
            Duration::from_millis(500),
            "one message, not one per warning",
        )
        .await;
}
