//! A noisy monitor: a storm of incidents must become a handful of pages per person, with
//! every incident listed and none lost.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::alerts::firing;
use crate::catcher::PageCatcher;
use crate::harness::{eventually, init, spawn_app};

const STORM: u64 = 1000;

fn config(hook_url: &str) -> String {
    format!(
        r#"
[notifiers.pager]
type = "webhook"
url = "{hook_url}"
timeout = "2s"
# A person's pager: at most one message per 2 s (the default for SMS is 1 per minute,
# 5 per 15 minutes, ...; shortened so the test runs in seconds).
limits = {{ per_destination = ["1/2s"], overall = "5/5s" }}

[contacts.alice]
methods = [{{ notifier = "pager", to = "alice@pager" }}]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_1000_incidents_is_a_few_bundled_pages_and_none_is_lost() {
    init();
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&config(&catcher.url())).await;

    let client = app.client.clone();
    let url = app.url("/hooks/alertmanager");
    let posts: Vec<_> = (0..STORM)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let body = firing(&format!("Storm{i:04}"));
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    for p in posts {
        assert!(matches!(p.await.unwrap(), Ok(200)), "every webhook stored");
    }

    // Wait until every incident was named in some page.
    let pages = catcher
        .wait_until("every incident paged", Duration::from_secs(30), |pages| {
            let named: usize = pages
                .iter()
                .map(|p| 1 + p.body["bundle"].as_array().map_or(0, Vec::len))
                .sum();
            named >= STORM as usize
        })
        .await;

    // Nothing lost, nothing twice.
    let mut times_named: BTreeMap<u64, usize> = BTreeMap::new();
    for p in &pages {
        *times_named.entry(p.incident_id()).or_default() += 1;
        for b in p.body["bundle"].as_array().into_iter().flatten() {
            *times_named
                .entry(b["incident"].as_u64().unwrap())
                .or_default() += 1;
        }
    }
    assert_eq!(
        times_named.len() as u64,
        STORM,
        "every incident is in a page"
    );
    assert!(
        times_named.values().all(|n| *n == 1),
        "no incident paged twice"
    );

    // A handful of messages, never two within the limit's 2 s.
    println!(
        "storm of {STORM} incidents -> {} pages to alice; bundle sizes {:?}",
        pages.len(),
        pages
            .iter()
            .map(|p| 1 + p.body["bundle"].as_array().map_or(0, Vec::len))
            .collect::<Vec<_>>()
    );
    assert!(pages.len() <= 6, "{} pages for one storm", pages.len());
    // How far apart the messages leave is flood control's own property, tested with
    // literal times in src/notify/flood.rs: here, on a loaded machine, the moment a
    // message reaches the receiver also carries the HTTP latency of that moment.
    let bundle = pages
        .iter()
        .find(|p| p.body["bundle"].as_array().is_some_and(|b| !b.is_empty()));
    let bundle = bundle.expect("the storm arrived as a bundle");
    assert!(
        bundle.body["text"]
            .as_str()
            .unwrap()
            .contains("incidents need you"),
        "{}",
        bundle.body["text"]
    );

    // Every incident is still its own: acking one acks only that one.
    let r = app.act(500, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let acked = app.incidents(Some("acknowledged")).await;
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0]["id"], 500);

    // And the store recorded a delivered page for every incident.
    eventually(
        "every page's outcome recorded",
        Duration::from_secs(10),
        || async {
            let inc = app.incident(STORM).await;
            inc["pages"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["status"] == "delivered"))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_held_by_flood_control_is_not_sent_once_its_incident_is_acked() {
    init();
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&config(&catcher.url())).await;
    assert_eq!(app.post_alerts(&firing("First")).await.status, 200);
    catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    // The second incident's page waits for alice's 2 s limit; she acks it meanwhile
    // (from the web view, say), so when the limit allows, there is nothing to send.
    assert_eq!(app.post_alerts(&firing("Second")).await.status, 200);
    let r = app.act(2, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = eventually("the held page to end", Duration::from_secs(10), || async {
        let inc = app.incident(2).await;
        let p = inc["pages"].as_array()?.first()?.clone();
        (p["status"] != "pending").then_some(p)
    })
    .await;
    assert_eq!(page["status"], "cancelled", "{page}");
    assert_eq!(
        catcher.pages().len(),
        1,
        "only the first incident was paged"
    );
}
