//! Start and stop: a daemon that says it is up is up, a stop always finishes, and what it
//! keeps on disk is its own. Start and stop are tested on SQLite and on PostgreSQL (where
//! the stop gives the lease back); the data dir's files are SQLite's.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::alerts;
use crate::catcher::PageCatcher;
use crate::daemon::Daemon;
use crate::harness::{Backend, PEOPLE, init, on_both_stores, webhook_config};

fn config(catcher: &PageCatcher) -> String {
    let policy = format!(
        "{PEOPLE}\n[policies.default]\nsteps = [{{ after = \"0s\", notify = [\"alice\"] }}]\n"
    );
    webhook_config(&catcher.url(), &policy)
}

on_both_stores!(healthz_is_ok_as_soon_as_the_daemon_serves);
async fn healthz_is_ok_as_soon_as_the_daemon_serves(store: Backend) {
    let catcher = PageCatcher::start().await;
    let app = store.spawn_app_unready(&config(&catcher)).await;
    // A supervisor probing right after start must not be told the engine is stalled.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
}

on_both_stores!(a_silent_client_connection_cannot_hold_the_stop_open);
async fn a_silent_client_connection_cannot_hold_the_stop_open(store: Backend) {
    let catcher = PageCatcher::start().await;
    let mut app = store.spawn_app(&config(&catcher)).await;
    // A client that connected and never sent a byte (a port scanner, a stuck proxy).
    let _silent = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // `stop` panics if the graceful stop does not finish in time.
    app.stop().await;
}

fn mode(p: &Path) -> String {
    format!("{:04o}", std::fs::metadata(p).unwrap().mode() & 0o7777)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_outside_systemd_keeps_its_data_dir_to_itself() {
    init();
    let catcher = PageCatcher::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("alerts.toml");
    std::fs::write(&config, self::config(&catcher)).unwrap();
    // Not there yet: tocsin makes it, as on a first start from a shell or a container.
    let data_dir = tmp.path().join("tocsin-data");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut daemon = Daemon::start_under_umask("0022", &config, &data_dir, tmp.path().join("log"));
    daemon.wait_ready(&client).await;
    // An incident in the store: contacts' addresses are in its pages.
    let r = client
        .post(daemon.url("/hooks/alertmanager"))
        .json(&alerts::firing("DiskFull"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    catcher.wait_for_pages(1, Duration::from_secs(5)).await;

    assert_eq!(mode(&data_dir), "0700", "the data dir:\n{}", daemon.log());
    let mut files: Vec<(String, String)> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                mode(&e.path()),
            )
        })
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ack-link.key",
            "tocsin.db",
            "tocsin.db-shm",
            "tocsin.db-wal"
        ],
        "{files:?}"
    );
    for (name, mode) in &files {
        assert_eq!(mode, "0600", "{name}: {files:?}");
    }
    daemon.kill_9();
}
