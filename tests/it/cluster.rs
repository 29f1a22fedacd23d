//! Two instances of tocsin on one PostgreSQL, as two machines would run them: one leads
//! and pages, the other serves the API and forwards; when the leader dies, hangs or
//! loses the database, nothing accepted is lost and no step is paged twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tocsin::store::postgres::scratch::ScratchServer;

use crate::alerts;
use crate::catcher::{Page, PageCatcher, describe};
use crate::daemon::Daemon;
use crate::harness::{LEASE, PEOPLE, init, webhook_config};

/// Long enough for a takeover, a restore and a page.
const TAKEOVER: Duration = Duration::from_secs(15);

/// One instance: its config (named `name`, on the shared database) and its process.
struct Instance {
    name: &'static str,
    config: PathBuf,
    dir: PathBuf,
    daemon: Option<Daemon>,
}

impl Instance {
    fn new(dir: &Path, name: &'static str, db: &str, catcher: &PageCatcher, policy: &str) -> Self {
        let config = dir.join(format!("{name}.toml"));
        let storage = format!(
            "[storage]\nurl = \"{db}\"\nlease = \"{}s\"\ninstance = \"{name}\"\n",
            LEASE.as_secs()
        );
        std::fs::write(
            &config,
            webhook_config(&catcher.url(), &format!("{storage}\n{PEOPLE}\n{policy}")),
        )
        .unwrap();
        Instance {
            name,
            config,
            dir: dir.to_path_buf(),
            daemon: None,
        }
    }

    async fn start(&mut self, http: &reqwest::Client) {
        let log = self.dir.join(format!("{}.log", self.name));
        let data = self.dir.join(format!("{}-data", self.name));
        let mut d = Daemon::start(&self.config, &data, log);
        d.wait_ready(http).await;
        self.daemon = Some(d);
    }

    fn d(&self) -> &Daemon {
        self.daemon.as_ref().expect("running")
    }

    fn url(&self, path: &str) -> String {
        self.d().url(path)
    }

    async fn status(&self, http: &reqwest::Client) -> Value {
        get_json(http, self.url("/api/v1/status")).await
    }

    async fn role(&self, http: &reqwest::Client) -> String {
        let s = self.status(http).await;
        s["cluster"]["role"]
            .as_str()
            .unwrap_or_else(|| panic!("no cluster in status: {s}"))
            .to_string()
    }

    async fn wait_role(&self, http: &reqwest::Client, role: &str, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(self.url("/api/v1/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["cluster"]["role"] == role
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "{} is not {role} after {within:?}:\n{}",
                self.name,
                self.d().log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Each (incident, step, target) paged, with how many times.
fn tally(pages: &[Page]) -> BTreeMap<(u64, u64, String), usize> {
    let mut t = BTreeMap::new();
    for p in pages.iter().filter(|p| p.event() != "notice") {
        *t.entry((p.incident_id(), p.step(), p.target().to_string()))
            .or_default() += 1;
    }
    t
}

fn assert_each_step_once(pages: &[Page]) {
    for (key, n) in tally(pages) {
        assert_eq!(n, 1, "{key:?} paged {n} times:\n{}", describe(pages));
    }
}

async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    http.get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or_default()
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> reqwest::StatusCode {
    http.post(url).json(body).send().await.unwrap().status()
}

const TWO_STEPS: &str = r#"
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }, { after = "8s", notify = ["bob"] }]
[heartbeats.backup]
period = "1h"
"#;

/// Bob's step comes due a second after alice's: while a dead or paused leader is being
/// replaced, so the new leader sends it late.
const DUE_IN_THE_GAP: &str = r#"
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }, { after = "1s", notify = ["bob"] }]
"#;

struct Pair {
    _dir: tempfile::TempDir,
    catcher: PageCatcher,
    a: Instance,
    b: Instance,
    http: reqwest::Client,
}

