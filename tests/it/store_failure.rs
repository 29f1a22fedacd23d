//! The disk fails under a commit: the sender must get a 5xx (Alertmanager retries), and
//! the retry must be stored, not mistaken for a duplicate of what never reached the disk.
//! Likewise for an SMS reply, whose retry must not be taken for a replay. And reads that
//! never finish, as under a flood of anonymous reads, must not hold up a page.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use async_trait::async_trait;
use tocsin::config;
use tocsin::engine::{Effect, IncidentId, IncidentState};
use tocsin::runtime::{self, Options};
use tocsin::store::{
    Detail, IncidentPage, IncidentView, ListQuery, Restored, SqliteStore, Store, StoreError,
};
use tocsin::time::{ManualClock, Timestamp};

use crate::alerts;
use crate::catcher::{PageCatcher, describe};
use crate::harness::{PEOPLE, init, metric_value, page_alice, webhook_config};

/// SQLite with switches that make the next commit, or the next check of an inbound SMS
/// id, fail like a full disk, or every read a client can ask for wait for ever.
struct FullDisk {
    inner: SqliteStore,
    fail_next: AtomicBool,
    fail_next_sight: AtomicBool,
    /// Every write fails while set, like a disk that stays full.
    full: AtomicBool,
    /// Writes tried while `full`.
    refused_writes: AtomicU64,
    /// Reading the store back (restore) fails while set, like an I/O error.
    unreadable: AtomicBool,
    /// While true, lists, incidents, counts and ack-link checks do not answer, like
    /// reads queued behind a flood of them.
    reads_stuck: watch::Sender<bool>,
}

impl FullDisk {
    fn new(dir: &std::path::Path) -> Self {
        FullDisk {
            inner: SqliteStore::open(dir).unwrap(),
            fail_next: AtomicBool::new(false),
            fail_next_sight: AtomicBool::new(false),
            full: AtomicBool::new(false),
            refused_writes: AtomicU64::new(0),
            unreadable: AtomicBool::new(false),
            reads_stuck: watch::channel(false).0,
        }
    }

    async fn stuck(&self) {
        let _ = self.reads_stuck.subscribe().wait_for(|stuck| !stuck).await;
    }

