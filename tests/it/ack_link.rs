//! Signed ack links: mail scanners and chat previews follow links, so only the button acks;
//! a link acks once, as the person it was sent to, and a forged one acks nothing.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

use crate::alerts::firing;
use crate::catcher::PageCatcher;
use crate::harness::{PEOPLE, TestApp, init, spawn_app, webhook_config};

const POLICY: &str = r#"
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }]
"#;

/// Starts tocsin, fires one alert, and returns the app, the catcher and the link's path
/// (`/ack/...`; the link itself names the configured public_url).
async fn paged() -> (TestApp, PageCatcher, String) {
    init();
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(
        &catcher.url(),
        &format!("{PEOPLE}{POLICY}"),
    ))
    .await;
    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    let pages = catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    let url = pages[0].body["ack_url"].as_str().unwrap().to_string();
    let path = url[url.find("/ack/").expect("a /ack/ link")..].to_string();
    (app, catcher, path)
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.client.post(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_scanner_following_the_link_acks_nothing_but_the_button_does() {
    let (app, _catcher, path) = paged().await;
    for _ in 0..3 {
        let (status, html) = get(&app, &path).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("DiskFull"), "{html}");
        assert!(html.contains("<form method=\"post\">"), "{html}");
        assert!(html.contains("as alice"), "{html}");
    }
    assert_eq!(
        app.incident(1).await["state"],
        "triggered",
        "a GET changed state"
    );
    // No other site may frame the button and trick a click.
    let r = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let (status, html) = post(&app, &path).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("#1") && html.contains("acknowledged"),
        "{html}"
    );
    let inc = app.incident(1).await;
    assert_eq!(inc["state"], "acknowledged");
    assert_eq!(inc["acked_by"], "alice");
    let actor = inc["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "acked")
        .map(|e| e["actor"].as_str().unwrap().to_string())
        .unwrap();
    assert!(actor.starts_with("alice via link "), "{actor}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_link_acks_nothing_again_even_after_an_unack() {
    let (app, _catcher, path) = paged().await;
    assert_eq!(post(&app, &path).await.0, 200);
    let r = app.act(1, "unack", json!({"by": "bob"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (status, html) = get(&app, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("already used"), "{html}");
    assert!(
        !html.contains("<form"),
        "a used link still offers the button: {html}"
    );
    let (status, html) = post(&app, &path).await;
    assert_eq!(status, 409, "{html}");
    assert_eq!(app.incident(1).await["state"], "triggered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_mangled_link_gets_a_clear_page_and_acks_nothing() {
    let (app, _catcher, path) = paged().await;
    let token = path.trim_start_matches("/ack/");
    let (_, mac) = token.split_once('.').unwrap();
    // Someone edits the payload to ack incident 1 as somebody else, keeping the MAC.
    let far_future = 4_102_444_800u64;
    let edited = format!(
        "/ack/{}.{mac}",
        B64.encode(format!("1|{far_future}|carol|1"))
    );
    for bad in [edited.as_str(), "/ack/garbage", "/ack/x.y"] {
        let (status, html) = post(&app, bad).await;
        assert_eq!(status, 400, "{bad}: {html}");
        assert!(html.contains("does not work"), "{html}");
        assert!(html.contains("Nothing was acknowledged"), "{html}");
    }
    assert_eq!(app.incident(1).await["state"], "triggered");
}
