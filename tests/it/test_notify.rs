//! `tocsin test-notify`: the on-call engineer checks, before the night, that a page
//! really reaches each of their channels, and learns which one is broken.

use std::time::Duration;

use crate::catcher::PageCatcher;
use crate::harness::{TOCSIN, free_port, init};

fn run(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(TOCSIN)
        .arg("test-notify")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("running tocsin test-notify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_notify_pages_every_method_and_names_the_broken_one() {
    init();
    let catcher = PageCatcher::start().await;
    let dead = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[notifiers.push]
type = "webhook"
url = "{}"
[notifiers.backup]
type = "webhook"
url = "http://127.0.0.1:{dead}/nothing-listens-here"
timeout = "2s"
[contacts.alice]
methods = [{{ notifier = "push", to = "alice@pager" }}, {{ notifier = "backup", after = "5m" }}]
[policies.default]
steps = [{{ after = "0s", notify = ["alice"] }}]
[[routes]]
policy = "default"
"#,
            catcher.url()
        ),
    )
    .unwrap();

    let config2 = config.clone();
    let out = tokio::task::spawn_blocking(move || run(&config2, &["alice"]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one method is broken: {stdout}{stderr}"
    );
    assert!(
        stdout.contains("ok      push (webhook) to alice@pager"),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED  backup (webhook)"), "{stdout}");
    assert!(stderr.contains("1 of 2 test page(s) failed"), "{stderr}");
    let pages = catcher.wait_for_pages(1, Duration::from_secs(5)).await;
    assert_eq!(pages[0].event(), "test");
    assert_eq!(pages[0].body["to"], "alice@pager");

    let config3 = config.clone();
    let out = tokio::task::spawn_blocking(move || run(&config3, &["alice", "--via", "push"]))
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    catcher.wait_for_pages(2, Duration::from_secs(5)).await;

    let out = tokio::task::spawn_blocking(move || run(&config, &["mallory"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("neither a contact nor a notifier") && stderr.contains("alice"),
        "{stderr}"
    );
}
