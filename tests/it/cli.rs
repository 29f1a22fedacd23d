//! The command line as a person and a script use it: tables, exit codes, completions.

use std::process::Command;

use crate::alerts::firing;
use crate::catcher::PageCatcher;
use crate::harness::{
    TOCSIN, free_port, page_alice, spawn_app, spawn_app_on_clock, webhook_config,
};

fn tocsin(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(TOCSIN)
        .args(args)
        // No alerts.toml in the test's directory is read by accident.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run tocsin");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_table_health_and_exit_codes_against_a_running_daemon() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;
    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    let url = app.url("");
    let (code, out, err) = tokio::task::block_in_place(|| tocsin(&["incidents", "--url", &url]));
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{out}"
    );
    assert!(
        lines[1].contains("triggered") && lines[1].contains("DiskFull"),
        "{out}"
    );
    let (code, out, _) = tokio::task::block_in_place(|| tocsin(&["health", "--url", &url]));
    assert_eq!((code, out.trim()), (Some(0), "ok"));
    let (code, _, err) =
        tokio::task::block_in_place(|| tocsin(&["ack", "99999", "--url", &url, "--by", "bob"]));
    assert_eq!(code, Some(3), "the daemon refused: {err}");
    assert!(err.contains("99999"), "{err}");
}

