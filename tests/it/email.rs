//! Pages by mail through a real SMTP server (aiosmtpd): the mail a human reads, its ack
//! link, and the relay failures that must fall over to the contact's next method.

use std::time::Duration;

use serde_json::{Value, json};

use crate::alerts;
use crate::catcher::{PageCatcher, describe};
use crate::harness::{TestApp, free_port, history_kinds, spawn_app};
use crate::smtp::{Mail, SmtpCapture};

/// Generous bound for a page that is due now to arrive (a busy 2-core CI machine).
const PROMPTLY: Duration = Duration::from_secs(5);

/// The base of ack links in the mails; tests swap it for the app's real address.
const PUBLIC_URL: &str = "https://tocsin.example";

/// alice is paged by mail at once; the webhook `hook` is her fallback after 10 minutes,
/// so a page there within seconds can only be a failover.
fn config(smtp_url: &str, login: &str, hook_url: &str) -> String {
    format!(
        r#"
[server]
public_url = "{PUBLIC_URL}"

[notifiers.mail]
type = "email"
smtp_url = "{smtp_url}"
from = "tocsin <tocsin@example.com>"
connect_timeout = "1s"
timeout = "2s"
max_attempts = 2
limits = {{ enabled = false }}
{login}

[notifiers.hook]
type = "webhook"
url = "{hook_url}"
timeout = "2s"

[contacts.alice]
methods = [
  {{ notifier = "mail", to = "alice@example.com" }},
  {{ notifier = "hook", after = "10m" }},
]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#
    )
}

/// The `detail` of every history event of `kind`.
fn details(incident: &Value, kind: &str) -> Vec<String> {
    incident["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history in {incident}"))
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Waits until incident `id`'s history has an event of `kind`, and returns the incident.
async fn wait_for_event(app: &TestApp, id: u64, kind: &str) -> Value {
    crate::harness::eventually(
        &format!("a {kind} event in incident {id}'s history"),
        PROMPTLY,
        || async {
            let i = app.incident(id).await;
            history_kinds(&i).iter().any(|k| k == kind).then_some(i)
        },
    )
    .await
}

