//! The meta-watchdog end to end: each test breaks one link of the alert path for real
//! (Alertmanager stopped, an SMTP relay nobody answers, a cron job that stops calling,
//! the other tocsin SIGKILLed) and proves that somebody is paged about it, through the
//! channels that still work, within a stated bound.
//!
//! Each test prints one greppable line per figure, `TIME-TO-PAGE <name>: X.X s (bound
//! Y s)`, for the README: `cargo nextest run --no-capture -E 'binary(it) &
//! test(/^watchdog::/)' 2>&1 | grep TIME-TO-PAGE`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::alerts;
use crate::catcher::{Page, PageCatcher, describe};
use crate::daemon::Daemon;
use crate::harness::{
    PEOPLE, Reply, TestApp, eventually, free_port, history_kinds, spawn_app, webhook_config,
};
use crate::kannel_server::{Kannel, KannelPorts, SENDSMS_PASSWORD, SENDSMS_USER, Sms};
use crate::promstack::{Alertmanager, Prometheus, WATCHDOG_RULE};

/// The default policy every config here routes to: alice, at once.
const POLICY: &str = r#"
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }]
"#;

/// Generous bound for something that is due now (a busy 2-core machine).
const PROMPTLY: Duration = Duration::from_secs(10);

/// Prints the figure for the README and fails when it is over its bound.
fn time_to_page(name: &str, took: Duration, bound: Duration) {
    eprintln!(
        "TIME-TO-PAGE {name}: {:.1} s (bound {} s)",
        took.as_secs_f64(),
        bound.as_secs()
    );
    assert!(
        took <= bound,
        "{name}: the page took {took:?}, more than its bound {bound:?}"
    );
}

/// Whether `p` pages about the watchdog incident of `channel` (any event).
fn about(p: &Page, channel: &str) -> bool {
    p.body["incident"]["source"] == "watchdog" && p.body["incident"]["group_key"] == channel
}

/// The pages about `channel`'s watchdog incident with `event`.
fn pages_about<'a>(pages: &'a [Page], channel: &str, event: &str) -> Vec<&'a Page> {
    pages
        .iter()
        .filter(|p| about(p, channel) && p.event() == event)
        .collect()
}

/// The targets of `pages`, sorted.
fn targets(pages: &[&Page]) -> Vec<String> {
    let mut t: Vec<String> = pages.iter().map(|p| p.target().to_string()).collect();
    t.sort();
    t
}

/// Waits for the watchdog's page about `ch` (the outage began at `began`), prints its
/// time to page and holds `bound`; then checks its title starts with `title`, that every
/// contact is paged and that the channel shows down and paging. Returns the pages.
async fn expect_watchdog_page(
    app: &TestApp,
    hook: &PageCatcher,
    ch: &str,
    outage: &str,
    began: Instant,
    bound: Duration,
    title: &str,
) -> Vec<Page> {
    let pages = hook
        .wait_until(&format!("the watchdog page about {ch}"), bound, |p| {
            !pages_about(p, ch, "triggered").is_empty()
        })
        .await;
    time_to_page(outage, began.elapsed(), bound);
    let got = pages_about(&pages, ch, "triggered")[0].body["incident"]["title"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        got.starts_with(title),
        "{got:?} should start with {title:?}"
    );
    // The watchdog policy pages every contact.
    let pages = hook
        .wait_until("the watchdog page to everyone", PROMPTLY, |p| {
            pages_about(p, ch, "triggered").len() >= 3
        })
        .await;
    assert_eq!(
        targets(&pages_about(&pages, ch, "triggered")),
        ["alice", "bob", "carol"]
    );
    let down = channel(app, ch).await;
    assert_eq!(
        (&down["state"], &down["paging"]),
        (&json!("down"), &json!(true)),
        "{down}"
    );
    pages
}

/// Waits for the recovery pages about `ch` to every contact; checks the watchdog
/// incident resolved and the channel is up and no longer paging.
async fn expect_recovery(app: &TestApp, hook: &PageCatcher, ch: &str) {
    let pages = hook
        .wait_until("the recovery pages to everyone", PROMPTLY, |p| {
            pages_about(p, ch, "resolved").len() >= 3
        })
        .await;
    assert_eq!(
        targets(&pages_about(&pages, ch, "resolved")),
        ["alice", "bob", "carol"]
    );
    let inc = watchdog_incident(app, ch)
        .await
        .expect("the watchdog incident");
    assert_eq!(inc["state"], "resolved", "{inc}");
    let back = channel(app, ch).await;
    assert_eq!(
        (&back["state"], &back["paging"]),
        (&json!("up"), &json!(false)),
        "{back}"
    );
}

