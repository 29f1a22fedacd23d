//! Start and stop: a daemon that says it is up is up, and a stop always finishes.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::catcher::PageCatcher;
use crate::harness::{PEOPLE, spawn_app, spawn_app_unready, webhook_config};

fn config(catcher: &PageCatcher) -> String {
    let policy = format!(
        "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"alice\"] }}]\n"
    );
    webhook_config(&catcher.url(), &policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ok_as_soon_as_the_daemon_serves() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app_unready(&config(&catcher)).await;
    // A supervisor probing right after start must not be told the engine is stalled.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_connection_cannot_hold_the_stop_open() {
    let catcher = PageCatcher::start().await;
    let mut app = spawn_app(&config(&catcher)).await;
    // A client that connected and never sent a byte (a port scanner, a stuck proxy).
    let _silent = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // `stop` panics if the graceful stop does not finish in time.
    app.stop().await;
}