#[test]
fn an_unreachable_daemon_exits_3_and_a_wrong_command_line_exits_2() {
    let url = format!("http://127.0.0.1:{}", free_port());
    for cmd in [["status"], ["health"], ["incidents"]] {
        let (code, _, err) = tocsin(&[cmd[0], "--url", &url]);
        assert_eq!(code, Some(3), "{cmd:?}: {err}");
        assert!(err.contains("cannot reach tocsin"), "{err}");
    }
    let (code, _, err) = tocsin(&["ack", "not-a-number"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_tocsin()"),
        ("zsh", "#compdef tocsin"),
        ("fish", "complete -c tocsin"),
    ] {
        let (code, out, err) = tocsin(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(
            [
                "check-config",
                "test-notify",
                "oncall",
                "override",
                "replace",
                "schedules",
                "silence",
                "expire"
            ]
            .iter()
            .all(|c| out.contains(c)),
            "{shell}"
        );
    }
    let (_, help, _) = tocsin(&["--help"]);
    assert!(
        help.contains("Exit codes:") && help.contains("Examples:"),
        "{help}"
    );
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(
        &config,
        "[notifiers.console]\ntype = \"log\"\n[contacts.a]\nmethods = [{ notifier = \"console\", to = \"a\" }]\n[policies.default]\nsteps = [{ after = \"0s\", notify = [\"a\"] }]\n[[routes]]\npolicy = \"default\"\n",
    )
    .unwrap();
    let log = dir.path().join("log");
    let mut child = Command::new(TOCSIN)
        .args(["--log-format", "json", "run", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start tocsin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("listening"), "{text}");
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
}

/// Runs tocsin with `TOCSIN_TOKEN` set to `token` (or unset).
fn tocsin_with_token(args: &[&str], token: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(TOCSIN);
    cmd.args(args).current_dir(std::env::temp_dir());
    match token {
        Some(t) => cmd.env("TOCSIN_TOKEN", t),
        None => cmd.env_remove("TOCSIN_TOKEN"),
    };
    let out = cmd.output().expect("run tocsin");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The audit: the CLI sent the master token with every call to whatever `--url` was
/// given. Now the config's token goes only to the config's own address; a token for
/// anywhere else is given on purpose, in `TOCSIN_TOKEN`, and may be a scoped one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_the_configs_token_only_to_the_configs_own_address() {
    const MASTER: &str = "cli-master-token-0123456789";
    const READER: &str = "cli-read-token-0123456789";
    let catcher = PageCatcher::start().await;
    let dir = tempfile::tempdir().unwrap();
    let master = crate::fake_api::secret_file(dir.path(), "master", MASTER);
    let reader = crate::fake_api::secret_file(dir.path(), "reader", READER);
    let tokens = format!(
        "auth_token_file = \"{master}\"\n[server.tokens.reader]\ntoken_file = \"{reader}\"\nscopes = [\"read\"]\n{}",
        webhook_config(&catcher.url(), &page_alice())
    );
    let mut app = spawn_app(&format!("[server]\n{tokens}")).await;
    app.authorization = Some(format!("Bearer {MASTER}"));
    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    // The CLI's view of the same daemon: its listen address is the config's own.
    let config = dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"{}\"\n{tokens}", app.addr),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let (code, out, err) =
        tokio::task::block_in_place(|| tocsin_with_token(&["incidents", "--config", config], None));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("DiskFull"), "{out}");

    let elsewhere = crate::fake_api::FakeApi::start(crate::fake_api::Answer::json(
        200,
        serde_json::json!({"incidents": []}),
    ))
    .await;
    let url = elsewhere.url();
    let (code, _, err) = tokio::task::block_in_place(|| {
        tocsin_with_token(&["incidents", "--config", config, "--url", &url], None)
    });
    assert_eq!(code, Some(0), "{err}");
    let sent = elsewhere.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("authorization"),
        None,
        "the master token went to {url}"
    );

    // Asked for: TOCSIN_TOKEN goes where --url says, and a scoped one does its scope.
    let (code, _, err) = tokio::task::block_in_place(|| {
        tocsin_with_token(&["incidents", "--url", &url], Some(READER))
    });
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        elsewhere.requests()[1].header("authorization"),
        Some(format!("Bearer {READER}").as_str())
    );
    let own = app.url("");
    let (code, out, _) = tokio::task::block_in_place(|| {
        tocsin_with_token(&["incidents", "--url", &own], Some(READER))
    });
    assert_eq!(code, Some(0), "a read token lists incidents");
    assert!(out.contains("DiskFull"), "{out}");
    let (code, _, err) = tokio::task::block_in_place(|| {
        tocsin_with_token(&["resolve", "1", "--url", &own], Some(READER))
    });
    assert_eq!(code, Some(3), "a read token resolved: {err}");
    assert!(err.contains("403") && err.contains("act"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_come_a_page_at_a_time_with_the_command_for_the_next() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;
    for name in ["Disk1", "Disk2", "Disk3"] {
        assert_eq!(app.post_alerts(&firing(name)).await.status, 200);
    }
    let url = app.url("");
    let (code, out, err) = tokio::task::block_in_place(|| {
        tocsin(&[
            "incidents",
            "--url",
            &url,
            "--state",
            "triggered",
            "--limit",
            "2",
        ])
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("Disk3") && out.contains("Disk2") && !out.contains("Disk1"),
        "{out}"
    );
    let more = out.lines().last().unwrap();
    assert_eq!(
        more,
        "more: tocsin incidents --state triggered --limit 2 --before 2"
    );
    let (code, out, err) = tokio::task::block_in_place(|| {
        tocsin(&["incidents", "--url", &url, "--limit", "2", "--before", "2"])
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Disk1") && !out.contains("more:"), "{out}");
}

/// bob, then alice, a week each from Monday 2026-11-16 09:00 in Chicago: at the test
/// clock's start (Saturday 2026-11-21 04:00 CST) bob is on call until Monday 09:00.
const PRIMARY: &str = r#"
[rotations.ops]
time_zone = "America/Chicago"
type = "weekly"
start = "2026-11-16T09:00"
members = ["bob", "alice"]

[schedules.primary]
time_zone = "America/Chicago"
fallback = "alice"
rules = [{ rotation = "ops" }]
"#;

/// Runs tocsin against the daemon at `url`, from a blocking thread of the test's runtime.
fn against(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = args.to_vec();
    all.extend(["--url", url]);
    tokio::task::block_in_place(|| tocsin(&all))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_shows_bob_and_after_an_override_replace_carol_on_the_schedules_clock() {
    let catcher = PageCatcher::start().await;
    let (app, _clock) = spawn_app_on_clock(&webhook_config(
        &catcher.url(),
        &format!("{}{PRIMARY}", page_alice()),
    ))
    .await;
    let url = app.url("");

    let (code, out, err) = against(&url, &["oncall"]);
    assert_eq!(code, Some(0), "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("primary"))
        .unwrap_or_default();
    assert!(
        row.contains(" bob ")
            && row.contains(" ops ")
            && row.ends_with("Mon 2026-11-23 09:00 CST (2026-11-23 15:00 UTC)"),
        "{out}"
    );

    let (code, out, err) = against(
        &url,
        &[
            "override", "replace", "primary", "bob", "carol", "--for", "8h", "--by", "alice",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        "override 1 of primary: carol replaces bob from Sat 2026-11-21 04:00 CST to Sat 2026-11-21 12:00 CST (by alice)"
    );
    let (code, out, err) = against(&url, &["oncall", "primary"]);
    assert_eq!(code, Some(0), "{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains(" carol ")
            && row.contains("override 1")
            && !row.contains("bob")
            && row.contains("Sat 2026-11-21 12:00 CST (2026-11-21 18:00 UTC)"),
        "{out}"
    );
    let (code, out, _) = against(&url, &["override", "list", "primary"]);
    assert_eq!(code, Some(0));
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with("1 ")
            && l.contains("replace")
            && l.contains("carol")
            && l.ends_with("alice")),
        "{out}"
    );
    // A local time is read on Chicago's wall clock: Monday 09:30 there is alice's week.
    let (code, out, err) = against(&url, &["oncall", "primary", "--at", "2026-11-23T09:30"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines().nth(1).is_some_and(|l| l.contains(" alice ")),
        "{out}"
    );
    let (code, out, err) = against(
        &url,
        &[
            "shifts",
            "primary",
            "--to",
            "2026-11-24T00:00",
            "--contact",
            "carol",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")
                == "carol Sat 2026-11-21 04:00 CST Sat 2026-11-21 12:00 CST override 1"),
        "{out}"
    );

    let (code, out, err) = against(&url, &["override", "delete", "primary", "1"]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), "override 1 of primary deleted"),
        "{err}"
    );
    let (_, out, _) = against(&url, &["oncall", "primary"]);
    assert!(
        out.lines().nth(1).is_some_and(|l| l.contains(" bob ")),
        "{out}"
    );

    let (code, _, err) = against(&url, &["oncall", "secondary"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("no schedule \"secondary\" (schedules: primary)"),
        "{err}"
    );
    let (code, _, err) = against(&url, &["override", "add", "primary", "dave", "--for", "1h"]);
    assert_eq!(code, Some(3), "the daemon refuses a stranger: {err}");
    assert!(err.contains("dave"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_check_names_a_weekend_gap_and_exits_1() {
    let catcher = PageCatcher::start().await;
    let weekdays = r#"
[schedules.weekdays]
time_zone = "America/Chicago"
rules = [{ contact = "bob", days = ["mon", "tue", "wed", "thu", "fri"] }]
"#;
    let (app, _clock) = spawn_app_on_clock(&webhook_config(
        &catcher.url(),
        &format!("{}{PRIMARY}{weekdays}", page_alice()),
    ))
    .await;
    let url = app.url("");
    let (code, out, err) = against(&url, &["schedules", "check", "--days", "7"]);
    assert_eq!(code, Some(1), "a gap ahead fails the check: {out}{err}");
    assert!(
        out.lines().any(|l| l
            .starts_with("weekdays: GAP Sat 2026-11-21 04:00 CST to Mon 2026-11-23 00:00 CST")
            && l.ends_with("nobody on call, nobody is paged: the schedule has no fallback")),
        "{out}"
    );
    assert!(
        out.contains("weekdays: GAP Sat 2026-11-28 00:00 CST"),
        "the next weekend too: {out}"
    );
    assert!(
        out.contains("primary: no gap or overlap in the next 7 days"),
        "{out}"
    );
    let (code, out, err) = against(&url, &["schedules", "check", "primary"]);
    assert_eq!(code, Some(0), "no gap in primary: {out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_made_from_the_cli_keeps_a_flapping_disk_quiet_until_it_is_expired() {
    let catcher = PageCatcher::start().await;
    let app = spawn_app(&webhook_config(&catcher.url(), &page_alice())).await;
    let url = app.url("");

    let (code, out, err) = against(
        &url,
        &[
            "silence",
            "add",
            "--match",
            "alertname=\"DiskFull\"",
            "--match",
            "instance=~\"host[0-9]\"",
            "--for",
            "2h",
            "--comment",
            "disk on host1 flaps, OPS-12",
            "--by",
            "alice",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("silence 1: alertname=\"DiskFull\", instance=~\"host[0-9]\" from ")
            && out.trim_end().ends_with("(by alice)"),
        "{out}"
    );

    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    assert!(
        app.incidents(None).await.is_empty(),
        "a silenced alert opened an incident"
    );

    let (code, out, err) = against(&url, &["silence", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("1 ")
            && row.contains("alertname=\"DiskFull\", instance=~\"host[0-9]\"")
            && row.contains(" yes ")
            && row.ends_with("alice  disk on host1 flaps, OPS-12"),
        "{out}"
    );
    let (_, out, _) = against(&url, &["silence", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["silences"][0]["comment"], "disk on host1 flaps, OPS-12");

    // One that would hide every alert is refused with the engine's reason.
    let (code, _, err) = against(
        &url,
        &[
            "silence",
            "add",
            "--match",
            "severity!=\"critical\"",
            "--for",
            "1h",
            "--comment",
            "quiet please",
        ],
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("would cover everything"), "{err}");

    let (code, out, err) = against(&url, &["silence", "expire", "1"]);
    assert_eq!((code, out.trim()), (Some(0), "silence 1 expired"), "{err}");
    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    assert_eq!(app.incidents(None).await.len(), 1);
    catcher
        .wait_for_pages(1, std::time::Duration::from_secs(5))
        .await;
    let (_, out, _) = against(&url, &["silence", "list"]);
    assert_eq!(out, "no silences in force or ahead\n");
    let (code, _, err) = against(&url, &["silence", "expire", "1"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no silence 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_from_the_cli_holds_the_page_and_releases_it_at_its_end() {
    let catcher = PageCatcher::start().await;
    let (app, clock) = spawn_app_on_clock(&webhook_config(&catcher.url(), &page_alice())).await;
    let url = app.url("");

    let (code, out, err) = against(
        &url,
        &[
            "maintenance",
            "start",
            "--match",
            "alertname=\"DiskFull\"",
            "--for",
            "2h",
            "--comment",
            "disk swap on host1",
            "--by",
            "alice",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("maintenance 1: alertname=\"DiskFull\""),
        "{out}"
    );

    assert_eq!(app.post_alerts(&firing("DiskFull")).await.status, 200);
    assert_eq!(app.incidents(None).await.len(), 1, "recorded as usual");
    catcher
        .assert_quiet(0, std::time::Duration::from_millis(300), "held")
        .await;
    let (code, out, err) = against(&url, &["maintenance", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines()
            .nth(1)
            .unwrap_or_default()
            .contains("disk swap on host1"),
        "{out}"
    );

    app.advance(&clock, std::time::Duration::from_secs(2 * 3600))
        .await;
    let pages = catcher
        .wait_for_pages(1, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(pages[0].target(), "alice");

    let (code, _, err) = against(&url, &["maintenance", "end", "1"]);
    assert_eq!(code, Some(3), "it has ended already: {err}");
    assert!(err.contains("no maintenance window 1"), "{err}");
}
