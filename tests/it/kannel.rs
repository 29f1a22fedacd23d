//! SMS through a real Kannel: pages reach the phone (the fake SMSC) short, in GSM-7 and
//! with their ack code; a reply typed on the phone acks, but only from a contact's
//! number; a gateway that is down or hung is retried and then failed, never waited on
//! forever. The endpoint's own refusals (auth, missing fields, bad bytes) are checked
//! over plain HTTP.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::alerts;
use crate::harness::{TestApp, eventually, free_port, history_kinds, spawn_app};
use crate::kannel_server::{Kannel, KannelPorts, SENDSMS_PASSWORD, SENDSMS_USER, Sms};

/// Generous bound for something due now (a busy 2-core machine; Kannel in between).
const PROMPTLY: Duration = Duration::from_secs(10);

const ALICE_PHONE: &str = "+15550100";
const STRANGER_PHONE: &str = "+15559999";

/// tocsin's hook token; Kannel passes it as the `token` query parameter.
const HOOK_TOKEN: &str = "kannel-hook-4f1c2b";

/// alice is paged by SMS through the `sms` kannel notifier at `sendsms_url` (3 attempts,
/// 2 s each); hooks need [`HOOK_TOKEN`]. Secrets are written into `dir`.
fn config(dir: &Path, sendsms_url: &str) -> String {
    let password = dir.join("kannel-password");
    std::fs::write(&password, format!("{SENDSMS_PASSWORD}\n")).unwrap();
    let token = dir.join("hook-token");
    std::fs::write(&token, HOOK_TOKEN).unwrap();
    format!(
        r#"
[server]
auth_token_file = "{token}"

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
methods = [{{ notifier = "sms", to = "{ALICE_PHONE}" }}]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#,
        token = token.display(),
        password = password.display(),
    )
}

/// tocsin started first (Kannel's config needs its URL), then Kannel pointing at it.
struct Setup {
    app: TestApp,
    kannel: Kannel,
    _dir: TempDir,
}

async fn start_with_kannel() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ports = KannelPorts::pick();
    let app = spawn_app_with_token(&config(dir.path(), &ports.sendsms_url())).await;
    // Exactly the get-url documented in src/http/kannel_inbound.rs.
    let mo_url = app.url(&format!(
        "/hooks/sms/kannel?from=%p&text=%b&charset=%C&id=%I&token={HOOK_TOKEN}"
    ));
    let kannel = Kannel::start(ports, &mo_url).await;
    Setup {
        app,
        kannel,
        _dir: dir,
    }
}

async fn spawn_app_with_token(config: &str) -> TestApp {
    let mut app = spawn_app(config).await;
    app.authorization = Some(format!("Bearer {HOOK_TOKEN}"));
    app
}

/// Posts one firing alert and returns the id of its incident.
async fn trigger(app: &TestApp, alert: Value) -> u64 {
    let r = app.post_alerts(&alert).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.only_incident().await["id"].as_u64().unwrap()
}

