//! Voice calls through Twilio, with tocsin's side checked against what Twilio documents:
//! the Calls API request, then Twilio's part played by the test: fetching the TwiML when
//! the phone is answered, posting the key pressed, and the final status. The outage it
//! prevents: an SMS slept through at 3 a.m., and a phone nobody answers that holds up
//! the next method for minutes.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::fake_api::{Answer, FakeApi, Request, secret_file};
use crate::harness::{Reply, TestApp, eventually, history_kinds, spawn_app, spawn_app_on_clock};
use crate::twilio::twilio_signature;

const PROMPTLY: Duration = Duration::from_secs(5);

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "9f2c1e4b7a6d5c3e8f1a2b3c4d5e6f70";
const TWILIO_NUMBER: &str = "+15005550006";
const ALICE_PHONE: &str = "+15550100";
const PUBLIC: &str = "https://tocsin.example.com";
const CALL_SID: &str = "CA5ef8732a3c49700934481addd5ce1659";

/// alice is called first; her webhook pager is due only after 10 minutes.
fn config(api: &FakeApi, token_file: &str, hook_url: &str) -> String {
    format!(
        r#"
[server]
public_url = "{PUBLIC}/"

[notifiers.voice]
type = "twilio_voice"
account_sid = "{ACCOUNT_SID}"
auth_token_file = "{token_file}"
from = "{TWILIO_NUMBER}"
api_url = "{api}"
timeout = "2s"
# Two incidents call alice within a minute here; the default limits are 1/1m, 3/15m.
limits = {{ enabled = false }}

[notifiers.hook]
type = "webhook"
url = "{hook_url}"
timeout = "2s"

[contacts.alice]
methods = [
  {{ notifier = "voice", to = "{ALICE_PHONE}" }},
  {{ notifier = "hook", to = "alice@pager", after = "10m" }},
]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#,
        api = api.url()
    )
}

/// Twilio's 201 answer to a new call.
fn call_created() -> Answer {
    Answer::json(
        201,
        json!({
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "direction": "outbound-api",
            "from": TWILIO_NUMBER,
            "to": ALICE_PHONE,
            "sid": CALL_SID,
            "status": "queued",
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"),
        }),
    )
}

struct Setup {
    app: TestApp,
    api: FakeApi,
    hook: PageCatcher,
    _secrets: tempfile::TempDir,
}

async fn setup() -> Setup {
    let api = FakeApi::start(call_created()).await;
    let hook = PageCatcher::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secret_file(secrets.path(), "twilio-token", AUTH_TOKEN);
    let app = spawn_app(&config(&api, &token_file, &hook.url())).await;
    Setup {
        app,
        api,
        hook,
        _secrets: secrets,
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    let values: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values.len(), 1, "field {name} in {form:?}");
    values[0]
}

/// The call tocsin asked Twilio for: checks it as Twilio documents it and returns the
/// URL Twilio fetches when the phone is answered.
fn assert_call_request(req: &Request) -> String {
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    );
    let basic = BASE64.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    assert_eq!(
        req.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = req.form();
    let mut names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "From",
            "MachineDetection",
            "Method",
            "StatusCallback",
            "StatusCallbackMethod",
            "Timeout",
            "To",
            "Url"
        ],
        "{form:?}"
    );
    assert_eq!(field(&form, "To"), ALICE_PHONE);
    assert_eq!(field(&form, "From"), TWILIO_NUMBER);
    assert_eq!(field(&form, "MachineDetection"), "Enable");
    assert_eq!(field(&form, "Timeout"), "30");
    assert_eq!(field(&form, "Method"), "POST");
    assert_eq!(field(&form, "StatusCallbackMethod"), "POST");
    let url = field(&form, "Url").to_string();
    assert!(
        url.starts_with(&format!("{PUBLIC}/hooks/voice/twilio/voice/")),
        "{url}"
    );
    assert_eq!(field(&form, "StatusCallback"), format!("{url}/status"));
    url
}

/// Fires an alert; returns the incident and the URL of its call.
async fn call_alice(s: &Setup, alert: &Value) -> (u64, String) {
    let r = s.app.post_alerts(alert).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let requests = s.api.wait_for_requests(1, PROMPTLY).await;
    let url = assert_call_request(&requests[0]);
    let id = s.app.only_incident().await["id"].as_u64().unwrap();
    (id, url)
}

