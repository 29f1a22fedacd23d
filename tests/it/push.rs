//! Push notifiers against faithful local services: the ntfy Ack button acks, a Pushover
//! emergency page acknowledged on the phone acks (and one acked in tocsin stops ringing),
//! a rejected Pushover user key falls over at once, and Gotify gets the page.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::fake_api::{FakeApi, Request};
use crate::fake_push::{self, PushoverAccount};
use crate::harness::{TestApp, eventually, history_kinds, spawn_app, webhook_config};

/// Generous bound for a page that is due now to arrive (a busy 2-core CI machine).
pub(crate) const PROMPTLY: Duration = Duration::from_secs(5);
/// The public URL ack links start with (the harness's default `public_url`).
const PUBLIC_URL: &str = "http://127.0.0.1:9797";

const NTFY_TOKEN: &str = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2";
pub(crate) const PUSHOVER_APP: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
pub(crate) const ALICE_KEY: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const GOTIFY_APP: &str = "AvKcy9o-yvVhyKd";

/// Secret files the config points at; kept until the test ends.
pub(crate) struct Secrets(TempDir);

impl Secrets {
    pub(crate) fn new() -> Secrets {
        Secrets(tempfile::tempdir().expect("secrets dir"))
    }

    /// Writes `value` to a file named `name` and returns its path for a `*_file` key.
    pub(crate) fn file(&self, name: &str, value: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, format!("{value}\n")).expect("write secret");
        p
    }
}

/// `push` (the notifier under test, `notifier_toml`) is alice's first method, with the
/// address `first_method` (like `, topic = "t"`); `more_methods` adds methods; alice is
/// paged at once by the only policy.
pub(crate) fn config(notifier_toml: &str, first_method: &str, more_methods: &str) -> String {
    format!(
        r#"
[notifiers.push]
{notifier_toml}
timeout = "2s"
max_attempts = 3
limits = {{ enabled = false }}

[contacts.alice]
methods = [
  {{ notifier = "push"{first_method} }},
  {more_methods}
]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]
"#
    )
}

/// The whole config for a test without a webhook: `config` plus the catch-all route.
pub(crate) fn routed(body: &str) -> String {
    format!("{body}\n[[routes]]\npolicy = \"default\"\n")
}

/// Posts one firing critical alert and returns the incident id.
pub(crate) async fn page_alice(app: &TestApp) -> u64 {
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.only_incident().await["id"].as_u64().unwrap()
}

/// The incident's first page, once its outcome is recorded.
pub(crate) async fn first_page_outcome(app: &TestApp, id: u64) -> Value {
    eventually("the page's outcome", PROMPTLY, || async {
        app.incident(id).await["pages"]
            .as_array()
            .and_then(|p| p.first().cloned())
            .filter(|p| p["status"] != "pending")
    })
    .await
}

/// The history entry of `kind`, whole.
pub(crate) fn event<'a>(incident: &'a Value, kind: &str) -> &'a Value {
    incident["history"]
        .as_array()
        .and_then(|h| h.iter().find(|e| e["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in the history: {:?}", history_kinds(incident)))
}

pub(crate) async fn wait_acked(app: &TestApp, id: u64, timeout: Duration) -> Value {
    eventually("the incident to be acknowledged", timeout, || async {
        let i = app.incident(id).await;
        (i["state"] == "acknowledged").then_some(i)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntfy_gets_the_page_with_an_ack_button_that_acks() {
    let ntfy = fake_push::ntfy(NTFY_TOKEN).await;
    let secrets = Secrets::new();
    let token = secrets.file("ntfy-token", NTFY_TOKEN);
    let cfg = config(
        &format!(
            "type = \"ntfy\"\nurl = \"{}\"\ntoken_file = \"{}\"",
            ntfy.url(),
            token.display()
        ),
        r#", topic = "alice-pager""#,
        "",
    );
    let app = spawn_app(&routed(&cfg)).await;
    let id = page_alice(&app).await;

    let req = ntfy
        .wait_for("the ntfy publish", PROMPTLY, |r| r.path == "/")
        .await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.content_type(), "application/json");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {NTFY_TOKEN}").as_str())
    );
    let b = req.json();
    assert_eq!(b["topic"], "alice-pager", "{b}");
    assert_eq!(
        b["title"],
        format!("[#{id}] TRIGGERED DiskFull: DiskFull on host1"),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("DiskFull host1") && m.len() <= 4096),
        "{b}"
    );
    assert_eq!(b["priority"], 5, "critical rings loudest: {b}");
    assert_eq!(b["tags"], json!(["rotating_light"]));
    let ack_url = b["click"].as_str().expect("click").to_string();
    assert!(
        ack_url.starts_with(&format!("{PUBLIC_URL}/ack/")),
        "{ack_url}"
    );
    assert_eq!(
        b["actions"],
        json!([{"action": "http", "label": "Ack", "url": ack_url, "method": "POST", "clear": true}])
    );
    assert_eq!(first_page_outcome(&app, id).await["status"], "delivered");

    // Tapping Ack: the ntfy app POSTs to the action's URL with an empty body.
    let path = ack_url.strip_prefix(PUBLIC_URL).unwrap();
    let resp = app
        .client
        .post(app.url(path))
        .header("user-agent", "ntfy/1.16.0 (Android)")
        .send()
        .await
        .expect("POST the ack link");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success() || status.is_redirection(),
        "the Ack button's POST answered {status}: {text}"
    );
    let incident = wait_acked(&app, id, PROMPTLY).await;
    assert_eq!(incident["acked_by"], "alice", "{incident}");
}

