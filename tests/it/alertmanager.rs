//! The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) delivering to
//! tocsin: what it sends is what tocsin must understand, firing and resolved, one group
//! one incident, on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::catcher::PageCatcher;
use crate::harness::{Backend, PEOPLE, TestApp, on_both_stores, webhook_config};
use crate::promstack::Alertmanager;

/// From posting an alert until tocsin shows it (group_wait 0s, group_interval 1s).
const DELIVERY: Duration = Duration::from_secs(15);

/// Polls tocsin's API until an incident matches `pred`; on timeout the panic shows
/// Alertmanager's log (did it deliver, and what did tocsin answer?).
async fn incident_where(
    app: &TestApp,
    am: &Alertmanager,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DELIVERY;
    loop {
        if let Some(i) = app.incidents(None).await.into_iter().find(|i| pred(i)) {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DELIVERY:?} waiting for {what}; Alertmanager log:\n{}",
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_stores!(alert_through_real_alertmanager_opens_and_resolves_an_incident);
async fn alert_through_real_alertmanager_opens_and_resolves_an_incident(store: Backend) {
    let catcher = PageCatcher::start().await;
    let policy = format!(
        "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"alice\"] }}]\n"
    );
    let app = store
        .spawn_app(&webhook_config(&catcher.url(), &policy))
        .await;
    let mut am = Alertmanager::start(&app.url("/hooks/alertmanager"));
    am.wait_ready(&app.client).await;

    let starts_at = chrono::Utc::now() - chrono::Duration::seconds(5);
    let alert = |ends_at: Option<chrono::DateTime<chrono::Utc>>| {
        let mut a = json!({
            "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db1:9100"},
            "annotations": {"summary": "Disk almost full on db1"},
            "startsAt": starts_at.to_rfc3339(),
        });
        if let Some(t) = ends_at {
            a["endsAt"] = json!(t.to_rfc3339());
        }
        json!([a])
    };
    am.post(&app.client, alert(None)).await;

    let incident = incident_where(&app, &am, "the incident from Alertmanager", |_| true).await;
    assert_eq!(incident["group_key"], "{}:{alertname=\"DiskFull\"}");
    assert_eq!(incident["state"], "triggered");
    assert!(
        incident["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("DiskFull: Disk almost full on db1")),
        "{incident}"
    );
    let stored = &incident["alerts"][0];
    assert_eq!(stored["labels"]["instance"], "db1:9100");
    let fingerprint = stored["fingerprint"].as_str().unwrap();
    assert!(
        fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
        "Alertmanager's fingerprint: {fingerprint:?}"
    );
    let page = &catcher.wait_for_pages(1, DELIVERY).await[0];
    assert_eq!((page.event(), page.target()), ("triggered", "alice"));

    am.post(
        &app.client,
        alert(Some(chrono::Utc::now() - chrono::Duration::seconds(1))),
    )
    .await;
    let id = incident["id"].clone();
    let resolved = incident_where(&app, &am, "the incident to resolve", |i| {
        i["id"] == id && i["state"] == "resolved"
    })
    .await;
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(app.incidents(None).await.len(), 1, "no second incident");
}
