//! The web view: an incident paged from the webhook is acknowledged by clicking in a real
//! headless Chromium (a phone-sized window), and the guards around the buttons hold:
//! a GET changes nothing, a cross-site post is refused, with credentials configured only
//! a logged-in session with its CSRF value acts, and markup from alerts is text.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::alerts;
use crate::browser::{Browser, PHONE_WIDTH};
use crate::catcher::PageCatcher;
use crate::harness::{PEOPLE, TestApp, eventually, history_kinds, spawn_app, webhook_config};

const POLICY: &str = r#"
[policies.default]
steps = [{ after = "0s", notify = ["alice"] }]
"#;

const TOKEN: &str = "web-s3cret-token";

/// tocsin without credentials, with one alert paged to alice.
async fn paged(payload: &Value) -> (TestApp, PageCatcher, u64) {
    paged_with("", None, payload).await
}

/// Like [`paged`] with `server` prepended to the config (a `[server]` section) and the
/// webhook sent with `authorization`.
async fn paged_with(
    server: &str,
    authorization: Option<String>,
    payload: &Value,
) -> (TestApp, PageCatcher, u64) {
    let catcher = PageCatcher::start().await;
    let config = format!(
        "{server}\n{}",
        webhook_config(&catcher.url(), &format!("{PEOPLE}{POLICY}"))
    );
    let mut app = spawn_app(&config).await;
    app.authorization = authorization;
    let r = app.post_alerts(payload).await;
    assert_eq!(r.status, 200, "{}", r.body);
    catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    let id = app.only_incident().await["id"].as_u64().unwrap();
    // Settled: the page's outcome is in the history before a test compares histories.
    eventually(
        "the page's delivery in the history",
        Duration::from_secs(5),
        || async {
            history_kinds(&app.incident(id).await)
                .contains(&"page_delivered".to_string())
                .then_some(())
        },
    )
    .await;
    (app, catcher, id)
}

/// A client that shows redirects instead of following them.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub(crate) struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Vec<String>,
    pub content_type: String,
    pub body: String,
}

pub(crate) async fn answer(resp: reqwest::Response) -> Answer {
    let h = resp.headers();
    let text = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Answer {
        status: resp.status().as_u16(),
        location: text("location"),
        set_cookie: h
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect(),
        content_type: text("content-type").unwrap_or_default(),
        body: resp.text().await.unwrap_or_default(),
    }
}

pub(crate) async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = no_redirects().get(app.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    answer(req.send().await.expect("GET")).await
}

/// A form post as a browser on tocsin's own page sends it (`Sec-Fetch-Site: same-origin`)
/// unless `headers` say otherwise.
pub(crate) async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = no_redirects()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if !headers
        .iter()
        .any(|(k, _)| k.starts_with("sec-fetch") || *k == "origin")
    {
        req = req
            .header("sec-fetch-site", "same-origin")
            .header("origin", format!("http://{}", app.addr));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().await.expect("POST")).await
}

/// Where the test's screenshots go.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

