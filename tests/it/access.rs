//! Who may do what over HTTP: a token handed out for one purpose (Alertmanager, a cron
//! job's heartbeat, a dashboard) does that and nothing else; guessing is throttled per
//! address without ever locking out anyone else.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::fake_api::secret_file;
use crate::harness::{
    Reply, TestApp, metric_value, page_alice, spawn_app, spawn_app_on_clock, webhook_config,
};

const MASTER: &str = "master-token-0123456789";
const AM: &str = "alertmanager-token-0123456789";
const CRON: &str = "cron-heartbeat-token-0123456789";
const GRAFANA: &str = "grafana-read-token-0123456789";

/// A config with the master token and three scoped ones, secrets written into `dir`.
fn scoped_config(dir: &Path, hook_url: &str) -> String {
    let file = |name: &str, secret: &str| secret_file(dir, name, &format!("{secret}\n"));
    format!(
        r#"[server]
auth_token_file = "{master}"
[server.tokens.am]
token_file = "{am}"
scopes = ["hooks"]
[server.tokens.cron]
token_file = "{cron}"
scopes = ["heartbeat"]
[server.tokens.grafana]
token_file = "{grafana}"
scopes = ["read"]
[heartbeats.backup]
period = "1h"
{rest}"#,
        master = file("master", MASTER),
        am = file("am", AM),
        cron = file("cron", CRON),
        grafana = file("grafana", GRAFANA),
        rest = webhook_config(hook_url, &page_alice()),
    )
}

/// One request as `token` (or none) sends it, JSON-declared like a script's.
async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> Reply {
    let url = app.url(path);
    let req = match method {
        "GET" => app.client.get(url),
        _ => app
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"by": "someone"}"#),
    };
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    Reply::from(req.send().await.expect("request")).await
}

/// The audit's test: the token handed to a cron host for heartbeats resolved incidents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_token_cannot_resolve_an_incident_and_each_token_does_only_its_job() {
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app(&scoped_config(dir.path(), &catcher.url())).await;
    app.authorization = Some(format!("Bearer {AM}"));
    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    let id = {
        app.authorization = Some(format!("Bearer {GRAFANA}"));
        app.only_incident().await["id"].as_u64().unwrap()
    };
    let resolve = format!("/api/v1/incidents/{id}/resolve");

    let r = call(&app, "POST", &resolve, Some(CRON)).await;
    assert_eq!(r.status, 403, "the cron host's token resolved: {}", r.body);
    assert!(r.error().contains("\"act\""), "{}", r.error());
    assert!(!r.body.to_string().contains(CRON), "{}", r.body);
    assert_eq!(
        call(&app, "POST", "/hooks/heartbeat/backup", Some(CRON))
            .await
            .status,
        200
    );
    // Each token's own job, and nothing else.
    for (method, path, token, status) in [
        ("GET", "/api/v1/incidents", Some(AM), 403),
        ("POST", "/hooks/heartbeat/backup", Some(AM), 403),
        ("POST", resolve.as_str(), Some(AM), 403),
        ("POST", "/hooks/alertmanager", Some(CRON), 403),
        ("GET", "/api/v1/incidents", Some(CRON), 403),
        ("GET", "/metrics", Some(CRON), 403),
        ("GET", "/api/v1/status", Some(GRAFANA), 200),
        ("GET", "/api/v1/channels", Some(GRAFANA), 200),
        ("GET", "/metrics", Some(GRAFANA), 200),
        ("POST", resolve.as_str(), Some(GRAFANA), 403),
        ("POST", "/-/reload", Some(GRAFANA), 403),
        ("POST", "/hooks/heartbeat/backup", None, 401),
        (
            "GET",
            "/api/v1/incidents",
            Some("grafana-read-token-012345678"),
            401,
        ),
        ("GET", "/healthz", None, 200),
    ] {
        let r = call(&app, method, path, token).await;
        assert_eq!(r.status, status, "{method} {path} as {token:?}: {}", r.body);
    }
    let r = call(&app, "POST", "/-/reload", Some(GRAFANA)).await;
    assert!(r.error().contains("\"admin\""), "{}", r.error());
    // The master token still does everything.
    assert_eq!(call(&app, "POST", &resolve, Some(MASTER)).await.status, 200);
    // (Started without a file, there is nothing to re-read: 400, but not refused.)
    let r = call(&app, "POST", "/-/reload", Some(MASTER)).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_scoped_token_is_named_in_the_reload_answer_and_only_it_changes() {
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(&config, scoped_config(dir.path(), &catcher.url())).unwrap();
    let mut app = crate::harness::spawn_app_from_file(&config).await;
    app.authorization = Some(format!("Bearer {MASTER}"));

    let rotated = "alertmanager-token-rotated-9876";
    secret_file(dir.path(), "am", rotated);
    let r = app.reload().await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["reloaded"]["credentials_changed"], true,
        "{}",
        r.body
    );
    assert_eq!(
        r.body["reloaded"]["credentials"],
        json!(["server.tokens.am"]),
        "{}",
        r.body
    );
    assert!(!r.body.to_string().contains(rotated), "{}", r.body);
    let hook = |t: &'static str| call(&app, "POST", "/hooks/alertmanager", Some(t));
    assert_eq!(hook(AM).await.status, 401, "the old am token still works");
    assert_ne!(hook(rotated).await.status, 401);
    assert_eq!(
        call(&app, "GET", "/metrics", Some(GRAFANA)).await.status,
        200
    );
}