/// A Pushover account where alice exists; receipts say acknowledged from `acked_on_poll`.
pub(crate) fn pushover_account(acked_on_poll: u64) -> Arc<PushoverAccount> {
    let mut a = PushoverAccount::new(PUSHOVER_APP, vec![ALICE_KEY]);
    a.acked_on_poll = acked_on_poll;
    a.acked_by = ALICE_KEY;
    Arc::new(a)
}

pub(crate) fn pushover_notifier(api: &str, token: &std::path::Path, poll: &str) -> String {
    format!(
        "type = \"pushover\"\napi_url = \"{api}\"\napp_token_file = \"{}\"\nretry = \"30s\"\nexpire = \"1h\"\npoll_interval = \"{poll}\"",
        token.display()
    )
}

/// The emergency message the fake Pushover received.
pub(crate) async fn emergency_message(fake: &FakeApi) -> Request {
    fake.wait_for("the Pushover message", PROMPTLY, |r| {
        r.path == "/1/messages.json"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushover_emergency_page_acknowledged_on_the_phone_acks_the_incident() {
    // The first poll finds it unacknowledged, the second acknowledged: tocsin must keep
    // polling, and Pushover asks for at least 5 s between polls, so this test takes ~10 s.
    let account = pushover_account(2);
    let fake = fake_push::pushover(account.clone()).await;
    let secrets = Secrets::new();
    let token = secrets.file("pushover-app", PUSHOVER_APP);
    let cfg = config(
        &pushover_notifier(&fake.url(), &token, "5s"),
        &format!(", to = \"{ALICE_KEY}\""),
        "",
    );
    let app = spawn_app(&routed(&cfg)).await;
    let id = page_alice(&app).await;

    let req = emergency_message(&fake).await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.content_type(), "application/x-www-form-urlencoded");
    let f = req.form_map();
    assert_eq!(f["token"], PUSHOVER_APP);
    assert_eq!(f["user"], ALICE_KEY);
    assert_eq!(
        f["title"],
        format!("[#{id}] TRIGGERED DiskFull: DiskFull on host1")
    );
    assert!(f["message"].contains("DiskFull host1"), "{f:?}");
    assert_eq!(f["priority"], "2", "critical is an emergency: {f:?}");
    assert_eq!(f["retry"], "30");
    assert_eq!(f["expire"], "3600");
    assert!(f["url"].starts_with(&format!("{PUBLIC_URL}/ack/")), "{f:?}");
    assert_eq!(f["url_title"], "Acknowledge");
    assert_eq!(f["html"], "0");
    assert_eq!(first_page_outcome(&app, id).await["status"], "delivered");
    let receipt = account.receipts().into_iter().next().expect("a receipt");

    let incident = wait_acked(&app, id, Duration::from_secs(15)).await;
    assert_eq!(incident["acked_by"], "alice", "{incident}");
    assert_eq!(event(&incident, "acked")["actor"], "alice via pushover");

    let polls = fake.requests_to(&format!("/1/receipts/{receipt}.json"));
    assert!(
        polls.len() >= 2,
        "acked only once Pushover said so: {}",
        fake.describe()
    );
    for p in &polls {
        assert_eq!(p.method, "GET");
        assert_eq!(
            p.query_map().get("token").map(String::as_str),
            Some(PUSHOVER_APP)
        );
    }
    // An acknowledged receipt is done: no cancel, and polling stops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!account.cancelled(&receipt), "{}", fake.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acking_in_tocsin_cancels_the_pushover_receipt() {
    let account = pushover_account(0);
    let fake = fake_push::pushover(account.clone()).await;
    let secrets = Secrets::new();
    let token = secrets.file("pushover-app", PUSHOVER_APP);
    let cfg = config(
        &pushover_notifier(&fake.url(), &token, "1h"),
        &format!(", to = \"{ALICE_KEY}\""),
        "",
    );
    let app = spawn_app(&routed(&cfg)).await;
    let id = page_alice(&app).await;
    assert_eq!(emergency_message(&fake).await.form_map()["priority"], "2");
    assert_eq!(first_page_outcome(&app, id).await["status"], "delivered");
    let receipt = account.receipts().into_iter().next().expect("a receipt");

    let r = app.act(id, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let cancel_path = format!("/1/receipts/{receipt}/cancel.json");
    let cancel = fake
        .wait_for("the receipt's cancel", PROMPTLY, |r| r.path == cancel_path)
        .await;
    assert_eq!(cancel.method, "POST");
    assert_eq!(cancel.content_type(), "application/x-www-form-urlencoded");
    assert_eq!(cancel.form_map()["token"], PUSHOVER_APP);
    assert!(account.cancelled(&receipt));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushover_rejecting_the_user_key_fails_over_at_once() {
    // Pushover knows nobody: alice's key is "invalid", a 400 that no retry will fix.
    let account = Arc::new(PushoverAccount::new(PUSHOVER_APP, vec![]));
    let fake = fake_push::pushover(account).await;
    let backup = PageCatcher::start().await;
    let secrets = Secrets::new();
    let token = secrets.file("pushover-app", PUSHOVER_APP);
    let cfg = config(
        &pushover_notifier(&fake.url(), &token, "1h"),
        &format!(", to = \"{ALICE_KEY}\""),
        r#"{ notifier = "hook", to = "alice@pager", after = "10m" },"#,
    );
    let app = spawn_app(&webhook_config(&backup.url(), &cfg)).await;
    let id = page_alice(&app).await;

    let pages = backup.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "alice");
    assert_eq!(pages[0].body["to"], "alice@pager");
    assert!(
        pages[0].body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("failover")),
        "{}",
        pages[0].body
    );
    assert_eq!(
        fake.requests_to("/1/messages.json").len(),
        1,
        "a 400 is permanent: no retries\n{}",
        fake.describe()
    );
    let incident = app.incident(id).await;
    let failed = event(&incident, "page_failed");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("user identifier is invalid") && d.contains("permanent")),
        "{failed}"
    );
    event(&incident, "failover");
}

