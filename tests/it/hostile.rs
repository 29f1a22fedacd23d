//! Someone unkind can reach the listener (it must be reachable for ack links and Twilio).
//! Whatever they do with connections, pages go out on time and `/healthz` answers.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::daemon::Daemon;
use crate::harness::{PEOPLE, init, webhook_config};

/// More half-sent requests than the daemon has file descriptors.
const SLOWLORIS: usize = 300;
const OPEN_FILES: u32 = 256;

/// Opens one connection that sends half a request and then nothing (slowloris).
async fn half_request(url: &str) -> Option<TcpStream> {
    let addr = url.strip_prefix("http://")?.split('/').next()?.to_string();
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .ok()?;
    Some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_flood_beyond_the_fd_limit_neither_blocks_healthz_nor_delays_a_page() {
    init();
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(
        &config,
        webhook_config(
            &catcher.url(),
            &format!(
                r#"{PEOPLE}
[policies.default]
steps = [{{ after = "6s", notify = ["alice"] }}]"#
            ),
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start_limited(
        &config,
        &dir.path().join("data"),
        dir.path().join("tocsin.log"),
        OPEN_FILES,
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    daemon.wait_ready(&client).await;
    let r = client
        .post(daemon.url("/hooks/alertmanager"))
        .json(&alerts::firing("DiskFull"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let posted = Instant::now();

    // The flood: every connection holds a descriptor in the daemon, for ever if allowed.
    let mut held = Vec::new();
    for _ in 0..SLOWLORIS {
        if let Some(s) = half_request(&daemon.url("/")).await {
            held.push(s);
        }
    }
    assert!(
        held.len() > OPEN_FILES as usize,
        "only {} connections opened",
        held.len()
    );

    // A new connection, as a monitor's probe would open (no pooled one to reuse).
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let asked = Instant::now();
    let health = fresh.get(daemon.url("/healthz")).send().await;
    let took = asked.elapsed();
    let status = health.map(|r| r.status().as_u16());
    assert_eq!(
        status.as_ref().ok(),
        Some(&200),
        "/healthz under the flood: {status:?}\n{}",
        daemon.log()
    );
    assert!(
        took < Duration::from_secs(2),
        "/healthz took {took:?} under the flood"
    );

    // The first step came due during the flood: its page needs a new socket of its own.
    let pages = catcher.wait_for_pages(1, Duration::from_secs(15)).await;
    assert_eq!(pages[0].target(), "alice", "{pages:?}");
    let late = posted.elapsed();
    assert!(
        late < Duration::from_secs(6 + 5),
        "the step was due 6 s after the alert, paged after {late:?}\n{}",
        daemon.log()
    );
    assert!(
        !daemon.log().contains("Too many open files"),
        "{}",
        daemon.log()
    );
    drop(held);
}

/// Contacts' phone numbers, alert text and who acked are in every incident: once a token
/// is configured, nobody reads them without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_configured_every_read_needs_it_but_healthz() {
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = crate::fake_api::secret_file(dir.path(), "token", "s3cret-token-4711");
    let text = |extra: &str| {
        format!(
            "[server]\nauth_token_file = \"{token}\"\n{extra}\n{}",
            webhook_config(
                &catcher.url(),
                "[contacts.alice]\nmethods = [{ notifier = \"hook\", to = \"+15550100\" }]\n[policies.default]\nsteps = [{ after = \"0s\", notify = [\"alice\"] }]"
            )
        )
    };
    let mut app = crate::harness::spawn_app(&text("")).await;
    app.authorization = Some("Bearer s3cret-token-4711".into());
    assert_eq!(
        app.post_alerts(&alerts::firing("DiskFull")).await.status,
        200
    );
    catcher.wait_for_pages(1, Duration::from_secs(5)).await;

    let get = |path: &str, bearer: Option<&str>| {
        let mut req = app.client.get(app.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    for path in [
        "/api/v1/incidents",
        "/api/v1/incidents/1",
        "/api/v1/status",
        "/api/v1/channels",
        "/metrics",
    ] {
        let (status, body) = get(path, None).await;
        assert_eq!(status, 401, "{path} without the token: {body}");
        assert!(!body.contains("+15550100"), "{path}: {body}");
        // One guess only: five from one address would throttle it (tests/it/access.rs).
        if path == "/api/v1/incidents" {
            let (status, _) = get(path, Some("a-guess")).await;
            assert_eq!(status, 401, "{path} with a wrong token");
        }
        let (status, body) = get(path, Some("s3cret-token-4711")).await;
        assert_eq!(status, 200, "{path} with the token: {body}");
    }
    assert!(
        get("/api/v1/incidents/1", Some("s3cret-token-4711"))
            .await
            .1
            .contains("+15550100"),
        "the token holder sees the pages"
    );
    assert_eq!(get("/healthz", None).await.0, 200, "monitors need no token");
    // Every refusal is counted (and logged with the client's address).
    assert_eq!(
        app.metric("tocsin_auth_failures_total").await,
        Some(6.0),
        "5 paths without a token, one with a wrong one"
    );

    // A Prometheus that cannot send a token: /metrics alone may be opened.
    let public = crate::harness::spawn_app(&text("metrics_public = true")).await;
    let r = public
        .client
        .get(public.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = public
        .client
        .get(public.url("/api/v1/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
