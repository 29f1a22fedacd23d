//! SMS through Twilio, checked against what Twilio documents: the Messages API request
//! (path, basic auth, form fields), its error objects, and the signed inbound-message
//! webhook that lets a reply of `1A` ack the incident.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::fake_api::{Answer, FakeApi, Request, secret_file};
use crate::harness::{TestApp, eventually, history_kinds, spawn_app};

/// Generous bound for something due now (a busy 2-core CI machine).
const PROMPTLY: Duration = Duration::from_secs(5);

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "9f2c1e4b7a6d5c3e8f1a2b3c4d5e6f70";
/// tocsin's Twilio number.
const TWILIO_NUMBER: &str = "+15005550006";
const ALICE_PHONE: &str = "+15550100";
/// What the Twilio console is told to call for incoming messages.
const INBOUND_URL: &str = "https://tocsin.example.com/hooks/sms/twilio/sms";

/// alice is paged by Twilio SMS first, by the `hook` webhook only after 10 minutes.
fn config(api: &FakeApi, token_file: &str, hook_url: &str) -> String {
    format!(
        r#"
[server]
public_url = "https://tocsin.example.com/"

[notifiers.sms]
type = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token_file = "{token_file}"
from = "{TWILIO_NUMBER}"
api_url = "{api}"
timeout = "2s"
max_attempts = 2
limits = {{ enabled = false }}

[notifiers.hook]
type = "webhook"
url = "{hook_url}"
timeout = "2s"

[contacts.alice]
methods = [
  {{ notifier = "sms", to = "{ALICE_PHONE}" }},
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

/// Twilio's 201 answer: the created message resource.
fn created(to: &str, body: &str) -> Answer {
    let sid = "SM1f0e8ae6ade43cb3c0ce4525424e404f";
    Answer::json(
        201,
        json!({
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
            "date_sent": null,
            "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": TWILIO_NUMBER,
            "messaging_service_sid": null,
            "num_media": "0",
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {
                "media": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json")
            },
            "to": to,
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
        }),
    )
}

/// Twilio's error object for a `To` it cannot send to.
fn invalid_number() -> Answer {
    Answer::json(
        400,
        json!({
            "code": 21211,
            "message": format!("The 'To' number {ALICE_PHONE} is not a valid phone number."),
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        }),
    )
}

struct Setup {
    app: TestApp,
    api: FakeApi,
    hook: PageCatcher,
    _secrets: tempfile::TempDir,
}

async fn setup(first_answer: Option<Answer>) -> Setup {
    let api = FakeApi::start(created(ALICE_PHONE, "")).await;
    if let Some(a) = first_answer {
        api.answer_next(a);
    }
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

/// Fires an alert and returns the incident's id once tocsin has called Twilio.
async fn page_alice(s: &Setup) -> u64 {
    let r = s.app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.api.wait_for_requests(1, PROMPTLY).await;
    s.app.only_incident().await["id"].as_u64().unwrap()
}

/// The one value of a form field; panics when it is missing or repeated.
fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    let values: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values.len(), 1, "field {name} in {form:?}");
    values[0]
}

/// Checks one Messages API call as Twilio documents it and returns its `Body`.
fn assert_twilio_request(req: &Request, incident: u64) -> String {
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(req.query, None);
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
    assert_eq!(names, ["Body", "From", "To"], "{form:?}");
    assert_eq!(field(&form, "To"), ALICE_PHONE);
    assert_eq!(field(&form, "From"), TWILIO_NUMBER);
    let body = field(&form, "Body").to_string();
    assert!(
        body.chars().count() <= 160,
        "one segment is 160 characters at most: {} in {body:?}",
        body.chars().count()
    );
    assert!(
        body.contains(&format!("Reply {incident}A to ack")),
        "{body:?}"
    );
    body
}

/// The page to alice's first method, once its outcome is recorded.
async fn first_page_outcome(app: &TestApp, id: u64) -> Value {
    eventually("the SMS page's outcome", PROMPTLY, || async {
        let incident = app.incident(id).await;
        let page = incident["pages"]
            .as_array()?
            .iter()
            .find(|p| p["notifier"] == "sms")?
            .clone();
        (page["status"] != "pending").then_some(page)
    })
    .await
}

/// Signs a webhook request as Twilio does: base64(HMAC-SHA1(auth token, URL + every
/// parameter's name and value, sorted by name)).
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// The id Twilio gives an incoming SMS; every message has its own.
const MESSAGE_SID: &str = "SM2c2a9bf6bc4c4a1c8f0e4d1b4b9a7e11";

/// An incoming SMS the way Twilio's webhook posts it.
fn inbound_params<'a>(from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    message_params(MESSAGE_SID, from, body)
}

/// An incoming SMS with its own `MessageSid`, for a test that sends several.
fn message_params<'a>(sid: &'a str, from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", TWILIO_NUMBER),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
}

