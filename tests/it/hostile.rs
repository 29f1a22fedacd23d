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
        Some(OPEN_FILES),
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
