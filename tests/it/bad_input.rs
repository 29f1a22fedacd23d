//! What the outside world gets wrong: broken payloads, huge bodies, missing or wrong
//! credentials, alert text that tries to start a new protocol line, config typos, and API
//! calls that make no sense. Each gets its status and an error that names the problem,
//! and the daemon keeps working.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::alerts::{self, fixture};
use crate::catcher::PageCatcher;
use crate::harness::{PEOPLE, TOCSIN, TestApp, spawn_app, webhook_config};

/// alice at once; nobody else before an hour is up.
fn one_step() -> String {
    format!(
        r#"{PEOPLE}
[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}, {{ after = "1h", notify = ["bob"] }}]
"#
    )
}

async fn app_paging(catcher: &PageCatcher) -> TestApp {
    spawn_app(&webhook_config(&catcher.url(), &one_step())).await
}

fn firing_bytes() -> Vec<u8> {
    fixture("am-0.25-api-two-alerts-firing.json")
}

fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&firing_bytes()).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

async fn assert_refused(app: &TestApp, body: Vec<u8>, status: u16, names: &[&str]) {
    let r = app.post_hook(body).await;
    assert_eq!(r.status, status, "{}", r.body);
    let error = r.error();
    for n in names {
        assert!(error.contains(n), "error {error:?} does not mention {n:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_payloads_get_400_naming_the_problem_and_open_nothing() {
    let catcher = PageCatcher::start().await;
    let app = app_paging(&catcher).await;

    assert_refused(&app, b"{\"version\":\"4\",".to_vec(), 400, &["JSON"]).await;
    assert_refused(&app, b"not json at all".to_vec(), 400, &["JSON"]).await;
    let v3 = edited(|v| v["version"] = json!("3"));
    assert_refused(&app, v3, 400, &["version", "\"3\""]).await;
    let no_group = edited(|v| {
        v.as_object_mut().unwrap().remove("groupKey");
    });
    assert_refused(&app, no_group, 400, &["groupKey"]).await;
    let no_fingerprint = edited(|v| {
        v["alerts"][1]
            .as_object_mut()
            .unwrap()
            .remove("fingerprint");
    });
    assert_refused(&app, no_fingerprint, 400, &["fingerprint"]).await;
    let bad_time = edited(|v| v["alerts"][0]["startsAt"] = json!("yesterday"));
    assert_refused(&app, bad_time, 400, &["alerts[0].startsAt", "yesterday"]).await;

    assert!(
        app.incidents(None).await.is_empty(),
        "a refused payload opened an incident"
    );
    catcher
        .assert_quiet(0, Duration::from_millis(200), "refused payloads")
        .await;
    // The same payload, unbroken, is accepted.
    assert_eq!(app.post_hook(firing_bytes()).await.status, 200);
    assert_eq!(app.incidents(None).await.len(), 1);
}

/// A label given twice was read as the first by the heartbeat check and as the last by
/// everything else: a payload could count as the Watchdog heartbeat and still open and
/// page an incident named otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_given_twice_gets_400_and_opens_nothing() {
    let catcher = PageCatcher::start().await;
    let app = app_paging(&catcher).await;
    let body = String::from_utf8(firing_bytes()).unwrap().replacen(
        r#""alertname":"DiskFull","instance""#,
        r#""alertname":"Watchdog","alertname":"DiskFull","instance""#,
        1,
    );
    assert_refused(
        &app,
        body.into_bytes(),
        400,
        &["\"alertname\" appears twice"],
    )
    .await;
    assert!(app.incidents(None).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_inside_a_label_gets_400() {
    let catcher = PageCatcher::start().await;
    let app = app_paging(&catcher).await;

    let mut body = firing_bytes();
    let at = body
        .windows(8)
        .position(|w| w == b"db1:9100")
        .expect("fixture has db1:9100");
    body[at + 1] = 0xff;
    body[at + 2] = 0xfe;
    let r = app.post_hook(body).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let error = r.error().to_lowercase();
    assert!(
        error.contains("utf-8") || error.contains("unicode"),
        "error {error:?} does not say the text is not UTF-8"
    );
    assert!(app.incidents(None).await.is_empty());
}

/// Parses one HTTP/1.1 response out of `buf` once it is complete.
fn parse_response(buf: &[u8]) -> Option<(u16, Value)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let body = buf.get(end..end + length)?;
    Some((status, serde_json::from_slice(body).unwrap_or(Value::Null)))
}

/// POSTs a `total`-byte body in 64 KiB pieces (with `Content-Length`, or chunked when
/// `chunked`) while reading the answer; returns the status and JSON body, and stops
/// sending as soon as the answer is in. `token` goes as a bearer token.
async fn post_huge(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    total: usize,
    chunked: bool,
) -> (u16, Value) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {total}")
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}{framing}\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let piece = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = piece.len().min(total - sent);
            if chunked {
                wr.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                wr.write_all(&piece[..n]).await?;
                wr.write_all(b"\r\n").await?;
            } else {
                wr.write_all(&piece[..n]).await?;
            }
            sent += n;
        }
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        std::io::Result::Ok(sent)
    });
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = Vec::new();
        let mut piece = [0u8; 4096];
        loop {
            if let Some(r) = parse_response(&buf) {
                return r;
            }
            match rd.read(&mut piece).await {
                Ok(0) | Err(_) => panic!(
                    "connection closed before a full answer: {:?}",
                    String::from_utf8_lossy(&buf)
                ),
                Ok(n) => buf.extend_from_slice(&piece[..n]),
            }
        }
    })
    .await
    .expect("an answer within 10 s");
    writer.abort();
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_body_gets_413_and_the_daemon_stays_healthy() {
    let catcher = PageCatcher::start().await;
    let config = format!(
        "[server]\nmax_body = \"1MiB\"\n{}",
        webhook_config(&catcher.url(), &one_step())
    );
    let app = spawn_app(&config).await;
    const TEN_MB: usize = 10 * 1024 * 1024;

    for chunked in [false, true] {
        let (status, body) =
            post_huge(app.addr, "/hooks/alertmanager", None, TEN_MB, chunked).await;
        assert_eq!(status, 413, "chunked={chunked}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("max_body"),
            "chunked={chunked}: error {error:?} does not name max_body"
        );
    }

    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(app.post_hook(firing_bytes()).await.status, 200);
    catcher.wait_for_pages(1, Duration::from_secs(5)).await;
}

