//! Reads a stranger may make as often as they like: bounded pages of the list and of an
//! incident's history, so no answer costs tocsin more than one page. The pages are the
//! store's queries: they are tested on SQLite and on PostgreSQL.

use std::time::Duration;

use serde_json::Value;

use crate::alerts::firing;
use crate::catcher::PageCatcher;
use crate::harness::{
    Backend, Reply, TestApp, eventually, history_kinds, on_both_stores, page_alice, webhook_config,
};

async fn get(app: &TestApp, path: &str) -> Reply {
    Reply::from(app.client.get(app.url(path)).send().await.expect(path)).await
}

fn ids(page: &Value) -> Vec<u64> {
    page["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("no incidents in {page}"))
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect()
}

async fn app_with_incidents(store: Backend, n: usize) -> (TestApp, PageCatcher) {
    let catcher = PageCatcher::start().await;
    let app = store
        .spawn_app(&webhook_config(&catcher.url(), &page_alice()))
        .await;
    for i in 1..=n {
        assert_eq!(
            app.post_alerts(&firing(&format!("Disk{i}"))).await.status,
            200
        );
    }
    (app, catcher)
}

on_both_stores!(a_scraper_walks_the_list_a_page_at_a_time_to_the_oldest);
async fn a_scraper_walks_the_list_a_page_at_a_time_to_the_oldest(store: Backend) {
    let (app, _catcher) = app_with_incidents(store, 5).await;
    app.act(2, "resolve", serde_json::json!({"by": "alice"}))
        .await;
    let mut path = "/api/v1/incidents?limit=2".to_string();
    let mut pages = Vec::new();
    loop {
        let r = get(&app, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages.push(ids(&r.body));
        match r.body["next"].as_u64() {
            Some(next) => path = format!("/api/v1/incidents?limit=2&before={next}"),
            None => break,
        }
    }
    assert_eq!(pages, [vec![5, 4], vec![3, 2], vec![1]]);
    let triggered = get(&app, "/api/v1/incidents?state=triggered&limit=3&before=4").await;
    assert_eq!(ids(&triggered.body), [3, 1]);
    assert_eq!(triggered.body["next"], Value::Null);
    let default = get(&app, "/api/v1/incidents").await;
    assert_eq!(ids(&default.body), [5, 4, 3, 2, 1]);
}

#[tokio::test]
async fn a_list_bigger_than_the_maximum_is_refused_saying_the_maximum() {
    let (app, _catcher) = app_with_incidents(Backend::Sqlite, 1).await;
    for limit in ["10000", "501", "0"] {
        let r = get(&app, &format!("/api/v1/incidents?limit={limit}")).await;
        assert_eq!(r.status, 400, "limit={limit}: {}", r.body);
        assert!(r.error().contains("1 to 500"), "{}", r.body);
        assert!(
            r.error().contains("before"),
            "says how to read on: {}",
            r.body
        );
    }
    assert_eq!(get(&app, "/api/v1/incidents?limit=500").await.status, 200);
}

on_both_stores!(an_incident_shows_its_latest_history_and_links_to_the_rest);
async fn an_incident_shows_its_latest_history_and_links_to_the_rest(store: Backend) {
    let (app, _catcher) = app_with_incidents(store, 1).await;
    let whole = eventually(
        "the page's delivery in the history",
        Duration::from_secs(10),
        || async {
            let r = get(&app, "/api/v1/incidents/1?history_limit=500").await;
            history_kinds(&r.body)
                .contains(&"page_delivered".to_string())
                .then_some(r)
        },
    )
    .await;
    let all: Vec<Value> = whole.body["history"].as_array().unwrap().clone();
    assert_eq!(whole.body["history_next"], Value::Null);

    let latest = get(&app, "/api/v1/incidents/1?history_limit=2").await;
    assert_eq!(
        latest.body["history"].as_array().unwrap()[..],
        all[all.len() - 2..]
    );
    let next = latest.body["history_next"]
        .as_u64()
        .expect("older entries exist");
    let older = get(
        &app,
        &format!("/api/v1/incidents/1?history_limit=500&history_before={next}"),
    )
    .await;
    assert_eq!(
        older.body["history"].as_array().unwrap()[..],
        all[..all.len() - 2]
    );

    let r = get(&app, "/api/v1/incidents/1?history_limit=501").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("history_before"), "{}", r.body);
    let page = get(&app, "/incidents/1?history_before=999999").await;
    assert_eq!(page.status, 200);
}
