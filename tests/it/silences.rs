//! Known noise, silenced through the API or the `/silences` page, opens no incident and
//! pages nobody while the silence lasts; the same alert after the silence is expired
//! pages as usual. (The CLI's test is in `cli.rs`.)

use std::time::Duration;

use serde_json::json;

use crate::alerts;
use crate::browser::Browser;
use crate::catcher::PageCatcher;
use crate::fake_api::secret_file;
use crate::harness::{page_alice, spawn_app, webhook_config};
use crate::web::{assert_fits_a_phone, get, hidden_field, post_form, save_png, session_cookie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_flapping_disk_opens_nothing_until_the_silence_is_expired() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;

    let r = app
        .client
        .post(app.url("/api/v1/silences"))
        .json(
            &json!({"matchers": ["alertname=\"DiskFull\"", "instance=~\"host[0-9]\""],
                      "for": "2h", "comment": "disk on host1 flaps, ticket OPS-12", "by": "alice"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap();

    let listed: serde_json::Value = app
        .client
        .get(app.url("/api/v1/silences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = &listed["silences"][0];
    assert_eq!(s["id"], id, "{listed}");
    assert_eq!(s["comment"], "disk on host1 flaps, ticket OPS-12");
    assert_eq!(s["by"], "alice");
    assert_eq!(s["active"], true);

    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        app.incidents(None).await.is_empty(),
        "a silenced alert opened an incident"
    );
    assert_eq!(app.metric("tocsin_alerts_silenced_total").await, Some(1.0));
    catcher
        .assert_quiet(0, Duration::from_millis(300), "silenced: nobody is paged")
        .await;

    let r = app
        .client
        .delete(app.url(&format!("/api/v1/silences/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.incidents(None).await.len(), 1);
    catcher.wait_for_pages(1, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_that_would_hide_everything_is_refused_with_the_reason() {
    let app = spawn_app(&webhook_config("http://127.0.0.1:9/", &page_alice())).await;
    let r = app
        .client
        .post(app.url("/api/v1/silences"))
        .json(&json!({"matchers": ["severity!=\"critical\""], "for": "1h",
                      "comment": "quiet please", "by": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("would cover everything"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_made_on_the_silences_page_keeps_the_disk_quiet_until_its_expire_button() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;
    let page = get(&app, "/silences", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("href=\"/silences\""),
        "the nav links the page"
    );
    let form = [
        (
            "matchers",
            "alertname=\"DiskFull\"\r\ninstance=~\"host[0-9]\"\r\n",
        ),
        ("for", "2h"),
        ("to", ""),
        ("comment", "disk on host1 flaps, OPS-12"),
        ("by", "dave"),
    ];

    // From another site the form changes nothing.
    let forged = post_form(
        &app,
        "/silences",
        &form,
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        get(&app, "/silences", None)
            .await
            .body
            .contains("<p>None.</p>"),
        "a cross-site form made a silence"
    );

    let made = post_form(&app, "/silences", &form, &[]).await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(made.location.as_deref(), Some("/silences"));
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        app.incidents(None).await.is_empty(),
        "an alert the page's silence matches opened an incident"
    );
    assert_eq!(app.metric("tocsin_alerts_silenced_total").await, Some(1.0));

    let page = get(&app, "/silences", None).await;
    for shown in [
        "<code>alertname=&quot;DiskFull&quot;</code><br><code>instance=~&quot;host[0-9]&quot;</code>",
        "disk on host1 flaps, OPS-12",
        "dave",
        "action=\"/silences/1/expire\"",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }

    // Matchers that match an alert without labels would hide everything: the page
    // says so, and nothing is made.
    let refused = post_form(
        &app,
        "/silences",
        &[
            ("matchers", "severity!=\"critical\""),
            ("for", "1h"),
            ("comment", "quiet please"),
            ("by", "mallory"),
        ],
        &[],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("would cover everything"),
        "{}",
        refused.body
    );
    assert!(!get(&app, "/silences", None).await.body.contains("mallory"));

    let expired = post_form(&app, "/silences/1/expire", &[("by", "dave")], &[]).await;
    assert_eq!(expired.status, 303, "{}", expired.body);
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.incidents(None).await.len(), 1);
    catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    let again = post_form(&app, "/silences/1/expire", &[], &[]).await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(again.body.contains("no silence 1"), "{}", again.body);
}

/// In a phone-sized Chromium: the page fits, and its form, typed in and sent as the
/// browser sends it, makes a silence that keeps the disk quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_silence_form_works_from_a_phone() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/silences")).await;
    assert_fits_a_phone(&browser, "/silences").await;
    for (css, text) in [
        ("textarea#silence-matchers", "alertname=\"DiskFull\""),
        ("input#silence-for", "2h"),
        ("input#silence-comment", "disk on host1 flaps, OPS-12"),
        ("input#silence-by", "dana"),
    ] {
        let e = browser.find(css).await;
        browser.type_into(&e, text).await;
    }
    let make = browser
        .find_xpath("//button[normalize-space()='Make the silence']")
        .await;
    browser.click(&make).await;
    browser
        .find_xpath("//button[normalize-space()='Expire']")
        .await;
    assert!(browser.current_url().await.ends_with("/silences"));
    assert_fits_a_phone(&browser, "/silences with a silence").await;
    save_png("silences.png", &browser.screenshot().await);
    browser.quit().await;
    let r = app.post_alerts(&alerts::firing("DiskFull")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(app.incidents(None).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_configured_a_silence_needs_a_login_that_may_act() {
    const TOKEN: &str = "silences-master-token-0123";
    const READ: &str = "silences-wallboard-token-0123";
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, secret: &str| secret_file(dir.path(), name, &format!("{secret}\n"));
    let server = format!(
        "[server]\nauth_token_file = \"{}\"\n[server.tokens.wallboard]\ntoken_file = \"{}\"\nscopes = [\"read\"]\n",
        file("token", TOKEN),
        file("read", READ),
    );
    let app = spawn_app(&format!(
        "{server}\n{}",
        webhook_config("http://127.0.0.1:9/unused", &page_alice())
    ))
    .await;
    let page = get(&app, "/silences", None).await;
    assert_eq!(page.location.as_deref(), Some("/login"), "{}", page.body);

    let form = [
        ("matchers", "alertname=\"DiskFull\""),
        ("for", "2h"),
        ("comment", "disk flaps"),
        ("by", "dave"),
    ];

    // A wallboard's login looks and is offered no form; a forged post changes nothing.
    let wallboard = session_cookie(&post_form(&app, "/login", &[("token", READ)], &[]).await);
    let page = get(&app, "/silences", Some(&wallboard)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("Make the silence"), "{}", page.body);
    let csrf = hidden_field(&page.body, "csrf");
    let h = [
        ("cookie", wallboard.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let looked = post_form(
        &app,
        "/silences",
        &[&form[..], &[("csrf", csrf.as_str())]].concat(),
        &h,
    )
    .await;
    assert_eq!(looked.status, 403, "{}", looked.body);

    let login = session_cookie(&post_form(&app, "/login", &[("token", TOKEN)], &[]).await);
    let page = get(&app, "/silences", Some(&login)).await;
    let csrf = hidden_field(&page.body, "csrf");
    let h = [
        ("cookie", login.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let stale = post_form(
        &app,
        "/silences",
        &[&form[..], &[("csrf", "forged")]].concat(),
        &h,
    )
    .await;
    assert_eq!(stale.status, 403, "{}", stale.body);
    let made = post_form(
        &app,
        "/silences",
        &[&form[..], &[("csrf", csrf.as_str())]].concat(),
        &h,
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.body);

    let listed: serde_json::Value = app
        .client
        .get(app.url("/api/v1/silences"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all = listed["silences"].as_array().unwrap();
    assert_eq!(all.len(), 1, "only the acting login made one: {listed}");
    assert_eq!(all[0]["by"], "dave");
}
