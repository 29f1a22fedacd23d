//! A page reaches a human: escalation in real time through the `webhook` notifier, and
//! everything that must stop it (ack, resolve) or must not disturb it (duplicates,
//! restarts, a dead first contact method). What the store must keep (steps on time, acks
//! and their expiry, duplicates, a restart) is tested on SQLite and on PostgreSQL.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::alerts::{self, fixture};
use crate::catcher::{PageCatcher, describe};
use crate::harness::{
    Backend, PEOPLE, TOCSIN, eventually, history_kinds, on_both_stores, spawn_app,
    spawn_app_on_clock, time_of, webhook_config,
};

/// Generous bound for a page that is due now to arrive (a busy 2-core CI machine).
const PROMPTLY: Duration = Duration::from_secs(5);

/// alice at once, bob after `bob_after`, carol after `carol_after`.
fn chain(bob_after: &str, carol_after: &str) -> String {
    format!(
        r#"{PEOPLE}
[policies.default]
steps = [
  {{ after = "0s", notify = ["alice"] }},
  {{ after = "{bob_after}", notify = ["bob"] }},
  {{ after = "{carol_after}", notify = ["carol"] }},
]
"#
    )
}

on_both_stores!(nobody_acks_so_the_page_climbs_to_bob_then_carol);
async fn nobody_acks_so_the_page_climbs_to_bob_then_carol(store: Backend) {
    let catcher = PageCatcher::start().await;
    let (app, clock) = store
        .spawn_app_on_clock(&webhook_config(&catcher.url(), &chain("10m", "20m")))
        .await;

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    catcher.wait_for_pages(1, PROMPTLY).await;
    let incident = app.only_incident().await;
    let id = incident["id"].as_u64().unwrap();
    let created = time_of(&incident["created_at"]);

    // One second before bob's step nothing more is decided; at 10:00 bob is paged.
    app.advance(&clock, Duration::from_secs(9 * 60 + 59)).await;
    assert_eq!(app.recorded_pages(id).await.len(), 1);
    app.advance(&clock, Duration::from_secs(1)).await;
    // Bob's page is out before carol's step comes due, as ten real minutes would make it:
    // pages decided a moment apart are sent side by side and may arrive in either order.
    catcher.wait_for_pages(2, PROMPTLY).await;
    app.advance(&clock, Duration::from_secs(10 * 60)).await;
    let pages = catcher.wait_for_pages(3, PROMPTLY).await;

    let expected = [
        ("triggered", 1, "alice", "alice@pager", 0),
        ("escalated", 2, "bob", "bob@pager", 10),
        ("escalated", 3, "carol", "carol@pager", 20),
    ];
    let recorded = app.recorded_pages(id).await;
    for ((page, (event, step, target, to, after_min)), (_, decided)) in
        pages.iter().zip(expected).zip(&recorded)
    {
        let b = &page.body;
        let what = format!(
            "{}\nof all the pages:\n{}",
            describe(std::slice::from_ref(page)),
            describe(&pages)
        );
        assert_eq!(page.event(), event, "{what}");
        assert_eq!(page.step(), step, "{what}");
        assert_eq!(page.target(), target, "{what}");
        assert_eq!(b["to"], to, "{what}");
        assert_eq!(b["cycle"], 0, "{what}");
        assert_eq!(page.incident_id(), id, "{what}");
        assert_eq!(b["incident"]["state"], "triggered", "{what}");
        assert!(
            b["ack_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://127.0.0.1:9797/ack/")),
            "{what}: ack_url {} is not a signed link under public_url",
            b["ack_url"]
        );
        assert!(b["late_by_seconds"].is_null(), "{what}: not late");
        // Each step is decided exactly when it is due by the clock.
        assert_eq!(
            *decided - created,
            chrono::Duration::minutes(after_min),
            "step {step}: {recorded:?}"
        );
    }
    let incident = app.incident(id).await;
    assert_eq!(incident["step"], 3);
    assert_eq!(incident["state"], "triggered");
    let kinds = history_kinds(&incident);
    assert_eq!(
        kinds.iter().filter(|k| *k == "step").count(),
        3,
        "history: {kinds:?}"
    );
}