/// `GET /api/v1/channels`, the channel called `name`.
async fn channel(app: &TestApp, name: &str) -> Value {
    let r = Reply::from(
        app.client
            .get(app.url("/api/v1/channels"))
            .send()
            .await
            .expect("GET /api/v1/channels"),
    )
    .await;
    assert_eq!(r.status, 200, "GET /api/v1/channels: {}", r.body);
    let all = r.body["channels"]
        .as_array()
        .unwrap_or_else(|| panic!("no channels list in {}", r.body));
    all.iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no channel {name:?} in {}", r.body))
}

/// The reason of `channel`'s check `check`.
fn check_reason<'a>(channel: &'a Value, check: &str) -> &'a str {
    channel["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == check))
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_else(|| panic!("no check {check:?} in {channel}"))
}

/// The open or resolved watchdog incident of `channel`, if there is one.
async fn watchdog_incident(app: &TestApp, channel: &str) -> Option<Value> {
    app.incidents(None)
        .await
        .into_iter()
        .find(|i| i["source"] == "watchdog" && i["group_key"] == channel)
}

// --- Alertmanager -------------------------------------------------------------------

/// The Watchdog alert as Prometheus sends it to Alertmanager (`POST /api/v2/alerts`).
fn watchdog_alert() -> Value {
    json!([{
        "labels": {"alertname": "Watchdog", "severity": "none"},
        "annotations": {"summary": "Always-firing alert to prove the pipeline works"},
    }])
}

