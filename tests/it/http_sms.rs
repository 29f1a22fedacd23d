//! SMS through a templated HTTP gateway: the request is exactly what the templates say,
//! with alert text that cannot break out of where it stands, and only the configured
//! statuses count as sent.

use std::time::Duration;

use serde_json::{Value, json};

use crate::alerts;
use crate::fake_api::{Answer, FakeApi, secret_file};
use crate::harness::{TestApp, eventually, spawn_app};

/// Generous bound for something due now (a busy 2-core CI machine).
const PROMPTLY: Duration = Duration::from_secs(5);

const GATEWAY_TOKEN: &str = "gw-7c1d9e2f";
const ALICE_PHONE: &str = "+15550100";

/// alice is paged through the `gw` http_sms notifier; `extra` adds keys to it.
fn config(gateway: &FakeApi, token_file: &str, extra: &str) -> String {
    format!(
        r#"
[notifiers.gw]
type = "http_sms"
method = "PUT"
url = "{base}/v1/sms/{{to}}?ref={{incident}}-{{page_id}}"
headers = {{ Authorization = "Bearer {{token}}", X-Page-Id = "{{page_id}}" }}
body = {{ json = '{{"to": "{{to}}", "text": "{{text}}", "incident": {{incident}}}}' }}
token_file = "{token_file}"
timeout = "2s"
max_attempts = 3
limits = {{ enabled = false }}
{extra}

[contacts.alice]
methods = [{{ notifier = "gw", to = "{ALICE_PHONE}" }}]

[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]

[[routes]]
policy = "default"
"#,
        base = gateway.url()
    )
}

/// Starts tocsin paging alice through `gateway`.
async fn start(gateway: &FakeApi, extra: &str) -> (TestApp, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secret_file(secrets.path(), "gw-token", GATEWAY_TOKEN);
    let app = spawn_app(&config(gateway, &token_file, extra)).await;
    (app, secrets)
}

/// The page once its outcome is recorded.
async fn page_outcome(app: &TestApp) -> (u64, Value) {
    eventually("the SMS page's outcome", PROMPTLY, || async {
        let all = app.incidents(None).await;
        let id = all.first()?["id"].as_u64()?;
        let incident = app.incident(id).await;
        let page = incident["pages"].as_array()?.first()?.clone();
        (page["status"] != "pending").then_some((id, page))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_gets_exactly_the_templated_request_whatever_the_alert_says() {
    let gateway = FakeApi::start(Answer::text(200, "OK: queued")).await;
    let (app, _secrets) = start(&gateway, "").await;

    // A summary with a quote, a backslash, a newline and an ampersand.
    let mut payload = alerts::firing("DiskFull");
    payload["commonAnnotations"] = json!({"summary": "disk \"data\" full\non db1 \\ & <tmp>"});
    let r = app.post_alerts(&payload).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let requests = gateway.wait_for_requests(1, PROMPTLY).await;
    let (id, page) = page_outcome(&app).await;
    assert_eq!(page["status"], "delivered", "{page}");
    let page_id = page["id"].as_u64().unwrap();

    assert_eq!(requests.len(), 1, "{requests:#?}");
    let req = &requests[0];
    assert_eq!(req.method, "PUT");
    assert_eq!(req.path, "/v1/sms/%2B15550100", "the + is percent-encoded");
    assert_eq!(
        req.query.as_deref(),
        Some(format!("ref={id}-{page_id}").as_str())
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {GATEWAY_TOKEN}").as_str())
    );
    assert_eq!(req.header("x-page-id"), Some(page_id.to_string().as_str()));
    assert_eq!(req.header("content-type"), Some("application/json"));

    let raw = req.text();
    assert!(!raw.contains('\n'), "no raw newline in the body: {raw}");
    let body = req.json();
    let fields = body.as_object().unwrap();
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["incident", "text", "to"],
        "{body}"
    );
    assert_eq!(body["to"], ALICE_PHONE);
    assert_eq!(body["incident"], id);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains(r#"disk "data" full on db1 \ & <tmp>"#),
        "the title arrives intact, its newline a space: {text:?}"
    );
    assert!(!text.contains(['\n', '\r']), "{text:?}");
    assert!(text.contains(&format!("Reply {id}A to ack")), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_from_a_gateway_that_promises_202_is_a_failure() {
    let gateway = FakeApi::start(Answer::json(200, json!({"error": "queue full"}))).await;
    let (app, _secrets) = start(&gateway, "success_status = [202]").await;

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (_, page) = page_outcome(&app).await;
    assert_eq!(page["status"], "failed", "{page}");
    assert_eq!(page["attempts"], 1, "the answer will not change: {page}");
    let error = page["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("200") && error.contains("success_status"),
        "{error}"
    );
    assert_eq!(gateway.requests().len(), 1);
}