on_both_stores!(ack_from_the_api_stops_the_page_before_it_reaches_bob);
async fn ack_from_the_api_stops_the_page_before_it_reaches_bob(store: Backend) {
    let catcher = PageCatcher::start().await;
    let (app, clock) = store
        .spawn_app_on_clock(&webhook_config(&catcher.url(), &chain("10m", "20m")))
        .await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    let pages = catcher.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "alice");
    let id = pages[0].incident_id();

    app.advance(&clock, Duration::from_secs(5 * 60)).await;
    let r = app.act(id, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "acknowledged");
    assert_eq!(r.body["acked_by"], "alice");

    // Past bob's and carol's steps (and short of the 30-minute ack timeout): nobody else.
    app.advance(&clock, Duration::from_secs(20 * 60)).await;
    let recorded = app.recorded_pages(id).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "acknowledged");
    assert_eq!(incident["step"], 1, "no step after the ack");
    assert!(incident["next_escalation_at"].is_null(), "{incident}");
    assert!(history_kinds(&incident).contains(&"acked".to_string()));
    assert_eq!(catcher.pages().len(), 1, "{}", describe(&catcher.pages()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_from_the_cli_stops_the_page_before_it_reaches_bob() {
    let catcher = PageCatcher::start().await;
    let (app, clock) =
        spawn_app_on_clock(&webhook_config(&catcher.url(), &chain("10m", "20m"))).await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    let pages = catcher.wait_for_pages(1, PROMPTLY).await;
    let id = pages[0].incident_id();

    // Run from an empty directory so no alerts.toml of the repo is picked up.
    let cwd = tempfile::tempdir().unwrap();
    let url = app.url("");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(TOCSIN)
            .args(["ack", &id.to_string(), "--by", "alice", "--url", &url])
            .current_dir(cwd.path())
            .output()
            .expect("run tocsin ack")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tocsin ack failed: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!("incident {id} is now acknowledged (by alice)")),
        "stdout: {stdout}"
    );

    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "acknowledged");
    assert_eq!(incident["acked_by"], "alice");
    // Past bob's and carol's steps: alice's ack from the CLI stopped them.
    app.advance(&clock, Duration::from_secs(25 * 60)).await;
    assert_eq!(app.recorded_pages(id).await.len(), 1);
    assert_eq!(catcher.pages().len(), 1, "{}", describe(&catcher.pages()));
}

on_both_stores!(duplicate_delivery_from_an_ha_pair_changes_nothing);
async fn duplicate_delivery_from_an_ha_pair_changes_nothing(store: Backend) {
    let catcher = PageCatcher::start().await;
    let app = store
        .spawn_app(&webhook_config(&catcher.url(), &chain("1h", "2h")))
        .await;
    let firing = fixture("am-0.25-api-two-alerts-firing.json");

    assert_eq!(app.post_hook(firing.clone()).await.status, 200);
    catcher.wait_for_pages(1, PROMPTLY).await;
    // Let the page's outcome land in the history before taking the snapshot.
    let before = eventually("the page's outcome in the history", PROMPTLY, || async {
        let i = app.only_incident().await;
        history_kinds(&i)
            .contains(&"page_delivered".to_string())
            .then_some(i)
    })
    .await;
    assert_eq!(before["alerts"].as_array().unwrap().len(), 2);

    // The same notification again, and once more as the HA peer sends it.
    let mut peer: serde_json::Value = serde_json::from_slice(&firing).unwrap();
    peer["externalURL"] = json!("http://am-peer:9093");
    for body in [firing.clone(), serde_json::to_vec(&peer).unwrap()] {
        let r = app.post_hook(body).await;
        assert_eq!(r.status, 200, "a duplicate is still accepted: {}", r.body);
    }

    catcher
        .assert_quiet(1, Duration::from_millis(500), "a duplicate delivery")
        .await;
    let after = app.only_incident().await;
    assert_eq!(after["history"], before["history"], "history changed");
    assert_eq!(after["alerts"], before["alerts"], "alerts changed");
    assert_eq!(after["updated_at"], before["updated_at"]);
}

