//! A web page open in the browser of someone who can reach tocsin (a laptop or a jump box
//! on its host: by default tocsin listens on loopback without credentials) tries to act
//! on incidents: a `text/plain` POST to the API, which a page may send without asking the
//! browser first; a form posted from another site, or from a plain-http page under
//! tocsin's own name; the same from a DNS name of the attacker's that now resolves to
//! tocsin (rebinding); a heartbeat kept green from a page. None of it acts, and tocsin's
//! own pages, the CLI, Alertmanager and cron jobs still do.

use std::time::Duration;

use serde_json::Value;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::harness::{
    PEOPLE, Reply, TestApp, eventually, history_kinds, spawn_app, webhook_config,
};

const POLICY: &str = r#"
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }]
"#;

/// A site that is not tocsin.
const EVIL: &str = "https://evil.example";

/// tocsin with `server` prepended to its config, one incident paged to alice, and the
/// path of the ack link in her page.
async fn paged(server: &str) -> (TestApp, PageCatcher, u64, String) {
    let catcher = PageCatcher::start().await;
    let config = format!(
        "{server}\n{}",
        webhook_config(&catcher.url(), &format!("{PEOPLE}{POLICY}"))
    );
    let app = spawn_app(&config).await;
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pages = catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    let url = pages[0].body["ack_url"].as_str().unwrap().to_string();
    let ack = url[url.find("/ack/").expect("a /ack/ link")..].to_string();
    let id = app.only_incident().await["id"].as_u64().unwrap();
    (app, catcher, id, ack)
}