pub(crate) fn save_png(name: &str, png: &[u8]) -> PathBuf {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{name}: the screenshot is not a PNG"
    );
    assert!(
        png.len() > 1024,
        "{name}: the screenshot is only {} bytes",
        png.len()
    );
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// A page that keeps replacing the element a test reads, as a click that navigates does:
/// for half a second `p#state` is swapped for a fresh copy every few milliseconds, then
/// it settles on its final text. Finding it and reading it are two WebDriver calls, and
/// in between the element found is often gone ("stale element reference"): the helpers
/// must look again, not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_helpers_look_again_when_the_page_replaces_what_they_found() {
    let browser = Browser::start().await;
    browser.goto("about:blank").await;
    browser
        .execute(
            r#"
            document.body.innerHTML = '<p id="state">loading</p><input id="by" value="web">';
            const swap = (text) => {
                for (const id of ["state", "by"]) {
                    const old = document.getElementById(id);
                    const fresh = old.cloneNode(true);
                    if (id === "state") fresh.textContent = text;
                    old.replaceWith(fresh);
                }
            };
            const busy = setInterval(() => swap("loading"), 2);
            setTimeout(() => { clearInterval(busy); swap("ready"); }, 500);
            "#,
        )
        .await;
    browser.wait_for_text("p#state", "ready").await;
    assert_eq!(browser.text_of("p#state").await, "ready");
    assert_eq!(browser.value_of("input#by").await, "web");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_from_the_webhook_is_acked_from_the_web_page() {
    let started = Instant::now();
    let (app, _catcher, id) = paged(&alerts::firing("DiskFull")).await;
    let title = app.incident(id).await["title"]
        .as_str()
        .unwrap()
        .to_string();

    let browser = Browser::start().await;
    let browser_up = started.elapsed();
    browser.goto(&app.url("/")).await;
    let row_text = browser
        .text_of_xpath(&format!("//tr[td/a[@href='/incidents/{id}']]"))
        .await;
    assert!(
        row_text.contains(&title),
        "the list's row for #{id} does not show its title {title:?}: {row_text:?}"
    );
    assert!(
        row_text.contains("triggered"),
        "the list's row for #{id} does not say triggered: {row_text:?}"
    );
    assert_fits_a_phone(&browser, "/").await;
    let index_png = save_png("index.png", &browser.screenshot().await);

    let link = browser
        .find(&format!("td.title a[href='/incidents/{id}']"))
        .await;
    browser.click(&link).await;
    let state = "dl.facts dd:first-of-type";
    browser.wait_for_text(state, "triggered").await;
    let h1 = browser.text_of("h1").await;
    assert!(h1.contains(&title), "{h1:?}");
    assert_eq!(
        browser.value_of("input#by").await,
        "web",
        "the name field's default"
    );
    let by = browser.find("input#by").await;
    browser.type_into(&by, "dana").await;
    let ack = browser
        .find_xpath("//button[normalize-space()='Acknowledge']")
        .await;
    browser.click(&ack).await;

    // The page after pressing Acknowledge (Post/Redirect/Get).
    browser.wait_for_text(state, "acknowledged").await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with(&format!("/incidents/{id}")),
        "Post/Redirect/Get ends on the incident page"
    );
    assert_eq!(
        browser.value_of("input#by").await,
        "dana",
        "the name is remembered for the next form"
    );
    browser
        .find_xpath("//button[normalize-space()='Unacknowledge']")
        .await;
    assert_fits_a_phone(&browser, "the incident page").await;
    let incident_png = save_png("incident.png", &browser.screenshot().await);
    browser.quit().await;

    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "acknowledged");
    assert_eq!(incident["acked_by"], "dana");
    let acked = incident["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "acked")
        .unwrap_or_else(|| panic!("no acked event: {:?}", history_kinds(&incident)));
    assert_eq!(acked["actor"], "dana via web");
    eprintln!(
        "browser test: {:?} in all ({browser_up:?} to a ready browser); screenshots {} and {}",
        started.elapsed(),
        index_png.display(),
        incident_png.display()
    );
}

