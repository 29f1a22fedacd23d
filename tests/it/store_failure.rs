//! The disk fails under a commit: the sender must get a 5xx (Alertmanager retries), and
//! the retry must be stored, not mistaken for a duplicate of what never reached the disk.
//! Likewise for an SMS reply, whose retry must not be taken for a replay. And reads that
//! never finish, as under a flood of anonymous reads, must not hold up a page.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use async_trait::async_trait;
use tocsin::config;
use tocsin::engine::{Effect, IncidentId, IncidentState};
use tocsin::runtime::{self, Options};
use tocsin::store::{
    Detail, IncidentPage, IncidentView, ListQuery, Restored, SqliteStore, Store, StoreError,
};
use tocsin::time::Timestamp;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::harness::{init, page_alice, webhook_config};

/// SQLite with switches that make the next commit, or the next check of an inbound SMS
/// id, fail like a full disk, or every read a client can ask for wait for ever.
struct FullDisk {
    inner: SqliteStore,
    fail_next: AtomicBool,
    fail_next_sight: AtomicBool,
    /// While true, lists, incidents, counts and ack-link checks do not answer, like
    /// reads queued behind a flood of them.
    reads_stuck: watch::Sender<bool>,
}

impl FullDisk {
    async fn stuck(&self) {
        let _ = self.reads_stuck.subscribe().wait_for(|stuck| !stuck).await;
    }
}

fn disk_full() -> StoreError {
    StoreError::Write(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
        Some("database or disk is full".into()),
    ))
}

#[async_trait]
impl Store for FullDisk {
    async fn commit(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(disk_full());
        }
        self.inner.commit(effects).await
    }
    async fn restore(&self, since: Timestamp) -> Result<Restored, StoreError> {
        self.inner.restore(since).await
    }
    async fn incidents(&self, query: ListQuery) -> Result<IncidentPage, StoreError> {
        self.stuck().await;
        self.inner.incidents(query).await
    }
    async fn each_incident(
        &self,
        query: ListQuery,
        each: Box<dyn for<'v> FnMut(&'v IncidentView) + Send + 'static>,
    ) -> Result<Option<IncidentId>, StoreError> {
        self.stuck().await;
        self.inner.each_incident(query, each).await
    }
    async fn incident(
        &self,
        id: IncidentId,
        detail: Detail,
    ) -> Result<Option<IncidentView>, StoreError> {
        self.stuck().await;
        self.inner.incident(id, detail).await
    }
    async fn incident_to_page(&self, id: IncidentId) -> Result<Option<IncidentView>, StoreError> {
        self.inner.incident_to_page(id).await
    }
    async fn acked_by_link(
        &self,
        id: IncidentId,
        link: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.stuck().await;
        self.inner.acked_by_link(id, link).await
    }
    async fn counts(&self) -> Result<BTreeMap<IncidentState, u64>, StoreError> {
        self.stuck().await;
        self.inner.counts().await
    }
    async fn open_incident_of_group(
        &self,
        source: &str,
        group_key: &str,
    ) -> Result<Option<IncidentView>, StoreError> {
        self.inner.open_incident_of_group(source, group_key).await
    }
    async fn source_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.inner.source_state(name).await
    }
    async fn save_source_state(
        &self,
        name: &str,
        value: String,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.save_source_state(name, value, at).await
    }
    async fn first_sight(
        &self,
        channel: &str,
        id: &str,
        at: Timestamp,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        if self.fail_next_sight.swap(false, Ordering::SeqCst) {
            return Err(disk_full());
        }
        self.inner.first_sight(channel, id, at, keep).await
    }
    async fn forget_sight(&self, channel: &str, id: &str) -> Result<(), StoreError> {
        self.inner.forget_sight(channel, id).await
    }
}