/// A client that shows redirects instead of following them.
fn browser_like() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A urlencoded form POST to `path` with `headers` (`host`, `origin`, `referer`,
/// `sec-fetch-site` as a browser would send them); the status and the body.
async fn form(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, String) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut req = browser_like()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("POST form");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// A POST of `body` to `path` with `content_type` (none when `None`) and `headers`.
async fn post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = browser_like().post(app.url(path)).body(body.to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Reply::from(req.send().await.expect("POST")).await
}

fn acked_events(incident: &Value) -> usize {
    history_kinds(incident)
        .iter()
        .filter(|k| *k == "acked")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_posting_text_plain_to_the_api_resolves_nothing() {
    let (app, _catcher, id, _) = paged("").await;
    let resolve = format!("/api/v1/incidents/{id}/resolve");
    // What `fetch(url, {method: "POST", mode: "no-cors", body})` and a form send
    // without asking the browser's permission first (no CORS preflight).
    for content_type in [
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let r = post(
            &app,
            &resolve,
            content_type,
            r#"{"by":"csrf"}"#,
            &[("origin", EVIL)],
        )
        .await;
        assert_eq!(r.status, 415, "{content_type:?}: {}", r.body);
        assert!(
            r.error().contains("Content-Type: application/json"),
            "{content_type:?}: the error says what to send: {}",
            r.error()
        );
    }
    assert_eq!(app.incident(id).await["state"], "triggered");

    // Nor can such a page post alerts, or make tocsin re-read its config.
    let forged = serde_json::to_string(&alerts::firing("Forged")).unwrap();
    let r = post(
        &app,
        "/hooks/alertmanager",
        Some("text/plain"),
        &forged,
        &[],
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    assert_eq!(app.incidents(None).await.len(), 1, "no incident opened");
    let r = post(&app, "/-/reload", Some("text/plain"), "", &[]).await;
    assert_eq!(r.status, 415, "{}", r.body);

    // JSON, declared as the CLI, `curl --json` and Alertmanager declare it, still acts.
    let r = post(
        &app,
        &resolve,
        Some("application/json; charset=utf-8"),
        r#"{"by":"alice"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.incident(id).await["state"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_a_dns_name_rebound_to_tocsin_acts_on_nothing() {
    let (app, _catcher, id, ack) = paged("").await;
    // evil.example's page, after its name was made to resolve to 127.0.0.1: to the
    // browser, the page and tocsin are one origin.
    let rebound = format!("rebind.evil.example:{}", app.addr.port());
    let origin = format!("http://{rebound}");
    let as_rebound = [("host", rebound.as_str()), ("origin", origin.as_str())];

    let (status, body) = form(
        &app,
        &format!("/incidents/{id}/ack"),
        &[("by", "rebinder")],
        &as_rebound,
    )
    .await;
    assert_eq!(status, 421, "the web form: {body}");
    assert!(body.contains("rebind.evil.example"), "{body}");
    let (status, body) = form(&app, &ack, &[], &as_rebound).await;
    assert_eq!(status, 421, "the ack link's button: {body}");
    // Same-origin to the browser, so even a JSON body needs no permission.
    let r = post(
        &app,
        &format!("/api/v1/incidents/{id}/ack"),
        Some("application/json"),
        r#"{"by":"rebinder"}"#,
        &as_rebound,
    )
    .await;
    assert_eq!(r.status, 421, "the API: {}", r.body);
    assert!(r.error().contains("public_url"), "{}", r.error());

    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "triggered");
    assert_eq!(acked_events(&incident), 0, "{:?}", history_kinds(&incident));

    // Under the address it listens on, the same form from tocsin's page acks.
    let own = format!("http://{}", app.addr);
    let (status, body) = form(
        &app,
        &format!("/incidents/{id}/ack"),
        &[("by", "erin")],
        &[("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(app.incident(id).await["acked_by"], "erin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_from_another_origin_is_refused_even_under_tocsins_own_name() {
    let server = "[server]\npublic_url = \"https://tocsin.example.com\"";
    let (app, _catcher, id, ack) = paged(server).await;
    let path = format!("/incidents/{id}/ack");
    let host = ("host", "tocsin.example.com");
    for (what, headers) in [
        ("another site", vec![host, ("origin", EVIL)]),
        (
            "tocsin's name over plain http (a network that answers for it)",
            vec![host, ("origin", "http://tocsin.example.com")],
        ),
        (
            "another site whose browser sent only a Referer",
            vec![host, ("referer", "https://evil.example/cute-cats")],
        ),
        ("a sandboxed frame", vec![host, ("origin", "null")]),
        (
            "another site, said by the browser",
            vec![host, ("sec-fetch-site", "cross-site")],
        ),
    ] {
        let (status, body) = form(&app, &path, &[("by", "mallory")], &headers).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert!(body.contains("another site"), "{what}: {body}");
    }
    let (status, body) = form(&app, &ack, &[], &[host, ("origin", EVIL)]).await;
    assert_eq!(status, 403, "the ack link's button: {body}");
    let r = post(
        &app,
        &format!("/api/v1/incidents/{id}/ack"),
        Some("application/json"),
        r#"{"by":"mallory"}"#,
        &[host, ("origin", EVIL)],
    )
    .await;
    assert_eq!(r.status, 403, "the API: {}", r.body);
    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "triggered");
    assert_eq!(acked_events(&incident), 0, "{:?}", history_kinds(&incident));

    // tocsin's own page, through its https proxy (which passes the Host on), acks; so
    // does the same page on a browser that sends only a Referer.
    let (status, body) = form(
        &app,
        &path,
        &[("by", "erin")],
        &[host, ("origin", "https://tocsin.example.com")],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(app.incident(id).await["acked_by"], "erin");
    let (status, body) = form(
        &app,
        &format!("/incidents/{id}/unack"),
        &[("by", "erin")],
        &[
            host,
            (
                "referer",
                &format!("https://tocsin.example.com/incidents/{id}"),
            ),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(app.incident(id).await["state"], "triggered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_cannot_keep_a_heartbeat_green_but_a_cron_job_can() {
    let catcher = PageCatcher::start().await;
    let config = format!(
        "[heartbeats.backup]\nperiod = \"1h\"\n{}",
        webhook_config(&catcher.url(), &format!("{PEOPLE}{POLICY}"))
    );
    let app = spawn_app(&config).await;
    let pings = || async {
        let v: Value = app
            .client
            .get(app.url("/api/v1/channels"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "heartbeat:backup")
            .expect("the heartbeat is a channel")["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let url = app.url("/hooks/heartbeat/backup");

    // A page's `fetch` in no-cors mode, and an <img src> pointing at the URL.
    let r = post(
        &app,
        "/hooks/heartbeat/backup",
        Some("text/plain;charset=UTF-8"),
        "ping",
        &[("origin", EVIL), ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let img = app
        .client
        .get(&url)
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-dest", "image")
        .send()
        .await
        .unwrap();
    assert_eq!(img.status(), 403);
    assert_eq!(
        pings().await,
        "waiting for the first ping",
        "nothing counted"
    );

    // A cron job: `curl -X POST URL` (no body, no type), `curl -d '' URL` (an empty
    // form), `curl URL`.
    let r = post(&app, "/hooks/heartbeat/backup", None, "", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &app,
        "/hooks/heartbeat/backup",
        Some("application/x-www-form-urlencoded"),
        "",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
    eventually("the ping counted", Duration::from_secs(5), || async {
        pings().await.starts_with("pinged at ").then_some(())
    })
    .await;
}