#[test]
fn check_config_refuses_short_and_shared_tokens_and_unknown_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let load = |tokens: &str| {
        let text = format!(
            "{tokens}\n{}",
            webhook_config("http://127.0.0.1:9/", &page_alice())
        );
        match tocsin::config::load_str(&text, Some(&dir.path().join("alerts.toml"))) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    secret_file(dir.path(), "short", "0123456789abcde\n");
    secret_file(dir.path(), "long", "0123456789abcdef\n");
    secret_file(dir.path(), "long-too", "0123456789abcdef\n");

    let e = load("[server.tokens.am]\ntoken_file = \"short\"\nscopes = [\"hooks\"]");
    assert!(
        e.contains("server.tokens.am.token_file")
            && e.contains("15 characters")
            && e.contains("16"),
        "{e}"
    );
    assert_eq!(
        load("[server.tokens.am]\ntoken_file = \"long\"\nscopes = [\"hooks\"]"),
        ""
    );
    let e = load("[server.tokens.am]\ntoken_file = \"long\"\nscopes = [\"hooks\", \"everything\"]");
    assert!(e.contains("everything") && e.contains("admin"), "{e}");
    let e = load("[server.tokens.am]\ntoken_file = \"long\"\nscopes = []");
    assert!(e.contains("server.tokens.am.scopes"), "{e}");
    let e = load(
        "[server.tokens.am]\ntoken_file = \"long\"\nscopes = [\"hooks\"]\n[server.tokens.cron]\ntoken_file = \"long-too\"\nscopes = [\"heartbeat\"]",
    );
    assert!(e.contains("same token"), "{e}");
    let e = load(
        "[server]\nauth_token_file = \"long\"\n[server.tokens.cron]\ntoken_file = \"long-too\"\nscopes = [\"heartbeat\"]",
    );
    assert!(
        e.contains("server.tokens.cron has the same token as server.auth_token"),
        "{e}"
    );
}

/// A client that connects from `ip` (any of 127/8 reaches the loopback listener).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get_as(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    token: &str,
) -> (u16, Option<String>) {
    let r = client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_is_throttled_for_a_while_and_nobody_else_is() {
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The master token alone, as configs were before scopes: guessing it was unlimited.
    let master = secret_file(dir.path(), "master", MASTER);
    let config = format!(
        "[server]\nauth_token_file = \"{master}\"\n{}",
        webhook_config(&catcher.url(), &page_alice())
    );
    let (mut app, clock) = spawn_app_on_clock(&config).await;
    app.authorization = Some(format!("Bearer {MASTER}"));
    let guesser = client_from("127.0.0.2");
    let colleague = client_from("127.0.0.3");
    let path = "/api/v1/incidents";

    for i in 1..=5 {
        let (status, _) = get_as(&guesser, &app, path, &format!("guess-{i}")).await;
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, retry) = get_as(&guesser, &app, path, "guess-6").await;
    assert_eq!(status, 429, "the sixth guess was checked");
    assert_eq!(retry.as_deref(), Some("60"));
    // The point: during the penalty not even the right token is looked at.
    assert_eq!(get_as(&guesser, &app, path, MASTER).await.0, 429);
    // /healthz answers anyone, and another address is not affected.
    let health = guesser.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(get_as(&colleague, &app, path, MASTER).await.0, 200);
    assert_eq!(get_as(&colleague, &app, path, "typo").await.0, 401);

    // After the minute the guesser is checked again; one more miss costs two minutes.
    clock.advance(Duration::from_secs(61));
    assert_eq!(get_as(&guesser, &app, path, MASTER).await.0, 200);
    assert_eq!(get_as(&guesser, &app, path, "guess-7").await.0, 401);
    let (status, retry) = get_as(&guesser, &app, path, "guess-8").await;
    assert_eq!((status, retry.as_deref()), (429, Some("120")));

    // A web login is throttled the same way.
    let login = |password: &'static str| {
        colleague
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .header("origin", format!("http://{}", app.addr))
            .body(format!("token={password}"))
            .send()
    };
    for i in 0..4 {
        assert_eq!(login("wrong").await.unwrap().status(), 403, "login {i}");
    }
    let r = login(MASTER).await.unwrap();
    assert_eq!(r.status(), 303, "a right login after four misses");
    assert_eq!(login("wrong").await.unwrap().status(), 403);
    assert_eq!(login(MASTER).await.unwrap().status(), 429);

    let metrics = app.metrics().await;
    assert!(
        metric_value(&metrics, "tocsin_auth_throttled_total").unwrap_or(0.0) >= 3.0,
        "{metrics}"
    );
}