/// Twilio's side of the call: a signed form POST to one of tocsin's URLs.
async fn twilio_posts(s: &Setup, url: &str, params: &[(&str, &str)], token: &str) -> (u16, String) {
    let path = url.strip_prefix(PUBLIC).expect("under public_url");
    let signature = twilio_signature(token, url, params);
    let resp = s
        .app
        .client
        .post(s.app.url(path))
        .header("x-twilio-signature", signature)
        .form(params)
        .send()
        .await
        .expect("POST a voice callback");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn call_params<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("AccountSid", ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", CALL_SID),
        ("Direction", "outbound-api"),
        ("From", TWILIO_NUMBER),
        ("To", ALICE_PHONE),
    ];
    p.extend_from_slice(extra);
    p
}

/// The answer's TwiML, parsed: it must be well-formed XML.
fn twiml(xml: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    assert_eq!(doc.root_element().tag_name().name(), "Response", "{xml}");
    doc
}

/// The `action` of the first `<Gather>` and the text it says.
fn gather(doc: &roxmltree::Document<'_>) -> (String, String) {
    let g = doc
        .descendants()
        .find(|n| n.has_tag_name("Gather"))
        .expect("a Gather");
    assert_eq!(g.attribute("numDigits"), Some("1"));
    assert_eq!(g.attribute("timeout"), Some("10"));
    let say = g
        .children()
        .find(|n| n.has_tag_name("Say"))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_string();
    (g.attribute("action").unwrap().to_string(), say)
}

fn said(doc: &roxmltree::Document<'_>) -> String {
    doc.descendants()
        .filter(|n| n.has_tag_name("Say"))
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn incident_with(app: &TestApp, id: u64, kind: &str) -> Value {
    eventually(&format!("a {kind} event"), PROMPTLY, || async {
        let incident = app.incident(id).await;
        history_kinds(&incident)
            .iter()
            .any(|k| k == kind)
            .then_some(incident)
    })
    .await
}

/// The first line of `kind` in the incident's history.
fn history_line(incident: &Value, kind: &str) -> Value {
    incident["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} line in {incident}"))
}