on_both_stores!(resolved_notification_resolves_the_incident_and_stops_paging);
async fn resolved_notification_resolves_the_incident_and_stops_paging(store: Backend) {
    let catcher = PageCatcher::start().await;
    let (app, clock) = store
        .spawn_app_on_clock(&webhook_config(&catcher.url(), &chain("10m", "20m")))
        .await;

    assert_eq!(
        app.post_hook(fixture("am-0.25-api-two-alerts-firing.json"))
            .await
            .status,
        200
    );
    catcher.wait_for_pages(1, PROMPTLY).await;
    let r = app
        .post_hook(fixture("am-0.25-api-two-alerts-resolved.json"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let incident = app.only_incident().await;
    assert_eq!(incident["state"], "resolved", "{incident}");
    assert!(incident["resolved_at"].is_string());
    assert!(
        incident["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "resolved"),
        "{}",
        incident["alerts"]
    );
    assert!(history_kinds(&incident).contains(&"resolved".to_string()));
    assert!(app.incidents(Some("triggered")).await.is_empty());
    assert_eq!(app.incidents(Some("resolved")).await.len(), 1);

    // Past bob's and carol's steps: the incident resolved before them.
    app.advance(&clock, Duration::from_secs(25 * 60)).await;
    let id = incident["id"].as_u64().unwrap();
    assert_eq!(app.recorded_pages(id).await.len(), 1);
    assert_eq!(catcher.pages().len(), 1, "{}", describe(&catcher.pages()));
}

on_both_stores!(expired_ack_pages_again_from_step_one);
async fn expired_ack_pages_again_from_step_one(store: Backend) {
    let catcher = PageCatcher::start().await;
    let config = format!("[defaults]\nack_timeout = \"30m\"\n{}", chain("1h", "2h"));
    let (app, clock) = store
        .spawn_app_on_clock(&webhook_config(&catcher.url(), &config))
        .await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    let first = catcher.wait_for_pages(1, PROMPTLY).await;
    let id = first[0].incident_id();
    let r = app.act(id, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let acked_at = time_of(&r.body["acked_at"]);

    // The ack holds for its 30 minutes, to the second.
    app.advance(&clock, Duration::from_secs(30 * 60 - 1)).await;
    assert_eq!(app.recorded_pages(id).await.len(), 1);
    app.advance(&clock, Duration::from_secs(1)).await;
    let pages = catcher.wait_for_pages(2, PROMPTLY).await;
    let again = &pages[1];
    assert_eq!(
        (again.step(), again.target()),
        (1, "alice"),
        "{}",
        describe(&pages)
    );
    assert_eq!(again.event(), "triggered");
    assert_ne!(
        again.page_id(),
        first[0].page_id(),
        "a new page, not a re-send"
    );
    let recorded = app.recorded_pages(id).await;
    assert_eq!(
        recorded[1].1 - acked_at,
        chrono::Duration::minutes(30),
        "{recorded:?}"
    );
    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "triggered");
    assert!(incident["acked_by"].is_null());
    assert!(history_kinds(&incident).contains(&"ack_expired".to_string()));
}

on_both_stores!(restart_keeps_acks_and_never_reuses_an_incident_id);
async fn restart_keeps_acks_and_never_reuses_an_incident_id(store: Backend) {
    let catcher = PageCatcher::start().await;
    let mut app = store
        .spawn_app(&webhook_config(&catcher.url(), &chain("1h", "2h")))
        .await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    assert_eq!(
        app.post_alerts(&alerts::firing("NodeDown")).await.status,
        200
    );
    let ids: Vec<u64> = app
        .incidents(None)
        .await
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2, 1], "newest first");
    assert_eq!(app.act(1, "ack", json!({"by": "alice"})).await.status, 200);
    // The newest incident is resolved: its id must still never come back.
    assert_eq!(
        app.act(2, "resolve", json!({"by": "bob"})).await.status,
        200
    );
    catcher.wait_for_pages(2, PROMPTLY).await;

    app.restart().await;

    let one = app.incident(1).await;
    assert_eq!(one["state"], "acknowledged", "{one}");
    assert_eq!(one["acked_by"], "alice");
    assert_eq!(app.incident(2).await["state"], "resolved");
    // The acked group fires again (Alertmanager repeats): still the same acked incident.
    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    assert_eq!(app.incident(1).await["state"], "acknowledged");

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull2")).await.status,
        200
    );
    let newest = &app.incidents(None).await[0];
    assert_eq!(newest["group_key"], alerts::group_key("DiskFull2"));
    assert_eq!(
        newest["id"], 3,
        "a new group gets the next id, never a reused one"
    );
    let pages = catcher.wait_for_pages(3, PROMPTLY).await;
    catcher
        .assert_quiet(3, Duration::from_millis(300), "after the restart")
        .await;
    // Pages of different incidents go out concurrently: their order is not the point.
    let mut targets: Vec<(u64, u64)> = pages.iter().map(|p| (p.incident_id(), p.step())).collect();
    targets.sort();
    assert_eq!(
        targets,
        [(1, 1), (2, 1), (3, 1)],
        "one page per incident:\n{}",
        describe(&pages)
    );
}