pub(crate) async fn assert_fits_a_phone(browser: &Browser, what: &str) {
    let (viewport, content) = browser.widths().await;
    assert_eq!(
        viewport,
        u64::from(PHONE_WIDTH),
        "the viewport meta tag makes the page as wide as the phone"
    );
    assert!(
        content <= viewport,
        "{what} is {content} px wide on a {viewport} px phone: the whole page scrolls sideways"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looking_at_the_web_pages_changes_nothing() {
    let (app, _catcher, id) = paged(&alerts::firing("DiskFull")).await;
    let before = history_kinds(&app.incident(id).await);
    for path in [
        "/".to_string(),
        "/?state=resolved".to_string(),
        format!("/incidents/{id}"),
        "/silences".to_string(),
        "/login".to_string(),
    ] {
        let a = get(&app, &path, None).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        assert!(a.content_type.starts_with("text/html"), "GET {path}");
    }
    for action in ["ack", "unack", "resolve"] {
        let a = get(&app, &format!("/incidents/{id}/{action}"), None).await;
        assert_eq!(a.status, 405, "GET /incidents/{id}/{action} must not act");
    }
    let a = get(&app, "/silences/1/expire", None).await;
    assert_eq!(a.status, 405, "GET /silences/1/expire must not act");
    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "triggered");
    assert_eq!(
        history_kinds(&incident),
        before,
        "a GET changed the history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_post_is_refused_and_acks_nothing() {
    let (app, _catcher, id) = paged(&alerts::firing("DiskFull")).await;
    let path = format!("/incidents/{id}/ack");
    let evil = [("by", "mallory")];
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://evil.test"),
        ],
        vec![("origin", "http://evil.test")],
    ] {
        let a = post_form(&app, &path, &evil, &headers).await;
        assert_eq!(a.status, 403, "{headers:?}: {}", a.body);
        assert!(a.body.contains("another site"), "{}", a.body);
    }
    assert_eq!(app.incident(id).await["state"], "triggered");

    // The same post from tocsin's own page acks, and answers with a redirect to the page.
    let a = post_form(&app, &path, &[("by", "erin")], &[]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.location.as_deref(),
        Some(format!("/incidents/{id}").as_str())
    );
    assert!(
        a.set_cookie
            .iter()
            .any(|c| c.starts_with("tocsin_name=erin;")),
        "{:?}",
        a.set_cookie
    );
    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "acknowledged");
    assert_eq!(incident["acked_by"], "erin");

    // A refused action (unack, then unack again) says so and changes nothing.
    let unack = format!("/incidents/{id}/unack");
    assert_eq!(post_form(&app, &unack, &[], &[]).await.status, 303);
    let a = post_form(&app, &unack, &[], &[]).await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("not acknowledged"), "{}", a.body);
    assert_eq!(app.incident(id).await["state"], "triggered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_configured_only_a_logged_in_form_acts() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let server = format!("[server]\nauth_token_file = \"{}\"", token_file.display());
    let (app, _catcher, id) = paged_with(
        &server,
        Some(format!("Bearer {TOKEN}")),
        &alerts::firing("DiskFull"),
    )
    .await;
    let path = format!("/incidents/{id}/ack");

    // Nothing is shown before a login: the pages name contacts and their numbers.
    for path in [format!("/incidents/{id}"), "/".to_string()] {
        let page = get(&app, &path, None).await;
        assert_eq!(page.status, 303, "{path}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/login"), "{path}");
        assert!(!page.body.contains("DiskFull"), "{path}: {}", page.body);
    }

    let a = post_form(&app, &path, &[("by", "mallory")], &[]).await;
    assert!(matches!(a.status, 401 | 403), "{} {}", a.status, a.body);

    let login = get(&app, "/login", None).await;
    assert!(login.body.contains("name=\"token\""), "{}", login.body);
    assert!(
        login.body.contains("<label for=\"token\">"),
        "{}",
        login.body
    );
    let wrong = post_form(&app, "/login", &[("token", "guess")], &[]).await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(wrong.set_cookie.is_empty(), "{:?}", wrong.set_cookie);
    let cross = post_form(
        &app,
        "/login",
        &[("token", TOKEN)],
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(cross.status, 403);
    assert!(cross.set_cookie.is_empty(), "{:?}", cross.set_cookie);

    let ok = post_form(&app, "/login", &[("token", TOKEN)], &[]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/"));
    let set = ok
        .set_cookie
        .iter()
        .find(|c| c.starts_with("tocsin_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", ok.set_cookie));
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let cookie = set.split(';').next().unwrap().to_string();

    // A session without the page's CSRF value, or with a made-up one, is not enough.
    for form in [
        vec![("by", "mallory")],
        vec![("by", "mallory"), ("csrf", "x.y")],
    ] {
        let a = post_form(&app, &path, &form, &[("cookie", &cookie)]).await;
        assert_eq!(a.status, 403, "{form:?}: {}", a.body);
    }
    // A forged cookie is no session.
    let forged = post_form(
        &app,
        &path,
        &[("by", "mallory")],
        &[("cookie", "tocsin_session=MXwx.AAAA")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(app.incident(id).await["state"], "triggered");

    // Logged in, the page has the buttons and the form's CSRF value; posting it acts.
    let page = get(&app, &format!("/incidents/{id}"), Some(&cookie)).await;
    assert!(page.body.contains("Acknowledge</button>"), "{}", page.body);
    let csrf = hidden_field(&page.body, "csrf");
    let mut same_origin = vec![
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let a = post_form(
        &app,
        &path,
        &[("by", "frank"), ("csrf", &csrf)],
        &same_origin,
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let incident = app.incident(id).await;
    assert_eq!(incident["state"], "acknowledged");
    assert_eq!(incident["acked_by"], "frank");

    // Even with the session and its CSRF value, a post from another site is refused.
    same_origin[1] = ("sec-fetch-site", "cross-site");
    let resolve = format!("/incidents/{id}/resolve");
    let a = post_form(&app, &resolve, &[("csrf", &csrf)], &same_origin).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(app.incident(id).await["state"], "acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_basic_auth_configured_the_login_takes_the_user_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "hunter2\n").unwrap();
    let server = format!(
        "[server.basic_auth]\nusername = \"ops\"\npassword_file = \"{}\"",
        password_file.display()
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops:hunter2")
    );
    let (app, _catcher, id) = paged_with(&server, Some(basic), &alerts::firing("DiskFull")).await;

    let login = get(&app, "/login", None).await;
    for field in ["name=\"username\"", "name=\"password\""] {
        assert!(login.body.contains(field), "{}", login.body);
    }
    assert!(!login.body.contains("name=\"token\""), "{}", login.body);
    let wrong = post_form(
        &app,
        "/login",
        &[("username", "ops"), ("password", "guess")],
        &[],
    )
    .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(wrong.set_cookie.is_empty(), "{:?}", wrong.set_cookie);

    let ok = post_form(
        &app,
        "/login",
        &[("username", "ops"), ("password", "hunter2")],
        &[],
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = session_cookie(&ok);
    let page = get(&app, &format!("/incidents/{id}"), Some(&cookie)).await;
    let csrf = hidden_field(&page.body, "csrf");
    let a = post_form(
        &app,
        &format!("/incidents/{id}/resolve"),
        &[("by", "gina"), ("csrf", &csrf)],
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(app.incident(id).await["state"], "resolved");

    // Logging out forgets the cookie.
    let out = post_form(&app, "/logout", &[], &[("cookie", &cookie)]).await;
    assert_eq!(out.status, 303);
    assert!(
        out.set_cookie
            .iter()
            .any(|c| c.starts_with("tocsin_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        out.set_cookie
    );
}

/// The `tocsin_session=...` pair a login's answer sets, to send back as a cookie.
pub(crate) fn session_cookie(login: &Answer) -> String {
    login
        .set_cookie
        .iter()
        .find(|c| c.starts_with("tocsin_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", login.set_cookie))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// A dashboard's read-only token logs in to look; the buttons are not shown, and a
/// post made anyway (with the session's own CSRF value) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_logs_in_to_look_but_cannot_act() {
    const READ: &str = "wallboard-token-0123456789";
    const HOOKS: &str = "alertmanager-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, secret: &str| {
        crate::fake_api::secret_file(dir.path(), name, &format!("{secret}\n"))
    };
    let server = format!(
        "[server]\nauth_token_file = \"{}\"\n[server.tokens.wallboard]\ntoken_file = \"{}\"\nscopes = [\"read\"]\n[server.tokens.am]\ntoken_file = \"{}\"\nscopes = [\"hooks\"]",
        file("token", TOKEN),
        file("read", READ),
        file("hooks", HOOKS),
    );
    let (app, _catcher, id) = paged_with(
        &server,
        Some(format!("Bearer {TOKEN}")),
        &alerts::firing("DiskFull"),
    )
    .await;

    let hooks = post_form(&app, "/login", &[("token", HOOKS)], &[]).await;
    assert_eq!(hooks.status, 403, "{}", hooks.body);
    assert!(hooks.set_cookie.is_empty(), "{:?}", hooks.set_cookie);
    assert!(hooks.body.contains("read scope"), "{}", hooks.body);

    let ok = post_form(&app, "/login", &[("token", READ)], &[]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = session_cookie(&ok);
    let page = get(&app, &format!("/incidents/{id}"), Some(&cookie)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("DiskFull"), "{}", page.body);
    assert!(!page.body.contains("Acknowledge</button>"), "{}", page.body);
    let csrf = hidden_field(&page.body, "csrf");
    let a = post_form(
        &app,
        &format!("/incidents/{id}/ack"),
        &[("by", "wallboard"), ("csrf", &csrf)],
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("act scope"), "{}", a.body);
    assert_eq!(app.incident(id).await["state"], "triggered");
}

/// The value of the hidden input `name` in a page.
pub(crate) fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_an_alert_is_shown_as_text() {
    let mut alert = alerts::alert("Injected", "host1");
    alert["annotations"]["summary"] = "<script>alert(1)</script>".into();
    alert["labels"]["team"] = "<img src=x onerror=alert(2)>".into();
    let (app, _catcher, id) = paged(&alerts::payload("Injected", vec![alert])).await;
    let title = app.incident(id).await["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(title.contains("<script>"), "{title}");

    for path in ["/".to_string(), format!("/incidents/{id}")] {
        let a = get(&app, &path, None).await;
        assert_eq!(a.status, 200);
        assert!(
            a.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {}",
            a.body
        );
        assert!(!a.body.contains("<script"), "{path}: {}", a.body);
        assert!(!a.body.contains("<img"), "{path}: {}", a.body);
    }
    let page = get(&app, &format!("/incidents/{id}"), None).await;
    assert!(
        page.body
            .contains("team=&lt;img src=x onerror=alert(2)&gt;"),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_incident_is_a_404_page() {
    let (app, _catcher, _id) = paged(&alerts::firing("DiskFull")).await;
    for path in ["/incidents/999", "/incidents/abc"] {
        let a = get(&app, path, None).await;
        assert_eq!(a.status, 404, "{path}");
        assert!(a.content_type.starts_with("text/html"), "{path}");
        assert!(a.body.contains("<h1>No such incident</h1>"), "{}", a.body);
        assert!(a.body.contains("href=\"/\""), "{}", a.body);
    }
    let a = post_form(&app, "/incidents/999/ack", &[("by", "erin")], &[]).await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("No such incident"), "{}", a.body);
}