fn to_alice(m: &Sms) -> bool {
    m.to == ALICE_PHONE
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_page_reaches_the_phone_with_its_ack_code() {
    let s = start_with_kannel().await;
    let id = trigger(&s.app, alerts::firing("DiskFull")).await;
    assert_eq!(id, 1);

    let sms = s
        .kannel
        .wait_for_sms("the page on alice's phone", PROMPTLY, to_alice)
        .await;
    assert_eq!(sms.from, "TOCSIN");
    assert_eq!(sms.coding, "text", "GSM-7, not UCS-2: {sms:?}");
    assert!(sms.text.starts_with("[#1] TRIGGERED DiskFull"), "{sms:?}");
    assert!(sms.text.ends_with(" Reply 1A to ack"), "{sms:?}");
    assert!(sms.text.chars().count() <= 160, "{sms:?}");

    let delivered = eventually("the delivery in the history", PROMPTLY, || async {
        let inc = s.app.incident(1).await;
        history_kinds(&inc)
            .contains(&"page_delivered".to_string())
            .then_some(inc)
    })
    .await;
    assert_eq!(delivered["pages"][0]["attempts"], 1, "{delivered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_long_title_is_cut_but_the_ack_code_arrives() {
    let s = start_with_kannel().await;
    let mut alert = alerts::firing("DiskFull");
    let summary = format!("Ünïcödé {}", "Disk – almost “full” on db1 ".repeat(15));
    alert["alerts"][0]["annotations"]["summary"] = summary.into();
    trigger(&s.app, alert).await;

    let sms = s
        .kannel
        .wait_for_sms("the page on alice's phone", PROMPTLY, to_alice)
        .await;
    assert_eq!(sms.coding, "text", "transliterated, still GSM-7: {sms:?}");
    // GSM-7 has Ü, ö and é (kept) but not ï; nor dashes and curly quotes.
    assert!(
        sms.text.contains("Ünicödé Disk - almost \"full\" on db1"),
        "{sms:?}"
    );
    assert!(sms.text.ends_with("... Reply 1A to ack"), "{sms:?}");
    assert!(sms.text.chars().count() <= 160, "{sms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_chinese_title_arrives_in_ucs2() {
    let s = start_with_kannel().await;
    let mut alert = alerts::firing("DiskFull");
    alert["alerts"][0]["annotations"]["summary"] = "磁盘已满".into();
    trigger(&s.app, alert).await;

    let sms = s
        .kannel
        .wait_for_sms("the page on alice's phone", PROMPTLY, to_alice)
        .await;
    assert_eq!(sms.coding, "ucs-2", "{sms:?}");
    assert!(sms.text.contains("磁盘已满"), "{sms:?}");
    assert!(sms.text.ends_with(" Reply 1A to ack"), "{sms:?}");
    assert!(sms.text.encode_utf16().count() <= 70, "{sms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_reply_1a_from_the_phone_acks_the_incident() {
    let mut s = start_with_kannel().await;
    let id = trigger(&s.app, alerts::firing("DiskFull")).await;
    s.kannel
        .wait_for_sms("the page on alice's phone", PROMPTLY, to_alice)
        .await;

    s.kannel.send_from_phone(ALICE_PHONE, &format!("{id}A"));

    let acked = eventually("the ack by SMS", PROMPTLY, || async {
        let inc = s.app.incident(id).await;
        (inc["state"] == "acknowledged").then_some(inc)
    })
    .await;
    assert_eq!(acked["acked_by"], "alice", "{acked}");
    // Kannel sends tocsin's answer back to the phone.
    let confirmation = s
        .kannel
        .wait_for_sms("the confirmation SMS", PROMPTLY, |m| {
            to_alice(m) && m.text.contains("Acknowledged #1")
        })
        .await;
    assert_eq!(confirmation.from, crate::kannel_server::SHORT_CODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_a_second_reply_typed_on_the_phone_is_a_new_message_not_a_retry() {
    let mut s = start_with_kannel().await;
    let id = trigger(&s.app, alerts::firing("DiskFull")).await;
    s.kannel
        .wait_for_sms("the page on alice's phone", PROMPTLY, to_alice)
        .await;
    let acks = |inc: &Value| history_kinds(inc).iter().filter(|k| *k == "acked").count();

    s.kannel.send_from_phone(ALICE_PHONE, &format!("{id}A"));
    eventually("the first ack by SMS", PROMPTLY, || async {
        let inc = s.app.incident(id).await;
        (acks(&inc) == 1).then_some(())
    })
    .await;
    let r = s.app.act(id, "unack", json!({"by": "bob"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Same text, same phone: smsbox's %I gives it its own id, so it acts.
    s.kannel.send_from_phone(ALICE_PHONE, &format!("{id}A"));
    let inc = eventually("the second ack by SMS", PROMPTLY, || async {
        let inc = s.app.incident(id).await;
        (acks(&inc) == 2).then_some(inc)
    })
    .await;
    assert_eq!(inc["state"], "acknowledged", "{inc}");
    assert!(
        !history_kinds(&inc).contains(&"refused".to_string()),
        "{inc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_reply_from_an_unknown_number_acks_nothing() {
    let mut s = start_with_kannel().await;
    let id = trigger(&s.app, alerts::firing("DiskFull")).await;
    s.kannel
        .wait_for_sms("the page on alice's phone", PROMPTLY, to_alice)
        .await;

    s.kannel.send_from_phone(STRANGER_PHONE, &format!("{id}A"));

    let refused = eventually("the refused reply in the history", PROMPTLY, || async {
        let inc = s.app.incident(id).await;
        history_kinds(&inc)
            .contains(&"refused".to_string())
            .then_some(inc)
    })
    .await;
    assert_eq!(refused["state"], "triggered", "{refused}");
    assert!(refused["acked_by"].is_null(), "{refused}");
    let note = refused["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "refused")
        .unwrap();
    assert!(
        note["detail"].as_str().unwrap().contains(STRANGER_PHONE),
        "{note}"
    );
    // tocsin answered with an empty body, so Kannel (omit-empty) tells the stranger
    // nothing. Give a reply time to arrive if one were sent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answered: Vec<Sms> = s
        .kannel
        .messages()
        .into_iter()
        .filter(|m| m.to == STRANGER_PHONE)
        .collect();
    assert!(answered.is_empty(), "the stranger got {answered:?}");
}

/// Waits for the page of incident 1 to end failed; returns the incident and how long
/// it took from `since`.
async fn failed_page(app: &TestApp, since: Instant) -> (Value, Duration) {
    let inc = eventually("the page to fail", Duration::from_secs(20), || async {
        let inc = app.incident(1).await;
        history_kinds(&inc)
            .contains(&"page_failed".to_string())
            .then_some(inc)
    })
    .await;
    (inc, since.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_down_is_retried_then_failed_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: every attempt is refused at once.
    let dead = format!("http://127.0.0.1:{}/cgi-bin/sendsms", free_port());
    let app = spawn_app_with_token(&config(dir.path(), &dead)).await;
    let started = Instant::now();
    trigger(&app, alerts::firing("DiskFull")).await;

    let (inc, took) = failed_page(&app, started).await;
    let page = &inc["pages"][0];
    assert_eq!(page["status"], "failed", "{inc}");
    assert_eq!(page["attempts"], 3, "max_attempts = 3: {inc}");
    let event = inc["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "page_failed")
        .unwrap();
    let detail = event["detail"].as_str().unwrap();
    assert!(detail.contains("failed after 3 attempt(s)"), "{detail}");
    assert!(
        detail.contains(&format!("sendsms request to {dead} failed")),
        "says which gateway: {detail}"
    );
    assert!(
        !detail.contains("(permanent)"),
        "an outage is transient: {detail}"
    );
    assert!(
        !detail.contains(SENDSMS_PASSWORD),
        "password leaked: {detail}"
    );
    assert!(took < Duration::from_secs(12), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_hung_is_timed_out_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    // Accepts connections and never answers, like a stopped smsbox's listen backlog.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cgi-bin/sendsms", hung.local_addr().unwrap());
    let cfg = config(dir.path(), &url).replace("timeout = \"2s\"", "timeout = \"1s\"");
    let app = spawn_app_with_token(&cfg).await;
    let started = Instant::now();
    trigger(&app, alerts::firing("DiskFull")).await;

    let (inc, took) = failed_page(&app, started).await;
    assert_eq!(inc["pages"][0]["attempts"], 3, "{inc}");
    // Three 1 s timeouts and two backoffs (0.5 s up, jittered).
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(hung);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_wrong_password_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ports = KannelPorts::pick();
    let cfg = config(dir.path(), &ports.sendsms_url());
    std::fs::write(dir.path().join("kannel-password"), "wrong").unwrap();
    let app = spawn_app_with_token(&cfg).await;
    let _kannel = Kannel::start(ports, &app.url("/hooks/sms/kannel")).await;
    trigger(&app, alerts::firing("DiskFull")).await;

    let (inc, _) = failed_page(&app, Instant::now()).await;
    assert_eq!(
        inc["pages"][0]["attempts"], 1,
        "a refusal is not retried: {inc}"
    );
    let error = inc["pages"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("Authorization failed"), "{inc}");
}

// --- The endpoint itself, without Kannel ---

/// tocsin with an SMS contact and one triggered incident; no gateway (pages fail).
async fn app_with_incident() -> (TestApp, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}/cgi-bin/sendsms", free_port());
    let app = spawn_app_with_token(&config(dir.path(), &dead)).await;
    trigger(&app, alerts::firing("DiskFull")).await;
    (app, dir)
}

async fn get(app: &TestApp, query: &str) -> (u16, String) {
    let r = app
        .client
        .get(app.url(&format!("/hooks/sms/kannel?{query}")))
        .send()
        .await
        .expect("GET /hooks/sms/kannel");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_reply_without_the_token_is_refused() {
    let (app, _dir) = app_with_incident().await;
    for query in [
        "from=%2B15550100&text=1A".to_string(),
        "from=%2B15550100&text=1A&token=guess".to_string(),
        format!("from=%2B15550100&text=1A&token={HOOK_TOKEN}x"),
    ] {
        let (status, body) = get(&app, &query).await;
        assert_eq!(status, 401, "{query}: {body}");
    }
    assert_eq!(app.incident(1).await["state"], "triggered");
    // The hook token as a header works too.
    let r = app
        .client
        .get(app.url("/hooks/sms/kannel?from=%2B15550100&text=1A"))
        .bearer_auth(HOOK_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Acknowledged #1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_reply_from_a_sender_id_spelling_alices_number_acks_nothing() {
    let (app, _dir) = app_with_incident().await;
    // What smsbox's %p carries for an alphanumeric sender id, URL-encoded.
    for from in ["PROMO15550100", "x%2B15550100y", "ALICE%2B1-555-0100"] {
        let (status, body) = get(&app, &format!("from={from}&text=1A&token={HOOK_TOKEN}")).await;
        assert_eq!(status, 200, "{from}: {body}");
        assert_eq!(body, "", "{from} is told nothing about incident 1");
    }
    let inc = eventually("the refused replies in the history", PROMPTLY, || async {
        let inc = app.incident(1).await;
        let refused = history_kinds(&inc)
            .iter()
            .filter(|k| *k == "refused")
            .count();
        (refused == 3).then_some(inc)
    })
    .await;
    assert_eq!(inc["state"], "triggered", "{inc}");
    assert!(inc["acked_by"].is_null(), "{inc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_reply_retried_with_the_same_id_acts_once() {
    let (app, _dir) = app_with_incident().await;
    // smsbox fetches the get-url again when it thinks the first try failed
    // (http-request-retry), with the same message id (%I).
    let reply = |id: &str| format!("from=%2B15550100&text=1A&id={id}&token={HOOK_TOKEN}");
    let first = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let (status, body) = get(&app, &reply(first)).await;
    assert_eq!((status, body.as_str()), (200, "Acknowledged #1"));
    let r = app.act(1, "unack", json!({"by": "bob"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (status, body) = get(&app, &reply(first)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "", "the retry is answered nothing");
    let inc = eventually("the retry noted in the history", PROMPTLY, || async {
        let inc = app.incident(1).await;
        history_kinds(&inc)
            .contains(&"refused".to_string())
            .then_some(inc)
    })
    .await;
    assert_eq!(inc["state"], "triggered", "{inc}");
    assert!(inc["acked_by"].is_null(), "{inc}");

    // A new message from alice has its own id, and acks.
    let (status, body) = get(&app, &reply("0f8fad5b-d9cb-469f-a165-70867728950e")).await;
    assert_eq!((status, body.as_str()), (200, "Acknowledged #1"));
    assert!(
        app.metrics()
            .await
            .lines()
            .any(|l| l.contains(r#"via="kannel""#)
                && l.contains(r#"outcome="replayed""#)
                && l.ends_with(" 1")),
        "the retry is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_reply_missing_or_garbled_is_a_clear_400() {
    let (app, _dir) = app_with_incident().await;
    let t = format!("token={HOOK_TOKEN}");
    for (query, says) in [
        (format!("text=1A&{t}"), "from=%p"),
        (format!("from=&text=1A&{t}"), "from=%p"),
        (format!("from=%2B15550100&{t}"), "text=%b"),
        (format!("from=%2B15550100&text=%FF%FE1A&{t}"), "UTF-8"),
        (format!("from=%FF&text=1A&{t}"), "UTF-8"),
        (
            format!("from=%2B15550100&text=%00%31%00&charset=UTF-16BE&{t}"),
            "UTF-16BE",
        ),
    ] {
        let (status, body) = get(&app, &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
    assert_eq!(app.incident(1).await["state"], "triggered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_ucs2_reply_and_post_url_both_ack() {
    let (app, _dir) = app_with_incident().await;
    // "help" in UCS-2, as Kannel's get-url sends it with text=%b&charset=%C.
    let (status, body) = get(
        &app,
        &format!("from=%2B15550100&text=%00h%00e%00l%00p&charset=UTF-16BE&token={HOOK_TOKEN}"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.starts_with("Not understood."), "{body}");

    // post-url with send-sender = true: the text is the body, the sender a header.
    let r = app
        .client
        .post(app.url(&format!("/hooks/sms/kannel?token={HOOK_TOKEN}")))
        .header("content-type", "text/plain; charset=\"UTF-8\"")
        .header("x-kannel-from", ALICE_PHONE)
        .body("1A")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Acknowledged #1");
    let inc = app.incident(1).await;
    assert_eq!(
        (&inc["state"], &inc["acked_by"]),
        (&"acknowledged".into(), &"alice".into())
    );

    // A second ack says who was first, as a form POST.
    let r = app
        .client
        .post(app.url(&format!("/hooks/sms/kannel?token={HOOK_TOKEN}")))
        .form(&[("from", ALICE_PHONE), ("text", "ack 1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "#1 was already acknowledged by alice"
    );
}

/// The token in Kannel's get-url sits in kannel.conf and proxy logs: a token of its own
/// with the `sms` scope works there, and only there, and no other token does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_has_a_token_of_its_own_that_works_on_its_hook_only() {
    const SMS_TOKEN: &str = "kannel-only-token-0123456789";
    const READ_TOKEN: &str = "dashboard-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}/cgi-bin/sendsms", free_port());
    let sms = crate::fake_api::secret_file(dir.path(), "sms-token", SMS_TOKEN);
    let read = crate::fake_api::secret_file(dir.path(), "read-token", READ_TOKEN);
    let cfg = format!(
        "{}\n[server.tokens.kannel]\ntoken_file = \"{sms}\"\nscopes = [\"sms\"]\n[server.tokens.dashboard]\ntoken_file = \"{read}\"\nscopes = [\"read\"]\n",
        config(dir.path(), &dead)
    );
    let app = spawn_app_with_token(&cfg).await;
    trigger(&app, alerts::firing("DiskFull")).await;

    let (status, body) = get(
        &app,
        &format!("from=%2B15550100&text=1A&token={READ_TOKEN}"),
    )
    .await;
    assert_eq!(status, 403, "a read token acked by SMS: {body}");
    assert_eq!(app.incident(1).await["state"], "triggered");
    // Nowhere else is a token taken from the URL, and this one reads nothing.
    for url in [
        format!("/api/v1/incidents?token={SMS_TOKEN}"),
        format!("/api/v1/incidents?token={HOOK_TOKEN}"),
    ] {
        let r = app.client.get(app.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{url}");
    }
    let r = app
        .client
        .get(app.url("/api/v1/incidents"))
        .bearer_auth(SMS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (status, body) = get(&app, &format!("from=%2B15550100&text=1A&token={SMS_TOKEN}")).await;
    assert_eq!((status, body.as_str()), (200, "Acknowledged #1"));
}
