//! A long life: resolved incidents past `[storage] retention` go by themselves while open
//! ones stay, and a group flooded with alerts keeps `max_alerts_per_incident` of them
//! and says how many more there were; on SQLite and on PostgreSQL.

use std::time::Duration;

use serde_json::json;

use crate::alerts::{alert, firing, payload};
use crate::harness::{Backend, PEOPLE, eventually, on_both_stores, webhook_config};

/// Alice paged an hour in: nothing is paged while these tests run.
fn quiet_config(storage_and_defaults: &str) -> String {
    webhook_config(
        "http://127.0.0.1:9/page",
        &format!(
            "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"1h\", notify = [\"alice\"] }}]\n{storage_and_defaults}"
        ),
    )
}

on_both_stores!(the_daemon_deletes_an_incident_resolved_past_retention_by_itself);
async fn the_daemon_deletes_an_incident_resolved_past_retention_by_itself(store: Backend) {
    let (app, clock) = store
        .spawn_app_on_clock(&quiet_config("[storage]\nretention = \"2d\"\n"))
        .await;
    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    assert_eq!(app.post_alerts(&firing("CpuHot")).await.status, 200);
    let resolved = app.act(1, "resolve", json!({"by": "alice"})).await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);

    app.advance(&clock, Duration::from_secs(3 * 24 * 3600))
        .await;

    let ids = eventually(
        "retention to delete incident 1",
        Duration::from_secs(10),
        || {
            let app = &app;
            async move {
                let ids: Vec<u64> = app
                    .incidents(None)
                    .await
                    .iter()
                    .filter_map(|i| i["id"].as_u64())
                    .collect();
                (!ids.contains(&1)).then_some(ids)
            }
        },
    )
    .await;
    assert_eq!(ids, [2], "the open incident stays, however old");
    let deleted = app
        .metric("tocsin_retention_deleted_total{what=\"incidents\"}")
        .await;
    assert_eq!(deleted, Some(1.0));
}

on_both_stores!(a_group_of_more_alerts_than_an_incident_keeps_shows_how_many_were_left_out);
async fn a_group_of_more_alerts_than_an_incident_keeps_shows_how_many_were_left_out(
    store: Backend,
) {
    let app = store
        .spawn_app(&quiet_config("[defaults]\nmax_alerts_per_incident = 3\n"))
        .await;
    let hosts: Vec<String> = (1..=5).map(|n| format!("host{n}")).collect();
    let alerts = hosts.iter().map(|h| alert("DiskFull", h)).collect();
    assert_eq!(
        app.post_alerts(&payload("DiskFull", alerts)).await.status,
        200
    );

    let incident = app.only_incident().await;
    assert_eq!(incident["alerts_total"], 3);
    assert_eq!(incident["alerts_firing"], 3);
    assert_eq!(incident["alerts_truncated"], 2);
}