impl Pair {
    /// DiskFull posted to `to` opens incident 1, which pages alice; returns once her page
    /// is recorded as delivered. A page still in flight when its sender dies is sent
    /// again (same page id) by design, and these tests are about the pages that were not.
    async fn alice_paged_through(&self, to: &Instance) {
        let status = post(
            &self.http,
            to.url("/hooks/alertmanager"),
            &alerts::firing("DiskFull"),
        )
        .await;
        assert_eq!(status, 200, "{} answered {status}", to.name);
        let start = Instant::now();
        loop {
            let inc = get_json(&self.http, to.url("/api/v1/incidents/1")).await;
            let delivered = inc["pages"].as_array().is_some_and(|pages| {
                pages
                    .iter()
                    .any(|pg| pg["target"] == "alice" && pg["status"] == "delivered")
            });
            if delivered {
                return;
            }
            assert!(
                start.elapsed() < TAKEOVER,
                "alice's page not recorded: {inc}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `a` started first (it leads), then `b`, on a fresh database of the test process's
/// PostgreSQL.
async fn pair(policy: &str) -> Pair {
    init();
    let url = ScratchServer::shared().fresh_url().await;
    pair_on(&url, policy).await
}

async fn pair_on(url: &str, policy: &str) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let catcher = PageCatcher::start().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut a = Instance::new(dir.path(), "a", url, &catcher, policy);
    let mut b = Instance::new(dir.path(), "b", url, &catcher, policy);
    a.start(&http).await;
    b.start(&http).await;
    Pair {
        _dir: dir,
        catcher,
        a,
        b,
        http,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_either_instance_make_one_incident_and_only_the_leader_pages() {
    let p = pair(TWO_STEPS).await;
    assert_eq!(p.a.role(&p.http).await, "leader");
    assert_eq!(p.b.role(&p.http).await, "follower");

    // Alertmanager's HA pair sends the same group to both instances, and again on
    // every group_interval: one incident, one page.
    for i in 0..6 {
        let to = if i % 2 == 0 { &p.a } else { &p.b };
        let status = post(
            &p.http,
            to.url("/hooks/alertmanager"),
            &alerts::firing("DiskFull"),
        )
        .await;
        assert_eq!(status, 200, "{} answered {status}", to.name);
    }
    let pages = p
        .catcher
        .wait_until("alice's page", TAKEOVER, |p| !p.is_empty())
        .await;
    let listed: Value = get_json(&p.http, p.b.url("/api/v1/incidents")).await;
    assert_eq!(
        listed["incidents"].as_array().unwrap().len(),
        1,
        "the follower reads the one incident from the shared store: {listed}"
    );
    p.catcher
        .assert_quiet(pages.len(), Duration::from_secs(2), "one group, one page")
        .await;
    assert_eq!(pages.len(), 1, "{}", describe(&pages));

    // An ack through the follower is applied by the leader, and answered as it decided.
    let ack = p
        .http
        .post(p.b.url("/api/v1/incidents/1/ack"))
        .json(&serde_json::json!({"by": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200, "{}", ack.text().await.unwrap());
    let again = p
        .http
        .post(p.b.url("/api/v1/incidents/1/ack"))
        .json(&serde_json::json!({"by": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        409,
        "the leader's refusal comes back through the follower"
    );
    let s = p.a.status(&p.http).await;
    let instances = s["cluster"]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{s}");
    let out = std::process::Command::new(crate::harness::TOCSIN)
        .args(["status", "--url", &p.b.url("")])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("instance b: FOLLOWER; leader a/") && said.contains("leader at epoch 1"),
        "tocsin status on the follower:\n{said}"
    );

    // The channels are the leader's to watch: the follower shows its own line only.
    let on_b: Value = get_json(&p.http, p.b.url("/api/v1/channels")).await;
    let names: Vec<&str> = on_b["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["database"], "{on_b}");
    assert_eq!(on_b["channels"][0]["state"], "up", "{on_b}");

    // The nightly backup pings whichever instance its URL reaches: the leader's
    // watchdog, which pages when the pings stop, hears it.
    let ping = p
        .http
        .post(p.b.url("/hooks/heartbeat/backup"))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    let start = Instant::now();
    loop {
        let channels: Value = get_json(&p.http, p.a.url("/api/v1/channels")).await;
        let backup = channels["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap_or("").contains("backup"))
            .cloned()
            .unwrap_or_else(|| panic!("no backup heartbeat channel: {channels}"));
        if backup["reason"]
            .as_str()
            .unwrap_or("")
            .contains("pinged at")
        {
            break;
        }
        assert!(
            start.elapsed() < TAKEOVER,
            "the leader did not hear the ping through the follower: {backup}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_hands_its_pending_step_to_the_follower_paged_once() {
    let mut p = pair(DUE_IN_THE_GAP).await;
    p.alice_paged_through(&p.b).await;
    // Bob's step is due a second after the alert; the leader dies before it.
    p.a.daemon.as_mut().unwrap().kill_9();
    let killed = Instant::now();
    let took = p.b.wait_role(&p.http, "leader", TAKEOVER).await;
    println!("takeover {took:?} after the kill (lease {LEASE:?})");
    assert!(took <= LEASE, "takeover took {took:?}");
    let pages = p
        .catcher
        .wait_until("bob's step, from b", TAKEOVER, |p| {
            p.iter().any(|p| p.target() == "bob")
        })
        .await;
    println!("bob paged {:?} after the kill", killed.elapsed());
    let bob = pages.iter().find(|p| p.target() == "bob").unwrap();
    let late = bob.body["late_by_seconds"].as_f64();
    assert!(
        late.is_some_and(|s| s >= 1.0),
        "the page says how late it is: {:?}",
        bob.body
    );
    p.catcher
        .assert_quiet(pages.len(), Duration::from_secs(3), "each step once")
        .await;
    assert_each_step_once(&p.catcher.pages());

    // The old leader, started again, follows.
    p.a.start(&p.http).await;
    assert_eq!(p.a.role(&p.http).await, "follower");
    assert_eq!(p.b.role(&p.http).await, "leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_sends_and_commits_nothing_on_waking_and_steps_down() {
    let p = pair(DUE_IN_THE_GAP).await;
    p.alice_paged_through(&p.a).await;
    // SIGSTOP: a VM frozen, a process swapped out. Bob's step comes due while it sleeps.
    p.a.d().signal("STOP");
    p.b.wait_role(&p.http, "leader", TAKEOVER).await;
    p.catcher
        .wait_until("bob's step, from b", TAKEOVER, |p| {
            p.iter().any(|p| p.target() == "bob")
        })
        .await;
    let epoch_b = p.b.status(&p.http).await["cluster"]["epoch"]
        .as_u64()
        .unwrap();
    // a wakes with bob's step due in its memory: fenced, it neither records nor sends it.
    p.a.d().signal("CONT");
    p.a.wait_role(&p.http, "follower", TAKEOVER).await;
    let seen = p.catcher.pages().len();
    p.catcher
        .assert_quiet(seen, Duration::from_secs(3), "the old leader sends nothing")
        .await;
    assert_each_step_once(&p.catcher.pages());
    let inc: Value = get_json(&p.http, p.b.url("/api/v1/incidents/1")).await;
    let bob_pages = inc["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pg| pg["target"] == "bob")
        .count();
    assert_eq!(bob_pages, 1, "one page recorded for bob's step: {inc}");
    assert_eq!(
        p.b.status(&p.http).await["cluster"]["epoch"].as_u64(),
        Some(epoch_b),
        "b still leads at its epoch"
    );
}

/// The watchdog policy: carol hears about tocsin's own trouble.
const WITH_WATCHDOG: &str = r#"
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }, { after = "1h", notify = ["bob"] }]
[policies.ops]
steps = [{ after = "0s", notify = ["carol"] }]
[watchdog]
policy = "ops"
"#;

/// Posts `body` to `url` until it is answered `want`, at most `within`; answers what
/// the last try got.
async fn post_until(
    http: &reqwest::Client,
    url: String,
    body: &Value,
    want: u16,
    within: Duration,
) -> u16 {
    let start = Instant::now();
    loop {
        let got = match http.post(&url).json(body).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        if got == want || start.elapsed() > within {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_for_30s_gets_503s_and_a_page_outside_it_and_loses_nothing() {
    init();
    // A server of its own: this test stops it.
    let db = ScratchServer::new();
    let p = pair_on(&db.url(), WITH_WATCHDOG).await;
    p.alice_paged_through(&p.a).await;

    db.stop_immediate();
    let down = Instant::now();
    // Alertmanager retries a 5xx: nothing is answered 200 that is not recorded.
    for i in [&p.a, &p.b] {
        let got = post_until(
            &p.http,
            i.url("/hooks/alertmanager"),
            &alerts::firing("CPUHigh"),
            503,
            TAKEOVER,
        )
        .await;
        assert_eq!(got, 503, "{} while the database is down", i.name);
    }
    let pages = p
        .catcher
        .wait_until(
            "carol told the database is gone",
            Duration::from_secs(60),
            |p| p.iter().any(|p| p.target() == "carol"),
        )
        .await;
    let notice = pages.iter().find(|p| p.target() == "carol").unwrap();
    println!("carol told {:?} after the database stopped", down.elapsed());
    assert_eq!(notice.event(), "notice", "{:?}", notice.body);
    assert!(
        down.elapsed() >= Duration::from_secs(30),
        "not before 30 s of trouble: {:?}",
        down.elapsed()
    );
    let channels: Value = get_json(&p.http, p.a.url("/api/v1/channels")).await;
    let database = channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "database")
        .unwrap_or_else(|| panic!("no database channel: {channels}"));
    assert_eq!(database["state"], "down", "{database}");

    db.start();
    // Back: what was retried is taken, and what was taken before is all there.
    for i in [&p.a, &p.b] {
        let got = post_until(
            &p.http,
            i.url("/hooks/alertmanager"),
            &alerts::firing("CPUHigh"),
            200,
            TAKEOVER,
        )
        .await;
        assert_eq!(got, 200, "{} once the database is back", i.name);
    }
    let listed: Value = get_json(&p.http, p.b.url("/api/v1/incidents")).await;
    let titles: Vec<&str> = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    p.catcher
        .wait_until("alice paged for the retried alert", TAKEOVER, |p| {
            p.iter().filter(|p| p.target() == "alice").count() == 2
        })
        .await;
    assert_each_step_once(&p.catcher.pages());
}
