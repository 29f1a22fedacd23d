//! Two outages tocsin exists for, replayed with the webhook: a maintainer who never
//! answers, and a monitor that floods. Each test prints its measured times as one
//! `TIME-TO-PAGE` line (the README's table is made of them).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::alerts::{alert, payload};
use crate::catcher::PageCatcher;
use crate::harness::{spawn_app, webhook_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_maintainer_pages_the_secondary_then_the_team() {
    let catcher = PageCatcher::start().await;
    let people = r#"
[contacts.maintainer]
methods = [{ notifier = "hook", to = "maintainer@pager" }]
[contacts.secondary]
methods = [{ notifier = "hook", to = "secondary@pager" }]
[contacts.teammate]
methods = [{ notifier = "hook", to = "teammate@pager" }]

[policies.default]
steps = [
  { after = "0s", notify = ["maintainer"] },
  { after = "3s", notify = ["secondary"] },
  { after = "6s", notify = ["secondary", "teammate"] },
]
"#;
    let app = spawn_app(&webhook_config(&catcher.url(), people)).await;
    let posted = Instant::now();
    let r = app
        .post_alerts(&payload("SiteDown", vec![alert("SiteDown", "www")]))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The maintainer is unreachable: nobody acks.
    let pages = catcher.wait_for_pages(4, Duration::from_secs(15)).await;
    let when = |target: &str, step: u64| {
        pages
            .iter()
            .find(|p| p.target() == target && p.step() == step)
            .unwrap_or_else(|| panic!("no step {step} page to {target}: {pages:?}"))
            .at
            .duration_since(posted)
    };
    let first = when("maintainer", 1);
    let secondary = when("secondary", 2);
    let team = [when("secondary", 3), when("teammate", 3)];
    // Step delays count from the incident's trigger, which is the POST (±1 s).
    for (what, got, due) in [
        ("secondary", secondary, 3.0),
        ("team (secondary)", team[0], 6.0),
        ("team (teammate)", team[1], 6.0),
    ] {
        let off = got.as_secs_f64() - due;
        assert!(
            (-0.05..=1.0).contains(&off),
            "{what} paged at {:.2} s, due at {due} s ± 1 s",
            got.as_secs_f64()
        );
    }
    eprintln!(
        "TIME-TO-PAGE unreachable_maintainer: maintainer {:.1} s, secondary {:.1} s (due 3 s), team {:.1} s (due 6 s)",
        first.as_secs_f64(),
        secondary.as_secs_f64(),
        team[1].as_secs_f64()
    );
}

/// A monitor that fires one rule on 1,000 hosts within a minute, each host its own
/// Alertmanager group (`group_by: [alertname, instance]`): 1,000 incidents.
const NOISY: usize = 1000;
const NOISY_SPREAD: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_monitor_1000_alerts_in_a_minute_is_a_few_bundled_pages_per_person() {
    let catcher = PageCatcher::start().await;
    let people = r#"
[notifiers.pager]
type = "webhook"
url = "URL"
timeout = "2s"
# A phone that must not ring more than once a minute, like the SMS default.
limits = { per_destination = ["1/1m"] }

[contacts.alice]
methods = [{ notifier = "pager", to = "alice@pager" }]
[contacts.bob]
methods = [{ notifier = "pager", to = "bob@pager" }]

[policies.default]
steps = [{ after = "0s", notify = ["alice", "bob"] }]
"#
    .replace("URL", &catcher.url());
    let app = spawn_app(&webhook_config(&catcher.url(), &people)).await;
    let started = Instant::now();
    for i in 0..NOISY {
        let host = format!("host{i:04}");
        let mut body = payload("NoisyMonitor", vec![alert("NoisyMonitor", &host)]);
        body["groupKey"] = json!(format!(
            "{{}}:{{alertname=\"NoisyMonitor\", instance=\"{host}\"}}"
        ));
        body["groupLabels"]["instance"] = json!(host);
        let r = app.post_alerts(&body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        // Spread evenly over the minute.
        let due = NOISY_SPREAD.mul_f64((i + 1) as f64 / NOISY as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let named = |pages: &[crate::catcher::Page], who: &str| -> BTreeMap<u64, usize> {
        let mut seen = BTreeMap::new();
        for p in pages.iter().filter(|p| p.target() == who) {
            *seen.entry(p.incident_id()).or_insert(0) += 1;
            for b in p.body["bundle"].as_array().into_iter().flatten() {
                *seen.entry(b["incident"].as_u64().unwrap()).or_insert(0) += 1;
            }
        }
        seen
    };
    let pages = catcher
        .wait_until(
            "every incident named to alice and bob",
            Duration::from_secs(90),
            |pages| named(pages, "alice").len() >= NOISY && named(pages, "bob").len() >= NOISY,
        )
        .await;
    let mut report = Vec::new();
    for who in ["alice", "bob"] {
        let seen = named(&pages, who);
        let ids: BTreeSet<u64> = seen.keys().copied().collect();
        assert_eq!(ids.len(), NOISY, "{who}: every incident listed");
        assert!(seen.values().all(|n| *n == 1), "{who}: none listed twice");
        let mine: Vec<_> = pages.iter().filter(|p| p.target() == who).collect();
        assert!(
            mine.len() <= 3,
            "{who} got {} pages for one noisy minute",
            mine.len()
        );
        for w in mine.windows(2) {
            let gap = w[1].at - w[0].at;
            assert!(gap >= Duration::from_secs(59), "{who}: pages {gap:?} apart");
        }
        report.push(format!(
            "{who} {} pages (sizes {:?})",
            mine.len(),
            mine.iter()
                .map(|p| 1 + p.body["bundle"].as_array().map_or(0, Vec::len))
                .collect::<Vec<_>>()
        ));
    }
    let first = pages.first().expect("pages").at.duration_since(started);
    eprintln!(
        "TIME-TO-PAGE noisy_monitor: first page {:.1} s after the first alert; {NOISY} alerts over {} s -> {}",
        first.as_secs_f64(),
        NOISY_SPREAD.as_secs(),
        report.join(", ")
    );
}