/// alice's push goes through `pager`; her SMS through `backup`, an hour later.
fn failover_config(pager: &str, backup: &str, pager_attempts: u32) -> String {
    format!(
        r#"
[notifiers.pager]
type = "webhook"
url = "{pager}"
timeout = "2s"
max_attempts = {pager_attempts}
[notifiers.backup]
type = "webhook"
url = "{backup}"
timeout = "2s"

[contacts.alice]
methods = [
  {{ notifier = "pager", topic = "alice-push" }},
  {{ notifier = "backup", to = "+15550100", after = "1h" }},
]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_push_falls_over_to_sms_at_once_not_an_hour_later() {
    let pager = PageCatcher::answering(400).await;
    let backup = PageCatcher::start().await;
    let app = spawn_app(&failover_config(&pager.url(), &backup.url(), 3)).await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    let sms = backup.wait_for_pages(1, PROMPTLY).await;
    let b = &sms[0].body;
    assert_eq!(sms[0].target(), "alice");
    assert_eq!(b["to"], "+15550100");
    assert_eq!(b["step"], 1);
    assert!(
        b["reason"].as_str().unwrap_or("").contains("failover"),
        "{b}"
    );
    // 400 is permanent: exactly one attempt, no retries.
    assert_eq!(pager.pages().len(), 1, "{}", describe(&pager.pages()));

    let incident = app.incident(sms[0].incident_id()).await;
    let kinds = history_kinds(&incident);
    assert!(kinds.contains(&"page_failed".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"failover".to_string()), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_for_a_moment_gets_the_page_on_retry() {
    let pager = PageCatcher::answering(503).await;
    let backup = PageCatcher::start().await;
    let app = spawn_app(&failover_config(&pager.url(), &backup.url(), 3)).await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    pager.wait_for_pages(1, PROMPTLY).await;
    pager.answer_with(200);
    let tries = pager.wait_for_pages(2, PROMPTLY).await;
    assert_eq!(
        tries[0].page_id(),
        tries[1].page_id(),
        "a retry is the same page"
    );
    let id = tries[0].incident_id();
    let delivered = eventually("the page's outcome", PROMPTLY, || async {
        let i = app.incident(id).await;
        i["pages"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["status"] != "pending"))
            .cloned()
    })
    .await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(delivered["attempts"], 2, "{delivered}");
    assert!(backup.pages().is_empty(), "no failover when a retry worked");
}