    fn refuses_now(&self) -> bool {
        let full = self.full.load(Ordering::SeqCst);
        if full {
            self.refused_writes.fetch_add(1, Ordering::SeqCst);
        }
        full
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
        if self.fail_next.swap(false, Ordering::SeqCst) || self.refuses_now() {
            return Err(disk_full());
        }
        self.inner.commit(effects).await
    }
    async fn restore(&self, since: Timestamp) -> Result<Restored, StoreError> {
        if self.unreadable.load(Ordering::SeqCst) {
            return Err(StoreError::Read(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                Some("disk I/O error".into()),
            )));
        }
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
    async fn overrides(
        &self,
        schedule: Option<String>,
        ending_after: Timestamp,
    ) -> Result<Vec<tocsin::engine::OverrideRecord>, StoreError> {
        self.stuck().await;
        self.inner.overrides(schedule, ending_after).await
    }
    async fn silences(
        &self,
        ending_after: Timestamp,
    ) -> Result<Vec<tocsin::engine::SilenceRecord>, StoreError> {
        self.stuck().await;
        self.inner.silences(ending_after).await
    }
    async fn maintenance(
        &self,
        ending_after: Timestamp,
    ) -> Result<Vec<tocsin::engine::WindowRecord>, StoreError> {
        self.stuck().await;
        self.inner.maintenance(ending_after).await
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
        if self.refuses_now() {
            return Err(disk_full());
        }
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
    let disk = Arc::new({
        let d = FullDisk::new(dir.path());
        d.fail_next.store(true, Ordering::SeqCst);
        d
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
    let disk = Arc::new({
        let d = FullDisk::new(dir.path());
        d.fail_next_sight.store(true, Ordering::SeqCst);
        d
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
    let disk = Arc::new(FullDisk::new(dir.path()));
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

/// The disk fills up while bob's step is due. tocsin used to retry the step on every turn
/// of its loop (a hot loop and a flood of log lines), kept answering /healthz 200 and
/// pinging its outside heartbeat, and paged nobody: every page waits for its intent to
/// be recorded. Now it backs off, calls itself unhealthy, tells the watchdog's first step
/// outside the store, and once the disk has room sends the late step and says it is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_stays_full_is_paged_outside_the_store_then_the_late_step_goes_out() {
    let s = alice_paged_bob_due_in_10m().await;
    let http = reqwest::Client::new();

    s.disk.full.store(true, Ordering::SeqCst);
    s.clock.advance(Duration::from_secs(600));
    // The first failure is tried again at once, the second waits half a second: the
    // loop keeps turning (it answers this at once), but writes nothing before the
    // backoff ends, and the clock has not moved, so not one more write is tried.
    let health = wait_for_failures(&http, &s.url, 2).await;
    assert!(
        health["status"].as_str().unwrap().contains("disk is full"),
        "{health}"
    );
    let barrier = http
        .post(format!("{}/api/v1/incidents/1/ack", s.url))
        .json(&serde_json::json!({"by": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(barrier.status(), 503);
    let said = barrier.text().await.unwrap();
    assert!(said.contains("cannot write its store"), "{said}");
    assert_eq!(s.disk.refused_writes.load(Ordering::SeqCst), 2);
    let metrics = http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric_value(&metrics, "tocsin_store_writable"), Some(0.0));

    // 29 s of failures is not yet worth waking anyone; 31 s is.
    s.clock.advance(Duration::from_secs(29));
    wait_for_failures(&http, &s.url, 3).await;
    assert!(
        s.catcher.pages().iter().all(|p| p.target() != "carol"),
        "{}",
        describe(&s.catcher.pages())
    );
    s.clock.advance(Duration::from_secs(2));
    let (pages, alarm) = s
        .first_page_to("carol", "carol hears that nothing is paged")
        .await;
    assert_eq!(alarm.event(), "notice", "{:?}", alarm.body);
    let title = alarm.body["incident"]["title"].as_str().unwrap();
    assert!(
        title.contains("cannot write its store since 2026-12-07T03:10:00")
            && title.contains("disk is full"),
        "{title}"
    );
    assert!(
        pages.iter().all(|p| p.target() != "bob"),
        "bob's step is not recorded yet"
    );

    // Room on the disk again: the next try writes, bob's late step goes out, carol
    // hears it is over, and tocsin is healthy.
    s.disk.full.store(false, Ordering::SeqCst);
    s.clock.advance(Duration::from_secs(5));
    let pages = s
        .catcher
        .wait_until("bob's late step and the all-clear", PROMPTLY, |p| {
            p.iter().any(|p| p.target() == "bob")
                && p.iter().filter(|p| p.target() == "carol").count() == 2
        })
        .await;
    let bob = pages.iter().find(|p| p.target() == "bob").unwrap();
    assert_eq!(
        (bob.event(), bob.step()),
        ("escalated", 2),
        "{:?}",
        bob.body
    );
    let clear = pages
        .iter()
        .filter(|p| p.target() == "carol")
        .nth(1)
        .unwrap();
    assert_eq!(clear.event(), "resolved");
    assert!(
        clear.body["incident"]["title"]
            .as_str()
            .unwrap()
            .contains("writes its store again"),
        "{:?}",
        clear.body
    );
    wait_until_healthy(&http, &s.url).await;
    s.running.stop();
    s.running.wait().await.unwrap();
}

/// tocsin on a disk that can fail, on a clock the test moves: incident 1 has paged
/// alice, bob's step is due 10 minutes later, and the watchdog policy pages carol.
async fn alice_paged_bob_due_in_10m() -> Scene {
    init();
    let catcher = PageCatcher::start().await;
    let cfg = config::load_str(
        &webhook_config(
            &catcher.url(),
            &format!(
                r#"{PEOPLE}
[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}, {{ after = "10m", notify = ["bob"] }}]
[policies.ops]
steps = [{{ after = "0s", notify = ["carol"] }}]
[watchdog]
policy = "ops"
"#
            ),
        ),
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk::new(dir.path()));
    let clock = Arc::new(ManualClock::starting_at(Timestamp::at(
        "2026-12-07T03:00:00Z",
    )));
    let mut opts = Options::new(cfg, dir.path().to_path_buf());
    opts.store = Some(disk.clone());
    opts.clock = clock.clone();
    opts.drain_grace = Duration::from_secs(3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = runtime::start(opts, listener).await.unwrap();
    let url = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/hooks/alertmanager"))
        .json(&alerts::firing("DiskFull"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    catcher
        .wait_until("alice's page", PROMPTLY, |p| {
            p.iter().any(|p| p.target() == "alice")
        })
        .await;
    Scene {
        catcher,
        disk,
        clock,
        running,
        url,
        _dir: dir,
    }
}

impl Scene {
    /// Waits for the first page to `target`; every page so far, and that one.
    async fn first_page_to(
        &self,
        target: &str,
        what: &str,
    ) -> (Vec<crate::catcher::Page>, crate::catcher::Page) {
        let pages = self
            .catcher
            .wait_until(what, PROMPTLY, |p| p.iter().any(|p| p.target() == target))
            .await;
        let first = pages.iter().find(|p| p.target() == target).unwrap().clone();
        (pages, first)
    }
}

struct Scene {
    catcher: PageCatcher,
    disk: Arc<FullDisk>,
    clock: Arc<ManualClock>,
    running: runtime::Running,
    url: String,
    _dir: tempfile::TempDir,
}

/// A commit fails and so does reading the store back: the old engine kept the state it
/// had moved to in memory, where bob's step had fired, so bob was never paged (nor was
/// his page pending in the store). Now nothing is applied until the engine is rebuilt
/// from the store, and then the step fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_that_cannot_be_read_back_still_pages_the_step_once_the_disk_works() {
    let s = alice_paged_bob_due_in_10m().await;
    let http = reqwest::Client::new();
    s.disk.full.store(true, Ordering::SeqCst);
    s.disk.unreadable.store(true, Ordering::SeqCst);
    s.clock.advance(Duration::from_secs(600));
    wait_for_failures(&http, &s.url, 2).await;
    s.disk.full.store(false, Ordering::SeqCst);
    s.disk.unreadable.store(false, Ordering::SeqCst);
    s.clock.advance(Duration::from_secs(10));
    let (_, bob) = s.first_page_to("bob", "bob's step").await;
    assert_eq!(bob.step(), 2, "{:?}", bob.body);
    wait_until_healthy(&http, &s.url).await;
    s.running.stop();
    s.running.wait().await.unwrap();
}

const PROMPTLY: Duration = Duration::from_secs(5);

/// `/healthz` once it answers 200.
async fn wait_until_healthy(http: &reqwest::Client, url: &str) {
    let deadline = std::time::Instant::now() + PROMPTLY;
    loop {
        let r = http.get(format!("{url}/healthz")).send().await.unwrap();
        if r.status() == 200 {
            return;
        }
        let body = r.text().await.unwrap();
        assert!(std::time::Instant::now() < deadline, "/healthz: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/healthz` once it counts `n` failed writes (answering 503).
async fn wait_for_failures(http: &reqwest::Client, url: &str, n: u64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + PROMPTLY;
    loop {
        let r = http.get(format!("{url}/healthz")).send().await.unwrap();
        let status = r.status();
        let h: serde_json::Value = r.json().await.unwrap();
        if h["detail"]["store"]["failures"] == n {
            assert_eq!(status, 503, "{h}");
            return h;
        }
        assert!(std::time::Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_page_goes_out_while_every_api_read_waits() {
    init();
    let catcher = PageCatcher::start().await;
    let cfg = config::load_str(&webhook_config(&catcher.url(), &page_alice()), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk::new(dir.path()));
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