#[tokio::test]
async fn full_disk_answers_503_and_the_retry_is_stored_not_deduplicated() {
    init();
    let cfg = config::load_str(
        r#"
[notifiers.console]
type = "log"
[contacts.oncall]
methods = [{ notifier = "console" }]
[policies.p]
steps = [{ after = "1h", notify = ["console"] }]
[[routes]]
policy = "p"
"#,
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk {
        inner: SqliteStore::open(dir.path()).unwrap(),
        fail_next: AtomicBool::new(true),
        fail_next_sight: AtomicBool::new(false),
        reads_stuck: watch::channel(false).0,
    });
    let mut opts = Options::new(cfg, dir.path().to_path_buf());
    opts.store = Some(disk.clone());
    opts.drain_grace = Duration::from_secs(3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = runtime::start(opts, listener).await.unwrap();
    let url = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let body = alerts::firing("DiskFull");

    let first = http
        .post(format!("{url}/hooks/alertmanager"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.status(),
        503,
        "a failed commit must not be answered 200"
    );
    let err: serde_json::Value = first.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("disk is full"),
        "{err}"
    );

    // Alertmanager retries the same notification
    let retry = http
        .post(format!("{url}/hooks/alertmanager"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let list: serde_json::Value = http
        .get(format!("{url}/api/v1/incidents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let incidents = list["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "the retry must be stored: {list}");
    assert_eq!(
        incidents[0]["id"], 1,
        "the failed attempt must not burn an id"
    );
    assert!(!incidents[0]["alerts"].as_array().unwrap().is_empty());
    running.stop();
    running.wait().await.unwrap();
}

/// tocsin on `disk` with alice's SMS number, and incident 1 open; its base URL.
async fn sms_contact_with_an_incident(
    disk: Arc<FullDisk>,
    dir: &std::path::Path,
) -> (runtime::Running, String) {
    let password = dir.join("kannel-password");
    std::fs::write(&password, "smspass").unwrap();
    let cfg = config::load_str(
        &format!(
            r#"
[notifiers.console]
type = "log"
[notifiers.sms]
type = "kannel"
url = "http://127.0.0.1:9/cgi-bin/sendsms"
username = "tocsin"
password_file = "{}"
from = "TOCSIN"
[contacts.alice]
methods = [{{ notifier = "sms", to = "+15550100" }}]
[policies.p]
steps = [{{ after = "1h", notify = ["console"] }}]
[[routes]]
policy = "p"
"#,
            password.display()
        ),
        None,
    )
    .unwrap();
    let mut opts = Options::new(cfg, dir.to_path_buf());
    opts.store = Some(disk);
    opts.drain_grace = Duration::from_secs(3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = runtime::start(opts, listener).await.unwrap();
    let url = format!("http://{}", running.addr);
    let r = reqwest::Client::new()
        .post(format!("{url}/hooks/alertmanager"))
        .json(&alerts::firing("DiskFull"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    (running, url)
}

/// alice's `1A` as Kannel's get-url delivers it, with message id `id`.
async fn kannel_reply(url: &str, id: &str) -> (u16, String) {
    let r = reqwest::get(format!(
        "{url}/hooks/sms/kannel?from=%2B15550100&text=1A&id={id}"
    ))
    .await
    .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn state_of_incident_1(url: &str) -> serde_json::Value {
    let v: serde_json::Value = reqwest::get(format!("{url}/api/v1/incidents/1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["state"].clone()
}

#[tokio::test]
async fn kannel_reply_whose_id_cannot_be_checked_is_503_and_its_retry_acks() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk {
        inner: SqliteStore::open(dir.path()).unwrap(),
        fail_next: AtomicBool::new(false),
        fail_next_sight: AtomicBool::new(true),
        reads_stuck: watch::channel(false).0,
    });
    let (running, url) = sms_contact_with_an_incident(disk, dir.path()).await;
    let id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

    let (status, body) = kannel_reply(&url, id).await;
    assert_eq!(status, 503, "not acted on unchecked: {body}");
    assert_eq!(state_of_incident_1(&url).await, "triggered");
    // smsbox's http-request-retry: the same URL, the same id.
    let (status, body) = kannel_reply(&url, id).await;
    assert_eq!((status, body.as_str()), (200, "Acknowledged #1"));
    assert_eq!(state_of_incident_1(&url).await, "acknowledged");
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn kannel_reply_tocsin_could_not_record_is_503_and_its_retry_is_no_replay() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk {
        inner: SqliteStore::open(dir.path()).unwrap(),
        fail_next: AtomicBool::new(false),
        fail_next_sight: AtomicBool::new(false),
        reads_stuck: watch::channel(false).0,
    });
    let (running, url) = sms_contact_with_an_incident(disk.clone(), dir.path()).await;
    let id = "0f8fad5b-d9cb-469f-a165-70867728950e";

    // The id is new and remembered, then the ack's commit fails.
    disk.fail_next.store(true, Ordering::SeqCst);
    let (status, body) = kannel_reply(&url, id).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(state_of_incident_1(&url).await, "triggered");
    let (status, body) = kannel_reply(&url, id).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "Acknowledged #1"),
        "the retry of a reply that did nothing is acted on"
    );
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn a_page_goes_out_while_every_api_read_waits() {
    init();
    let catcher = PageCatcher::start().await;
    let cfg = config::load_str(&webhook_config(&catcher.url(), &page_alice()), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk {
        inner: SqliteStore::open(dir.path()).unwrap(),
        fail_next: AtomicBool::new(false),
        fail_next_sight: AtomicBool::new(false),
        reads_stuck: watch::channel(false).0,
    });
    let mut opts = Options::new(cfg, dir.path().to_path_buf());
    opts.store = Some(disk.clone());
    opts.drain_grace = Duration::from_secs(3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = runtime::start(opts, listener).await.unwrap();
    // From now on (the start reads what was open, like a restart would).
    disk.reads_stuck.send_replace(true);
    let url = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let readers: Vec<_> = ["/api/v1/incidents?limit=500", "/api/v1/incidents/1", "/"]
        .iter()
        .map(|path| tokio::spawn(http.get(format!("{url}{path}")).send()))
        .collect();

    let r = http
        .post(format!("{url}/hooks/alertmanager"))
        .json(&alerts::firing("DiskFull"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pages = catcher
        .wait_until("alice's page", Duration::from_secs(10), |p| !p.is_empty())
        .await;
    assert_eq!(pages[0].target(), "alice");
    assert_eq!(
        pages[0].body["incident"]["alerts"][0]["labels"]["alertname"],
        "DiskFull"
    );
    assert!(
        readers.iter().all(|r| !r.is_finished()),
        "the API reads were to wait all along"
    );
    disk.reads_stuck.send_replace(false);
    for r in readers {
        assert_eq!(r.await.unwrap().unwrap().status(), 200);
    }
    running.stop();
    running.wait().await.unwrap();
}