fn secret_file(dir: &Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_a_missing_or_wrong_bearer_token_gets_401() {
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", "s3cret-token");
    let config = format!(
        "[server]\nauth_token_file = \"{token}\"\n{}",
        webhook_config(&catcher.url(), &one_step())
    );
    let mut app = spawn_app(&config).await;

    let r = app.post_hook(firing_bytes()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.error().contains("missing credentials"), "{}", r.error());
    app.authorization = Some("Bearer not-the-token".into());
    let r = app.post_hook(firing_bytes()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.error().contains("wrong credentials"), "{}", r.error());
    app.authorization = Some("Bearer s3cret-token".into());
    assert!(
        app.incidents(None).await.is_empty(),
        "refused alerts were stored"
    );
    assert_eq!(app.post_hook(firing_bytes()).await.status, 200);
    let id = app.incidents(None).await[0]["id"].as_u64().unwrap();

    // Changing state needs the token too.
    app.authorization = None;
    let r = app.act(id, "ack", json!({"by": "mallory"})).await;
    assert_eq!(r.status, 401, "{}", r.body);
    app.authorization = Some("Bearer s3cret-token".into());
    assert_eq!(app.act(id, "ack", json!({"by": "alice"})).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_with_wrong_basic_auth_gets_401() {
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let password = secret_file(dir.path(), "password", "hunter2");
    let config = format!(
        "[server.basic_auth]\nusername = \"alertmanager\"\npassword_file = \"{password}\"\n{}",
        webhook_config(&catcher.url(), &one_step())
    );
    let mut app = spawn_app(&config).await;
    let basic = |user: &str, pass: &str| {
        let raw = format!("{user}:{pass}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };

    for (auth, why) in [
        (None, "no credentials"),
        (Some(basic("alertmanager", "hunter3")), "wrong password"),
        (Some(basic("prometheus", "hunter2")), "wrong user"),
        (Some("Bearer hunter2".to_string()), "a bearer token"),
    ] {
        app.authorization = auth;
        let r = app.post_hook(firing_bytes()).await;
        assert_eq!(r.status, 401, "{why}: {}", r.body);
        assert!(!r.error().is_empty(), "{why}: empty error");
    }
    app.authorization = Some(basic("alertmanager", "hunter2"));
    assert!(app.incidents(None).await.is_empty());
    assert_eq!(app.post_hook(firing_bytes()).await.status, 200);
    assert_eq!(app.incidents(None).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_breaks_in_alert_text_are_stored_but_never_reach_a_page_line() {
    let catcher = PageCatcher::start().await;
    let app = app_paging(&catcher).await;
    let instance = "db1\r\nPRIVMSG #ops :owned";
    let summary = "Disk full\r\nQUIT :bye";
    let mut alert = alerts::alert("DiskFull", "db1");
    alert["labels"]["instance"] = json!(instance);
    alert["annotations"]["summary"] = json!(summary);
    let r = app
        .post_alerts(&alerts::payload("DiskFull", vec![alert]))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let incident = app.only_incident().await;
    let stored = &incident["alerts"][0];
    assert_eq!(stored["labels"]["instance"], instance, "stored as received");
    assert_eq!(
        stored["annotations"]["summary"], summary,
        "stored as received"
    );
    let title = incident["title"].as_str().unwrap();
    assert!(title.contains("Disk full"), "{title:?}");
    assert!(!title.contains(['\r', '\n']), "title {title:?}");

    let page = &catcher.wait_for_pages(1, Duration::from_secs(5)).await[0];
    let text = page.body["text"].as_str().unwrap();
    assert!(text.contains("Disk full"), "{text:?}");
    assert!(!text.contains(['\r', '\n']), "page text {text:?}");
    let paged_title = page.body["incident"]["title"].as_str().unwrap();
    assert!(!paged_title.contains(['\r', '\n']), "{paged_title:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_actions_that_make_no_sense() {
    let catcher = PageCatcher::start().await;
    let app = app_paging(&catcher).await;

    let r = app.act(42, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error().contains("no incident #42"), "{}", r.error());

    assert_eq!(app.post_hook(firing_bytes()).await.status, 200);
    let id = app.incidents(None).await[0]["id"].as_u64().unwrap();

    let r = app.act(id, "snooze", json!({"by": "alice"})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error().contains("snooze needs a duration"),
        "{}",
        r.error()
    );
    let r = app.act(id, "ack", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("by"), "{}", r.error());
    let r = app
        .act(id, "snooze", json!({"by": "alice", "for": "30mins please"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("invalid duration"), "{}", r.error());
    assert_eq!(
        app.incident(id).await["state"],
        "triggered",
        "nothing changed"
    );

    assert_eq!(
        app.act(id, "resolve", json!({"by": "alice"})).await.status,
        200
    );
    let r = app.act(id, "ack", json!({"by": "alice"})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error().contains("already resolved"), "{}", r.error());
    assert_eq!(app.incident(id).await["state"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_people_ack_one_incident_and_the_ack_is_announced_once_naming_the_first() {
    let catcher = PageCatcher::start().await;
    // The hook notifier is a step target: it is told of the ack (once).
    let policy = format!(
        "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"hook\", \"alice\"] }}]\n"
    );
    let app = spawn_app(&webhook_config(&catcher.url(), &policy)).await;
    assert_eq!(app.post_hook(firing_bytes()).await.status, 200);
    let id = app.incidents(None).await[0]["id"].as_u64().unwrap();

    assert_eq!(app.act(id, "ack", json!({"by": "alice"})).await.status, 200);
    for late in ["bob", "carol", "alice"] {
        let r = app.act(id, "ack", json!({"by": late})).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(
            r.error().contains("already acknowledged by alice"),
            "{}",
            r.error()
        );
        assert_eq!(r.body["acked_by"], "alice", "{}", r.body);
    }
    let inc = app.incident(id).await;
    assert_eq!(inc["acked_by"], "alice");
    // Every page is recorded before it is sent: one ACKNOWLEDGED announcement, not four.
    let acks: Vec<&Value> = inc["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "{:#}", inc["pages"]);
    let also: Vec<&str> = inc["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "also_acked")
        .map(|h| h["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        also,
        ["bob via api", "carol via api"],
        "{:#}",
        inc["history"]
    );
}

/// A config `check-config` accepts.
const VALID: &str = r#"[server]
listen = "127.0.0.1:9797"

[notifiers.console]
type = "log"
[notifiers.hook]
type = "webhook"
url = "http://127.0.0.1:8080/page"

[contacts.alice]
methods = [{ notifier = "hook", to = "alice@pager" }]
[contacts.bob]
methods = [{ notifier = "console" }]

[policies.default]
repeat = 1
steps = [
  { after = "0s", notify = ["console", "alice"] },
  { after = "10m", notify = ["bob"] },
]

[[routes]]
policy = "default"
"#;

struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// The file that was checked, as it appears in messages.
    file: String,
    /// Its text, to find lines in.
    text: String,
}

impl Checked {
    fn line_of(&self, needle: &str) -> usize {
        self.text
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in the config"))
            + 1
    }
}

/// Runs the built `tocsin check-config` on `VALID` edited by replacing `from` with `to`.
fn check_config(from: &str, to: &str) -> Checked {
    assert!(VALID.contains(from), "{from:?}");
    let text = VALID.replacen(from, to, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    std::fs::write(&path, &text).unwrap();
    let out = Command::new(TOCSIN)
        .arg("check-config")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .expect("run tocsin check-config");
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        file: path.display().to_string(),
        text,
    }
}

#[test]
fn check_config_prints_a_summary_of_a_good_file() {
    let c = check_config("", "");
    assert_eq!(c.code, Some(0), "stderr: {}", c.stderr);
    assert!(
        c.stdout.contains(&format!("{}: OK", c.file)),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains("contacts: 2 [alice, bob]"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout
            .contains("notifiers: 2 [console (log), hook (webhook)]"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("policies: 1 [default]"), "{}", c.stdout);
}

#[test]
fn check_config_names_an_unknown_key_and_its_line() {
    let c = check_config("type = \"log\"", "type = \"log\"\ncolour = \"red\"");
    assert_eq!(c.code, Some(1), "stdout: {}", c.stdout);
    let at = format!(
        "{}:{}: notifiers.console.colour:",
        c.file,
        c.line_of("colour")
    );
    assert!(c.stderr.contains(&at), "expected {at:?} in:\n{}", c.stderr);
    assert!(c.stderr.contains("1 error in"), "{}", c.stderr);
}

#[test]
fn check_config_names_a_route_to_a_missing_policy() {
    let c = check_config("policy = \"default\"", "policy = \"dflt\"");
    assert_eq!(c.code, Some(1), "stdout: {}", c.stdout);
    let at = format!(
        "{}:{}: routes[0].policy: unknown policy \"dflt\"",
        c.file,
        c.line_of("dflt")
    );
    assert!(c.stderr.contains(&at), "expected {at:?} in:\n{}", c.stderr);
}

#[test]
fn check_config_names_a_duration_typo() {
    let c = check_config("after = \"10m\"", "after = \"10mn\"");
    assert_eq!(c.code, Some(1), "stdout: {}", c.stdout);
    let at = format!(
        "{}:{}: policies.default.steps[1].after: invalid duration \"10mn\"",
        c.file,
        c.line_of("10mn")
    );
    assert!(c.stderr.contains(&at), "expected {at:?} in:\n{}", c.stderr);
}

#[test]
fn check_config_reports_every_error_at_once() {
    let c = check_config("type = \"log\"", "type = \"log\"\ncolour = \"red\"");
    let text = c
        .text
        .replacen("policy = \"default\"", "policy = \"dflt\"", 1)
        .replacen("after = \"10m\"", "after = \"10mn\"", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(TOCSIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    for what in ["colour", "\"dflt\"", "\"10mn\"", "3 errors in"] {
        assert!(stderr.contains(what), "{what:?} missing in:\n{stderr}");
    }
}

#[test]
fn check_config_builds_every_notifier_so_a_relay_url_tocsin_cannot_use_fails_there() {
    // Before, this passed check-config and failed only when `tocsin run` started.
    let c = check_config(
        "[contacts.alice]",
        "[notifiers.mail]\ntype = \"email\"\nsmtp_url = \"smtp://h?tls=maybe\"\nfrom = \"tocsin@example.com\"\n\n[contacts.alice]",
    );
    assert_eq!(c.code, Some(1), "stdout: {}", c.stdout);
    let at = format!(
        "{}:{}: notifiers.mail.smtp_url: smtp_url \"smtp://h?tls=maybe\": tls=\"maybe\" is unknown; use ?tls=starttls",
        c.file,
        c.line_of("tls=maybe")
    );
    assert!(c.stderr.contains(&at), "expected {at:?} in:\n{}", c.stderr);
}

#[test]
fn check_config_refuses_a_template_the_sms_gateway_notifier_cannot_render() {
    let c = check_config(
        "[contacts.alice]",
        "[notifiers.sms]\ntype = \"http_sms\"\nurl = \"https://gw.example.com/send\"\nbody = { json = '{\"to\": {to}}' }\n\n[contacts.alice]",
    );
    assert_eq!(c.code, Some(1), "stdout: {}", c.stdout);
    let at = format!(
        "{}:{}: notifiers.sms: http_sms: body.json does not render to valid JSON",
        c.file,
        c.line_of("[notifiers.sms]")
    );
    assert!(c.stderr.contains(&at), "expected {at:?} in:\n{}", c.stderr);
}

#[test]
fn check_config_refuses_a_watchdog_that_would_page_nobody_and_says_how_to_fix_it() {
    // Before, this passed: a silent Alertmanager logged "paging through the channels
    // that still work" and paged the console alone.
    let c = check_config(
        "[policies.default]",
        "[watchdog]\npolicy = \"machines\"\n[policies.machines]\nsteps = [{ after = \"0s\", notify = [\"console\"] }]\n\n[policies.default]",
    );
    assert_eq!(c.code, Some(1), "stdout: {}", c.stdout);
    let at = format!(
        "{}:{}: watchdog.policy: watchdog incidents page nobody: policy \"machines\" names no contact with a method",
        c.file,
        c.line_of("policy = \"machines\"")
    );
    assert!(c.stderr.contains(&at), "expected {at:?} in:\n{}", c.stderr);
    assert!(
        c.stderr
            .contains("name a contact with methods in one of its steps"),
        "{}",
        c.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_call_with_a_huge_body_or_no_token_is_refused_and_not_counted() {
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", "s3cret-token");
    let config = format!(
        "[server]\nauth_token_file = \"{token}\"\nmax_body = \"64KiB\"\n[heartbeats.backup]\nperiod = \"1h\"\n{}",
        webhook_config(&catcher.url(), &one_step())
    );
    let app = spawn_app(&config).await;
    let pings = || async {
        let v: Value = app
            .client
            .get(app.url("/api/v1/channels"))
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let c = v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "heartbeat:backup")
            .cloned()
            .expect("the heartbeat is a channel");
        c["reason"].as_str().unwrap().to_string()
    };
    assert_eq!(pings().await, "waiting for the first ping");

    let r = app
        .client
        .get(app.url("/hooks/heartbeat/backup"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token");
    let (status, body) = post_huge(
        app.addr,
        "/hooks/heartbeat/backup",
        None,
        1024 * 1024,
        false,
    )
    .await;
    // The token is checked first: a stranger's huge body is refused without reading it.
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        pings().await,
        "waiting for the first ping",
        "nothing counted"
    );

    // Answered 413 before the body is read, so it is sent while the answer is read.
    let (status, body) = post_huge(
        app.addr,
        "/hooks/heartbeat/backup",
        Some("s3cret-token"),
        1024 * 1024,
        false,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        pings().await,
        "waiting for the first ping",
        "nothing counted"
    );

    let r = app
        .client
        .post(app.url("/hooks/heartbeat/backup"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(pings().await.starts_with("pinged at "), "{}", pings().await);
}

/// `by` goes into every announcement after ("ACKED by ..."): a 64 KiB name would fill the
/// chat queue pages share. And a snooze longer than a week is forgetting, not snoozing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_actor_name_is_short_and_a_snooze_at_most_a_week() {
    let catcher = PageCatcher::start().await;
    let app = app_paging(&catcher).await;
    assert_eq!(app.post_hook(firing_bytes()).await.status, 200);
    let id = app.incidents(None).await[0]["id"].as_u64().unwrap();

    let r = app.act(id, "ack", json!({"by": "x".repeat(65)})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("at most 64"), "{}", r.error());
    let r = app
        .act(id, "snooze", json!({"by": "alice", "for": "8d"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error().contains("at most 7 days"), "{}", r.error());
    assert_eq!(app.incident(id).await["state"], "triggered");
    assert_eq!(
        app.act(id, "ack", json!({"by": "x".repeat(64)}))
            .await
            .status,
        200
    );
}

/// An IRC relay trusted by its nick mask alone passes, with a warning at its line that
/// says why and what to add; named by its account, nothing is said.
#[test]
fn check_config_warns_about_an_irc_pattern_trusting_a_nick_mask() {
    let irc = "[sources.irc]\nserver = \"127.0.0.1:6667\"\nchannels = [\"#alerts\"]\npatterns = [\n  { from = \"relay!*@*\", preset = \"alertmanager-irc-relay\" },\n]\n[[routes]]";
    let c = check_config("[[routes]]", irc);
    assert_eq!(c.code, Some(0), "a warning is no error: {}", c.stderr);
    let line = c.line_of("relay!*@*");
    let expected = format!(
        "{}: warning: line {line}: sources.irc.patterns[0].from:",
        c.file
    );
    assert!(c.stderr.contains(&expected), "{}", c.stderr);
    assert!(c.stderr.contains("from_account"), "{}", c.stderr);

    let by_account = irc.replace("preset", "from_account = \"relaybot\", preset");
    let c = check_config("[[routes]]", &by_account);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert!(!c.stderr.contains("warning"), "{}", c.stderr);
}