/// Whether Alertmanager holds the Watchdog alert as Prometheus last sent it.
async fn alertmanager_has_prometheus_watchdog(
    client: &reqwest::Client,
    am: &Alertmanager,
    prom: &Prometheus,
) -> bool {
    let Ok(r) = client.get(am.url("/api/v2/alerts")).send().await else {
        return false;
    };
    let alerts: Value = r.json().await.unwrap_or(Value::Null);
    let from = prom.url("/");
    alerts.as_array().is_some_and(|all| {
        all.iter().any(|a| {
            a["labels"]["alertname"] == "Watchdog"
                && a["generatorURL"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&from))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_monitoring_pages_when_alertmanager_stops() {
    const CH: &str = "source:alertmanager";
    // The heartbeat is missed `within` after the last one, and a missed heartbeat pages
    // after `hold_down` (+ one 0.5 s evaluation): 5 + 1.5 s at worst when a heartbeat
    // came just before the stop. Bound: two windows.
    const BOUND: Duration = Duration::from_secs(10);
    let hook = PageCatcher::start().await;
    let rest = format!(
        r#"
[sources.alertmanager]
heartbeat = {{ alertname = "Watchdog", within = "5s" }}

[watchdog]
hold_down = "1s"
{PEOPLE}{POLICY}"#
    );
    let app = spawn_app(&webhook_config(&hook.url(), &rest)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // repeat_interval 2s: the still-firing Watchdog is re-sent every 2-3 s (promstack.rs).
    let mut am = Alertmanager::start_with(&app.url("/hooks/alertmanager"), "2s");
    am.wait_ready(&client).await;
    // Prometheus takes 6-7 s to discover its Alertmanager, longer than `within` (whose
    // deadline started with tocsin): the first Watchdog goes to Alertmanager directly,
    // exactly as Prometheus would post it, and Prometheus takes over when it is there.
    am.post(&client, watchdog_alert()).await;
    let mut prom = Prometheus::start(am.port(), WATCHDOG_RULE);
    prom.wait_ready(&client).await;

    eventually(
        "the first Watchdog heartbeat on source:alertmanager",
        PROMPTLY,
        || async {
            let c = channel(&app, CH).await;
            (c["state"] == "up" && check_reason(&c, "heartbeat").contains("heartbeat received"))
                .then_some(())
        },
    )
    .await;
    // Prometheus' own Watchdog reaches Alertmanager (its generatorURL replaces ours) ...
    let deadline = Instant::now() + Duration::from_secs(20);
    while !alertmanager_has_prometheus_watchdog(&client, &am, &prom).await {
        assert!(
            Instant::now() < deadline,
            "Prometheus' Watchdog did not reach Alertmanager within 20 s\n--- Prometheus ---\n{}\n--- Alertmanager ---\n{}",
            prom.log(),
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and a heartbeat after that one is the whole pipeline at work.
    let before = check_reason(&channel(&app, CH).await, "heartbeat").to_string();
    let up = eventually(
        "a Watchdog heartbeat after Prometheus took over",
        PROMPTLY,
        || async {
            let c = channel(&app, CH).await;
            (c["state"] == "up" && check_reason(&c, "heartbeat") != before).then_some(c)
        },
    )
    .await;
    assert!(
        check_reason(&up, "heartbeat").starts_with("Watchdog heartbeat received at "),
        "{up}"
    );
    assert_eq!(up["paging"], false, "{up}");
    // The heartbeat itself is no incident and pages nobody.
    assert!(
        app.incidents(None).await.is_empty(),
        "the Watchdog heartbeat opened an incident: {:#?}",
        app.incidents(None).await
    );
    assert!(
        hook.pages().is_empty(),
        "paged before any outage:\n{}",
        describe(&hook.pages())
    );

    let stopped = Instant::now();
    tokio::task::block_in_place(|| am.stop());
    expect_watchdog_page(
        &app,
        &hook,
        CH,
        "alertmanager_stopped",
        stopped,
        BOUND,
        "source:alertmanager is down: no Watchdog heartbeat alert since ",
    )
    .await;
    assert_eq!(
        app.incidents(None).await.len(),
        1,
        "only the watchdog incident"
    );

    // A new Alertmanager (Prometheus still talks to the old port: the alert is posted as
    // it would be) brings the heartbeat back, and the incident resolves with a page.
    let mut am2 = Alertmanager::start_with(&app.url("/hooks/alertmanager"), "2s");
    am2.wait_ready(&client).await;
    am2.post(&client, watchdog_alert()).await;
    expect_recovery(&app, &hook, CH).await;
    tokio::task::block_in_place(|| {
        am2.stop();
        prom.stop();
    });
}

// --- SMTP relay down ----------------------------------------------------------------

const ALICE_PHONE: &str = "+15550100";

/// alice: mail first, SMS through a real Kannel a minute later; the relay at
/// `smtp_port` is never started.
fn mail_then_sms_config(dir: &Path, smtp_port: u16, sendsms_url: &str) -> String {
    let password = dir.join("kannel-password");
    std::fs::write(&password, format!("{SENDSMS_PASSWORD}\n")).unwrap();
    format!(
        r#"
[notifiers.mail]
type = "email"
smtp_url = "smtp://127.0.0.1:{smtp_port}"
from = "tocsin <tocsin@example.com>"
connect_timeout = "1s"
timeout = "2s"
max_attempts = 3
limits = {{ enabled = false }}

[notifiers.sms]
type = "kannel"
url = "{sendsms_url}"
username = "{SENDSMS_USER}"
password_file = "{password}"
from = "TOCSIN"
timeout = "2s"
max_attempts = 3
limits = {{ enabled = false }}

[contacts.alice]
methods = [
  {{ notifier = "mail", to = "alice@example.com" }},
  {{ notifier = "sms", to = "{ALICE_PHONE}", after = "1m" }},
]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[watchdog]
hold_down = "1s"
notifier_failures = 3

[[routes]]
policy = "default"
"#,
        password = password.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_relay_down_while_a_page_is_due_goes_out_by_sms_and_the_relay_is_reported() {
    // The mail page's retries: max_attempts × timeout (3 × 2 s, a relay that hangs; a
    // refused connection fails at once) + backoff (0.5-1 s, then 1-2 s), then Kannel.
    const FAILOVER: Duration = Duration::from_secs(15);
    // The third failed attempt marks mail down; hold_down 1 s + one evaluation later the
    // watchdog incident pages alice: mail is routed around at once, so by SMS.
    const REPORTED: Duration = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let ports = KannelPorts::pick();
    let smtp_port = free_port(); // nothing listens there
    let app = spawn_app(&mail_then_sms_config(
        dir.path(),
        smtp_port,
        &ports.sendsms_url(),
    ))
    .await;
    let kannel = Kannel::start(
        ports,
        &app.url("/hooks/sms/kannel?from=%p&text=%b&charset=%C"),
    )
    .await;
    let to_alice = |m: &Sms| m.to == ALICE_PHONE;

    let posted = Instant::now();
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sms = kannel
        .wait_for_sms("the page by SMS after mail failed", FAILOVER, |m| {
            to_alice(m) && m.text.starts_with("[#1] ")
        })
        .await;
    time_to_page("smtp_down_failover", posted.elapsed(), FAILOVER);
    assert!(sms.text.contains("DiskFull"), "{sms:?}");
    let first = app.incident(1).await;
    let kinds = history_kinds(&first);
    assert!(kinds.contains(&"failover".to_string()), "{kinds:?}");

    // The relay's outage is an incident of its own, and alice gets it by SMS too.
    let report = kannel
        .wait_for_sms(
            "the watchdog page about notifier:mail by SMS",
            REPORTED.saturating_sub(posted.elapsed()),
            |m| to_alice(m) && m.text.contains("notifier:mail is down"),
        )
        .await;
    time_to_page("smtp_down_reported", posted.elapsed(), REPORTED);
    assert!(report.text.contains("sends in a row failed"), "{report:?}");
    let mail = channel(&app, "notifier:mail").await;
    assert_eq!(mail["state"], "down", "{mail}");
    assert_eq!(mail["paging"], true, "{mail}");
    assert!(
        check_reason(&mail, "sends").contains("sends in a row failed"),
        "{mail}"
    );
    let inc = watchdog_incident(&app, "notifier:mail")
        .await
        .expect("a watchdog incident for notifier:mail");
    assert_eq!(inc["state"], "triggered", "{inc}");
    assert!(
        inc["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("notifier:mail is down: ")),
        "{inc}"
    );
    let sms_up = channel(&app, "notifier:sms").await;
    assert_eq!(sms_up["state"], "up", "{sms_up}");
    // Never through the dead channel: its mail page was not even tried.
    let id = inc["id"].as_u64().unwrap();
    let pages = app.incident(id).await["pages"].clone();
    let mail_page = pages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["notifier"] == "mail")
        .cloned()
        .unwrap_or_else(|| panic!("no mail page in {pages}"));
    assert_eq!(mail_page["attempts"], 0, "{mail_page}");
    assert!(
        mail_page["error"]
            .as_str()
            .is_some_and(|e| e.contains("routing around it")),
        "{mail_page}"
    );
}

// --- Heartbeat URL ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_url_that_stops_being_called_pages() {
    const CH: &str = "heartbeat:backup";
    // period 2 s + grace 1 s after the last ping, hold_down 1 s, + 3 s slack for a
    // loaded CI machine.
    const BOUND: Duration = Duration::from_secs(7);
    let hook = PageCatcher::start().await;
    let rest = format!(
        r#"
[heartbeats.backup]
period = "2s"
grace = "1s"

[watchdog]
hold_down = "1s"
{PEOPLE}{POLICY}"#
    );
    let app = spawn_app(&webhook_config(&hook.url(), &rest)).await;
    let ping = || async {
        let r = Reply::from(
            app.client
                .get(app.url("/hooks/heartbeat/backup"))
                .send()
                .await
                .expect("GET /hooks/heartbeat/backup"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["heartbeat"], "backup", "{}", r.body);
    };

    ping().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ping().await;
    let last_ping = Instant::now();
    let up = channel(&app, CH).await;
    assert_eq!(up["state"], "up", "{up}");
    assert!(check_reason(&up, "pings").starts_with("pinged at "), "{up}");

    // The job stops calling.
    let pages = expect_watchdog_page(
        &app,
        &hook,
        CH,
        "heartbeat_stopped",
        last_ping,
        BOUND,
        "heartbeat:backup is down: no ping since ",
    )
    .await;
    let first = pages_about(&pages, CH, "triggered")[0].at;
    assert!(
        first.duration_since(last_ping) >= Duration::from_secs(3),
        "paged before period + grace ran out:\n{}",
        describe(&pages)
    );

    // A heartbeat nobody configured is refused, saying how to add it.
    let r = Reply::from(
        app.client
            .post(app.url("/hooks/heartbeat/nope"))
            .send()
            .await
            .expect("POST /hooks/heartbeat/nope"),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error().contains("[heartbeats.nope]"), "{}", r.body);

    // The job is back: one ping resolves the incident after hold_down, with a page.
    ping().await;
    expect_recovery(&app, &hook, CH).await;
}

// --- Peer ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_watch_pages_when_the_other_instance_dies() {
    // Up to peer_timeout after the last healthy answer, + hold_down, + 3 s slack for a
    // loaded CI machine.
    const BOUND: Duration = Duration::from_secs(7);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let b_hook = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(
        &config,
        webhook_config(&b_hook.url(), &format!("{PEOPLE}{POLICY}")),
    )
    .unwrap();
    let mut b = Daemon::start(
        &config,
        &dir.path().join("data"),
        dir.path().join("tocsin.log"),
    );
    b.wait_ready(&client).await;

    let hook = PageCatcher::start().await;
    let peer = b.url("");
    let ch = format!("peer:{peer}");
    let rest = format!(
        r#"
[watchdog]
peers = ["{peer}"]
peer_interval = "1s"
peer_timeout = "3s"
hold_down = "1s"
{PEOPLE}{POLICY}"#
    );
    let app = spawn_app(&webhook_config(&hook.url(), &rest)).await;
    let up = eventually("the peer's first healthy answer", PROMPTLY, || async {
        let c = channel(&app, &ch).await;
        (c["state"] == "up" && check_reason(&c, "healthz").contains("answered 200")).then_some(c)
    })
    .await;
    assert_eq!(up["kind"], "peer", "{up}");

    b.kill_9();
    let killed = Instant::now();
    expect_watchdog_page(
        &app,
        &hook,
        &ch,
        "peer_killed",
        killed,
        BOUND,
        &format!("{ch} is down: {peer}/healthz has not answered healthy since "),
    )
    .await;
}

// --- Checks, the outside heartbeat, the self-test -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_relay_dead_before_anything_is_paged_is_found_by_its_check() {
    const CH: &str = "notifier:mail";
    // The first check runs at start; check_interval 1 s, hold_down 1 s, + 3 s slack.
    const BOUND: Duration = Duration::from_secs(5);
    let hook = PageCatcher::start().await;
    let dead = free_port(); // nothing listens there
    let rest = format!(
        r#"
[notifiers.mail]
type = "email"
smtp_url = "smtp://127.0.0.1:{dead}"
from = "tocsin <tocsin@example.com>"
connect_timeout = "1s"
timeout = "2s"

[watchdog]
checks = ["mail"]
check_interval = "1s"
hold_down = "1s"
{PEOPLE}{POLICY}"#
    );
    let started = Instant::now();
    let app = spawn_app(&webhook_config(&hook.url(), &rest)).await;
    // No alert, no page through mail: only the check can know.
    expect_watchdog_page(
        &app,
        &hook,
        CH,
        "smtp_dead_found_by_check",
        started,
        BOUND,
        "notifier:mail is down: check failed: cannot talk to SMTP relay ",
    )
    .await;
    let mail = channel(&app, CH).await;
    assert_eq!(
        check_reason(&mail, "sends"),
        "starting",
        "nothing was sent: {mail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tocsin_pings_the_outside_heartbeat_while_its_engine_runs() {
    let outside = PageCatcher::start().await;
    let rest = format!(
        "[watchdog]\nping_url = \"{}/ping/3f1c\"\nping_interval = \"1s\"\n{PEOPLE}{POLICY}",
        outside.url()
    );
    let app = spawn_app(&webhook_config(&outside.url(), &rest)).await;
    let pings = outside
        .wait_until("two pings of the outside heartbeat", PROMPTLY, |p| {
            p.iter().filter(|p| p.path.ends_with("/ping/3f1c")).count() >= 2
        })
        .await;
    let times: Vec<Instant> = pings.iter().map(|p| p.at).collect();
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(900), "pinged {gap:?} apart");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tocsin_outside_pings_total{state=\"sent\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_self_test_pages_everyone_because_the_paging_path_is_broken() {
    let hook = PageCatcher::start().await;
    // A time of day 4 s from now (UTC); a run across midnight still works.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(4)).format("%H:%M:%S");
    let rest = format!(
        "[watchdog]\nself_test = {{ at = \"{at}\", contact = \"alice\", ack_within = \"2s\" }}\n{PEOPLE}{POLICY}"
    );
    let app = spawn_app(&webhook_config(&hook.url(), &rest)).await;
    let test_pages = |p: &[Page]| -> Vec<Page> {
        p.iter()
            .filter(|p| p.body["incident"]["source"] == "self-test")
            .cloned()
            .collect()
    };
    let pages = hook
        .wait_until("the self-test page to alice", PROMPTLY, |p| {
            !test_pages(p).is_empty()
        })
        .await;
    let first = &test_pages(&pages)[0];
    assert_eq!((first.target(), first.event()), ("alice", "triggered"));
    let title = first.body["incident"]["title"].as_str().unwrap_or("");
    assert!(
        title.starts_with("Self-test for alice: ack within 2s"),
        "{title}"
    );
    // Nobody acks: two seconds later everyone is paged.
    let pages = hook
        .wait_until("the self-test escalated to everyone", PROMPTLY, |p| {
            test_pages(p)
                .iter()
                .filter(|p| p.event() == "escalated")
                .count()
                >= 3
        })
        .await;
    let escalated: Vec<&Page> = pages
        .iter()
        .filter(|p| p.body["incident"]["source"] == "self-test" && p.event() == "escalated")
        .collect();
    assert_eq!(targets(&escalated), ["alice", "bob", "carol"]);
    // When each page was decided (not when it arrived, which a loaded machine delays):
    // the escalation comes no sooner than ack_within after the test page.
    let id = first.incident_id();
    let recorded = app.recorded_pages(id).await;
    let decided = |what: &str| {
        recorded
            .iter()
            .find(|(p, _)| p.contains(what))
            .unwrap_or_else(|| panic!("no {what} page in {recorded:?}"))
            .1
    };
    let late = decided(":escalated:") - decided(":triggered:");
    assert!(
        late >= chrono::Duration::seconds(2),
        "escalated {late:?} after the test page, before ack_within: {recorded:?}"
    );
    // The ack is all it wants: it resolves.
    let r = app.act(id, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.incident(id).await["state"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tocsin_status_lists_the_dead_channel_first_and_exits_1() {
    let hook = PageCatcher::start().await;
    let rest = format!("[heartbeats.nightly]\nperiod = \"1s\"\ngrace = \"0s\"\n{PEOPLE}{POLICY}");
    let app = spawn_app(&webhook_config(&hook.url(), &rest)).await;
    let status = || {
        let out = std::process::Command::new(crate::harness::TOCSIN)
            .args(["status", "--url", &app.url("")])
            .output()
            .expect("running tocsin status");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(
        app.client
            .get(app.url("/hooks/heartbeat/nightly"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let (code, text) = tokio::task::block_in_place(status);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("heartbeat:nightly") && text.contains("UP"),
        "{text}"
    );
    // The nightly job does not call again.
    eventually("the heartbeat to go down", PROMPTLY, || async {
        (channel(&app, "heartbeat:nightly").await["state"] == "down").then_some(())
    })
    .await;
    let (code, text) = tokio::task::block_in_place(status);
    assert_eq!(code, Some(1), "a channel is down: {text}");
    let first = text
        .lines()
        .skip_while(|l| *l != "channels:")
        .nth(1)
        .unwrap_or_default();
    assert!(
        first.contains("heartbeat:nightly")
            && first.contains("DOWN")
            && first.contains("no ping since"),
        "the dead channel comes first:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_page_through_a_down_notifier_gets_one_attempt_then_fails_over() {
    let good = PageCatcher::start().await;
    let dead = free_port(); // nothing listens there
    let config = format!(
        r#"
[notifiers.dead]
type = "webhook"
url = "http://127.0.0.1:{dead}/page"
timeout = "1s"
max_attempts = 3
[notifiers.good]
type = "webhook"
url = "{}"

[contacts.alice]
methods = [{{ notifier = "dead" }}, {{ notifier = "good", after = "10m" }}]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]
[[routes]]
policy = "default"

[watchdog]
notifier_failures = 3
retry_down_after = "1s"
hold_down = "1h"
"#,
        good.url()
    );
    let app = spawn_app(&config).await;
    let dead_page = |inc: &Value| -> Value {
        inc["pages"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["notifier"] == "dead"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    // The first page spends its three attempts and marks the notifier down.
    assert_eq!(app.post_alerts(&alerts::firing("First")).await.status, 200);
    good.wait_for_pages(1, PROMPTLY).await;
    let first = dead_page(&app.incident(1).await);
    assert_eq!(first["attempts"], 3, "{first}");
    assert_eq!(channel(&app, "notifier:dead").await["state"], "down");
    // A second later a page may try it once, and no more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.post_alerts(&alerts::firing("Second")).await.status, 200);
    good.wait_for_pages(2, PROMPTLY).await;
    let second = dead_page(&app.incident(2).await);
    assert_eq!(second["attempts"], 1, "the trial: {second}");
    // And right after it, the next page is routed around without an attempt.
    assert_eq!(app.post_alerts(&alerts::firing("Third")).await.status, 200);
    good.wait_for_pages(3, PROMPTLY).await;
    let third = dead_page(&app.incident(3).await);
    assert_eq!(third["attempts"], 0, "{third}");
}