/// The detail of [`history_line`].
fn detail(incident: &Value, kind: &str) -> String {
    history_line(incident, kind)["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn call_page(incident: &Value) -> Value {
    incident["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["notifier"] == "voice")
        .cloned()
        .expect("the voice page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_answers_presses_4_and_the_incident_is_acked_as_her() {
    let s = setup().await;
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    let incident = incident_with(&s.app, id, "page_placed").await;
    assert_eq!(call_page(&incident)["status"], "placed", "{incident}");

    let (status, body) = twilio_posts(
        &s,
        &url,
        &call_params(&[("CallStatus", "in-progress"), ("AnsweredBy", "human")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let doc = twiml(&body);
    let gathers = doc
        .descendants()
        .filter(|n| n.has_tag_name("Gather"))
        .count();
    assert_eq!(gathers, 3, "the message is repeated 3 times: {body}");
    let (action, text) = gather(&doc);
    assert_eq!(action, format!("{url}/gather"));
    assert!(
        text.starts_with(&format!("tocsin. triggered: incident {id}.")),
        "{text}"
    );
    assert!(
        text.contains("Press 4 to acknowledge, 5 to escalate, 6 to close, star to repeat."),
        "{text}"
    );

    let (status, body) = twilio_posts(
        &s,
        &action,
        &call_params(&[
            ("CallStatus", "in-progress"),
            ("Digits", "4"),
            ("FinishedOnKey", ""),
        ]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let doc = twiml(&body);
    assert_eq!(said(&doc), format!("Incident {id} acknowledged. Goodbye."));
    assert!(doc.descendants().any(|n| n.has_tag_name("Hangup")));

    let incident = s.app.incident(id).await;
    assert_eq!(incident["state"], "acknowledged", "{incident}");
    assert_eq!(incident["acked_by"], "alice");
    let acked = history_line(&incident, "acked");
    assert_eq!(acked["via"], "voice", "{acked}");
    assert_eq!(acked["reference"], CALL_SID, "{acked}");
    let incident = incident_with(&s.app, id, "page_delivered").await;
    assert_eq!(call_page(&incident)["status"], "delivered", "{incident}");

    // The call ends normally: a keyed call reached her, nothing fails over.
    let (status, _) = twilio_posts(
        &s,
        &format!("{url}/status"),
        &call_params(&[("CallStatus", "completed"), ("CallDuration", "14")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 204);
    let incident = s.app.incident(id).await;
    assert!(
        !history_kinds(&incident).contains(&"failover".to_string()),
        "{incident}"
    );
    assert!(s.hook.pages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_nobody_answers_falls_over_to_the_next_method_at_once() {
    let s = setup().await;
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    incident_with(&s.app, id, "page_placed").await;
    let (status, _) = twilio_posts(
        &s,
        &format!("{url}/status"),
        &call_params(&[("CallStatus", "no-answer"), ("CallDuration", "0")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 204);
    // The webhook pager was due in 10 minutes; it is paged now.
    let pages = s.hook.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].incident_id(), id);
    let incident = incident_with(&s.app, id, "failover").await;
    let line = |kind: &str| detail(&incident, kind);
    assert!(
        line("page_not_reached").contains("voice: no answer after 30 s"),
        "{incident}"
    );
    assert!(
        line("failover").contains("no answer after 30 s"),
        "{incident}"
    );
    assert_eq!(call_page(&incident)["status"], "not_reached", "{incident}");
    assert_eq!(incident["state"], "triggered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_gets_a_short_message_and_the_next_method_is_paged() {
    let s = setup().await;
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    let (status, body) = twilio_posts(
        &s,
        &url,
        &call_params(&[
            ("CallStatus", "in-progress"),
            ("AnsweredBy", "machine_start"),
        ]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let doc = twiml(&body);
    assert!(
        !doc.descendants().any(|n| n.has_tag_name("Gather")),
        "a machine cannot press keys: {body}"
    );
    assert!(
        doc.descendants().any(|n| n.has_tag_name("Hangup")),
        "{body}"
    );
    assert!(said(&doc).contains(&format!("incident {id}")), "{body}");

    twilio_posts(
        &s,
        &format!("{url}/status"),
        &call_params(&[
            ("CallStatus", "completed"),
            ("AnsweredBy", "machine_start"),
            ("CallDuration", "6"),
        ]),
        AUTH_TOKEN,
    )
    .await;
    s.hook.wait_for_pages(1, PROMPTLY).await;
    let incident = incident_with(&s.app, id, "failover").await;
    let not_reached = detail(&incident, "page_not_reached");
    assert!(not_reached.contains("voicemail"), "{not_reached}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_a_bad_signature_is_refused_and_changes_nothing() {
    let s = setup().await;
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    let gather = format!("{url}/gather");
    for (what, token) in [("wrong key", "not-the-auth-token")] {
        let (status, body) =
            twilio_posts(&s, &gather, &call_params(&[("Digits", "6")]), token).await;
        assert_eq!(status, 403, "{what}: {body}");
    }
    // A real signature over other digits does not carry over to these.
    let path = gather.strip_prefix(PUBLIC).unwrap();
    let signed_for_4 = twilio_signature(AUTH_TOKEN, &gather, &call_params(&[("Digits", "4")]));
    let resp = s
        .app
        .client
        .post(s.app.url(path))
        .header("x-twilio-signature", signed_for_4)
        .form(&call_params(&[("Digits", "6")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let status_forged = twilio_posts(
        &s,
        &format!("{url}/status"),
        &call_params(&[("CallStatus", "no-answer")]),
        "forged",
    )
    .await;
    assert_eq!(status_forged.0, 403);

    let incident = s.app.incident(id).await;
    assert_eq!(incident["state"], "triggered", "{incident}");
    assert!(
        s.hook.pages().is_empty(),
        "a forged status fails nothing over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_key_does_nothing_the_second_time() {
    let s = setup().await;
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    let gather = format!("{url}/gather");
    let params = call_params(&[("Digits", "4")]);
    let (status, _) = twilio_posts(&s, &gather, &params, AUTH_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(s.app.incident(id).await["state"], "acknowledged");

    let r = s.app.act(id, "unack", json!({"by": "bob"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The captured, correctly signed request again.
    let (status, body) = twilio_posts(&s, &gather, &params, AUTH_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        said(&twiml(&body)).contains("already acknowledged"),
        "{body}"
    );
    let incident = incident_with(&s.app, id, "refused").await;
    assert_eq!(
        incident["state"], "triggered",
        "the replay acked nothing: {incident}"
    );

    // After the call ended, its URL acts on nothing at all.
    twilio_posts(
        &s,
        &format!("{url}/status"),
        &call_params(&[("CallStatus", "completed")]),
        AUTH_TOKEN,
    )
    .await;
    let (status, body) = twilio_posts(&s, &gather, &params, AUTH_TOKEN).await;
    assert_eq!(status, 200);
    assert!(
        said(&twiml(&body)).contains("This tocsin call is over"),
        "{body}"
    );
    assert_eq!(s.app.incident(id).await["state"], "triggered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_5_and_6_escalate_and_close_and_star_repeats() {
    let s = setup().await;
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    let gather = format!("{url}/gather");
    let (_, body) = twilio_posts(&s, &gather, &call_params(&[("Digits", "*")]), AUTH_TOKEN).await;
    let (action, text) = gather_of(&body);
    assert_eq!(action, gather, "the menu again posts to the same place");
    assert!(text.contains(&format!("incident {id}")), "{text}");
    let (_, body) = twilio_posts(&s, &gather, &call_params(&[("Digits", "9")]), AUTH_TOKEN).await;
    assert!(
        gather_of(&body).1.starts_with("9 is not a choice."),
        "{body}"
    );

    let (_, body) = twilio_posts(&s, &gather, &call_params(&[("Digits", "6")]), AUTH_TOKEN).await;
    assert_eq!(
        said(&twiml(&body)),
        format!("Incident {id} closed. Goodbye.")
    );
    let incident = s.app.incident(id).await;
    assert_eq!(incident["state"], "resolved", "{incident}");

    // 5 on another incident's call fires its next step now.
    let r = s.app.post_alerts(&alerts::firing("LoadHigh")).await;
    assert_eq!(r.status, 200);
    let requests = s.api.wait_for_requests(2, PROMPTLY).await;
    let url2 = assert_call_request(&requests[1]);
    assert_ne!(url2, url, "every call has its own URL");
    let id2 = id + 1;
    let (_, body) = twilio_posts(
        &s,
        &format!("{url2}/gather"),
        &call_params(&[("Digits", "5")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(
        said(&twiml(&body)),
        format!("Incident {id2} escalated. Goodbye.")
    );
    incident_with(&s.app, id2, "escalate_now").await;
}

fn gather_of(body: &str) -> (String, String) {
    let doc = twiml(body);
    gather(&doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_text_inside_the_twiml_stays_text() {
    let s = setup().await;
    let hostile = "Disk</Say><Dial>+19005550000</Dial>&amp;Full";
    let mut alert = alerts::firing(hostile);
    alert["commonLabels"]["instance"] = json!("db1 & <b>");
    let (_, url) = call_alice(&s, &alert).await;
    let (status, body) = twilio_posts(
        &s,
        &url,
        &call_params(&[("AnsweredBy", "human")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    let doc = twiml(&body);
    assert!(!doc.descendants().any(|n| n.has_tag_name("Dial")), "{body}");
    let (_, text) = gather(&doc);
    assert!(text.contains(hostile), "spoken as written: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_notify_places_a_test_call_that_asks_for_a_4_and_the_daemon_confirms_it() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = secret_file(dir.path(), "twilio-token", AUTH_TOKEN);
    let config = dir.path().join("alerts.toml");
    std::fs::write(&config, self::config(&s.api, &token_file, &s.hook.url())).unwrap();
    let out = std::process::Command::new(crate::harness::TOCSIN)
        .args(["test-notify", "alice", "--via", "voice", "--config"])
        .arg(&config)
        .output()
        .expect("run tocsin test-notify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("call placed") && stdout.contains(CALL_SID) && stdout.contains("press 4"),
        "{stdout}"
    );

    let requests = s.api.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let form = requests[0].form();
    assert_eq!(field(&form, "To"), ALICE_PHONE);
    assert_eq!(field(&form, "MachineDetection"), "Enable");
    assert!(
        !form.iter().any(|(k, _)| k == "Url"),
        "nothing to fetch: {form:?}"
    );
    let doc = twiml(field(&form, "Twiml"));
    let (action, text) = gather(&doc);
    assert_eq!(action, format!("{PUBLIC}/hooks/voice/twilio/voice/test"));
    assert!(text.contains("Press 4"), "{text}");

    // The running daemon answers the key.
    let (status, body) =
        twilio_posts(&s, &action, &call_params(&[("Digits", "4")]), AUTH_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert!(said(&twiml(&body)).starts_with("Confirmed."), "{body}");
    let (status, _) = twilio_posts(&s, &action, &call_params(&[("Digits", "4")]), "forged").await;
    assert_eq!(status, 403);
}

/// `GET /api/v1/channels`: the voice notifier's channel.
async fn voice_channel(app: &TestApp) -> Value {
    let r = Reply::from(
        app.client
            .get(app.url("/api/v1/channels"))
            .send()
            .await
            .expect("GET /api/v1/channels"),
    )
    .await;
    r.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "notifier:voice")
        .cloned()
        .unwrap_or_else(|| panic!("no notifier:voice in {}", r.body))
}

/// `public_url` points where Twilio cannot reach: no call would ever end or ack. Each is
/// given up once it cannot last any longer, the next method goes, and the board says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_twilio_never_reports_on_are_given_up_and_the_voice_channel_shows_down() {
    let api = FakeApi::start(call_created()).await;
    let hook = PageCatcher::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secret_file(secrets.path(), "twilio-token", AUTH_TOKEN);
    let (app, clock) = spawn_app_on_clock(&config(&api, &token_file, &hook.url())).await;
    let s = Setup {
        app,
        api,
        hook,
        _secrets: secrets,
    };
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    incident_with(&s.app, id, "page_placed").await;

    // Rung out (30 s) and three rounds of the menu later, still not a word.
    s.app.advance(&clock, Duration::from_secs(30 + 170)).await;
    assert!(s.hook.pages().is_empty(), "the call may still be going on");
    s.app.advance(&clock, Duration::from_secs(20)).await;
    let pages = s.hook.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].incident_id(), id);
    let incident = incident_with(&s.app, id, "failover").await;
    let not_reached = detail(&incident, "page_not_reached");
    assert!(not_reached.contains("no word from Twilio"), "{not_reached}");
    let ch = eventually("the voice channel down", PROMPTLY, || async {
        let ch = voice_channel(&s.app).await;
        (ch["state"] == "down").then_some(ch)
    })
    .await;
    assert!(
        ch.to_string().contains("public_url"),
        "the board says why: {ch}"
    );

    // A late callback about that call finds nothing to act on, but proves the path works.
    let (status, _) = twilio_posts(
        &s,
        &format!("{url}/status"),
        &call_params(&[("CallStatus", "completed")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        voice_channel(&s.app).await["state"],
        "down",
        "only a call in progress proves it"
    );
}

/// She picked up, half asleep, and hung up without a key: that reached nobody either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_answered_and_hung_up_without_a_key_pages_the_next_method_at_once() {
    let s = setup().await;
    let (id, url) = call_alice(&s, &alerts::firing("DiskFull")).await;
    let (status, _) = twilio_posts(
        &s,
        &url,
        &call_params(&[("AnsweredBy", "human")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = twilio_posts(
        &s,
        &format!("{url}/status"),
        &call_params(&[
            ("CallStatus", "completed"),
            ("AnsweredBy", "human"),
            ("CallDuration", "7"),
        ]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 204);
    s.hook.wait_for_pages(1, PROMPTLY).await;
    let incident = incident_with(&s.app, id, "failover").await;
    let not_reached = detail(&incident, "page_not_reached");
    assert!(
        not_reached.contains("answered, but no key was pressed in 7 s"),
        "{not_reached}"
    );
    assert_eq!(incident["state"], "triggered");
}