/// POSTs `params` to tocsin's Twilio webhook at `path_and_query` with `signature`.
async fn post_inbound(
    app: &TestApp,
    path_and_query: &str,
    params: &[(&str, &str)],
    signature: &str,
) -> (u16, Option<String>, String) {
    let resp = app
        .client
        .post(app.url(path_and_query))
        .header("x-twilio-signature", signature)
        .header("user-agent", "TwilioProxy/1.1")
        .form(params)
        .send()
        .await
        .expect("POST the Twilio webhook");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, content_type, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_is_sent_as_twilio_documents_it() {
    let s = setup(None).await;
    let id = page_alice(&s).await;

    let requests = s.api.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_twilio_request(&requests[0], id);

    let page = first_page_outcome(&s.app, id).await;
    assert_eq!(page["status"], "delivered", "{page}");
    assert_eq!(page["attempts"], 1, "{page}");
    assert!(s.hook.pages().is_empty(), "the webhook is not due for 10m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_rejecting_the_number_fails_over_to_the_next_method_at_once() {
    let s = setup(Some(invalid_number())).await;
    let id = page_alice(&s).await;

    let pages = s.hook.wait_for_pages(1, PROMPTLY).await;
    assert_eq!(pages[0].target(), "alice");
    assert_eq!(pages[0].incident_id(), id);

    let incident = incident_with(&s.app, id, "failover").await;
    let failover = incident["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "failover")
        .unwrap();
    assert!(
        failover["detail"].as_str().unwrap().contains("21211"),
        "the history says why: {failover}"
    );
    let page = first_page_outcome(&s.app, id).await;
    assert_eq!(page["status"], "failed", "{page}");
    assert_eq!(page["attempts"], 1, "a 400 is not retried: {page}");
    assert_eq!(s.api.requests().len(), 1, "Twilio was asked once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_500_is_retried() {
    let s = setup(Some(Answer::json(
        500,
        json!({"code": 20500, "message": "Internal Server Error", "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500}),
    )))
    .await;
    let id = page_alice(&s).await;

    let requests = s.api.wait_for_requests(2, PROMPTLY).await;
    for r in &requests {
        assert_twilio_request(r, id);
    }
    let page = first_page_outcome(&s.app, id).await;
    assert_eq!(page["status"], "delivered", "{page}");
    assert_eq!(page["attempts"], 2, "{page}");
    assert!(
        s.hook.pages().is_empty(),
        "a delivered retry needs no failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_reply_acks() {
    let s = setup(None).await;
    let id = page_alice(&s).await;

    // Twilio signs the URL exactly as configured, query string included.
    let path = "/hooks/sms/twilio/sms?source=twilio&v=1";
    let url = format!("{}?source=twilio&v=1", INBOUND_URL);
    let code = format!("{id}A");
    let params = inbound_params(ALICE_PHONE, &code);
    let signature = twilio_signature(AUTH_TOKEN, &url, &params);
    let (status, content_type, body) = post_inbound(&s.app, path, &params, &signature).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("text/xml"));
    assert_eq!(
        body,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acknowledged #{id}</Message></Response>"#
        )
    );
    let incident = s.app.incident(id).await;
    assert_eq!(incident["state"], "acknowledged", "{incident}");
    assert_eq!(incident["acked_by"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_forged_signature_acks_nothing() {
    let s = setup(None).await;
    let id = page_alice(&s).await;
    let code = format!("{id}A");
    let params = inbound_params(ALICE_PHONE, &code);
    let path = "/hooks/sms/twilio/sms";

    let wrong_key = twilio_signature("not-the-auth-token", INBOUND_URL, &params);
    // Signed for another body: the attacker replays a real signature with new content.
    let other = inbound_params(ALICE_PHONE, "ok thanks");
    let replayed = twilio_signature(AUTH_TOKEN, INBOUND_URL, &other);
    for (what, sig) in [
        ("wrong key", wrong_key.as_str()),
        ("signature of another message", replayed.as_str()),
        ("no signature", ""),
    ] {
        let (status, _, body) = post_inbound(&s.app, path, &params, sig).await;
        assert_eq!(status, 403, "{what}: {body}");
    }
    let incident = s.app.incident(id).await;
    assert_eq!(incident["state"], "triggered", "{incident}");
    assert!(
        !history_kinds(&incident).contains(&"acked".to_string()),
        "{incident}"
    );
    let metrics = s.app.metrics().await;
    assert!(
        metrics.lines().any(|l| l.contains(r#"via="twilio""#)
            && l.contains(r#"outcome="bad_signature""#)
            && l.ends_with(" 3")),
        "the refusals are counted:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_reply_replayed_after_an_unack_acks_nothing() {
    let mut s = setup(None).await;
    let id = page_alice(&s).await;
    let code = format!("{id}A");
    let params = inbound_params(ALICE_PHONE, &code);
    let signature = twilio_signature(AUTH_TOKEN, INBOUND_URL, &params);
    let path = "/hooks/sms/twilio/sms";
    let (status, _, body) = post_inbound(&s.app, path, &params, &signature).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("Acknowledged #{id}")), "{body}");
    let r = s.app.act(id, "unack", json!({"by": "bob"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // What tocsin remembers of the message survives a restart.
    s.app.restart().await;
    let metrics = s.app.metrics().await;
    assert!(
        metrics.lines().any(|l| l.contains(r#"via="twilio""#)
            && l.contains(r#"outcome="replayed""#)
            && l.ends_with(" 0")),
        "replays are counted from 0, so the first one is an increase:\n{metrics}"
    );

    // The request again, byte for byte, from whoever captured it (a proxy's log, a
    // debugging dump): Twilio's signature has no timestamp, so it is still valid.
    let (status, content_type, body) = post_inbound(&s.app, path, &params, &signature).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("text/xml"));
    assert_eq!(
        body, r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#,
        "a replay is answered nothing"
    );
    let incident = incident_with(&s.app, id, "refused").await;
    assert_eq!(incident["state"], "triggered", "{incident}");
    assert!(incident["acked_by"].is_null(), "{incident}");
    let kinds = history_kinds(&incident);
    assert_eq!(
        kinds.iter().filter(|k| *k == "acked").count(),
        1,
        "{kinds:?}"
    );
    let note = incident["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "refused")
        .unwrap();
    let detail = note["detail"].as_str().unwrap();
    assert!(
        detail.contains(MESSAGE_SID) && detail.contains("already received"),
        "{note}"
    );
    let metrics = s.app.metrics().await;
    assert!(
        metrics.lines().any(|l| l.contains(r#"via="twilio""#)
            && l.contains(r#"outcome="replayed""#)
            && l.ends_with(" 1")),
        "the replay is counted:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_from_an_unknown_number_acks_nothing() {
    let s = setup(None).await;
    let id = page_alice(&s).await;
    let code = format!("{id}A");
    let params = inbound_params("+15559876543", &code);
    let signature = twilio_signature(AUTH_TOKEN, INBOUND_URL, &params);
    let (status, content_type, body) =
        post_inbound(&s.app, "/hooks/sms/twilio/sms", &params, &signature).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("text/xml"));
    assert_eq!(
        body, r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#,
        "nothing is sent back to a stranger"
    );
    let incident = incident_with(&s.app, id, "refused").await;
    assert_eq!(incident["state"], "triggered", "{incident}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_id_spelling_alices_number_acks_nothing_and_learns_nothing() {
    let s = setup(None).await;
    let id = page_alice(&s).await;
    let code = format!("{id}A");
    // Bulk-SMS providers let a customer pick any alphanumeric sender id; Twilio hands
    // it over as `From`, and it is signed like any other message.
    let senders = ["PROMO15550100", "x+15550100y", "ALICE+1-555-0100"];
    for (n, from) in senders.iter().enumerate() {
        let sid = format!("SM{n:032x}");
        let params = message_params(&sid, from, &code);
        let signature = twilio_signature(AUTH_TOKEN, INBOUND_URL, &params);
        let (status, _, body) =
            post_inbound(&s.app, "/hooks/sms/twilio/sms", &params, &signature).await;
        assert_eq!(status, 200, "{from}: {body}");
        assert_eq!(
            body, r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#,
            "{from} is told nothing about incident {id}"
        );
    }
    let incident = eventually("three refused notes", PROMPTLY, || async {
        let incident = s.app.incident(id).await;
        let refused = history_kinds(&incident)
            .iter()
            .filter(|k| *k == "refused")
            .count();
        (refused == senders.len()).then_some(incident)
    })
    .await;
    assert_eq!(incident["state"], "triggered", "{incident}");
    assert!(incident["acked_by"].is_null(), "{incident}");
    let notes: Vec<&str> = incident["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "refused")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    for (from, note) in senders.iter().zip(&notes) {
        assert!(
            note.contains(from) && note.contains("not a phone number"),
            "{note}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_notifier_that_is_not_twilio_is_not_found() {
    let s = setup(None).await;
    let params = inbound_params(ALICE_PHONE, "1A");
    for name in ["hook", "nosuch"] {
        let url = format!("https://tocsin.example.com/hooks/sms/twilio/{name}");
        let signature = twilio_signature(AUTH_TOKEN, &url, &params);
        let path = format!("/hooks/sms/twilio/{name}");
        let (status, _, body) = post_inbound(&s.app, &path, &params, &signature).await;
        assert_eq!(status, 404, "{name}: {body}");
    }
}

/// The incident once its history has an event of `kind`.
async fn incident_with(app: &TestApp, id: u64, kind: &str) -> Value {
    eventually(
        &format!("a {kind:?} event in the history"),
        PROMPTLY,
        || async {
            let incident = app.incident(id).await;
            history_kinds(&incident)
                .iter()
                .any(|k| k == kind)
                .then_some(incident)
        },
    )
    .await
}
