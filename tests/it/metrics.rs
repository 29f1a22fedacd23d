//! `/metrics` as Prometheus reads it: `promtool check metrics` (the format and its
//! naming conventions) accepts it, and every metric the README documents is there.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::alerts::firing;
use crate::catcher::PageCatcher;
use crate::harness::{page_alice, spawn_app, webhook_config};

const PROMTOOL: &str = "/usr/bin/promtool";

/// The metric names in the README's "Metrics:" paragraph.
fn documented() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("\nMetrics: ")
        .expect("a Metrics: paragraph in the README");
    let para = &readme[start..];
    let para = &para[..para.find("\n\n").unwrap_or(para.len())];
    let names: Vec<String> = para
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|m| m.split('{').next().unwrap().to_string())
        .filter(|m| m.starts_with("tocsin_"))
        .collect();
    assert!(names.len() > 20, "found only {names:?}");
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_include_every_documented_metric() {
    assert!(
        std::path::Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: apt-get install prometheus (scripts/test.sh does it)"
    );
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;
    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    catcher
        .wait_for_pages(1, std::time::Duration::from_secs(10))
        .await;

    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let missing: Vec<String> = documented()
        .into_iter()
        .filter(|m| !text.contains(&format!("# TYPE {m} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not exposed: {missing:?}"
    );

    // Prometheus itself asks for OpenMetrics, and gets it.
    let om = app
        .client
        .get(app.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));
}