/// The ack link of the plain-text part.
fn ack_link(mail: &Mail) -> String {
    let text = mail.part("text/plain");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Acknowledge: "))
        .unwrap_or_else(|| panic!("no \"Acknowledge: <link>\" line in the text part:\n{text}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_page_arrives_threaded_and_its_ack_link_survives_mail_scanners() {
    let smtp = SmtpCapture::start(free_port(), None).await;
    let hook = PageCatcher::start().await;
    let app = spawn_app(&config(&smtp.url(), "", &hook.url())).await;

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mails = smtp.wait_for_mails(1, PROMPTLY).await;
    let mail = &mails[0];

    assert_eq!(
        mail.rcpt_tos(),
        ["alice@example.com"],
        "{:?}",
        mail.envelope
    );
    assert_eq!(mail.envelope["mail_from"], "tocsin@example.com");
    let subject = mail.header("subject").unwrap_or_default();
    assert!(
        subject.starts_with("[#1] TRIGGERED DiskFull"),
        "subject {subject:?} must start with the incident id so clients thread"
    );
    assert!(
        mail.header("references")
            .is_some_and(|r| r.contains("<incident-1.")),
        "no stable References header: {:?}",
        mail.headers()
    );
    assert!(
        mail.header("message-id")
            .is_some_and(|id| id.starts_with("<page-") && id.ends_with("@example.com>")),
        "no Message-ID: {:?}",
        mail.headers()
    );
    assert!(
        mail.header("content-type")
            .is_some_and(|c| c.starts_with("multipart/alternative")),
        "{:?}",
        mail.header("content-type")
    );

    let text = mail.part("text/plain");
    let html = mail.part("text/html");
    for needle in ["DiskFull host1", "alertname=DiskFull", "severity=critical"] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the text part:\n{text}"
        );
    }
    for needle in [
        "DiskFull on host1",
        "alertname",
        "severity",
        "critical",
        "step 1",
    ] {
        assert!(
            html.contains(needle),
            "{needle:?} not in the HTML part:\n{html}"
        );
    }
    let link = ack_link(mail);
    assert!(
        link.starts_with(&format!("{PUBLIC_URL}/ack/")),
        "ack link {link:?} is not under public_url"
    );
    assert!(
        html.contains(&format!("href=\"{link}\"")) && html.contains(">Acknowledge</a>"),
        "no Acknowledge button to {link} in the HTML part:\n{html}"
    );

    // A mail scanner (or link preview) follows the link: that must show, never ack.
    let local = app.url(&link[PUBLIC_URL.len()..]);
    let got = app.client.get(&local).send().await.expect("GET ack link");
    let status = got.status().as_u16();
    let content_type = got
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let page = got.text().await.unwrap_or_default();
    assert_eq!(status, 200, "GET {local}: {page}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let incident = app.only_incident().await;
    assert_eq!(
        incident["state"], "triggered",
        "a GET of the ack link acked the incident"
    );

    // The human presses the button.
    let posted = app.client.post(&local).send().await.expect("POST ack link");
    let status = posted.status();
    let page = posted.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST {local}: {status} {page}");
    let incident = app.only_incident().await;
    assert_eq!(incident["state"], "acknowledged", "{incident}");
    assert_eq!(incident["acked_by"], "alice", "{incident}");
    assert!(
        hook.pages().is_empty(),
        "the fallback was paged although mail worked:\n{}",
        describe(&hook.pages())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_smtp_password_fails_over_to_the_webhook_at_once() {
    let smtp = SmtpCapture::start(free_port(), Some(("tocsin", "right-horse"))).await;
    let secrets = tempfile::tempdir().expect("secrets dir");
    let password_file = secrets.path().join("smtp-password");
    std::fs::write(&password_file, "wrong-horse\n").expect("write password file");
    let login = format!(
        "username = \"tocsin\"\npassword_file = \"{}\"",
        password_file.display()
    );
    let hook = PageCatcher::start().await;
    let app = spawn_app(&config(&smtp.url(), &login, &hook.url())).await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    // The hook method is due after 10 minutes: a page now is the failover.
    let pages = hook.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "alice", "{}", describe(&pages));
    assert_eq!(pages[0].incident_id(), 1, "{}", describe(&pages));

    let incident = wait_for_event(&app, 1, "failover").await;
    let failed = details(&incident, "page_failed");
    assert!(
        failed
            .iter()
            .any(|d| d.contains("after 1 attempt(s) (permanent)") && d.contains("535")),
        "a refused login must fail at once, without retries: {failed:?}"
    );
    let failover = details(&incident, "failover");
    assert!(
        failover
            .iter()
            .any(|d| d.contains("535") && d.contains("tocsin")),
        "the failover event must name the SMTP error: {failover:?}"
    );
    assert!(smtp.mails().is_empty(), "a mail got through a failed login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_login_with_the_right_password_delivers() {
    let smtp = SmtpCapture::start(free_port(), Some(("tocsin", "right-horse"))).await;
    let secrets = tempfile::tempdir().expect("secrets dir");
    let password_file = secrets.path().join("smtp-password");
    std::fs::write(&password_file, "right-horse\n").expect("write password file");
    let login = format!(
        "username = \"tocsin\"\npassword_file = \"{}\"",
        password_file.display()
    );
    let hook = PageCatcher::start().await;
    let app = spawn_app(&config(&smtp.url(), &login, &hook.url())).await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    let mails = smtp.wait_for_mails(1, PROMPTLY).await;
    assert_eq!(
        mails[0].envelope["auth_user"], "tocsin",
        "{:?}",
        mails[0].envelope
    );
    wait_for_event(&app, 1, "page_delivered").await;
    assert!(hook.pages().is_empty(), "{}", describe(&hook.pages()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_retries_then_fails_over_and_mail_flows_once_it_is_back() {
    // Nothing listens on this port until the relay "comes back" below.
    let port = free_port();
    let hook = PageCatcher::start().await;
    let app = spawn_app(&config(
        &format!("smtp://127.0.0.1:{port}"),
        "",
        &hook.url(),
    ))
    .await;

    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    // Two attempts with a backoff of at least 500 ms between them, then the failover.
    let pages = hook
        .wait_for_pages(1, PROMPTLY + Duration::from_secs(2))
        .await;
    assert_eq!(pages[0].incident_id(), 1, "{}", describe(&pages));
    assert_eq!(pages[0].target(), "alice", "{}", describe(&pages));
    let incident = wait_for_event(&app, 1, "failover").await;
    let failed = details(&incident, "page_failed");
    assert!(
        failed
            .iter()
            .any(|d| d.contains("after 2 attempt(s)") && !d.contains("(permanent)")),
        "a relay that is down must be retried before failing over: {failed:?}"
    );

    // The relay is back: the next incident is mailed, and nothing falls over.
    let smtp = SmtpCapture::start(port, None).await;
    assert_eq!(
        app.post_alerts(&alerts::firing("HostDown")).await.status,
        200
    );
    let mails = smtp.wait_for_mails(1, PROMPTLY).await;
    let subject = mails[0].header("subject").unwrap_or_default();
    assert!(
        subject.starts_with("[#2] TRIGGERED HostDown"),
        "{subject:?}"
    );
    wait_for_event(&app, 2, "page_delivered").await;
    assert_eq!(
        hook.pages().len(),
        1,
        "incident 2 fell over although its mail went through:\n{}",
        describe(&hook.pages())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_in_alert_labels_never_becomes_a_mail_header() {
    let smtp = SmtpCapture::start(free_port(), None).await;
    let hook = PageCatcher::start().await;
    let app = spawn_app(&config(&smtp.url(), "", &hook.url())).await;

    let evil = "x\r\nBcc: victim@example.com";
    let mut alert = alerts::alert("DiskFull", "host1");
    alert["labels"]["team"] = json!("db\r\nX-Injected: yes");
    alert["annotations"]["summary"] = json!(evil);
    alert["annotations"]["description"] = json!("line one\nBcc: victim@example.com\r\n\r\nbody");
    let mut payload = alerts::payload("DiskFull", vec![alert]);
    payload["commonLabels"]["team"] = json!("db\r\nX-Injected: yes");
    payload["commonAnnotations"]["summary"] = json!(evil);
    let r = app.post_alerts(&payload).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let mails = smtp.wait_for_mails(1, PROMPTLY).await;
    let mail = &mails[0];
    assert_eq!(
        mail.rcpt_tos(),
        ["alice@example.com"],
        "an injected recipient reached the envelope"
    );
    let names: Vec<String> = mail
        .headers()
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    for bad in ["bcc", "x-injected"] {
        assert!(
            !names.iter().any(|n| n == bad),
            "alert text became a {bad} header: {:?}",
            mail.headers()
        );
    }
    // Every line break of the mail is a CRLF lettre wrote: none came from the alert.
    let raw = mail.raw.as_bytes();
    for (i, b) in raw.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && raw[i - 1] == b'\r', "bare LF at byte {i}"),
            b'\r' => assert!(raw.get(i + 1) == Some(&b'\n'), "bare CR at byte {i}"),
            _ => {}
        }
    }
    for part in [mail.part("text/plain"), mail.part("text/html")] {
        assert!(
            !part.lines().any(|l| {
                let l = l.trim_start().to_ascii_lowercase();
                l.starts_with("bcc:") || l.starts_with("x-injected:")
            }),
            "alert text started a line of its own:\n{part}"
        );
    }
    let subject = mail.header("subject").unwrap_or_default();
    assert!(
        subject.starts_with("[#1] TRIGGERED DiskFull"),
        "{subject:?}"
    );
}
