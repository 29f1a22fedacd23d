//! `kill -9` in the middle of an alert storm, with the built binary: every alert that was
//! answered 200 is in the store after the restart, and every page goes out once per
//! (incident, step, target), re-sends of pages in doubt keeping their `page_id`; on
//! SQLite and on PostgreSQL, where the restarted binary first waits out the lease of the
//! one that was killed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::alerts;
use crate::catcher::{PageCatcher, describe};
use crate::daemon::Daemon;
use crate::harness::{Backend, PEOPLE, init, on_both_stores, webhook_config};

/// Concurrent senders, like many Alertmanager groups flushing at once.
const TASKS: usize = 32;
/// Requests each sender makes if nothing stops it.
const PER_TASK: usize = 60;
/// The daemon is killed once this many requests were answered 200.
const KILL_AFTER: usize = 300;

/// A group that tocsin answered 200 for.
struct Accepted {
    group_key: String,
    fingerprints: Vec<String>,
}

on_both_stores!(kill_9_mid_storm_loses_no_accepted_alert_and_pages_each_step_once);
async fn kill_9_mid_storm_loses_no_accepted_alert_and_pages_each_step_once(store: Backend) {
    init();
    let catcher = PageCatcher::start().await;
    // A slow receiver: at the kill, pages are received but not yet answered, so their
    // outcome is not recorded and they must be re-sent, under the same page_id.
    catcher.answer_after(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    let policy = format!(
        "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"alice\"] }}, {{ after = \"1h\", notify = [\"bob\"] }}]\n"
    );
    let config_toml = store.config(&webhook_config(&catcher.url(), &policy)).await;
    std::fs::write(&config, config_toml).unwrap();
    let data_dir = dir.path().join("data");
    let log = dir.path().join("tocsin.log");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let mut daemon = Daemon::start(&config, &data_dir, log.clone());
    daemon.wait_ready(&client).await;

    let accepted: Arc<Mutex<Vec<Accepted>>> = Arc::default();
    let answered = Arc::new(watch::channel(0usize).0);
    let failed = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for t in 0..TASKS {
        let (client, url) = (client.clone(), daemon.url("/hooks/alertmanager"));
        let (accepted, answered, failed) = (accepted.clone(), answered.clone(), failed.clone());
        senders.push(tokio::spawn(async move {
            for n in 0..PER_TASK {
                let name = format!("Storm{t:02}x{n:03}");
                let body = alerts::payload(
                    &name,
                    vec![alerts::alert(&name, "a"), alerts::alert(&name, "b")],
                );
                let fingerprints = body["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["fingerprint"].as_str().unwrap().to_string())
                    .collect();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 200 => {
                        accepted.lock().unwrap().push(Accepted {
                            group_key: alerts::group_key(&name),
                            fingerprints,
                        });
                        answered.send_modify(|n| *n += 1);
                    }
                    Ok(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        // The daemon is gone: this sender's storm is over.
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    let mut rx = answered.subscribe();
    tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|n| *n >= KILL_AFTER))
        .await
        .unwrap_or_else(|_| panic!("fewer than {KILL_AFTER} answers in 60 s:\n{}", daemon.log()))
        .unwrap();
    daemon.kill_9();
    let killed_at = Instant::now();
    for s in senders {
        s.await.unwrap();
    }
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    let failed = failed.load(Ordering::Relaxed);
    assert!(
        failed > 0,
        "every request was answered: the kill did not land mid-storm"
    );
    assert!(accepted.len() < TASKS * PER_TASK);

    let mut daemon = Daemon::start(&config, &data_dir, log);
    let led_after = daemon.wait_leading(&client).await;

    // Every alert answered 200 is in the store, in the incident of its group.
    let mut all = Vec::new();
    let mut page = "/api/v1/incidents?limit=500".to_string();
    loop {
        let r: Value = client
            .get(daemon.url(&page))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.extend(r["incidents"].as_array().unwrap().iter().cloned());
        match r["next"].as_u64() {
            Some(next) => page = format!("/api/v1/incidents?limit=500&before={next}"),
            None => break,
        }
    }
    let stored: BTreeMap<String, &Value> = all
        .iter()
        .map(|i| (i["group_key"].as_str().unwrap().to_string(), i))
        .collect();
    for a in &accepted {
        let incident = stored.get(&a.group_key).unwrap_or_else(|| {
            panic!(
                "{} was answered 200 but is not in the store after kill -9 ({} incidents stored)",
                a.group_key,
                stored.len()
            )
        });
        let fps: BTreeSet<&str> = incident["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["fingerprint"].as_str().unwrap())
            .collect();
        for fp in &a.fingerprints {
            assert!(
                fps.contains(fp.as_str()),
                "alert {fp} of {} was answered 200 but is missing",
                a.group_key
            );
        }
    }

    // Every accepted group's incident gets its step-1 page, across both runs.
    let want: BTreeSet<u64> = accepted
        .iter()
        .map(|a| stored[&a.group_key]["id"].as_u64().unwrap())
        .collect();
    let pages = catcher
        .wait_until(
            "a step-1 page for every accepted incident",
            Duration::from_secs(30),
            |pages| {
                let paged: BTreeSet<u64> = pages
                    .iter()
                    .filter(|p| p.step() == 1)
                    .map(|p| p.incident_id())
                    .collect();
                want.is_subset(&paged)
            },
        )
        .await;

    // Once per (incident, step, target); a re-send is the same page, and only after the restart.
    let mut ids: BTreeMap<(u64, u64, String), BTreeSet<u64>> = BTreeMap::new();
    let mut receipts: BTreeMap<u64, Vec<Instant>> = BTreeMap::new();
    for p in &pages {
        ids.entry((p.incident_id(), p.step(), p.target().to_string()))
            .or_default()
            .insert(p.page_id());
        receipts.entry(p.page_id()).or_default().push(p.at);
    }
    for ((incident, step, target), page_ids) in &ids {
        assert_eq!(
            page_ids.len(),
            1,
            "incident {incident} step {step} to {target} was paged as {page_ids:?}:\n{}",
            describe(
                &pages
                    .iter()
                    .filter(|p| p.incident_id() == *incident)
                    .cloned()
                    .collect::<Vec<_>>()
            )
        );
    }
    let mut resent = 0;
    for (page_id, at) in &receipts {
        if at.len() > 1 {
            resent += 1;
            assert!(
                at.iter().skip(1).all(|t| *t > killed_at),
                "page {page_id} arrived {} times before the crash",
                at.len()
            );
        }
    }
    assert!(
        resent > 0,
        "no page was received twice: the kill left no page in doubt, so re-sends went untested"
    );
    for p in &pages {
        let group = p.body["incident"]["group_key"].as_str().unwrap_or("");
        if let Some(i) = stored.get(group) {
            assert_eq!(p.incident_id(), i["id"].as_u64().unwrap(), "{group}");
        }
    }
    eprintln!(
        "storm on {store:?}: {} answered 200, {failed} cut off by kill -9; restarted, it led after {led_after:.1?}; {} incidents stored; {} pages received, {resent} re-sent after the restart with their page_id",
        accepted.len(),
        stored.len(),
        pages.len()
    );
}