fn gotify_notifier(url: &str, token: &std::path::Path) -> String {
    format!(
        "type = \"gotify\"\nurl = \"{url}\"\napp_token_file = \"{}\"",
        token.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gotify_gets_the_page() {
    let gotify = fake_push::gotify(GOTIFY_APP).await;
    let secrets = Secrets::new();
    let token = secrets.file("gotify-app", GOTIFY_APP);
    let cfg = config(&gotify_notifier(&gotify.url(), &token), "", "");
    let app = spawn_app(&routed(&cfg)).await;
    let id = page_alice(&app).await;

    let req = gotify
        .wait_for("the Gotify message", PROMPTLY, |r| r.path == "/message")
        .await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("x-gotify-key"), Some(GOTIFY_APP));
    assert_eq!(req.content_type(), "application/json");
    let b = req.json();
    assert_eq!(
        b["title"],
        format!("[#{id}] TRIGGERED DiskFull: DiskFull on host1"),
        "{b}"
    );
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("DiskFull host1")),
        "{b}"
    );
    assert_eq!(b["priority"], 8, "critical: {b}");
    let click = b["extras"]["client::notification"]["click"]["url"]
        .as_str()
        .unwrap_or("");
    assert!(click.starts_with(&format!("{PUBLIC_URL}/ack/")), "{b}");
    assert_eq!(first_page_outcome(&app, id).await["status"], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gotify_refusing_the_app_token_is_a_permanent_failure() {
    let gotify = fake_push::gotify(GOTIFY_APP).await;
    let secrets = Secrets::new();
    let token = secrets.file("gotify-app", "revoked-token");
    let cfg = config(&gotify_notifier(&gotify.url(), &token), "", "");
    let app = spawn_app(&routed(&cfg)).await;
    let id = page_alice(&app).await;

    let page = first_page_outcome(&app, id).await;
    assert_eq!(page["status"], "failed", "{page}");
    assert_eq!(page["attempts"], 1, "401 is not retried: {page}");
    assert_eq!(gotify.requests().len(), 1, "{}", gotify.describe());
    let incident = app.incident(id).await;
    let failed = event(&incident, "page_failed");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("permanent")
                && d.contains("you need to provide a valid access token")),
        "{failed}"
    );
}
